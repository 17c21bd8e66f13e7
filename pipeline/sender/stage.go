package sender

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/pipeline/stage"
	"github.com/hookline/hookline/schemas"
)

// Group is the sender's consumer group, one over hookline.deliveries,
// hookline.overflow and every retry topic. Retry topics used to have groups
// of their own, Group + "." + topic; Run copies their committed offsets
// into Group.
const Group = "hookline-sender"

// StageConfig configures the sender stage.
type StageConfig struct {
	// HTTP configures requests.
	HTTP delivery.Config
	// Schedule is the retry schedule. Default DefaultSchedule.
	Schedule Schedule
	// Breaker tunes the per-endpoint circuit breakers.
	Breaker BreakerConfig
	// EndpointConcurrency is the concurrency limit an endpoint starts
	// with; it then adapts between 1 and the webhook's max_concurrency.
	// Jobs of one resource always go one after another. Default 4.
	EndpointConcurrency int
	// MaxQueueWait bounds how long an endpoint's queue in memory takes to
	// drain at the pace the endpoint keeps, once it has been behind for
	// half of it: the jobs beyond wait on hookline.overflow, which gives
	// them back after half of it to look for room again. A later job of a
	// resource waits in memory behind an earlier one put off for half of
	// it and a second at most (the order hold). So a job waits in memory
	// for about one and a half of it at most, beside its request: what a
	// crash sends again of each endpoint's work. Default 5 s.
	MaxQueueWait time.Duration
	// MaxQueueBytes bounds the bytes of the jobs held in memory, all
	// endpoints together. Beyond it an endpoint over its even share puts
	// its new jobs off to hookline.overflow, and the largest endpoint
	// gives up its latest jobs to make room for the others. Default 128
	// MiB.
	MaxQueueBytes int64
	// MaxInFlight bounds the jobs fetched and not finished, as a count, a
	// backstop under MaxQueueBytes: beyond it fetching waits. Default
	// 200,000.
	MaxInFlight int
	// MaxUncommitted bounds, per partition, the jobs fetched after the
	// oldest unfinished one: beyond it that partition's fetching waits.
	// Default 200,000.
	MaxUncommitted int
	// CommitInterval is how often finished offsets are committed. Default
	// 200 ms.
	CommitInterval time.Duration
	// DrainTimeout bounds how long in-flight jobs may take after shutdown
	// begins. Default 30 s.
	DrainTimeout time.Duration
	// RevokeTimeout bounds how long a rebalance waits for the requests in
	// flight of the partitions it takes away before cutting them short
	// (they are not recorded, and their next owner sends them again).
	// Default 5 s: under the group's 10 s rebalance timeout.
	RevokeTimeout time.Duration
	// DisableAfter disables a webhook whose every attempt has failed for
	// this long (counted from its last change at the earliest). Default 5
	// days.
	DisableAfter time.Duration
	// Registerer receives the stage's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Now is the stage's clock: every time the core, the breakers, the
	// health book and the requests read. Default time.Now.
	Now func() time.Time
}

// WithDefaults returns the config with every unset field at its default.
func (c StageConfig) WithDefaults() StageConfig {
	if c.Schedule == nil {
		c.Schedule = MustSchedule(DefaultSchedule)
	}
	c.Breaker = c.Breaker.WithDefaults()
	c.EndpointConcurrency = cmp.Or(c.EndpointConcurrency, 4)
	c.MaxQueueWait = cmp.Or(c.MaxQueueWait, 5*time.Second)
	c.MaxQueueBytes = cmp.Or(c.MaxQueueBytes, 128<<20)
	c.MaxInFlight = cmp.Or(c.MaxInFlight, 200000)
	c.MaxUncommitted = cmp.Or(c.MaxUncommitted, 200000)
	c.CommitInterval = cmp.Or(c.CommitInterval, 200*time.Millisecond)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, 30*time.Second)
	c.RevokeTimeout = cmp.Or(c.RevokeTimeout, 5*time.Second)
	c.DisableAfter = cmp.Or(c.DisableAfter, 5*24*time.Hour)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports settings that cannot work.
