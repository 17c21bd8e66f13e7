package stage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/semaphore"

	"github.com/hookline/hookline/pipeline/broker"
)

// Config tunes a runner. The zero value is usable: every field has a
// default, applied by WithDefaults.
type Config struct {
	// Name labels log lines. Default "stage".
	Name string
	// MaxBatch caps the inputs of one Handle call. Default 500.
	MaxBatch int
	// Linger is how long a batch waits for more inputs after its first, up
	// to MaxBatch: fewer, larger batches for a little latency. Default 0:
	// take what has arrived.
	Linger time.Duration
	// MaxInFlight bounds the inputs fetched and not finished, all sources
	// together: beyond it fetching waits (backpressure to Kafka, not to
	// memory). Default 10000.
	MaxInFlight int
	// MaxUncommitted bounds, per partition, the inputs fetched after the
	// oldest unfinished one (a slow input holds the commit back, not the
	// work): beyond it that partition's fetching waits. Default 50000.
	MaxUncommitted int
	// CommitInterval is how often the finished prefix of each partition is
	// committed. Default 200 ms.
	CommitInterval time.Duration
	// CommitEvery also commits as soon as this many inputs are done since
	// the last commit, so that a fast stage loses no more than that much
	// progress to a crash. Default 0: by time only.
	CommitEvery int
	// DrainTimeout is the time from the soft stop (the context of Run is
	// cancelled: no more fetching) to the hard stop (in-flight work is
	// abandoned, uncommitted, and read again by the next run). Default
	// 30 s.
	DrainTimeout time.Duration
	// OutboxBatch caps the emissions written in one write. Default 2000.
	OutboxBatch int
	// OutboxLinger is how long a write waits for more emissions after its
	// first, up to OutboxBatch: fewer, larger writes (each is a produce
	// request and a record batch per partition) for a little latency of
	// the outputs and of the commit. Default 0: write what is queued.
	OutboxLinger time.Duration
	// OutboxBytes bounds the bytes (keys and values) emitted and not yet
	// written: beyond it Emit waits. MaxInFlight bounds inputs, not what
	// they produce, and one event can make a job for every webhook it
	// matches. Default 32 MiB.
	OutboxBytes int
}

// WithDefaults returns the config with every unset field at its default.
func (c Config) WithDefaults() Config {
	c.MaxBatch = cmp.Or(c.MaxBatch, 500)
	c.MaxInFlight = cmp.Or(c.MaxInFlight, 10000)
	c.MaxUncommitted = cmp.Or(c.MaxUncommitted, 50000)
	c.CommitInterval = cmp.Or(c.CommitInterval, 200*time.Millisecond)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, 30*time.Second)
	c.OutboxBatch = cmp.Or(c.OutboxBatch, 2000)
	c.OutboxBytes = cmp.Or(c.OutboxBytes, 32<<20)
	c.Name = cmp.Or(c.Name, "stage")
	return c
}

// Validate reports a config that cannot work. Call it on WithDefaults.
func (c Config) Validate() error {
	switch {
	case c.MaxBatch < 1:
		return fmt.Errorf("stage %s: max batch %d must be positive", c.Name, c.MaxBatch)
	case c.MaxInFlight < c.MaxBatch:
		return fmt.Errorf("stage %s: max in flight %d is under max batch %d", c.Name, c.MaxInFlight, c.MaxBatch)
	case c.CommitEvery < 0:
		return fmt.Errorf("stage %s: commit every %d must not be negative", c.Name, c.CommitEvery)
	case c.MaxUncommitted < 1:
		return fmt.Errorf("stage %s: max uncommitted %d must be positive", c.Name, c.MaxUncommitted)
	case c.Linger < 0 || c.OutboxLinger < 0 || c.CommitInterval < 0 || c.DrainTimeout < 0:
		return fmt.Errorf("stage %s: durations must not be negative", c.Name)
	case c.OutboxBatch < 1:
		return fmt.Errorf("stage %s: outbox batch %d must be positive", c.Name, c.OutboxBatch)
	case c.OutboxBytes < 1:
		return fmt.Errorf("stage %s: outbox bytes %d must be positive", c.Name, c.OutboxBytes)
	}
	return nil
}

// Reader is where a source's messages come from (broker.Reader).
type Reader interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}

// Source is one input of a stage: a reader of one topic or several.
type Source struct {
	Reader Reader
	// Topic names the source in logs. Offsets are tracked and committed
	// per partition of the topic each message names (this one for a
	// message that names none).
	Topic string
}

