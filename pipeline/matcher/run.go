package matcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/pipeline/stage"
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
	// DrainTimeout bounds how long the output in flight may take to be
	// written after shutdown begins. Default 30 s.
	DrainTimeout time.Duration
	// Registerer receives the stage's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Now is the clock of batch deadlines; default time.Now.
	Now func() time.Time
}

// WithDefaults returns the config with every unset field at its default.
func (c StageConfig) WithDefaults() StageConfig {
	c.CommitInterval = cmp.Or(c.CommitInterval, 200*time.Millisecond)
	c.MaxUncommitted = cmp.Or(c.MaxUncommitted, 100000)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, 30*time.Second)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports settings that cannot work.
func (c StageConfig) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.MaxUncommitted < 1:
		return fmt.Errorf("matcher: max uncommitted %d must be positive", c.MaxUncommitted)
	case c.CommitInterval < 0 || c.DrainTimeout < 0:
		return errors.New("matcher: durations must not be negative")
	}
	return nil
}

// Stage runs the matcher on the stage runner, as a consumer of
// hookline.events: a stage.Handler (events), stage.Ticker (batch
// deadlines) and stage.Holder (open batches).
type Stage struct {
	cfg     StageConfig
	b       *broker.Broker
	m       *Matcher
	batches *Batcher
	metrics *stageMetrics
	log     *slog.Logger
	// unreadable, if the webhooks know it, names the webhooks whose
	// latest change could not be read (subscriptions.Registry).
	unreadable func() map[string]string
}

// unreadableWebhooks is Webhooks that knows which webhooks' latest change
// it could not read.
type unreadableWebhooks interface {
	UnreadableWebhooks() map[string]string
}

// NewStage wires the matcher to the broker.
func NewStage(b *broker.Broker, webhooks Webhooks, cfg StageConfig, log *slog.Logger) *Stage {
	cfg = cfg.WithDefaults()
	s := &Stage{
		cfg: cfg, b: b, m: New(webhooks), batches: NewBatcher(b.MaxMessageBytes()),
		metrics: newStageMetrics(cfg.Registerer), log: log,
	}
	s.m.OnConditionError = func(string, error) { s.metrics.conditionErrors.Inc() }
	if u, ok := webhooks.(unreadableWebhooks); ok {
		s.unreadable = u.UnreadableWebhooks
	}
	return s
}

