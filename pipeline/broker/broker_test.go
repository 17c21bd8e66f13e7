package broker

import (
	"context"
	"io"
	"log/slog"
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
	b.Close()       // nothing answers now: the write fails and is retried
	defer b.Close() // again: the failed write opened connections
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
