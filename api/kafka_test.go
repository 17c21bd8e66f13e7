package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/schemas"
)

// startProducer starts an embedded broker of one partition a topic (cfg's
// other settings as given) and the API's producer on it, both closed when
// the test ends.
func startProducer(t *testing.T, ctx context.Context, cfg broker.Config) (*broker.Broker, *Producer) {
	t.Helper()
	cfg.DataDir, cfg.Partitions = t.TempDir(), 1
	b, err := broker.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	p := NewProducer(b)
	t.Cleanup(func() { p.Close() })
	return b, p
}

// TestProducerGivesUpWhenTheBrokerIsGone: the API's writer publishes to a
// live broker, and answers an error within its timeout once the broker is
// gone (the API then answers 503) instead of retrying for as long as the
// client waits.
func TestProducerGivesUpWhenTheBrokerIsGone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, p := startProducer(t, ctx, broker.Config{})
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

// TestProducerRefusesAnEventOverTheLimitBeforeWriting: a publish holding an
// event over the broker's limit writes nothing and says which one; markup
// counts as its own size, not as JSON escapes.
func TestProducerRefusesAnEventOverTheLimitBeforeWriting(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, p := startProducer(t, ctx, broker.Config{MaxMessageBytes: 10000})
	event := func(id, data string) schemas.Event {
		v, _ := records.Marshal(map[string]string{"html": data}) // as a client sends it: markup unescaped
		return schemas.Event{ID: id, Type: "ticket.created", Resource: "ticket", Trigger: "create", ResourceID: id, Tenant: "t", Data: v}
	}
	err := p.PublishEvents(ctx, []schemas.Event{event("small", "x"), event("big", strings.Repeat("x", 12000))})
	var tooLarge *EventTooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.Index != 1 || tooLarge.Limit != 10000 || tooLarge.Size <= 10000 {
		t.Fatalf("publish with a 12 KB event: %v, want an EventTooLargeError for event 1", err)
	}
	// 9,000 characters of markup: 9 KB as they are, 54 KB escaped as
	// \u003c. They fit.
	if err := p.PublishEvents(ctx, []schemas.Event{event("markup", strings.Repeat("<", 9000))}); err != nil {
		t.Fatalf("publish of 9,000 '<': %v", err)
	}
	end, err := b.EndOffsets(ctx, schemas.TopicEvents)
	if err != nil {
		t.Fatal(err)
	}
	if end[0] != 1 {
		t.Fatalf("hookline.events holds %d events, want only the markup one: the refused publish wrote something", end[0])
	}
}