func (c StageConfig) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.EndpointConcurrency < 1 || c.EndpointConcurrency > 1000:
		return fmt.Errorf("endpoint concurrency %d is outside 1 to 1000", c.EndpointConcurrency)
	case c.MaxQueueWait < time.Second || c.MaxQueueWait > time.Hour:
		return fmt.Errorf("max queue wait %s is outside 1s to 1h", c.MaxQueueWait)
	case c.MaxQueueBytes < 1<<20:
		return fmt.Errorf("max queue bytes %d is under 1 MiB", c.MaxQueueBytes)
	case c.MaxInFlight < 1:
		return fmt.Errorf("max in flight %d must be at least 1", c.MaxInFlight)
	case c.RevokeTimeout < 0:
		return fmt.Errorf("revoke timeout %s must not be negative", c.RevokeTimeout)
	case c.DisableAfter < 0:
		return fmt.Errorf("disable after %s must not be negative", c.DisableAfter)
	}
	if err := c.Breaker.Validate(); err != nil {
		return err
	}
	return c.HTTP.Validate()
}

// coreConfig is what the core needs of the config.
func (c StageConfig) coreConfig(session string) coreConfig {
	return coreConfig{
		ladder: newLadder(c.Schedule, c.MaxQueueWait/2), queueWait: c.MaxQueueWait, orderHold: c.MaxQueueWait/2 + time.Second,
		maxBytes: c.MaxQueueBytes, initialConcurrency: c.EndpointConcurrency, schedule: c.Schedule,
		disableAfter: c.DisableAfter, session: session,
	}
}

// Webhooks is the webhook state the sender reads at send time, so that a
// change of URL or secret applies to jobs already queued, and changes when
// an endpoint answers 410 Gone or fails for DisableAfter.
type Webhooks interface {
	ByID(id string) (schemas.Webhook, bool)
	// Unreadable reports why the webhook's latest change could not be
	// read (subscriptions.Registry): its jobs wait.
	Unreadable(id string) (string, bool)
	// Sync waits until every change on the topic when it is called has
	// been read: a job can come from a process that saw its webhook made
	// before this one did.
	Sync(ctx context.Context) error
	// DisableWebhook reports whether this call disabled the webhook.
	DisableWebhook(ctx context.Context, id, reason string) (bool, error)
	// EachID calls f with every webhook's id (those that cannot be read
	// too): the webhooks whose jobs a partition may carry (readAhead);
	// Len is how many ByID finds, read often to notice a new one.
	EachID(f func(id string))
	Len() int
}

// Stage consumes hookline.deliveries, hookline.overflow and the retry
// topics and delivers. It is a stage.Handler: the runner fetches, writes
// what it emits and commits. The stage drives the core (core.go), which
// makes every scheduling decision, under one lock: it hands it the jobs
// the runner fetched, the results of requests and the time, and does
// what it asks (send a request, write outputs, give an input back).
type Stage struct {
	cfg      StageConfig
	b        *broker.Broker
	d        *delivery.Deliverer
	breakers *Breakers
	webhooks Webhooks
	metrics  *metrics
	health   *health
	log      *slog.Logger

	mu   sync.Mutex
	core *core
	// full mirrors whether the core's waiting jobs are over MaxQueueBytes
	// (WaitForRoom), set with mu held after each call into the core.
	full atomic.Bool
	// room is the core's room, read and spent by due without mu: made
	// again with mu held at most every roomEvery (roomAt).
	room   atomic.Pointer[map[string]*roomLeft]
	roomAt time.Time
	// ahead is, by partition of hookline.deliveries, how far reading it
	// further serves someone sooner (readAhead): past that, due holds its
	// head. Made with the room; parts is what it is made from.
	ahead  atomic.Pointer[aheadMap]
	parts  atomic.Pointer[partitionHooks]
	relist chan struct{}
	// armed is when the timer goroutine wakes next; kick wakes it sooner.
	armed time.Time
	kick  chan struct{}
	// revokedDone is signalled when a revoked request in flight finishes.
	revokedDone chan struct{}
	requests    sync.WaitGroup // request goroutines of the current run

	syncMu sync.Mutex
	// synced is when an unknown webhook id last made the registry catch up
	// (webhookByID).
	synced map[string]time.Time
}

