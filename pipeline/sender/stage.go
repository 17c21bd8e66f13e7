package sender

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookline/hookline/delivery"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/pipeline/stage"
	"github.com/hookline/hookline/schemas"
)

// Group is the sender's consumer group, one over hookline.deliveries and
// every retry topic. Retry topics used to have groups of their own, Group
// + "." + topic; Run copies their committed offsets into Group.
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
	// MaxQueueWait bounds an endpoint's predicted wait (its queued jobs
	// times the time it takes per job): beyond it new jobs are put off to
	// a retry topic, due when it is predicted to have room, so that a slow
	// endpoint never fills the sender. Default 10 s.
	MaxQueueWait time.Duration
	// MaxInFlight bounds the jobs fetched and not finished, all endpoints
	// together: beyond it fetching waits (backpressure). An endpoint alone
	// may hold all of them; beside others it holds at most an even share,
	// and beyond that its new jobs are put off. Default 10000.
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
	// DisableAfter disables a webhook whose every attempt has failed for
	// this long (counted from its last change at the earliest). Default 5
	// days.
	DisableAfter time.Duration
	// Registerer receives the stage's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// WithDefaults returns the config with every unset field at its default.
func (c StageConfig) WithDefaults() StageConfig {
	if c.Schedule == nil {
		c.Schedule = MustSchedule(DefaultSchedule)
	}
	c.Breaker = c.Breaker.WithDefaults()
	c.EndpointConcurrency = cmp.Or(c.EndpointConcurrency, 4)
	c.MaxQueueWait = cmp.Or(c.MaxQueueWait, 10*time.Second)
	c.MaxInFlight = cmp.Or(c.MaxInFlight, 10000)
	c.MaxUncommitted = cmp.Or(c.MaxUncommitted, 50000)
	c.CommitInterval = cmp.Or(c.CommitInterval, 200*time.Millisecond)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, 30*time.Second)
	c.DisableAfter = cmp.Or(c.DisableAfter, 5*24*time.Hour)
	return c
}

// Validate reports settings that cannot work.
func (c StageConfig) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.EndpointConcurrency < 1 || c.EndpointConcurrency > 1000:
		return fmt.Errorf("endpoint concurrency %d is outside 1 to 1000", c.EndpointConcurrency)
	case c.MaxQueueWait < 0 || c.MaxQueueWait > time.Hour:
		return fmt.Errorf("max queue wait %s is outside 0 to 1h", c.MaxQueueWait)
	case c.MaxInFlight < 1:
		return fmt.Errorf("max in flight %d must be at least 1", c.MaxInFlight)
	case c.DisableAfter < 0:
		return fmt.Errorf("disable after %s must not be negative", c.DisableAfter)
	}
	if err := c.Breaker.Validate(); err != nil {
		return err
	}
	return c.HTTP.Validate()
}

// Webhooks is the webhook state the sender reads at send time, so that a
// change of URL or secret applies to jobs already queued, and changes when
// an endpoint answers 410 Gone or fails for DisableAfter.
type Webhooks interface {
	ByID(id string) (schemas.Webhook, bool)
	// Sync waits until every change on the topic when it is called has
	// been read: a job can come from a process that saw its webhook made
	// before this one did.
	Sync(ctx context.Context) error
	// DisableWebhook reports whether this call disabled the webhook.
	DisableWebhook(ctx context.Context, id, reason string) (bool, error)
}

