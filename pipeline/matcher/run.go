package matcher

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/schemas"
)

// Group is the matcher's consumer group.
const Group = "hookline-matcher"

// StageConfig configures the matcher stage.
type StageConfig struct {
	// CommitInterval is how often finished offsets are committed. Default
	// 200 ms.
	CommitInterval time.Duration
	// MaxUncommitted bounds, per partition, the events read behind the
	// oldest one still in an open batch; beyond it reading waits. Default
	// 100000.
	MaxUncommitted int
	// DrainTimeout bounds how long the batch in flight may take to be
	// written after shutdown begins. Default 30 s.
	DrainTimeout time.Duration
	// Registerer receives the stage's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Now is the clock of batch deadlines; default time.Now.
	Now func() time.Time
}

// Stage runs the matcher as a consumer of hookline.events.
type Stage struct {
	cfg     StageConfig
	m       *Matcher
	batches *Batcher
	reader  *broker.Reader
	offsets *broker.Offsets
	out     *broker.Writer // no topic: each message names its own
	metrics *stageMetrics
	log     *slog.Logger
}

// NewStage wires the matcher to the broker.
func NewStage(b *broker.Broker, webhooks Webhooks, cfg StageConfig, log *slog.Logger) *Stage {
	if cfg.CommitInterval == 0 {
		cfg.CommitInterval = 200 * time.Millisecond
	}
	if cfg.MaxUncommitted == 0 {
		cfg.MaxUncommitted = 100000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	reader := b.GroupReader(schemas.TopicEvents, Group)
	s := &Stage{
		cfg: cfg, m: New(webhooks), batches: NewBatcher(b.MaxMessageBytes()), reader: reader,
		offsets: broker.NewOffsets(reader, schemas.TopicEvents),
		out:     b.Writer("", records.Oversize), metrics: newStageMetrics(cfg.Registerer), log: log.With("stage", "matcher"),
	}
	s.m.OnConditionError = func(string, error) { s.metrics.conditionErrors.Inc() }
	return s
}

// pending counts what an event still waits for: the write of its direct
// jobs, and each open batch it is in. At zero its offset is done.
type pending struct {
	refs int
	done func()
}

func (p *pending) release() {
	if p.refs--; p.refs == 0 {
		p.done()
	}
}

// Run consumes until ctx is cancelled. One goroutine matches, batches and
// writes; open batches are not flushed at shutdown: their events are not
// committed, so the next start reads them again and rebuilds the batches.
func (s *Stage) Run(ctx context.Context) error {
	// Writes run under work, which shutdown does not cancel but bounds:
	// a write cut off by the signal could land while it is recorded as
	// failed, and its jobs would be written twice.
	work, cancelWork := broker.DrainContext(ctx, s.cfg.DrainTimeout)
	defer cancelWork()
	msgs := make(chan kafka.Message, 1000)
	fetchErr := make(chan error, 1)
	fetchCtx, stopFetch := context.WithCancel(ctx)
	fetched := make(chan struct{})
	go func() { s.fetch(fetchCtx, msgs, fetchErr); close(fetched) }()
	commitCtx, stopCommits := context.WithCancel(context.Background())
	committed := make(chan struct{})
	go func() { s.offsets.CommitEvery(commitCtx, s.cfg.CommitInterval, s.log); close(committed) }()
	defer func() {
		stopFetch()
		<-fetched
		stopCommits()
		<-committed
		s.offsets.Commit(context.Background(), s.log)
		s.reader.Close()
		s.out.Close()
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.armTimer(timer)
		select {
		case m, ok := <-msgs:
			if !ok {
				if err := <-fetchErr; ctx.Err() == nil {
					return err
				}
				return nil
			}
			batch := gather(m, msgs, 500)
			if err := s.handle(work, batch); err != nil {
				return s.stopped(ctx, err)
			}
		case <-timer.C:
			if err := s.write(work, nil, s.batches.Due(s.cfg.Now()), nil); err != nil {
				return s.stopped(ctx, err)
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// stopped is Run's result after a write failed: a clean stop when shutdown
// caused it, the error otherwise. Either way the events whose output is
// not written are not committed, and are read again at the next start.
func (s *Stage) stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("matcher: %w", err)
}

func (s *Stage) armTimer(t *time.Timer) {
	next, ok := s.batches.Next()
	wait := time.Hour
	if ok {
		wait = max(next.Sub(s.cfg.Now()), 0)
	}
	t.Reset(wait)
}

func (s *Stage) fetch(ctx context.Context, out chan<- kafka.Message, errc chan<- error) {
	defer close(out)
	for {
		m, err := s.reader.FetchMessage(ctx)
		if err == nil && !s.offsets.WaitForRoom(ctx, m.Partition, s.cfg.MaxUncommitted) {
			err = ctx.Err()
		}
		if err != nil {
			errc <- err
			return
		}
		select {
		case out <- m:
		case <-ctx.Done():
			errc <- ctx.Err()
			return
		}
	}
}

func gather(first kafka.Message, msgs <-chan kafka.Message, limit int) []kafka.Message {
	batch := []kafka.Message{first}
	for len(batch) < limit {
		select {
		case m, ok := <-msgs:
			if !ok {
				return batch
			}
			batch = append(batch, m)
		default:
			return batch
		}
	}
	return batch
}

// eventNamespace derives ids for events published without one from their
// position in the topic, so that reading them again gives the same id.
var eventNamespace = uuid.MustParse("6f1c8a8e-4a55-4c3e-9d0e-2f6a1c7b9e10")

// handle matches a batch of events and writes their direct jobs, their
// dead letters and the batches they filled or that came due.
func (s *Stage) handle(ctx context.Context, msgs []kafka.Message) error {
	var out []kafka.Message
	var events []*pending
	var closed []*Batch
	for _, msg := range msgs {
		p := &pending{refs: 1, done: s.offsets.Track(msg)}
		events = append(events, p)
		if broker.IsControl(msg) { // a transaction marker: done once what precedes it is
			continue
		}
		s.metrics.events.Inc()
		fallback := uuid.NewSHA1(eventNamespace, fmt.Appendf(nil, "%s/%d/%d", msg.Topic, msg.Partition, msg.Offset)).String()
		ev, err := schemas.DecodeEvent(msg.Value, msg.Time, fallback)
		if err != nil {
			s.log.Warn("dead-lettering input event", "partition", msg.Partition, "offset", msg.Offset, "err", err)
			s.metrics.dead.Inc()
			out = append(out, broker.DeadLetter(msg, err.Error()))
			continue
		}
		for _, mt := range s.m.Matches(Input{Event: ev, Time: msg.Time}) {
			switch {
			case mt.Err != nil:
				s.metrics.dead.Inc()
				out = append(out, broker.DeadLetter(msg, mt.Err.Error()))
			case mt.Batching == nil:
				s.metrics.matched.Inc()
				out = append(out, records.Job(schemas.TopicDeliveries, mt.Job))
			default:
				s.metrics.matched.Inc()
				p.refs++
				closed = append(closed, s.batches.Add(mt, p, msg.Time)...)
			}
		}
	}
	return s.write(ctx, out, append(closed, s.batches.Due(s.cfg.Now())...), events)
}

// write produces messages and closed batches in one call, retried until it
// succeeds or shutdown interrupts it, then releases the events waiting for
// them.
func (s *Stage) write(ctx context.Context, out []kafka.Message, closed []*Batch, events []*pending) error {
	for _, b := range closed {
		out = append(out, records.Job(schemas.TopicDeliveries, b.Job))
		s.metrics.batches.Inc()
	}
	if len(out) > 0 {
		if err := s.out.Write(ctx, out); err != nil {
			return err
		}
	}
	for _, p := range events {
		p.release()
	}
	for _, b := range closed {
		for _, t := range b.Tokens {
			t.(*pending).release()
		}
	}
	return nil
}

type stageMetrics struct {
	events, matched, dead, batches, conditionErrors prometheus.Counter
}

func newStageMetrics(reg prometheus.Registerer) *stageMetrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "hookline_matcher_" + name, Help: help})
	}
	m := &stageMetrics{
		events:          c("events_total", "Input events read from hookline.events."),
		matched:         c("matched_total", "(event, webhook) matches."),
		dead:            c("dead_lettered_total", "Input events, or their payload for one webhook, sent to hookline.dead."),
		batches:         c("batches_total", "Batches delivered as one job."),
		conditionErrors: c("condition_errors_total", "Conditions that failed at run time on an event (counted as no match)."),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.matched, m.dead, m.batches, m.conditionErrors)
	}
	return m
}
