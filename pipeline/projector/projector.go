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
	"github.com/hookline/hookline/projections"
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
	// Batches of up to 5,000, lingering 250 ms to fill: one fsync (bbolt)
	// or one part (ClickHouse) per batch. An attempt shows in the API at
	// most a quarter of a second later; at 9,000 attempts/s, lingering 250
	// rather than 50 ms took 11% off serve's CPU (bbolt rewrites its
	// branch pages and syncs once a transaction; docs/BENCHMARKS.md).
	r, err := stage.New(stage.Config{Name: "projector", MaxBatch: 5000, MaxInFlight: 10000, Linger: 250 * time.Millisecond,
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
	var n int
	var insert func() error
	var dead []kafka.Message
	if rs, ok := s.store.(projections.RecordStore); ok {
		var records []projections.Record
		records, dead = DecodeRecords(msgs)
		n, insert = len(records), func() error { return rs.InsertRecords(ctx, records) }
	} else {
		var attempts []schemas.Attempt
		attempts, dead = Decode(msgs)
		n, insert = len(attempts), func() error { return s.store.InsertAttempts(ctx, attempts) }
	}
	if n > 0 {
		start := time.Now()
		if err := insert(); err != nil {
			s.metrics.errors.Inc()
			return fmt.Errorf("projector: insert %d attempts: %w", n, err)
		}
		s.metrics.duration.Observe(time.Since(start).Seconds())
		s.metrics.inserted.Add(float64(n))
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
	dead = decode(msgs, func(v []byte, a *schemas.Attempt) error { return fastjson.Unmarshal(v, a) },
		func(a schemas.Attempt, _ kafka.Message) { attempts = append(attempts, a) })
	return attempts, dead
}

// DecodeRecords is Decode for a projections.RecordStore: each attempt
// with its record's JSON, its bodies and headers left undecoded (the store
// keeps the JSON and indexes none of them), which is most of the decoding
// of a first attempt.
func DecodeRecords(msgs []kafka.Message) (records []projections.Record, dead []kafka.Message) {
	records = make([]projections.Record, 0, len(msgs))
	dead = decode(msgs, func(v []byte, a *schemas.Attempt) error {
		// The outer fields shadow the Attempt's: the bodies and headers
		// stay undecoded (a JSON string is not unescaped).
		lazy := struct {
			*schemas.Attempt
			RequestHeaders  skipped `json:"request_headers"`
			RequestBody     skipped `json:"request_body"`
			ResponseHeaders skipped `json:"response_headers"`
			ResponseBody    skipped `json:"response_body"`
		}{Attempt: a}
		return fastjson.Unmarshal(v, &lazy)
	}, func(a schemas.Attempt, m kafka.Message) {
		records = append(records, projections.Record{Attempt: a, JSON: m.Value})
	})
	return records, dead
}

// skipped takes a JSON value without looking at it.
type skipped struct{}

func (*skipped) UnmarshalJSON([]byte) error { return nil }

// decode parses each record with parse and hands the valid ones to keep;
// it returns the dead letters of the others.
func decode(msgs []kafka.Message, parse func([]byte, *schemas.Attempt) error, keep func(schemas.Attempt, kafka.Message)) (dead []kafka.Message) {
	for _, m := range msgs {
		if broker.IsControl(m) {
			continue
		}
		var a schemas.Attempt
		err := parse(m.Value, &a)
		switch {
		case err != nil:
			dead = append(dead, broker.DeadLetter(m, "attempt record is not valid JSON: "+err.Error()))
		case a.DeliveryID == "" || a.WebhookID == "" || a.Tenant == "" || a.N < 0 || a.N == 0 && a.State != schemas.StatePending:
			// n 0 is a pending mark (schemas.Attempt): it says a delivery
			// waits, and is pending.
			dead = append(dead, broker.DeadLetter(m, "attempt record lacks delivery_id, webhook_id, tenant or n"))
		default:
			keep(a, m)
		}
	}
	return dead
}