// Handler is a stage's work. Handle gets a batch of inputs of one source,
// in fetch order. For each input it must, now or later and from any
// goroutine, call exactly one of: out.Emit (outputs, after whose write the
// input is done), in.Done (nothing to write) or in.Abandon (leave it to the
// next run, uncommitted). It may block, which holds the source's fetching
// (backpressure). ctx ends at the hard stop.
//
// An error means that nothing of the batch was done: the runner calls
// Handle again with the same batch, after a backoff (100 ms doubling to
// 5 s), until it succeeds or the hard stop. Nothing is ever skipped.
type Handler interface {
	Handle(ctx context.Context, batch []*Input, out *Outbox) error
}

// Ticker is a Handler with work due at times of its own (the matcher's
// batch deadlines). Tick runs in the goroutine that calls Handle for the
// first source, so the two need no lock between them.
type Ticker interface {
	// Next is when Tick is due; false for never.
	Next() (time.Time, bool)
	Tick(ctx context.Context, out *Outbox) error
}

// Holder is a Handler that keeps inputs across batches (the matcher's open
// batches). At the soft stop Release gives them up: it abandons each, and
// the next run reads them again. It runs in the goroutine of Handle.
type Holder interface {
	Release()
}

// Gate is a Handler that bounds what it holds by more than a count (the
// sender: bytes). Fetching waits until it has room: the inputs it has no
// room for stay in Kafka, where they cost nothing, instead of being
// fetched and written somewhere else to wait.
type Gate interface {
	// WaitForRoom returns true when the handler has room for another
	// input, false if ctx ends first.
	WaitForRoom(ctx context.Context) bool
}

// Revoker is a Handler that works on inputs long after Handle returns
// (the sender's queues). When a rebalance takes partitions away, Revoke is
// called before they are given up: it must stop working on their inputs
// (abandon those it has not started, finish or cut short the others) and
// return, within the group's rebalance timeout. Inputs of those partitions
// handed to Handle meanwhile are Stale. The runner then commits what is
// done of them and never commits them again.
type Revoker interface {
	Revoke(ctx context.Context, partitions map[string][]int32)
}

// revokeNotifier is a Reader that says when a rebalance takes partitions
// away (broker.Reader.OnRevoke).
type revokeNotifier interface {
	OnRevoke(func(ctx context.Context, partitions map[string][]int32, lost bool))
}

// Runner runs one stage: fetch (never auto-commit) → the handler → its
// outputs through one outbox writer → mark the input done → commit the done
// prefix of each partition. Run it once; a new Runner can run the same
// stage again.
type Runner struct {
	cfg     Config
	h       Handler
	w       *broker.Writer
	log     *slog.Logger
	sources []*source

	slots    chan struct{}
	inflight atomic.Int64
	idle     chan struct{} // signalled when inflight drops to zero
	out      *Outbox
	// doneSince counts the inputs done since the last commit; commitNow
	// asks the committer for a commit (CommitEvery).
	doneSince atomic.Int64
	commitNow chan struct{}

	errMu  sync.Mutex
	err    error         // the first failure that stops the stage
	failed chan struct{} // closed with err set
}

type source struct {
	Source
	offsets *broker.Offsets
}

// New returns a runner of h over sources, writing outputs with w.
func New(cfg Config, h Handler, w *broker.Writer, log *slog.Logger, sources ...Source) (*Runner, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(sources) == 0 {
		return nil, fmt.Errorf("stage %s: no source", cfg.Name)
	}
	r := &Runner{cfg: cfg, h: h, w: w, log: log.With("stage", cfg.Name),
		slots: make(chan struct{}, cfg.MaxInFlight), idle: make(chan struct{}, 1), failed: make(chan struct{}),
		commitNow: make(chan struct{}, 1)}
	for _, s := range sources {
		src := &source{Source: s, offsets: broker.NewOffsets(s.Reader, s.Topic)}
		if n, ok := s.Reader.(revokeNotifier); ok {
			n.OnRevoke(func(ctx context.Context, partitions map[string][]int32, lost bool) {
				r.fence(ctx, src, partitions, lost)
			})
		}
		r.sources = append(r.sources, src)
	}
	r.out = newOutbox(r)
	return r, nil
}

