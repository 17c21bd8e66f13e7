package sender

import (
	"github.com/hookline/hookline/delivery"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the sender stage, registered on an injected registerer.
type metrics struct {
	attempts    *prometheus.CounterVec
	duration    prometheus.Histogram
	deferred    *prometheus.CounterVec
	hops        prometheus.Counter
	unsent      *prometheus.CounterVec
	lostPutOffs prometheus.Counter
	memory      prometheus.Gauge
	disabled    prometheus.Counter
	breakers    *prometheus.GaugeVec
	queued      *prometheus.GaugeVec
	limit       *prometheus.GaugeVec
	wait        prometheus.Histogram
}

// queuedShown is the backlog from which an endpoint has a queue-depth
// series: cardinality follows the endpoints that are behind, not every one.
const queuedShown = 10

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_sender_attempts_total",
			Help: "Delivery attempts by the delivery's state after the attempt and the status class (2xx…5xx, error for no response).",
		}, []string{"state", "class"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookline_sender_attempt_duration_seconds",
			Help:    "Duration of delivery attempts, request to response.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		deferred: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_sender_deferred_total",
			Help: "Jobs put off without a request, by reason: circuit_open (their endpoint's circuit is open: a retry topic until it lets a probe through), endpoint_busy (their endpoint is behind: hookline.overflow, back after half of --max-queue-wait, or a longer delay topic for a job far back in a deep backlog), memory (the jobs waiting in the sender are over --max-queue-bytes: hookline.overflow).",
		}, []string{"reason"}),
		hops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookline_sender_hops_total",
			Help: "Jobs that came back from a delay topic before they were due and went on to a shorter one.",
		}),
		unsent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_sender_unsent_failures_total",
			Help: "Deliveries failed without a request, by reason: webhook_disabled, webhook_deleted (their webhook was disabled or deleted while they waited).",
		}, []string{"reason"}),
		lostPutOffs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookline_sender_putoffs_not_back_total",
			Help: "Put-off jobs that did not come back to this sender within the order hold of their time (another sender took them, or a crash lost their write): their resource's later jobs wait no longer.",
		}),
		memory: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hookline_sender_queued_bytes",
			Help: "Bytes of the jobs the sender holds in memory (queued, held and in flight); those waiting (not in flight) are bounded by --max-queue-bytes.",
		}),
		disabled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookline_sender_webhooks_disabled_total",
			Help: "Webhooks disabled because their endpoint answered 410 Gone or failed for --disable-after.",
		}),
		breakers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hookline_sender_breaker_open",
			Help: "Endpoints whose circuit is not closed: 1 open, 0.5 half-open. Closed endpoints have no series, so cardinality follows the failing endpoints.",
		}, []string{"webhook_id"}),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hookline_sender_endpoint_queued",
			Help: "Jobs waiting in an endpoint's queue, for endpoints with at least 10 waiting; the others have no series.",
		}, []string{"webhook_id"}),
		limit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hookline_sender_endpoint_concurrency_limit",
			Help: "Requests an endpoint may have in flight now (adaptive, up to its webhook's max_concurrency), for endpoints with at least 10 jobs waiting; the others have no series.",
		}, []string{"webhook_id"}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookline_sender_queue_wait_seconds",
			Help:    "Time a job waited in its endpoint's queue before its attempt.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.attempts, m.duration, m.deferred, m.hops, m.unsent, m.lostPutOffs, m.memory,
			m.disabled, m.breakers, m.queued, m.limit, m.wait)
	}
	return m
}

func (m *metrics) observe(r delivery.Result) {
	if r.Attempt.StatusCode != 0 || r.Attempt.DurationMS > 0 {
		m.duration.Observe(float64(r.Attempt.DurationMS) / 1000)
	}
}

// breakerChanged keeps the breaker gauge and the log in step with the
// breakers. It must not call into Breakers: gobreaker holds its lock here.
func (s *Stage) breakerChanged(endpoint, from, to string) {
	switch to {
	case BreakerOpen:
		s.metrics.breakers.WithLabelValues(endpoint).Set(1)
	case BreakerHalfOpen:
		s.metrics.breakers.WithLabelValues(endpoint).Set(0.5)
	default:
		s.metrics.breakers.DeleteLabelValues(endpoint)
	}
	s.log.Info("circuit breaker", "webhook_id", endpoint, "from", from, "to", to)
	if h := s.health; h != nil {
		h.breakerChanged(endpoint, to)
	}
}

// setQueued reports an endpoint's backlog and concurrency limit: series
// while it holds at least queuedShown jobs, none otherwise.
func (m *metrics) setQueued(e *endpoint) {
	switch {
	case e.queued >= queuedShown:
		m.queued.WithLabelValues(e.id).Set(float64(e.queued))
		m.limit.WithLabelValues(e.id).Set(float64(e.conc.current()))
		e.shown = true
	case e.shown:
		m.queued.DeleteLabelValues(e.id)
		m.limit.DeleteLabelValues(e.id)
		e.shown = false
	}
}
