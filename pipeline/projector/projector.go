package projector

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
)

// Group is the projector's consumer group.
const Group = "hookline-projector"

// Inserter is the part of the attempts store the projector writes to.
type Inserter interface {
	InsertAttempts(ctx context.Context, attempts []schemas.Attempt) error
}

// Stage runs the projector as a consumer of hookline.attempts.
type Stage struct {
	store   Inserter
	reader  *broker.Reader
	dead    *broker.Writer
	log     *slog.Logger
	metrics metrics
}

type metrics struct {
	inserted, errors prometheus.Counter
	duration         prometheus.Histogram
}

// NewStage wires the projector to the broker and the store; reg, if not
// nil, receives its metrics.
func NewStage(b *broker.Broker, store Inserter, reg prometheus.Registerer, log *slog.Logger) *Stage {
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
	return &Stage{
		store:   store,
		reader:  b.GroupReader(schemas.TopicAttempts, Group),
		dead:    b.Writer(schemas.TopicDead, nil),
		log:     log.With("stage", "projector"),
		metrics: m,
	}
}

// Run consumes until ctx is cancelled, then stores the batch in flight.
func (s *Stage) Run(ctx context.Context) error {
	err := broker.Consume(ctx, s.reader, broker.ConsumeConfig{Name: "projector", MaxBatch: 20000, Linger: 50 * time.Millisecond}, s.handle, s.log)
	s.reader.Close()
	s.dead.Close()
	return err
}

func (s *Stage) handle(ctx context.Context, msgs []kafka.Message) error {
	attempts, dead := Decode(msgs)
	for _, d := range dead {
		s.log.Warn("dead-lettering attempt record", "partition", d.Partition, "offset", d.Offset)
	}
	if err := s.dead.Write(ctx, dead); err != nil {
		return err
	}
	if len(attempts) == 0 {
		return nil
	}
	start := time.Now()
	if err := s.store.InsertAttempts(ctx, attempts); err != nil {
		s.metrics.errors.Inc()
		return fmt.Errorf("projector: insert %d attempts: %w", len(attempts), err)
	}
	s.metrics.duration.Observe(time.Since(start).Seconds())
	s.metrics.inserted.Add(float64(len(attempts)))
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
		err := json.Unmarshal(m.Value, &a)
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
