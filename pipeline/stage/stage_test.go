package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func startBroker(t testing.TB, dir string, limit int) *broker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{DataDir: dir, Partitions: 2, MaxMessageBytes: limit}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func produce(t *testing.T, b *broker.Broker, values ...string) {
	t.Helper()
	w := b.Writer(schemas.TopicEvents, nil)
	defer w.Close()
	var msgs []kafka.Message
	for _, v := range values {
		msgs = append(msgs, kafka.Message{Key: []byte(v), Value: []byte(v)})
	}
	if err := w.Write(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
}

func values(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return out
}

// handlerFunc is a Handler from a function.
type handlerFunc func(ctx context.Context, batch []*Input, out *Outbox) error

func (f handlerFunc) Handle(ctx context.Context, batch []*Input, out *Outbox) error {
	return f(ctx, batch, out)
}

// seen records what a handler handled.
type seen struct {
	mu sync.Mutex
	n  map[string]int
}

func (s *seen) add(batch []*Input) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[string]int{}
	}
	for _, in := range batch {
		s.n[string(in.Value)]++
	}
	return len(s.n)
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.n)
}

// run runs a runner over hookline.events in group "g" until stop is
// called; stop returns Run's error.
func run(t *testing.T, b *broker.Broker, cfg Config, h Handler) (stop func() error) {
	t.Helper()
	out := b.Writer("", nil)
	r, err := New(cfg, h, out, quiet, Source{Reader: b.GroupReader(schemas.TopicEvents, "g"), Topic: schemas.TopicEvents})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			out.Close()
			return err
		case <-time.After(60 * time.Second):
			t.Fatal("the runner did not stop")
			return nil
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %s", what)
		}
	}
}

