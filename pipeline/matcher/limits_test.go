package matcher

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// smallLimit is the size limit of the stage's side in these tests: small,
// so that a few events pass it.
const smallLimit = 64 << 10

// twoSides starts an embedded broker (the producers' side, default limit)
// and a second connection to it whose writers are capped at smallLimit
// (the stage's side).
func twoSides(t *testing.T) (producers, stage *broker.Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	producers, err := broker.Start(ctx, broker.Config{DataDir: t.TempDir(), Partitions: 1}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producers.Close)
	stage, err = broker.Start(ctx, broker.Config{Brokers: producers.Addrs(), MaxMessageBytes: smallLimit}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stage.Close)
	return producers, stage
}

func event(id, resourceID string, dataBytes int) kafka.Message {
	data := strings.Repeat("x", dataBytes)
	v := fmt.Sprintf(`{"id":%q,"resource":"order","trigger":"paid","resource_id":%q,"tenant":"t1","data":{"blob":%q}}`, id, resourceID, data)
	return kafka.Message{Key: []byte(resourceID), Value: []byte(v)}
}

// readFor reads a topic until it has n messages, then for a little longer
// to catch any extra.
func readFor(t *testing.T, b *broker.Broker, topic string, n int, extra time.Duration) []kafka.Message {
	t.Helper()
	r, err := b.PartitionReader(topic, 0, kafka.FirstOffset)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []kafka.Message
	deadline := time.Now().Add(30 * time.Second)
	for {
		wait := time.Until(deadline)
		if len(out) >= n {
			wait = extra
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		m, err := r.FetchMessage(ctx)
		cancel()
		switch {
		case err != nil && len(out) >= n:
			return out
		case err != nil:
			t.Fatalf("read %s: got %d of %d: %v", topic, len(out), n, err)
		case !broker.IsControl(m):
			out = append(out, m)
		}
	}
}

func runStage(t *testing.T, b *broker.Broker, hooks Webhooks) (stop func()) {
	t.Helper()
	stage := NewStage(b, hooks, StageConfig{}, quiet)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stage.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stage: %v", err)
		}
	}
}

// TestStageCutsBatchesAtTheSizeLimitAndDeadLettersWhatCannotFit: a
// batching webhook's events go out as several jobs, each under the limit,
// together holding every event once; an event whose job alone is over the
// limit fails (a too_large attempt, a dead letter) and the events after it
// are matched.
func TestStageCutsBatchesAtTheSizeLimitAndDeadLettersWhatCannotFit(t *testing.T) {
	producers, b := twoSides(t)
	hooks := staticWebhooks{"t1": {
		hook("batch", func(w *schemas.Webhook) {
			w.Events = []string{"order.paid"}
			w.Identifier = ""
			w.Condition = `resource_id startsWith "b"`
			w.Batching = &schemas.Batching{Mode: schemas.BatchAny, WaitSeconds: 1, MaxItems: 1000}
		}),
		hook("single", func(w *schemas.Webhook) { w.Condition = `resource_id startsWith "s"` }),
	}}
	var msgs []kafka.Message
	for i := range 60 {
		msgs = append(msgs, event(fmt.Sprintf("b%02d", i), fmt.Sprintf("b%02d", i), 4<<10))
	}
	msgs = append(msgs, event("s-big", "s-big", 100<<10), event("s-small", "s-small", 10))
	w := producers.Writer(schemas.TopicEvents, nil)
	defer w.Close()
	if err := w.Write(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	stop := runStage(t, b, hooks)
	defer stop()

	// The small one is matched after the big one: the stage went on.
	attempts := readFor(t, b, schemas.TopicAttempts, 1, time.Second)
	if len(attempts) != 1 {
		t.Fatalf("%d attempt records, want 1 (the too_large failure)", len(attempts))
	}
	var att schemas.Attempt
	if err := json.Unmarshal(attempts[0].Value, &att); err != nil {
		t.Fatal(err)
	}
	if att.State != schemas.StateFailed || !strings.Contains(att.Error, "too_large") || att.EventIDs[0] != "s-big" {
		t.Fatalf("attempt = %+v; want the big event's delivery failed with too_large", att)
	}
	dead := readFor(t, b, schemas.TopicDead, 1, time.Second)
	if len(dead) != 1 || !strings.HasPrefix(broker.Header(dead[0], broker.HeaderReason), "too_large") {
		t.Fatalf("dead letters = %d, reason %q; want one too_large", len(dead), broker.Header(dead[0], broker.HeaderReason))
	}

	seen := map[string]int{}
	jobs := 0
	var single []string
	for deadline := time.Now().Add(30 * time.Second); len(seen) < 60 || len(single) < 1; {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %d of 60 batched events, %d single jobs", len(seen), len(single))
		}
		seen, jobs, single = map[string]int{}, 0, nil
		for _, m := range readFor(t, b, schemas.TopicDeliveries, 1, 500*time.Millisecond) {
			if broker.Size(m) > smallLimit {
				t.Fatalf("a job of %d bytes was written, over the limit of %d", broker.Size(m), smallLimit)
			}
			var job schemas.Job
			if err := json.Unmarshal(m.Value, &job); err != nil {
				t.Fatal(err)
			}
			if job.WebhookID == "single" {
				single = append(single, job.EventIDs...)
				continue
			}
			jobs++
			for _, id := range job.EventIDs {
				seen[id]++
			}
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s in %d batches", id, n)
		}
	}
	if jobs < 4 {
		t.Errorf("60 events of 4 KiB went out as %d jobs; want them cut at %d bytes", jobs, smallLimit)
	}
	if len(single) != 1 || single[0] != "s-small" {
		t.Errorf("single jobs for %v, want only s-small", single)
	}
}

// TestStageHonoursTransactions: events of an aborted transaction are never
// matched, those of a committed one once; the transaction markers are
// neither dead-lettered nor counted, and the group commits past them.
func TestStageHonoursTransactions(t *testing.T) {
	producers, b := twoSides(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(producers.Addrs()...), kgo.TransactionalID("hookline-test-tx"),
		kgo.DefaultProduceTopic(schemas.TopicEvents))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	transact := func(commit kgo.TransactionEndTry, ids ...string) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			m := event(id, id, 10)
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: m.Key, Value: m.Value}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	transact(kgo.TryAbort, "aborted-1", "aborted-2", "aborted-3")
	transact(kgo.TryCommit, "committed-1", "committed-2")

	stop := runStage(t, b, staticWebhooks{"t1": {hook("w", nil)}})
	jobs := readFor(t, b, schemas.TopicDeliveries, 2, 2*time.Second)
	var got []string
	for _, m := range jobs {
		var job schemas.Job
		if err := json.Unmarshal(m.Value, &job); err != nil {
			t.Fatal(err)
		}
		got = append(got, job.EventIDs...)
	}
	if strings.Join(got, ",") != "committed-1,committed-2" {
		t.Fatalf("jobs for %v; want committed-1 and committed-2 only", got)
	}
	if dead := readFor(t, b, schemas.TopicDead, 0, time.Second); len(dead) != 0 {
		t.Fatalf("%d dead letters; transaction markers must not be dead-lettered", len(dead))
	}
	// The commit passes the last marker: nothing left behind to re-read.
	end, err := b.EndOffsets(ctx, schemas.TopicEvents)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		lag, err := b.Lag(ctx, Group, schemas.TopicEvents)
		if err != nil {
			t.Fatal(err)
		}
		if lag[0] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag %d of end %d: the group stops before the transaction markers", lag[0], end[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
}