// Run runs the stage until ctx is cancelled (the soft stop), a source ends
// (io.EOF: a bounded stretch read to its end) or a part fails. Then it
// stops fetching, lets in-flight work finish until the hard stop, writes
// what was emitted, commits the done prefix, closes the readers and
// returns. A soft stop returns nil.
func (r *Runner) Run(ctx context.Context) error {
	work, hardStop := DrainContext(ctx, r.cfg.DrainTimeout)
	defer hardStop()
	fetchCtx, stopFetching := context.WithCancel(ctx)
	defer stopFetching()
	go func() { // a failure anywhere stops the fetching everywhere
		select {
		case <-r.failed:
			stopFetching()
		case <-fetchCtx.Done():
		}
	}()

	outboxDone := make(chan struct{})
	go func() { r.out.run(work, fetchCtx.Done()); close(outboxDone) }()
	commitCtx, stopCommits := context.WithCancel(context.WithoutCancel(ctx))
	committed := make(chan struct{})
	go func() { r.commitLoop(commitCtx); close(committed) }()

	var loops sync.WaitGroup
	for i, src := range r.sources {
		loops.Add(1)
		go func() {
			defer loops.Done()
			if err := r.loop(fetchCtx, work, src, i == 0); err != nil {
				r.fail(err)
			}
		}()
	}
	loops.Wait()
	r.waitIdle(work)
	close(r.out.quit)
	<-outboxDone
	stopCommits()
	<-committed
	// The last commit is bounded, not by the hard stop: what is done is
	// worth saving, but not worth waiting for a broker that is gone.
	last, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, src := range r.sources {
		src.offsets.Commit(last, r.log)
		src.Reader.Close()
	}
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

// fence stops the work on partitions a rebalance takes away, before they
// are given up: what was fetched of them is stale from now on, the handler
// lets go of what it holds of them (Revoker), and what is done of them is
// committed (not when the session was lost: another member may own them
// already), once; nothing of them is committed after. Committed offsets
// never move back: the next owner starts from them.
func (r *Runner) fence(ctx context.Context, src *source, partitions map[string][]int32, lost bool) {
	src.offsets.Revoke(partitions)
	if rv, ok := r.h.(Revoker); ok {
		rv.Revoke(ctx, partitions)
	}
	if !lost {
		src.offsets.CommitRevoked(ctx, r.log)
	}
	src.offsets.Forget(partitions)
}

func (r *Runner) fail(err error) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if r.err == nil {
		r.err = err
		close(r.failed)
	}
}

// commitLoop commits every source's done prefix every CommitInterval, and
// when CommitEvery inputs are done, until ctx ends.
func (r *Runner) commitLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.commitNow:
		}
		r.doneSince.Store(0)
		for _, src := range r.sources {
			src.offsets.Commit(ctx, r.log)
		}
	}
}

// waitIdle waits until every input is done or abandoned, or the hard stop.
func (r *Runner) waitIdle(work context.Context) {
	// free signals idle when inflight reaches zero; a signal left from
	// earlier only makes the loop look again.
	for r.inflight.Load() > 0 {
		select {
		case <-r.idle:
		case <-work.Done():
			r.log.Warn("hard stop with work in flight; it is read again at the next start", "inputs", r.inflight.Load())
			return
		}
	}
}

// loop fetches from one source and hands batches to the handler until
// fetchCtx ends (nil) or the source ends or fails.
func (r *Runner) loop(fetchCtx, work context.Context, src *source, ticks bool) error {
	inputs := make(chan *Input, r.cfg.MaxBatch)
	fetchErr := make(chan error, 1)
	fetched := make(chan struct{})
	go func() { defer close(fetched); fetchErr <- r.fetch(fetchCtx, src, inputs) }()
	defer func() { <-fetched }()
	ticker, _ := r.h.(Ticker)
	if !ticks {
		ticker = nil
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		armTimer(timer, ticker)
		select {
		case in, ok := <-inputs:
			if !ok {
				r.release()
				if err := <-fetchErr; err != nil && fetchCtx.Err() == nil {
					return err
				}
				return nil
			}
			batch := r.gather(in, inputs)
			if batch = dropStale(batch); len(batch) == 0 {
				continue
			}
			if err := r.handle(work, func(ctx context.Context) error { return r.h.Handle(ctx, batch, r.out) }); err != nil {
				for _, in := range batch {
					in.Abandon()
				}
				r.drainInputs(inputs)
				r.release()
				return nil // the hard stop came first
			}
		case <-timer.C:
			if err := r.handle(work, func(ctx context.Context) error { return ticker.Tick(ctx, r.out) }); err != nil {
				r.drainInputs(inputs)
				r.release()
				return nil
			}
		}
	}
}