// NewStage wires the sender to the broker. The broker must have created
// the retry topics of cfg.Schedule.
func NewStage(b *broker.Broker, webhooks Webhooks, cfg StageConfig, log *slog.Logger) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	cfg = cfg.WithDefaults()
	s := &Stage{
		cfg: cfg, b: b, webhooks: webhooks, log: log, metrics: newMetrics(cfg.Registerer),
		synced: map[string]time.Time{}, kick: make(chan struct{}, 1), revokedDone: make(chan struct{}, 1), relist: make(chan struct{}, 1),
	}
	s.breakers = newBreakers(cfg.Breaker, s.breakerChanged, cfg.Now)
	d, err := delivery.NewDeliverer(cfg.HTTP, nil, cfg.Now, log.With("stage", "sender"))
	if err != nil {
		return nil, err
	}
	s.d = d
	return s, nil
}

// Breakers exposes the per-endpoint breakers, for the API.
func (s *Stage) Breakers() *Breakers { return s.breakers }

// endpointLimits is the concurrency limit of every endpoint the sender
// holds, for hookline.endpoints.
func (s *Stage) endpointLimits() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.core == nil {
		return nil
	}
	out := make(map[string]int, len(s.core.endpoints))
	for id, e := range s.core.endpoints {
		out[id] = e.conc.current()
	}
	return out
}

// newSession names one run of the stage on the jobs it puts off.
func newSession() (string, uint64) {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:8]), binary.LittleEndian.Uint64(b[8:])
}

// Topics are the topics the sender reads, all in its one group.
func (c StageConfig) Topics() []string {
	return append([]string{schemas.TopicDeliveries, schemas.TopicOverflow}, c.WithDefaults().Schedule.Topics()...)
}