// Run consumes until ctx is cancelled. Open batches are not flushed at
// shutdown: their events are not committed, so the next start reads them
// again and rebuilds the batches.
func (s *Stage) Run(ctx context.Context) error {
	if err := s.cfg.Validate(); err != nil {
		return err
	}
	out := s.b.Writer("", records.Oversize)
	defer out.Close()
	r, err := stage.New(stage.Config{
		Name: "matcher", MaxBatch: 500, MaxUncommitted: s.cfg.MaxUncommitted, MaxInFlight: 4 * s.cfg.MaxUncommitted,
		CommitInterval: s.cfg.CommitInterval, DrainTimeout: s.cfg.DrainTimeout,
	}, s, out, s.log, stage.Source{Reader: s.b.GroupReader(schemas.TopicEvents, Group), Topic: schemas.TopicEvents})
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// pending counts what an event still waits for: the write of its direct
// jobs, and each open batch it is in. At zero it is done; if any of them
// is given up, the event is abandoned (read again at the next start).
type pending struct {
	refs atomic.Int32
	in   *stage.Input
}

func newPending(in *stage.Input) *pending {
	p := &pending{in: in}
	p.refs.Store(1)
	return p
}

func (p *pending) release(written bool) {
	if !written {
		p.in.Abandon()
		return
	}
	if p.refs.Add(-1) == 0 {
		p.in.Done()
	}
}

// Handle matches a batch of events and emits their direct jobs, their dead
// letters and the batches they filled or that came due.
//
// While a webhook's latest change cannot be read, matching waits (the
// runner tries the batch again, backing off): without its conditions an
// event would be committed as if it did not match it. /readyz names the
// webhook.
func (s *Stage) Handle(ctx context.Context, batch []*stage.Input, out *stage.Outbox) error {
	if err := s.readable(); err != nil {
		return err
	}
	s.handle(batch, out)
	return nil
}

// readable is an error naming a webhook that cannot be read, if any.
func (s *Stage) readable() error {
	if s.unreadable == nil {
		return nil
	}
	bad := s.unreadable()
	if len(bad) == 0 {
		return nil
	}
	id := slices.Min(slices.Collect(maps.Keys(bad)))
	return fmt.Errorf("matcher: %d webhooks cannot be read (webhook %s: %s): matching waits, nothing is committed", len(bad), id, bad[id])
}

// emitter is where Handle's outputs go: the runner's stage.Outbox.
type emitter interface {
	EmitThen(msgs []kafka.Message, then func(written bool))
}

func (s *Stage) handle(batch []*stage.Input, out emitter) {
	var msgs []kafka.Message
	events := make([]*pending, 0, len(batch))
	var closed []*Batch
	gathered := 0 // bytes of msgs
	for _, in := range batch {
		if gathered >= emitChunk {
			// An event can match every webhook: a batch's jobs go out in
			// pieces, each with the events whose jobs it completes, so
			// that the outbox's budget bounds what is held (stage
			// Config.OutboxBytes), not one batch's whole fan-out.
			s.emit(out, msgs, nil, events)
			msgs, events, gathered = nil, make([]*pending, 0, len(batch)), 0
		}
		from := len(msgs)
		msg := in.Message
		p := newPending(in)
		events = append(events, p)
		s.metrics.events.Inc()
		ev, err := schemas.DecodeEventAt(msg.Value, msg.Time, msg.Topic, msg.Partition, msg.Offset)
		if err != nil {
			s.log.Warn("dead-lettering input event", "partition", msg.Partition, "offset", msg.Offset, "err", err)
			s.metrics.dead.Inc()
			msgs = append(msgs, broker.DeadLetter(msg, err.Error()))
			gathered += size(msgs[from:])
			continue
		}
		for _, mt := range s.m.Matches(Input{Event: ev, Time: msg.Time}) {
			switch {
			case mt.Err != nil:
				s.metrics.dead.Inc()
				msgs = append(msgs, broker.DeadLetter(msg, mt.Err.Error()))
			case mt.Batching == nil:
				s.metrics.matched.Inc()
				msgs = append(msgs, records.Job(schemas.TopicDeliveries, mt.Job))
			default:
				s.metrics.matched.Inc()
				p.refs.Add(1)
				closed = append(closed, s.batches.AddAt(mt, p, msg.Time, msg.Partition, msg.Offset)...)
			}
		}
		gathered += size(msgs[from:])
	}
	// A batch that holds its partition's commit back by half the bound of
	// uncommitted events goes out now: waiting for its window would stop
	// the partition's reading, for every webhook, at the bound.
	last := map[int]int64{}
	for _, in := range batch {
		last[in.Partition] = max(last[in.Partition], in.Offset)
	}
	for _, part := range slices.Sorted(maps.Keys(last)) {
		closed = append(closed, s.batches.Pinning(part, last[part], int64(s.cfg.MaxUncommitted/2))...)
	}
	s.emit(out, msgs, append(closed, s.batches.Due(s.cfg.Now())...), events)
}

// Next is when the earliest open batch is due.
func (s *Stage) Next() (time.Time, bool) { return s.batches.Next() }

// Tick emits the batches that came due.
func (s *Stage) Tick(ctx context.Context, out *stage.Outbox) error {
	s.emit(out, nil, s.batches.Due(s.cfg.Now()), nil)
	return nil
}

// Release gives up the events of the open batches at shutdown: they are
// read again at the next start and the batches rebuilt.
func (s *Stage) Release() {
	for _, b := range s.batches.Due(time.Unix(1<<62, 0)) {
		for _, t := range b.Tokens {
			t.(*pending).release(false)
		}
	}
}

// emitChunk is the size past which Handle emits the jobs gathered so far.
const emitChunk = 1 << 20

func size(msgs []kafka.Message) int {
	n := 0
	for _, m := range msgs {
		n += len(m.Key) + len(m.Value)
	}
	return n
}

// emit queues messages and closed batches in one emission; once written,
// the events waiting for them are released.
func (s *Stage) emit(out emitter, msgs []kafka.Message, closed []*Batch, events []*pending) {
	for _, b := range closed {
		msgs = append(msgs, records.Job(schemas.TopicDeliveries, b.Job))
		s.metrics.batches.Inc()
	}
	if len(msgs) == 0 && len(closed) == 0 && len(events) == 0 {
		return
	}
	out.EmitThen(msgs, func(written bool) {
		for _, p := range events {
			p.release(written)
		}
		for _, b := range closed {
			for _, t := range b.Tokens {
				t.(*pending).release(written)
			}
		}
	})
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