// dropStale abandons the inputs of partitions taken away since they were
// fetched, and returns the others.
func dropStale(batch []*Input) []*Input {
	kept := batch[:0]
	for _, in := range batch {
		if in.Stale() {
			in.Abandon()
			continue
		}
		kept = append(kept, in)
	}
	return kept
}

// drainInputs abandons what the fetcher hands over until it stops.
func (r *Runner) drainInputs(inputs <-chan *Input) {
	for in := range inputs {
		in.Abandon()
	}
}

func (r *Runner) release() {
	if h, ok := r.h.(Holder); ok {
		h.Release()
	}
}

func armTimer(t *time.Timer, ticker Ticker) {
	wait := time.Hour
	if ticker != nil {
		if next, ok := ticker.Next(); ok {
			wait = max(time.Until(next), 0)
		}
	}
	t.Reset(wait)
}

// handle runs f until it succeeds, backing off after each failure; it
// fails only at the hard stop.
func (r *Runner) handle(work context.Context, f func(context.Context) error) error {
	backoff := 100 * time.Millisecond
	for {
		err := f(work)
		if err == nil {
			return nil
		}
		if work.Err() != nil {
			return work.Err()
		}
		r.log.Warn("handler failed, retrying", "err", err, "backoff", backoff)
		select {
		case <-work.Done():
			return work.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// gather adds to a batch what arrives within Linger (or what has already
// arrived), up to MaxBatch.
func (r *Runner) gather(first *Input, inputs <-chan *Input) []*Input {
	batch := []*Input{first}
	var deadline <-chan time.Time
	if r.cfg.Linger > 0 {
		t := time.NewTimer(r.cfg.Linger)
		defer t.Stop()
		deadline = t.C
	}
	for len(batch) < r.cfg.MaxBatch {
		select {
		case in, ok := <-inputs:
			if !ok {
				return batch
			}
			batch = append(batch, in)
			continue
		default:
		}
		if deadline == nil {
			return batch
		}
		select {
		case in, ok := <-inputs:
			if !ok {
				return batch
			}
			batch = append(batch, in)
		case <-deadline:
			return batch
		}
	}
	return batch
}

// fetch reads a source and hands its messages over as inputs until ctx
// ends (nil), the source ends (nil after io.EOF) or a read fails. A
// transaction marker is done at once and never handed over.
func (r *Runner) fetch(ctx context.Context, src *source, out chan<- *Input) error {
	defer close(out)
	for {
		m, err := src.Reader.FetchMessage(ctx)
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil:
			return fmt.Errorf("stage %s: fetch %s: %w", r.cfg.Name, src.Topic, err)
		}
		if !src.offsets.WaitForRoom(ctx, m.Topic, m.Partition, r.cfg.MaxUncommitted) {
			return nil
		}
		if broker.IsControl(m) {
			done, _ := src.offsets.Track(m)
			done()
			continue
		}
		if g, ok := r.h.(Gate); ok && !g.WaitForRoom(ctx) {
			return nil
		}
		select {
		case r.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		r.inflight.Add(1)
		done, tracker := src.offsets.Track(m)
		in := &Input{Message: m, done: done, tracker: tracker, r: r}
		select {
		case out <- in:
		case <-ctx.Done():
			in.Abandon()
			return nil
		}
	}
}

// Input is one message in flight.
type Input struct {
	kafka.Message
	done     func()
	tracker  *broker.Tracker
	r        *Runner
	finished atomic.Bool
}

// Stale reports whether a rebalance took the input's partition away: it is
// no longer the stage's to work on (abandon it).
func (in *Input) Stale() bool { return in.tracker != nil && in.tracker.Revoked() }

// Done marks the input finished: its offset may be committed.
func (in *Input) Done() {
	if in.finished.CompareAndSwap(false, true) {
		in.done()
		if every := in.r.cfg.CommitEvery; every > 0 && in.r.doneSince.Add(1) >= int64(every) {
			select {
			case in.r.commitNow <- struct{}{}:
			default:
			}
		}
		in.r.free()
	}
}

// Abandon gives the input up unfinished: it is not committed, and the next
// run (or the partition's next owner) reads it again.
func (in *Input) Abandon() {
	if in.finished.CompareAndSwap(false, true) {
		in.r.free()
	}
}

func (r *Runner) free() {
	<-r.slots
	if r.inflight.Add(-1) == 0 {
		select {
		case r.idle <- struct{}{}:
		default:
		}
	}
}

// Outbox writes what handlers emit, many emissions in one write, and marks
// their inputs done once the broker acknowledged it.
type Outbox struct {
	r      *Runner
	ch     chan emission
	quit   chan struct{}
	budget *semaphore.Weighted // Config.OutboxBytes
}

type emission struct {
	msgs   []kafka.Message
	inputs []*Input
	then   func(written bool)
	bytes  int64 // of the budget, held until written
}

func (e emission) finish(written bool) {
	for _, in := range e.inputs {
		if written {
			in.Done()
		} else {
			in.Abandon()
		}
	}
	if e.then != nil {
		e.then(written)
	}
}

// Emit queues outputs; once they are written the inputs are done. No
// outputs marks the inputs done at once. After the hard stop the inputs
// are abandoned.
func (o *Outbox) Emit(msgs []kafka.Message, inputs ...*Input) {
	o.emit(emission{msgs: msgs, inputs: inputs})
}

// EmitThen queues outputs and calls then once they are written (true) or
// given up at the hard stop (false): for inputs that wait for more than
// one write, such as an event in a batch.
func (o *Outbox) EmitThen(msgs []kafka.Message, then func(written bool)) {
	o.emit(emission{msgs: msgs, then: then})
}

func (o *Outbox) emit(e emission) {
	if len(e.msgs) == 0 {
		e.finish(true)
		return
	}
	for _, m := range e.msgs {
		e.bytes += int64(len(m.Key) + len(m.Value))
	}
	// An emission larger than the whole budget waits for all of it.
	e.bytes = min(e.bytes, int64(o.r.cfg.OutboxBytes))
	if !o.acquire(e.bytes) {
		e.finish(false)
		return
	}
	select {
	case o.ch <- e:
	case <-o.quit:
		o.budget.Release(e.bytes)
		e.finish(false)
	}
}

// newOutbox is r's outbox, sized by r.cfg.
func newOutbox(r *Runner) *Outbox {
	return &Outbox{r: r, ch: make(chan emission, r.cfg.OutboxBatch), quit: make(chan struct{}),
		budget: semaphore.NewWeighted(int64(r.cfg.OutboxBytes))}
}

// acquire takes n bytes of the budget, waiting for writes to free them;
// false once the outbox quits.
func (o *Outbox) acquire(n int64) bool {
	if o.budget.TryAcquire(n) {
		return true
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-o.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	return o.budget.Acquire(ctx, n) == nil
}

// run writes emissions until quit, then writes what is queued and
// returns. A write that fails (the hard stop, or a permanent error)
// abandons its inputs.
func (o *Outbox) run(work context.Context, hurry <-chan struct{}) {
	batch := make([]emission, 0, o.r.cfg.OutboxBatch)
	var msgs []kafka.Message
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		var first emission
		select {
		case first = <-o.ch:
		case <-o.quit:
			select {
			case first = <-o.ch:
			default:
				return
			}
		}
		batch = o.gather(append(batch[:0], first), linger, hurry)
		msgs = msgs[:0]
		for _, e := range batch {
			msgs = append(msgs, e.msgs...)
		}
		err := o.r.w.Write(work, msgs)
		if err != nil {
			o.r.log.Error("output not written; its inputs are read again at the next start", "messages", len(msgs), "err", err)
			if work.Err() == nil {
				o.r.fail(err)
			}
		}
		for _, e := range batch {
			o.budget.Release(e.bytes)
		}
		for _, e := range batch {
			e.finish(err == nil)
		}
	}
}

// gather adds to a batch what is queued and, with OutboxLinger, what
// comes within it of the first emission, up to OutboxBatch. It waits no
// more once hurry is closed (the soft stop, or a failure: the inputs
// waiting for these writes are what the stop waits for).
func (o *Outbox) gather(batch []emission, linger *time.Timer, hurry <-chan struct{}) []emission {
	var due <-chan time.Time
	if o.r.cfg.OutboxLinger > 0 {
		linger.Reset(o.r.cfg.OutboxLinger)
		defer linger.Stop()
		due = linger.C
	}
	for len(batch) < o.r.cfg.OutboxBatch {
		select {
		case e := <-o.ch:
			batch = append(batch, e)
			continue
		default:
		}
		if due == nil {
			return batch
		}
		select {
		case e := <-o.ch:
			batch = append(batch, e)
		case <-due:
			return batch
		case <-hurry:
			return batch
		}
	}
	return batch
}

// DrainContext is not cancelled with parent, but expires timeout after
// parent is cancelled: in-flight work finishes, bounded.
func DrainContext(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		t := time.AfterFunc(timeout, cancel)
		context.AfterFunc(ctx, func() { t.Stop() })
	})
	return ctx, func() { stop(); cancel() }
}