// Run delivers until ctx is cancelled, then stops fetching, finishes the
// jobs in flight (for at most DrainTimeout), commits and returns.
func (s *Stage) Run(ctx context.Context) error {
	// One group over every sender topic: the range balancer gives
	// partition p of each to one process, so one process owns an
	// endpoint's first attempts, its overflow and its retries, if the
	// topics have equal partition counts.
	topics := s.cfg.Topics()
	if want, err := s.b.Partitions(ctx, schemas.TopicDeliveries); err == nil {
		for _, topic := range topics[1:] {
			if n, err := s.b.Partitions(ctx, topic); err == nil && n != want {
				s.log.Warn("a sender topic's partition count differs from hookline.deliveries': an endpoint's retries may be sent by another process than its first attempts",
					"topic", topic, "partitions", n, "deliveries_partitions", want)
			}
		}
	}
	// Before the group joins: a retry topic's offsets move from the
	// tier's old group, once.
	for _, topic := range s.cfg.Schedule.Topics() {
		if _, err := s.b.CopyOffsets(ctx, Group+"."+topic, Group, topic); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sender: %w", err)
		}
	}
	// Endpoint states first: a failing endpoint's clock goes on from where
	// its last owner left it.
	s.health = newHealth(s.b, s.endpointLimits, s.cfg.Now, s.log)
	healthCtx, stopHealth := context.WithCancel(context.WithoutCancel(ctx))
	healthDone := make(chan error, 1)
	go func() { healthDone <- s.health.run(healthCtx) }()
	defer func() { stopHealth(); <-healthDone }()
	if err := s.health.t.Sync(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("sender: read %s: %w", schemas.TopicEndpoints, err)
	}

	// The webhooks of each partition, for reading ahead (ahead.go).
	s.ahead.Store(nil)
	partsCtx, stopParts := context.WithCancel(context.WithoutCancel(ctx))
	partsDone := make(chan struct{})
	go func() { defer close(partsDone); s.listPartsEvery(partsCtx) }()
	defer func() { stopParts(); <-partsDone }()

	session, seed := newSession()
	s.mu.Lock()
	s.core = newCore(s.cfg.coreConfig(session), seed, s.webhooks, s.breakers, s.health, s.metrics, s.log)
	s.armed = time.Time{}
	s.full.Store(false)
	s.mu.Unlock()
	timerDone := make(chan struct{})
	stopTimer := make(chan struct{})
	go func() { defer close(timerDone); s.timer(stopTimer) }()

	out := s.b.Writer("", records.Oversize)
	defer out.Close()
	reader := s.b.GroupReaderOf(Group, topics, s.due)
	// New jobs first: a burst of put-offs and retries coming due at once
	// (thousands of a slow or dead endpoint's jobs) would otherwise stand
	// between a healthy endpoint's next job and its request.
	reader.Prefer(schemas.TopicDeliveries, preferFresh)
	r, err := stage.New(stage.Config{
		Name: "sender", MaxBatch: 500, MaxInFlight: s.cfg.MaxInFlight, MaxUncommitted: s.cfg.MaxUncommitted,
		CommitInterval: s.cfg.CommitInterval, DrainTimeout: s.cfg.DrainTimeout,
		// 8 MiB of records not yet written, not the runner's 32: a trim
		// that puts off thousands of jobs waits for the writes instead of
		// holding all their records (burst-50ms: 0.237 -> 0.214 CPU s/1K,
		// peak RSS -20 MiB; burst unchanged).
		OutboxLinger: outboxLinger, OutboxBytes: 8 << 20,
	}, s, out, s.log, stage.Source{Reader: reader, Topic: strings.Join(topics, ",")})
	if err != nil {
		close(stopTimer)
		<-timerDone
		return fmt.Errorf("sender: %w", err)
	}
	err = r.Run(ctx)
	s.requests.Wait() // past the hard stop a request ends at once
	close(stopTimer)
	<-timerDone
	return err
}

// outboxLinger is how long the sender's writes wait to share a produce
// request. Attempts end one at a time, so without it a 50,000-event burst
// wrote 7,830 produce requests of about six attempt records each; 2 ms
// of linger made that 736 of about 68, and took a quarter off serve's CPU
// per delivery (docs/BENCHMARKS.md, "Outbox linger"). It delays an
// attempt's record and its input's commit, never a request.
const outboxLinger = 2 * time.Millisecond

// timer runs the core's ticks when they are due, until stop.
func (s *Stage) timer(stop <-chan struct{}) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		s.mu.Lock()
		s.core.tick(s.cfg.Now())
		s.full.Store(s.core.waiting() > s.core.cfg.maxBytes)
		effs := s.core.take()
		next := s.core.next()
		s.armed = next
		s.mu.Unlock()
		s.apply(effs)
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(s.cfg.Now()), 0)
		}
		t.Reset(wait)
		select {
		case <-t.C:
		case <-s.kick:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		case <-stop:
			return
		}
	}
}