// TestRunnerCommitsOnlyWhatIsDone: a batch whose handler fails is handled
// again and never skipped; after a restart nothing done is read again.
func TestRunnerCommitsOnlyWhatIsDone(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir, 0)
	produce(t, b, values("v", 20)...)
	var s seen
	failures := 2
	var mu sync.Mutex
	stop := run(t, b, Config{CommitInterval: 10 * time.Millisecond}, handlerFunc(func(_ context.Context, batch []*Input, out *Outbox) error {
		mu.Lock()
		defer mu.Unlock()
		if failures > 0 {
			failures--
			return errors.New("injected failure")
		}
		s.add(batch)
		out.Emit(nil, batch...)
		return nil
	}))
	waitFor(t, "20 handled", func() bool { return s.count() == 20 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for v, n := range s.n {
		if n != 1 {
			t.Errorf("%s handled %d times", v, n)
		}
	}
	b.Close()

	b = startBroker(t, dir, 0)
	defer b.Close()
	produce(t, b, "after")
	var again seen
	stop = run(t, b, Config{}, handlerFunc(func(_ context.Context, batch []*Input, out *Outbox) error {
		again.add(batch)
		out.Emit(nil, batch...)
		return nil
	}))
	waitFor(t, "the new message", func() bool { return again.count() == 1 })
	time.Sleep(200 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if again.count() != 1 || again.n["after"] != 1 {
		t.Fatalf("after a restart handled %v, want only the new message", again.n)
	}
}

// TestAStopWhileTheHandlerFailsCommitsNothing: stopped (soft, then hard)
// while every try of the handler fails, the runner commits none of the
// inputs: the next run gets every one.
func TestAStopWhileTheHandlerFailsCommitsNothing(t *testing.T) {
	b := startBroker(t, t.TempDir(), 0)
	defer b.Close()
	produce(t, b, values("v", 10)...)
	var tries seen
	stop := run(t, b, Config{DrainTimeout: 300 * time.Millisecond}, handlerFunc(func(_ context.Context, batch []*Input, _ *Outbox) error {
		tries.add(batch)
		return errors.New("store down")
	}))
	waitFor(t, "a try", func() bool { return tries.count() > 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var s seen
	stop = run(t, b, Config{}, handlerFunc(func(_ context.Context, batch []*Input, out *Outbox) error {
		s.add(batch)
		out.Emit(nil, batch...)
		return nil
	}))
	waitFor(t, "all 10 again", func() bool { return s.count() == 10 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestAnOutputOverTheLimitIsDeadLetteredAndTheStageGoesOn: one input's
// output is over the size limit: it is dead-lettered, the input and every
// other one are done and committed, and the other outputs are written.
func TestAnOutputOverTheLimitIsDeadLetteredAndTheStageGoesOn(t *testing.T) {
	b := startBroker(t, t.TempDir(), 8192)
	defer b.Close()
	produce(t, b, append(values("v", 10), "big")...)
	stop := run(t, b, Config{CommitInterval: 10 * time.Millisecond}, handlerFunc(func(_ context.Context, batch []*Input, out *Outbox) error {
		for _, in := range batch {
			value := in.Value
			if string(value) == "big" {
				value = []byte(strings.Repeat("x", 20000))
			}
			out.Emit([]kafka.Message{{Topic: schemas.TopicDeliveries, Key: in.Key, Value: value}}, in)
		}
		return nil
	}))
	waitForNoLag(t, b)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := count(t, b, schemas.TopicDeliveries); got != 10 {
		t.Errorf("%d outputs written, want the 10 small ones", got)
	}
	if got := count(t, b, schemas.TopicDead); got != 1 {
		t.Errorf("%d dead letters, want the big output's", got)
	}
}

func count(t *testing.T, b *broker.Broker, topic string) int64 {
	t.Helper()
	end, err := b.EndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range end {
		n += e
	}
	return n
}

// TestTheSoftStopLetsInFlightWorkFinish: work handed to another goroutine
// finishes after the soft stop, within the drain time, and is committed.
func TestTheSoftStopLetsInFlightWorkFinish(t *testing.T) {
	b := startBroker(t, t.TempDir(), 0)
	defer b.Close()
	produce(t, b, values("v", 5)...)
	var s seen
	var workers sync.WaitGroup
	stop := run(t, b, Config{}, handlerFunc(func(_ context.Context, batch []*Input, out *Outbox) error {
		s.add(batch)
		workers.Add(1)
		go func() {
			defer workers.Done()
			time.Sleep(300 * time.Millisecond)
			out.Emit([]kafka.Message{{Topic: schemas.TopicDeliveries, Value: []byte("done")}}, batch...)
		}()
		return nil
	}))
	waitFor(t, "5 handed out", func() bool { return s.count() == 5 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	workers.Wait()
	lag, err := b.Lag(context.Background(), "g", schemas.TopicEvents)
	if err != nil {
		t.Fatal(err)
	}
	if lag[0]+lag[1] != 0 {
		t.Fatalf("lag %v after the stop; the work in flight was not committed", lag)
	}
}

// TestASourceOfSeveralTopicsCommitsEachTopic: one reader over two topics
// (one group); each input is committed on its own topic and partition.
func TestASourceOfSeveralTopicsCommitsEachTopic(t *testing.T) {
	b := startBroker(t, t.TempDir(), 0)
	defer b.Close()
	produce(t, b, values("e", 10)...)
	w := b.Writer(schemas.TopicAttempts, nil)
	var msgs []kafka.Message
	for _, v := range values("a", 10) {
		msgs = append(msgs, kafka.Message{Key: []byte(v), Value: []byte(v)})
	}
	if err := w.Write(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	w.Close()
	topics := []string{schemas.TopicEvents, schemas.TopicAttempts}
	out := b.Writer("", nil)
	defer out.Close()
	var s seen
	r, err := New(Config{CommitInterval: 10 * time.Millisecond}, handlerFunc(func(_ context.Context, batch []*Input, out *Outbox) error {
		s.add(batch)
		out.Emit(nil, batch...)
		return nil
	}), out, quiet, Source{Reader: b.GroupReaderOf("g", topics, nil), Topic: strings.Join(topics, ",")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, "20 handled", func() bool { return s.count() == 20 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, topic := range topics {
		lag, err := b.Lag(context.Background(), "g", topic)
		if err != nil {
			t.Fatal(err)
		}
		if lag[0]+lag[1] != 0 {
			t.Errorf("%s: lag %v after the stop", topic, lag)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	for _, c := range []Config{{MaxBatch: 10, MaxInFlight: 5}, {Linger: -1}, {MaxUncommitted: -1}, {OutboxBytes: -1}} {
		if err := c.WithDefaults().Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// TestTheOutboxBudgetHoldsEmitBack: an emission waits while what is queued
// and unwritten would pass OutboxBytes, goes on when a write frees its
// bytes, and is given up (then(false)) when the outbox quits.
func TestTheOutboxBudgetHoldsEmitBack(t *testing.T) {
	cfg := Config{OutboxBytes: 100}.WithDefaults()
	o := newOutbox(&Runner{cfg: cfg})
	msg := func(n int) []kafka.Message { return []kafka.Message{{Value: make([]byte, n)}} }
	o.Emit(msg(60)) // within the budget: queued at once
	second := make(chan bool, 1)
	go o.EmitThen(msg(60), func(written bool) { second <- written })
	time.Sleep(100 * time.Millisecond)
	if len(o.ch) != 1 {
		t.Fatalf("%d emissions queued, want 1: the second passes the budget", len(o.ch))
	}
	first := <-o.ch // as run does once the first is written
	o.budget.Release(first.bytes)
	waitFor(t, "the second emission to be queued", func() bool { return len(o.ch) == 1 })
	// Larger than the whole budget: waits for all of it, then goes.
	third := make(chan bool, 1)
	go o.EmitThen(msg(500), func(written bool) { third <- written })
	time.Sleep(100 * time.Millisecond)
	if len(o.ch) != 1 {
		t.Fatalf("%d emissions queued, want 1", len(o.ch))
	}
	close(o.quit)
	select {
	case written := <-third:
		if written {
			t.Fatal("an emission waiting at quit was written")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an emission waiting for the budget did not give up at quit")
	}
	if len(second) != 0 {
		t.Fatal("the queued emission was finished before it was written")
	}
}

// TestEmissionsOverTheBudgetAreAllWritten: a stage whose outputs pass
// OutboxBytes many times over writes every one of them.
func TestEmissionsOverTheBudgetAreAllWritten(t *testing.T) {
	b := startBroker(t, t.TempDir(), 0)
	defer b.Close()
	produce(t, b, values("v", 50)...)
	stop := run(t, b, Config{OutboxBytes: 1000, CommitInterval: 10 * time.Millisecond}, handlerFunc(func(_ context.Context, batch []*Input, out *Outbox) error {
		for _, in := range batch {
			msgs := make([]kafka.Message, 20)
			for i := range msgs {
				msgs[i] = kafka.Message{Topic: schemas.TopicDeliveries, Key: in.Key, Value: []byte(strings.Repeat("x", 300))}
			}
			out.Emit(msgs, in)
		}
		return nil
	}))
	waitForNoLag(t, b)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := count(t, b, schemas.TopicDeliveries); got != 50*20 {
		t.Errorf("%d outputs written, want %d", got, 50*20)
	}
}

// waitForNoLag waits until group "g" has committed all of hookline.events.
func waitForNoLag(t *testing.T, b *broker.Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitFor(t, "the group's lag to reach 0", func() bool {
		lag, err := b.Lag(ctx, "g", schemas.TopicEvents)
		return err == nil && lag[0] == 0 && lag[1] == 0
	})
}

// holding is a Revoker handler that finishes the inputs at even offsets
// at once and holds the others until their partition is revoked.
type holding struct {
	mu      sync.Mutex
	held    []*Input
	handled map[string]int // value → times handled
	revoked map[int32]bool
}

func (h *holding) Handle(_ context.Context, batch []*Input, out *Outbox) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, in := range batch {
		h.handled[string(in.Value)]++
		if in.Offset%2 == 0 {
			in.Done()
		} else {
			h.held = append(h.held, in)
		}
	}
	return nil
}

func (h *holding) Revoke(_ context.Context, parts map[string][]int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	kept := h.held[:0]
	for _, in := range h.held {
		gone := false
		for _, p := range parts[schemas.TopicEvents] {
			if int32(in.Partition) == p {
				gone = true
				h.revoked[p] = true
			}
		}
		if !in.Stale() && gone {
			panic("an input of a revoked partition is not stale")
		}
		if gone {
			in.Abandon()
		} else {
			kept = append(kept, in)
		}
	}
	h.held = kept
}

// TestARebalanceIsFencedAndCommitsOnlyWhatIsDone: a runner whose handler
// holds inputs gives a partition to a second runner joining the group:
// its handler is told (Revoke) before the partition goes, the partition's
// inputs are stale from then, what was done of it is committed once, and
// the new owner reads again exactly what was not done (the held inputs),
// never what was (the done prefix was committed before the handover).
func TestARebalanceIsFencedAndCommitsOnlyWhatIsDone(t *testing.T) {
	b := startBroker(t, t.TempDir(), 0)
	defer b.Close()
	vals := values("v", 40)
	produce(t, b, vals...)
	a := &holding{handled: map[string]int{}, revoked: map[int32]bool{}}
	stopA := run(t, b, Config{CommitInterval: 20 * time.Millisecond, DrainTimeout: 200 * time.Millisecond}, a)
	defer stopA()
	waitFor(t, "the first runner to read everything", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.handled) == len(vals)
	})
	time.Sleep(100 * time.Millisecond) // a periodic commit of the done prefix
	bh := &holding{handled: map[string]int{}, revoked: map[int32]bool{}}
	stopB := run(t, b, Config{CommitInterval: 20 * time.Millisecond, DrainTimeout: 200 * time.Millisecond}, bh)
	defer stopB()
	var moved int32 = -1
	waitFor(t, "a partition to move to the second runner", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		for p := range a.revoked {
			moved = p
		}
		return moved >= 0
	})
	// The second runner reads the moved partition from its committed
	// offset: the first held (odd) input of it, and what follows.
	r, err := b.PartitionReader(schemas.TopicEvents, int(moved), kafka.FirstOffset)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var inMoved []kafka.Message
	for len(inMoved) < len(vals) {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			break // the partition's end
		}
		inMoved = append(inMoved, m)
	}
	waitFor(t, "the second runner to read the moved partition's held inputs", func() bool {
		bh.mu.Lock()
		defer bh.mu.Unlock()
		for _, m := range inMoved {
			if m.Offset%2 == 1 && bh.handled[string(m.Value)] == 0 {
				return false
			}
		}
		return true
	})
	bh.mu.Lock()
	defer bh.mu.Unlock()
	for _, m := range inMoved {
		if m.Offset == 0 && bh.handled[string(m.Value)] != 0 {
			t.Errorf("the new owner read again %s at offset 0, done and committed before the handover", m.Value)
		}
	}
}

// gated is a Handler with a Gate: it holds what it is given until told to
// let go, and has room for at most max inputs.
type gated struct {
	mu   sync.Mutex
	held []*Input
	max  int
	seen seen
}

func (g *gated) Handle(_ context.Context, batch []*Input, _ *Outbox) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held = append(g.held, batch...)
	g.seen.add(batch)
	return nil
}

func (g *gated) WaitForRoom(ctx context.Context) bool {
	for {
		g.mu.Lock()
		room := len(g.held) < g.max
		g.mu.Unlock()
		if room {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Millisecond):
		}
	}
}

func (g *gated) finish() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, in := range g.held {
		in.Done()
	}
	g.held = nil
}

// TestAGateHoldsFetchingUntilTheHandlerHasRoom: a handler that bounds what
// it holds by more than a count (the sender's bytes) is handed no more
// than it has room for, however far MaxInFlight would let the runner
// read; once it lets go, the rest comes, and all of it is committed.
func TestAGateHoldsFetchingUntilTheHandlerHasRoom(t *testing.T) {
	b := startBroker(t, t.TempDir(), 0)
	defer b.Close()
	produce(t, b, values("v", 40)...)
	g := &gated{max: 5}
	stop := run(t, b, Config{MaxBatch: 1, MaxInFlight: 1000, CommitInterval: 10 * time.Millisecond}, g)
	waitFor(t, "the first inputs", func() bool { return g.seen.count() >= 5 })
	time.Sleep(200 * time.Millisecond)
	// A gate is looked at before each input is handed over: a few already
	// on their way to Handle may pass it, not the rest of the topic.
	if n := g.seen.count(); n > 10 {
		t.Fatalf("the handler was given %d of 40 inputs with room for 5", n)
	}
	for g.seen.count() < 40 {
		g.finish()
		time.Sleep(5 * time.Millisecond)
	}
	g.finish()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
