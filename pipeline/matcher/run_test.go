package matcher

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/stage"
	"github.com/hookline/hookline/schemas"
)

func readN(t *testing.T, b *broker.Broker, topic string, n int) []kafka.Message {
	t.Helper()
	r := b.GroupReader(topic, "test-reader-"+topic)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("read %s: got %d of %d: %v", topic, len(out), n, err)
		}
		out = append(out, m)
	}
	return out
}

// TestStageDeadLettersBadInputAndGoesOn: malformed and incomplete messages
// on hookline.events go to hookline.dead with their reason, and the valid
// ones around them are matched.
func TestStageDeadLettersBadInputAndGoesOn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, log := startOnePartition(t, ctx)

	w := b.Writer(schemas.TopicEvents, nil)
	err := w.Write(ctx, []kafka.Message{
		{Key: []byte("a"), Value: []byte(`{"resource":"ticket","trigger":"create","resource_id":"a","tenant":"t1"}`)},
		{Key: []byte("b"), Value: []byte(`not json at all`)},
		{Key: []byte("c"), Value: []byte(`{"resource":"ticket","trigger":"create","tenant":"t1"}`)},
		{Key: []byte("d"), Value: []byte(`{"resource":"ticket","trigger":"update","resource_id":"d","tenant":"t1"}`)},
	})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}

	stage := NewStage(b, staticWebhooks{"t1": {hook("w1", nil)}}, StageConfig{}, log)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- stage.Run(runCtx) }()

	jobs := readN(t, b, schemas.TopicDeliveries, 2)
	dead := readN(t, b, schemas.TopicDead, 2)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	types := map[string]bool{}
	for _, m := range jobs {
		var job schemas.Job
		if err := json.Unmarshal(m.Value, &job); err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != "w1" {
			t.Errorf("job keyed %q, want the webhook id", m.Key)
		}
		types[job.EventType] = true
	}
	if !types["ticket.created"] || !types["ticket.updated"] {
		t.Fatalf("jobs for %v, want ticket.created and ticket.updated", types)
	}
	reasons := map[string]string{}
	for _, m := range dead {
		// The original bytes exactly, with where they came from and why
		// in headers.
		if broker.Header(m, broker.HeaderTopic) != schemas.TopicEvents || broker.Header(m, broker.HeaderReason) == "" ||
			broker.Header(m, broker.HeaderOffset) == "" {
			t.Errorf("dead letter without source or reason: %+v", m.Headers)
		}
		reasons[string(m.Value)] = broker.Header(m, broker.HeaderReason)
	}
	if r := reasons["not json at all"]; r == "" {
		t.Errorf("malformed message not dead-lettered with a reason: %v", reasons)
	}
	if r := reasons[`{"resource":"ticket","trigger":"create","tenant":"t1"}`]; r == "" || !strings.Contains(r, "resource_id") {
		t.Errorf("incomplete message's reason does not name resource_id: %v", reasons)
	}
}