// taken returns the core's effects and wakes the timer when the core
// wants to be looked at sooner than it is armed for. Called with s.mu held.
func (s *Stage) taken() []effect {
	if next := s.core.next(); !next.IsZero() && (s.armed.IsZero() || next.Before(s.armed)) {
		s.armed = next
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	s.full.Store(s.core.waiting() > s.core.cfg.maxBytes)
	if now := s.cfg.Now(); now.Sub(s.roomAt) >= roomEvery {
		s.roomAt = now
		var m map[string]*roomLeft
		for id, r := range s.core.room(now) {
			if m == nil {
				m = map[string]*roomLeft{}
			}
			m[id] = &roomLeft{part: int32(r.part)}
			m[id].n.Store(int64(r.left))
		}
		s.room.Store(&m)
		s.ahead.Store(&aheadMap{at: now, parts: s.readAhead(now)})
	}
	return s.core.take()
}

// roomPoll is how often a fetch waiting for room looks again.
const roomPoll = 2 * time.Millisecond

// WaitForRoom holds fetching while the jobs waiting in memory are over
// MaxQueueBytes (stage.Gate). Each endpoint's queue holds what it sends in
// about half the queue wait, so memory that is full drains within about
// that, and a job of another endpoint behind them in the partition waits
// no longer; the jobs behind wait in Kafka, not rewritten to
// hookline.overflow.
func (s *Stage) WaitForRoom(ctx context.Context) bool {
	if !s.full.Load() {
		return true
	}
	t := time.NewTicker(roomPoll)
	defer t.Stop()
	for s.full.Load() {
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// work is a job's input: the runner's input, the context of the run that
// fetched it (ended at the hard stop) and its outbox.
type work struct {
	in  *stage.Input
	ctx context.Context
	out *stage.Outbox

	mu     sync.Mutex
	cancel context.CancelFunc // of its request, while in flight
	cut    bool               // a rebalance cut its request short
}

// cutShort ends the work's request, if it is in flight.
func (w *work) cutShort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cut = true
	if w.cancel != nil {
		w.cancel()
	}
}

// apply does what the core asked for, outside its lock: requests first,
// then the writes, whose records are built here (a batch of put-offs
// coming back costs milliseconds to marshal, which a healthy endpoint's
// request in the same batch does not wait for). The order of writes is
// the core's.
func (s *Stage) apply(effs []effect) {
	for _, f := range effs {
		if f.kind != effSend {
			continue
		}
		w := f.it.ref.(*work)
		ctx, cancel := context.WithCancel(w.ctx)
		w.mu.Lock()
		w.cancel = cancel
		if w.cut {
			cancel()
		}
		w.mu.Unlock()
		s.requests.Add(1)
		go s.attempt(f.it, w, ctx, cancel)
	}
	for _, f := range effs {
		w := f.it.ref.(*work)
		switch f.kind {
		case effEmit:
			w.out.Emit(f.messages(f.disable != "" && s.disable(w.ctx, f.it.fl.wh, f.disable)), w.in)
		case effAbandon:
			w.in.Abandon()
		}
	}
}

// attempt makes one item's request and gives its result to the core.
func (s *Stage) attempt(it *item, w *work, ctx context.Context, cancel context.CancelFunc) {
	defer s.requests.Done()
	r := s.d.Send(ctx, it.fl.wh, it.job)
	// Cut short by the drain deadline or a rebalance: the attempt says
	// nothing about the endpoint, and the job is read again.
	sent := ctx.Err() == nil
	cancel()
	s.mu.Lock()
	revoked := it.revoked
	s.core.finished(s.cfg.Now(), it, r, sent)
	effs := s.taken()
	s.mu.Unlock()
	s.apply(effs)
	if revoked {
		select {
		case s.revokedDone <- struct{}{}:
		default:
		}
	}
}

// disable turns a webhook off, for a 410 Gone or for failing too long,
// and reports whether it did (not when another lane or a person did
// first: one hookline.webhook_disabled per disabling).
func (s *Stage) disable(ctx context.Context, wh schemas.Webhook, reason string) bool {
	changed, err := s.webhooks.DisableWebhook(ctx, wh.ID, reason)
	if err != nil {
		s.log.Error("could not disable webhook", "webhook_id", wh.ID, "reason", reason, "err", err)
		return false
	}
	if !changed {
		return false
	}
	s.metrics.disabled.Inc()
	s.log.Warn("webhook disabled", "webhook_id", wh.ID, "reason", reason)
	return true
}
