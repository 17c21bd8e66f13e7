package sender

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/schemas"
)

// Group is the sender's consumer group on hookline.deliveries; each retry
// topic has a group of its own, Group + "." + topic.
const Group = "hookline-sender"

// StageConfig configures the sender stage.
type StageConfig struct {
	// HTTP configures requests.
	HTTP Config
	// Schedule is the retry schedule. Default DefaultSchedule.
	Schedule Schedule
	// Breaker tunes the per-endpoint circuit breakers.
	Breaker BreakerConfig
	// EndpointConcurrency is how many requests one endpoint gets at once.
	// Jobs of one resource always go one after another. Default 4.
	EndpointConcurrency int
	// EndpointQueue is how many jobs may wait for an endpoint that is
	// behind (its oldest queued job has waited more than a second); more
	// are put off to the first retry tier, so that a slow endpoint never
	// fills the sender. An endpoint that keeps up may queue 16 times as
	// many, so a burst to a healthy endpoint waits in memory, not on the
	// retry topic. Default 256.
	EndpointQueue int
	// MaxInFlight bounds the jobs fetched and not finished, all endpoints
	// together: beyond it fetching waits (backpressure). Default 10000.
	MaxInFlight int
	// MaxUncommitted bounds, per partition, the jobs fetched after the
	// oldest unfinished one (a slow job holds the commit back, not the
	// work): beyond it that partition's fetching waits, so memory stays
	// bounded. Default 50000.
	MaxUncommitted int
	// CommitInterval is how often finished offsets are committed. Default
	// 200 ms.
	CommitInterval time.Duration
	// DrainTimeout bounds how long in-flight jobs may take after shutdown
	// begins. Default 30 s.
	DrainTimeout time.Duration
	// Registerer receives the stage's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

func (c StageConfig) withDefaults() StageConfig {
	if c.Schedule == nil {
		c.Schedule = MustSchedule(DefaultSchedule)
	}
	c.Breaker = c.Breaker.withDefaults()
	if c.EndpointConcurrency == 0 {
		c.EndpointConcurrency = 4
	}
	if c.EndpointQueue == 0 {
		c.EndpointQueue = 256
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 10000
	}
	if c.MaxUncommitted == 0 {
		c.MaxUncommitted = 50000
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = 200 * time.Millisecond
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	return c
}

// Validate reports settings that cannot work.
func (c StageConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.EndpointConcurrency < 1 || c.EndpointConcurrency > 1000:
		return fmt.Errorf("endpoint concurrency %d is outside 1 to 1000", c.EndpointConcurrency)
	case c.EndpointQueue < 1:
		return fmt.Errorf("endpoint queue %d must be at least 1", c.EndpointQueue)
	case c.MaxInFlight < 1:
		return fmt.Errorf("max in flight %d must be at least 1", c.MaxInFlight)
	}
	if err := c.Breaker.Validate(); err != nil {
		return err
	}
	return c.HTTP.Validate()
}

// Webhooks is the webhook state the sender reads at send time, so that a
// change of URL or secret applies to jobs already queued, and changes when
// an endpoint answers 410 Gone.
type Webhooks interface {
	ByID(id string) (schemas.Webhook, bool)
	DisableWebhook(ctx context.Context, id, reason string) error
}

// Stage consumes hookline.deliveries and the retry topics and delivers.
type Stage struct {
	cfg      StageConfig
	d        *Deliverer
	policy   Policy
	breakers *Breakers
	webhooks Webhooks
	metrics  *metrics
	log      *slog.Logger
	now      func() time.Time

	sources []*source
	out     *broker.Writer // no topic: each message names its own

	slots    chan struct{} // one per job in flight
	inflight sync.WaitGroup
	outbox   chan output
	work     context.Context // cancelled DrainTimeout after shutdown
	stopping context.Context // cancelled when shutdown begins

	mu        sync.Mutex
	endpoints map[string]*endpoint
	// scheduleSpan is the sum of the retry delays: how long a delivery may
	// be put off before it fails.
	scheduleSpan time.Duration
}

// NewStage wires the sender to the broker. The broker must have created
// the retry topics of cfg.Schedule.
func NewStage(b *broker.Broker, webhooks Webhooks, cfg StageConfig, log *slog.Logger) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	cfg = cfg.withDefaults()
	log = log.With("stage", "sender")
	s := &Stage{
		cfg: cfg, webhooks: webhooks, log: log, now: time.Now,
		policy:    Policy{Schedule: cfg.Schedule, Jitter: 0.2, Rand: rand.Float64},
		metrics:   newMetrics(cfg.Registerer),
		slots:     make(chan struct{}, cfg.MaxInFlight),
		outbox:    make(chan output, 4096),
		endpoints: map[string]*endpoint{},
		out:       b.Writer("", records.Oversize),
	}
	s.breakers = NewBreakers(cfg.Breaker, s.breakerChanged)
	for _, d := range cfg.Schedule {
		s.scheduleSpan += d
	}
	d, err := NewDeliverer(cfg.HTTP, nil, time.Now, log)
	if err != nil {
		return nil, err
	}
	s.d = d
	s.sources = append(s.sources, newSource(b.GroupReader(schemas.TopicDeliveries, Group), schemas.TopicDeliveries, false))
	for _, topic := range cfg.Schedule.Topics() {
		s.sources = append(s.sources, newSource(b.GroupReader(topic, Group+"."+topic), topic, true))
	}
	return s, nil
}

// Breakers exposes the per-endpoint breakers, for the API.
func (s *Stage) Breakers() *Breakers { return s.breakers }

// Run delivers until ctx is cancelled, then stops fetching, finishes the
// jobs in flight (for at most DrainTimeout), commits and returns.
func (s *Stage) Run(ctx context.Context) error {
	work, cancelWork := broker.DrainContext(ctx, s.cfg.DrainTimeout)
	defer cancelWork()
	s.work = work
	s.stopping = ctx
	outboxDone := make(chan struct{})
	go func() { s.runOutbox(); close(outboxDone) }()

	var fetchers sync.WaitGroup
	errs := make(chan error, len(s.sources))
	for _, src := range s.sources {
		fetchers.Add(2)
		go func() { defer fetchers.Done(); errs <- s.fetch(ctx, src) }()
		go func() { defer fetchers.Done(); src.CommitEvery(ctx, s.cfg.CommitInterval, s.log) }()
	}
	fetchers.Wait()
	s.inflight.Wait() // every job finished or abandoned at the drain deadline
	close(s.outbox)
	<-outboxDone
	var err error
	for _, src := range s.sources {
		src.Commit(context.Background(), s.log)
		src.reader.Close()
	}
	s.out.Close()
	close(errs)
	for e := range errs {
		if e != nil && !errors.Is(e, context.Canceled) {
			err = errors.Join(err, e)
		}
	}
	return err
}
