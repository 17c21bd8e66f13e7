package api

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
)

// TestProducerGivesUpWhenTheBrokerIsGone: the API's writer publishes to a
// live broker, and answers an error within its timeout once the broker is
// gone (the API then answers 503) instead of retrying for as long as the
// client waits.
func TestProducerGivesUpWhenTheBrokerIsGone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{DataDir: t.TempDir(), Partitions: 1}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p := NewProducer(b)
	defer p.Close()
	p.timeout = 500 * time.Millisecond
	ev := schemas.Event{ID: "e1", Type: "ticket.created", Resource: "ticket", Trigger: "create", ResourceID: "T-1", Tenant: "t"}
	if err := p.PublishEvents(ctx, []schemas.Event{ev}); err != nil {
		t.Fatalf("publish to a live broker: %v", err)
	}
	b.Close()
	start := time.Now()
	if err := p.PublishEvents(ctx, []schemas.Event{ev}); err == nil {
		t.Fatal("a publish to a stopped broker succeeded")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the publish took %v to give up; want about its 500 ms timeout", took)
	}
}