// Stage consumes hookline.deliveries and the retry topics and delivers. It
// is a stage.Handler: the runner fetches, writes what it emits and
// commits; the stage queues each job for its endpoint.
type Stage struct {
	cfg      StageConfig
	b        *broker.Broker
	d        *delivery.Deliverer
	policy   Policy
	breakers *Breakers
	webhooks Webhooks
	metrics  *metrics
	health   *health
	log      *slog.Logger
	now      func() time.Time

	// stopping is set at the soft stop: lanes then leave their queued jobs
	// to the next run instead of sending them.
	stopping atomic.Bool
	lanes    sync.WaitGroup // lane goroutines of the current run

	mu        sync.Mutex
	endpoints map[string]*endpoint
	// synced is when an unknown webhook id last made the registry catch up
	// (webhookByID).
	synced map[string]time.Time
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
	cfg = cfg.WithDefaults()
	s := &Stage{
		cfg: cfg, b: b, webhooks: webhooks, log: log, now: time.Now,
		policy:    Policy{Schedule: cfg.Schedule, Jitter: 0.2, Rand: rand.Float64},
		metrics:   newMetrics(cfg.Registerer),
		endpoints: map[string]*endpoint{}, synced: map[string]time.Time{},
	}
	s.breakers = NewBreakers(cfg.Breaker, s.breakerChanged)

	for _, d := range cfg.Schedule {
		s.scheduleSpan += d
	}
	d, err := delivery.NewDeliverer(cfg.HTTP, nil, time.Now, log.With("stage", "sender"))
	if err != nil {
		return nil, err
	}
	s.d = d
	return s, nil
}

// endpointLimits is the concurrency limit of every endpoint the sender
// holds, for hookline.endpoints.
func (s *Stage) endpointLimits() map[string]int {
	s.mu.Lock()
	es := make([]*endpoint, 0, len(s.endpoints))
	for _, e := range s.endpoints {
		es = append(es, e)
	}
	s.mu.Unlock()
	out := make(map[string]int, len(es))
	for _, e := range es {
		e.mu.Lock()
		out[e.id] = e.conc.current()
		e.mu.Unlock()
	}
	return out
}

// Breakers exposes the per-endpoint breakers, for the API.
func (s *Stage) Breakers() *Breakers { return s.breakers }

// Run delivers until ctx is cancelled, then stops fetching, finishes the
// jobs in flight (for at most DrainTimeout), commits and returns.
func (s *Stage) Run(ctx context.Context) error {
	s.stopping.Store(false)
	// One group over every sender topic: the range balancer gives
	// partition p of each to one process, so one process owns an
	// endpoint's first attempts and its retries, if the topics have equal
	// partition counts.
	retries := s.cfg.Schedule.Topics()
	topics := append([]string{schemas.TopicDeliveries}, retries...)
	if want, err := s.b.Partitions(ctx, schemas.TopicDeliveries); err == nil {
		for _, topic := range retries {
			if n, err := s.b.Partitions(ctx, topic); err == nil && n != want {
				s.log.Warn("a retry topic's partition count differs from hookline.deliveries': an endpoint's retries may be sent by another process than its first attempts",
					"topic", topic, "partitions", n, "deliveries_partitions", want)
			}
		}
	}
	// Before the group joins: a retry topic's offsets move from the
	// tier's old group, once.
	for _, topic := range retries {
		if _, err := s.b.CopyOffsets(ctx, Group+"."+topic, Group, topic); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sender: %w", err)
		}
	}
	// Endpoint states first: a failing endpoint's clock goes on from where
	// its last owner left it.
	s.health = newHealth(s.b, s.endpointLimits, s.log)
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
	out := s.b.Writer("", records.Oversize)
	defer out.Close()
	r, err := stage.New(stage.Config{
		Name: "sender", MaxBatch: min(500, s.cfg.MaxInFlight), MaxInFlight: s.cfg.MaxInFlight, MaxUncommitted: s.cfg.MaxUncommitted,
		CommitInterval: s.cfg.CommitInterval, DrainTimeout: s.cfg.DrainTimeout,
	}, s, out, s.log, stage.Source{Reader: s.b.GroupReaderOf(Group, topics, s.due), Topic: strings.Join(topics, ",")})
	if err != nil {
		return fmt.Errorf("sender: %w", err)
	}
	err = r.Run(ctx)
	s.lanes.Wait() // past the hard stop a lane's request ends at once
	return err
}
