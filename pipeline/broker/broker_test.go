package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/schemas"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func start(t *testing.T, dir string) *Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Start(ctx, Config{DataDir: dir, Partitions: 2}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStartCreatesTopicsIdempotently(t *testing.T) {
	dir := t.TempDir()
	b := start(t, dir)
	for _, topic := range []string{schemas.TopicEvents, schemas.TopicSubscriptions, schemas.TopicDeliveries, schemas.TopicAttempts, schemas.TopicDead} {
		n, err := b.Partitions(context.Background(), topic)
		if err != nil || n != 2 {
			t.Fatalf("%s: %d partitions, err %v", topic, n, err)
		}
	}
	b.Close()
	b = start(t, dir) // the topics exist: no error
	b.Close()
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err == nil {
		t.Error("no brokers and no data dir accepted")
	}
	if err := (Config{DataDir: "x", Partitions: -1}).Validate(); err == nil {
		t.Error("negative partitions accepted")
	}
	if err := (Config{Brokers: []string{"h:9092"}}).Validate(); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

// TestConsumeCommitsOnlyAfterTheHandlerSucceeds: a batch whose handler fails
// is retried, and after a restart of the group nothing handled is read
// again while nothing unhandled is lost.
func TestConsumeCommitsOnlyAfterTheHandlerSucceeds(t *testing.T) {
	dir := t.TempDir()
	b := start(t, dir)
	w := b.Writer(schemas.TopicEvents, nil)
	var msgs []kafka.Message
	for i := 0; i < 20; i++ {
		msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	if err := w.Write(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	w.Close()

	var mu sync.Mutex
	seen := map[string]int{}
	failures := 1
	ctx, cancel := context.WithCancel(context.Background())
	handler := func(_ context.Context, batch []kafka.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if failures > 0 {
			failures--
			return errors.New("injected failure")
		}
		for _, m := range batch {
			seen[string(m.Value)]++
		}
		if len(seen) == 20 {
			cancel()
		}
		return nil
	}
	r := b.GroupReader(schemas.TopicEvents, "test-group")
	done := make(chan error, 1)
	go func() { done <- Consume(ctx, r, ConsumeConfig{Name: "test"}, handler, quiet) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("consume did not finish")
	}
	r.Close()
	for v, n := range seen {
		if n != 1 {
			t.Errorf("%s handled %d times", v, n)
		}
	}
	if len(seen) != 20 {
		t.Fatalf("handled %d messages, want 20", len(seen))
	}
	b.Close()

	// After a restart the group has nothing left to read.
	b = start(t, dir)
	defer b.Close()
	w = b.Writer(schemas.TopicEvents, nil)
	if err := w.Write(context.Background(), []kafka.Message{{Key: []byte("k"), Value: []byte("after")}}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r = b.GroupReader(schemas.TopicEvents, "test-group")
	defer r.Close()
	fctx, fcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer fcancel()
	m, err := r.FetchMessage(fctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Value) != "after" {
		t.Fatalf("after restart read %q, want the new message only", m.Value)
	}
}

func TestLagFollowsCommits(t *testing.T) {
	b := start(t, t.TempDir())
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := b.Writer(schemas.TopicEvents, nil)
	var msgs []kafka.Message
	for i := 0; i < 10; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte("same-key"), Value: []byte("v")})
	}
	if err := w.Write(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	w.Close()
	total := func() int64 {
		lags, err := b.Lag(ctx, "lag-group", schemas.TopicEvents)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, l := range lags {
			n += l
		}
		return n
	}
	if n := total(); n != 10 {
		t.Fatalf("lag before any commit = %d, want 10", n)
	}
	r := b.GroupReader(schemas.TopicEvents, "lag-group")
	defer r.Close()
	for i := 0; i < 4; i++ {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if n := total(); n != 6 {
		t.Fatalf("lag after committing 4 = %d, want 6", n)
	}
}

func TestWriteStopsWithItsContext(t *testing.T) {
	b := start(t, t.TempDir())
	w := b.Writer(schemas.TopicEvents, nil)
	defer w.Close()
	msg := []kafka.Message{{Key: []byte("k"), Value: []byte("v")}}
	if err := w.Write(context.Background(), msg); err != nil {
		t.Fatalf("write to a live broker: %v", err)
	}
	b.Close() // nothing answers now: the write fails and is retried
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := w.Write(ctx, msg); err == nil {
		t.Fatal("a write to a stopped broker succeeded")
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Fatalf("Write kept going %v after its context ended", waited)
	}
}