// TestABatchsFanOutGoesOutInPieces: a batch of events whose jobs pass
// emitChunk many times over is emitted in pieces, every job is written
// once and every event is committed.
func TestABatchsFanOutGoesOutInPieces(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, log := startOnePartition(t, ctx)
	const events, webhooks = 60, 5
	w := b.Writer(schemas.TopicEvents, nil)
	var msgs []kafka.Message
	for i := range events {
		id := "r" + strings.Repeat("0", 3-len(itoa(i))) + itoa(i)
		msgs = append(msgs, kafka.Message{Key: []byte(id), Value: []byte(`{"resource":"ticket","trigger":"update","resource_id":"` + id +
			`","tenant":"t1","data":{"description":"` + strings.Repeat("x", 20000) + `"}}`)})
	}
	err := w.Write(ctx, msgs)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	var hooks []schemas.Webhook
	for i := range webhooks {
		hooks = append(hooks, hook("w"+itoa(i), nil))
	}
	stage := NewStage(b, staticWebhooks{"t1": hooks}, StageConfig{}, log)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- stage.Run(runCtx) }()
	jobs := readN(t, b, schemas.TopicDeliveries, events*webhooks)
	waitCommitted(t, ctx, b)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range jobs {
		var job schemas.Job
		if err := json.Unmarshal(m.Value, &job); err != nil {
			t.Fatal(err)
		}
		if seen[job.DeliveryID] {
			t.Fatalf("job %s written twice", job.DeliveryID)
		}
		seen[job.DeliveryID] = true
	}
	if size(msgs)*webhooks < 4*emitChunk {
		t.Fatalf("the events' jobs are %d bytes, want several times emitChunk", size(msgs)*webhooks)
	}
	end, err := b.EndOffsets(ctx, schemas.TopicDeliveries)
	if err != nil || end[0] != events*webhooks {
		t.Fatalf("%v jobs written (%v), want %d", end, err, events*webhooks)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// startOnePartition starts a broker of one partition a topic, closed when
// the test ends, and a logger that discards.
func startOnePartition(t *testing.T, ctx context.Context) (*broker.Broker, *slog.Logger) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Start(ctx, broker.Config{DataDir: t.TempDir(), Partitions: 1}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, log
}

// recordEmitter keeps what a handler emits, one entry an emission.
type recordEmitter struct{ emissions [][]kafka.Message }

func (r *recordEmitter) EmitThen(msgs []kafka.Message, _ func(bool)) {
	r.emissions = append(r.emissions, msgs)
}

// TestHandleEmitsAFanOutInPieces: the jobs of one batch go out in several
// emissions, each of about emitChunk bytes (never more than one event's
// jobs past it), in the order of their events, none lost or repeated.
func TestHandleEmitsAFanOutInPieces(t *testing.T) {
	b, _ := startOnePartition(t, t.Context())
	const events, webhooks = 60, 5
	var hooks []schemas.Webhook
	for i := range webhooks {
		hooks = append(hooks, hook("w"+itoa(i), nil))
	}
	s := NewStage(b, staticWebhooks{"t1": hooks}, StageConfig{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var batch []*stage.Input
	for i := range events {
		batch = append(batch, &stage.Input{Message: kafka.Message{Topic: schemas.TopicEvents, Offset: int64(i), Time: time.Now(),
			Value: []byte(`{"resource":"ticket","trigger":"update","resource_id":"r` + itoa(i) + `","tenant":"t1","data":{"description":"` +
				strings.Repeat("x", 20000) + `"}}`)}})
	}
	out := &recordEmitter{}
	s.handle(batch, out)
	if len(out.emissions) < 4 {
		t.Fatalf("%d emissions for %d jobs of 20 KB, want them in pieces of about %d bytes", len(out.emissions), events*webhooks, emitChunk)
	}
	next := 0
	for i, e := range out.emissions {
		if size(e) > emitChunk+webhooks*25000 {
			t.Errorf("emission %d is %d bytes, more than one event's jobs past %d", i, size(e), emitChunk)
		}
		for _, m := range e {
			var job schemas.Job
			if err := json.Unmarshal(m.Value, &job); err != nil {
				t.Fatal(err)
			}
			if want := "r" + itoa(next/webhooks); job.ResourceID != want {
				t.Fatalf("job %d is for %s, want %s: jobs out of their events' order", next, job.ResourceID, want)
			}
			next++
		}
	}
	if next != events*webhooks {
		t.Fatalf("%d jobs emitted, want %d", next, events*webhooks)
	}
}

// TestAnOpenBatchNeverStopsItsPartition: a batching webhook's batch open
// for its 600 s window holds its first event uncommitted; the events
// behind it on the partition would reach the reader's bound of
// uncommitted events (100,000) and stop its reading for every webhook.
// Past half the bound the batch goes out early, so with 110,000 events of
// another webhook published behind it while the matcher runs, that
// webhook's jobs keep coming within a second of their events (p99), every
// event is committed and the batch loses nothing. Then a batch still open
// when the matcher stops is not lost: its event stays uncommitted, and
// the matcher started again (the webhook now waiting 1 s) sends it.
func TestAnOpenBatchNeverStopsItsPartition(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	b, log := startOnePartition(t, ctx)
	const others = 110_000
	order := func(id string) kafka.Message {
		return kafka.Message{Key: []byte(id), Value: []byte(`{"id":"` + id + `","resource":"order","trigger":"create","resource_id":"` + id + `","tenant":"t1"}`)}
	}
	ticket := func(i int) kafka.Message {
		id := "r" + itoa(i)
		return kafka.Message{Key: []byte(id), Value: []byte(`{"resource":"ticket","trigger":"update","resource_id":"` + id + `","tenant":"t1"}`)}
	}
	batched := func(wait int) []schemas.Webhook {
		return []schemas.Webhook{
			hook("batched", func(w *schemas.Webhook) {
				w.Events = []string{"order.*"}
				w.Batching = &schemas.Batching{Mode: schemas.BatchAny, WaitSeconds: wait, MaxItems: 100}
			}),
			hook("tickets", func(w *schemas.Webhook) { w.Events = []string{"ticket.*"} }),
		}
	}
	run := func(hooks []schemas.Webhook) (stop func()) {
		stage := NewStage(b, staticWebhooks{"t1": hooks}, StageConfig{}, log)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- stage.Run(runCtx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}

	stop := run(batched(600))
	w := b.Writer(schemas.TopicEvents, nil)
	defer w.Close()
	if err := w.Write(ctx, []kafka.Message{order("o1")}); err != nil {
		t.Fatal(err)
	}
	// Published while the matcher runs, about 10,000 a second.
	for i := 0; i < others; i += 500 {
		msgs := make([]kafka.Message, 0, 500)
		for j := i; j < i+500; j++ {
			msgs = append(msgs, ticket(j))
		}
		if err := w.Write(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	jobs := readN(t, b, schemas.TopicDeliveries, others+1)
	var late []time.Duration
	batches := map[string]int{}
	for _, m := range jobs {
		var job schemas.Job
		if err := json.Unmarshal(m.Value, &job); err != nil {
			t.Fatal(err)
		}
		if job.WebhookID == "batched" {
			for _, id := range job.EventIDs {
				batches[id]++
			}
			continue
		}
		late = append(late, m.Time.Sub(job.CreatedAt))
	}
	slices.Sort(late)
	p99, worst := late[len(late)*99/100], late[len(late)-1]
	t.Logf("tickets' jobs after their events: p99 %v, max %v (%d jobs)", p99, worst, len(late))
	if p99 > time.Second {
		t.Errorf("another webhook's jobs came %v after their events (p99; max %v) beside an open batch, want under a second", p99, worst)
	}
	if batches["o1"] != 1 {
		t.Fatalf("the open batch's event went out %d times, want once (early)", batches["o1"])
	}
	waitCommitted(t, ctx, b)

	// A batch open when the matcher stops.
	if err := w.Write(ctx, []kafka.Message{order("o2"), ticket(others)}); err != nil {
		t.Fatal(err)
	}
	readN(t, b, schemas.TopicDeliveries, others+2) // the ticket's job: o2 was read
	stop()
	if lag, err := b.Lag(ctx, Group, schemas.TopicEvents); err != nil || lag[0] != 2 {
		t.Fatalf("lag %v (%v) with a batch open at the stop, want its event and the one after uncommitted", lag, err)
	}
	stop = run(batched(1))
	defer stop()
	// The ticket's job again (its event was read again: a copy under the
	// same delivery id), then the batch, a second after.
	o2 := 0
	for _, m := range readN(t, b, schemas.TopicDeliveries, others+4)[others+1:] {
		var job schemas.Job
		if err := json.Unmarshal(m.Value, &job); err != nil {
			t.Fatal(err)
		}
		if job.WebhookID == "batched" && slices.Contains(job.EventIDs, "o2") {
			o2++
		}
	}
	if o2 != 1 {
		t.Fatalf("the batch open at the stop went out %d times after a restart, want once", o2)
	}
	waitCommitted(t, ctx, b)
}

// unreadableHooks are webhooks some of whose latest changes cannot be
// read, until cleared.
type unreadableHooks struct {
	staticWebhooks
	mu  sync.Mutex
	bad map[string]string
}

func (u *unreadableHooks) UnreadableWebhooks() map[string]string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return maps.Clone(u.bad)
}

// TestMatchingWaitsWhileAWebhookCannotBeRead: without a webhook's
// conditions an event would be committed as if it did not match it; so
// while a webhook's latest change cannot be read, the matcher matches
// nothing and commits nothing, and once it can, every event is matched.
func TestMatchingWaitsWhileAWebhookCannotBeRead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, log := startOnePartition(t, ctx)
	w := b.Writer(schemas.TopicEvents, nil)
	var msgs []kafka.Message
	for i := range 5 {
		id := "r" + itoa(i)
		msgs = append(msgs, kafka.Message{Key: []byte(id), Value: []byte(`{"resource":"ticket","trigger":"update","resource_id":"` + id + `","tenant":"t1"}`)})
	}
	err := w.Write(ctx, msgs)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	hooks := &unreadableHooks{staticWebhooks: staticWebhooks{"t1": {hook("tickets", nil)}},
		bad: map[string]string{"other": "its secrets do not open with --secrets-key"}}
	stage := NewStage(b, hooks, StageConfig{}, log)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- stage.Run(runCtx) }()
	time.Sleep(1500 * time.Millisecond)
	if end, err := b.EndOffsets(ctx, schemas.TopicDeliveries); err != nil || end[0] != 0 {
		t.Fatalf("%v jobs written (%v) while a webhook could not be read, want none", end, err)
	}
	if lag, err := b.Lag(ctx, Group, schemas.TopicEvents); err != nil || lag[0] != 5 {
		t.Fatalf("lag %v (%v) while a webhook could not be read, want all 5 events uncommitted", lag, err)
	}
	hooks.mu.Lock()
	hooks.bad = nil
	hooks.mu.Unlock()
	readN(t, b, schemas.TopicDeliveries, 5)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// waitCommitted waits until the matcher has committed every event of the
// one partition.
func waitCommitted(t *testing.T, ctx context.Context, b *broker.Broker) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		lag, err := b.Lag(ctx, Group, schemas.TopicEvents)
		if err == nil && lag[0] == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events not committed: lag %v, %v", lag, err)
		}
	}
}
