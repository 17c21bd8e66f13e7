package projector

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	fastjson "github.com/segmentio/encoding/json"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/stage"
	"github.com/hookline/hookline/schemas"
)

// Group is the projector's consumer group.
const Group = "hookline-projector"

// Inserter is the part of the attempts store the projector writes to.
type Inserter interface {
	InsertAttempts(ctx context.Context, attempts []schemas.Attempt) error
}

// Config configures the projector stage.
type Config struct {
	// Registerer receives the stage's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// DrainTimeout bounds how long the batch in flight may take to be
	// stored after shutdown begins. Default 30 s.
	DrainTimeout time.Duration
}

// WithDefaults returns the config with every unset field at its default.
func (c Config) WithDefaults() Config {
	c.DrainTimeout = cmp.Or(c.DrainTimeout, 30*time.Second)
	return c
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	if c.WithDefaults().DrainTimeout < 0 {
		return fmt.Errorf("projector: drain timeout %v must not be negative", c.DrainTimeout)
	}
	return nil
}

// Stage runs the projector as a consumer of hookline.attempts.
type Stage struct {
	cfg     Config
	store   Inserter
	b       *broker.Broker
	log     *slog.Logger
	metrics metrics
}

type metrics struct {
	inserted, errors prometheus.Counter
	duration         prometheus.Histogram
}

// NewStage wires the projector to the broker and the store.
func NewStage(b *broker.Broker, store Inserter, cfg Config, log *slog.Logger) *Stage {
	cfg = cfg.WithDefaults()
	reg := cfg.Registerer
	m := metrics{
		inserted: prometheus.NewCounter(prometheus.CounterOpts{Name: "hookline_projector_inserted_total",
			Help: "Attempts inserted into the store (a replayed attempt counts again; the store keeps one)."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "hookline_projector_insert_errors_total",
			Help: "Failed inserts; the batch is retried."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hookline_projector_insert_duration_seconds",
			Help: "Duration of one batch insert.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	if reg != nil {
		reg.MustRegister(m.inserted, m.errors, m.duration)
	}
	return &Stage{cfg: cfg, store: store, b: b, log: log, metrics: m}
}

// Run consumes until ctx is cancelled, then stores the batch in flight.
func (s *Stage) Run(ctx context.Context) error {
	if err := s.cfg.Validate(); err != nil {
		return err
	}
	out := s.b.Writer(schemas.TopicDead, nil)
	defer out.Close()
	// Batches of up to 20,000, lingering 50 ms to fill: one fsync (bbolt)
	// or one part (ClickHouse) per batch.
	r, err := stage.New(stage.Config{Name: "projector", MaxBatch: 20000, MaxInFlight: 40000, Linger: 50 * time.Millisecond,
		DrainTimeout: s.cfg.DrainTimeout}, s, out, s.log,
		stage.Source{Reader: s.b.GroupReader(schemas.TopicAttempts, Group), Topic: schemas.TopicAttempts})
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// Handle stores a batch of attempts; those that do not decode become dead
// letters. The inputs are done once stored (and dead-lettered).
func (s *Stage) Handle(ctx context.Context, batch []*stage.Input, out *stage.Outbox) error {
	msgs := make([]kafka.Message, len(batch))
	for i, in := range batch {
		msgs[i] = in.Message
	}
	attempts, dead := Decode(msgs)
	if len(attempts) > 0 {
		start := time.Now()
		if err := s.store.InsertAttempts(ctx, attempts); err != nil {
			s.metrics.errors.Inc()
			return fmt.Errorf("projector: insert %d attempts: %w", len(attempts), err)
		}
		s.metrics.duration.Observe(time.Since(start).Seconds())
		s.metrics.inserted.Add(float64(len(attempts)))
	}
	for _, d := range dead {
		s.log.Warn("dead-lettering attempt record", "partition", broker.Header(d, broker.HeaderPartition), "offset", broker.Header(d, broker.HeaderOffset))
	}
	// The batch is stored: it is done when its dead letters are written.
	out.Emit(dead, batch...)
	return nil
}

// Decode parses attempt records; those that are not valid become dead
// letters.
func Decode(msgs []kafka.Message) (attempts []schemas.Attempt, dead []kafka.Message) {
	attempts = make([]schemas.Attempt, 0, len(msgs))
	for _, m := range msgs {
		if broker.IsControl(m) {
			continue
		}
		var a schemas.Attempt
		err := fastjson.Unmarshal(m.Value, &a)
		switch {
		case err != nil:
			dead = append(dead, broker.DeadLetter(m, "attempt record is not valid JSON: "+err.Error()))
		case a.DeliveryID == "" || a.WebhookID == "" || a.Tenant == "" || a.N < 1:
			dead = append(dead, broker.DeadLetter(m, "attempt record lacks delivery_id, webhook_id, tenant or n"))
		default:
			attempts = append(attempts, a)
		}
	}
	return attempts, dead
}
