package sender

import (
	"cmp"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
)

// BreakerConfig tunes the per-endpoint circuit breakers.
type BreakerConfig struct {
	// Failures is how many consecutive failed attempts (timeouts,
	// connection errors, 408, 5xx) open an endpoint's circuit. Default 5.
	Failures uint32
	// Cooldown is how long a circuit stays open before half-open probes
	// are let through. Default 30 s.
	Cooldown time.Duration
	// Probes is how many requests a half-open circuit lets through; as
	// many successes close it, one failure opens it again. Default 1.
	Probes uint32
}

// WithDefaults returns the config with every unset field at its default.
func (c BreakerConfig) WithDefaults() BreakerConfig {
	c.Failures = cmp.Or(c.Failures, 5)
	c.Cooldown = cmp.Or(c.Cooldown, 30*time.Second)
	c.Probes = cmp.Or(c.Probes, 1)
	return c
}

// Validate reports settings that cannot work.
func (c BreakerConfig) Validate() error {
	c = c.WithDefaults()
	if c.Cooldown < 0 || c.Cooldown > 24*time.Hour {
		return fmt.Errorf("breaker cooldown %s is outside 0 to 24h", c.Cooldown)
	}
	if c.Failures > 1000 || c.Probes > 1000 {
		return errors.New("breaker failures and probes must be at most 1000")
	}
	return nil
}

// Breaker states as the API and metrics show them.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half-open"
)

// Verdict is what a request a breaker allowed says of its endpoint.
type Verdict int

const (
	// NotSent: no request went out after all (the drain deadline or a
	// rebalance cut it short). It says nothing: the breaker neither counts
	// it nor closes on it, and a half-open circuit's probe slot is free
	// again (gobreaker's IsExcluded).
	NotSent Verdict = iota
	// Healthy: the endpoint answered like a live one.
	Healthy
	// Unhealthy: a timeout, a connection error, a 408 or a 5xx.
	Unhealthy
)

// errNotSent is what a NotSent verdict reports to gobreaker: excluded.
var errNotSent = errors.New("no request was sent")

// errUnhealthy is what an Unhealthy verdict reports to gobreaker.
var errUnhealthy = errors.New("the endpoint answered like a failing one")

// Breakers holds one circuit breaker per endpoint (webhook id). Closed
// breakers that have not been used for a while are forgotten, so memory
// follows the endpoints in use, not every endpoint ever seen. Only a real
// request's outcome moves a breaker (SPEC §4): a request that was allowed
// and then not sent reports NotSent.
type Breakers struct {
	cfg      BreakerConfig
	onChange func(endpoint, from, to string)
	// now is the clock of cooldowns (OpenUntil). gobreaker reads
	// time.Now itself: the sender's simulation runs in a synctest bubble,
	// where both are the same virtual clock.
	now func() time.Time

	mu        sync.Mutex
	m         map[string]*breakerEntry
	lastSweep time.Time

	// openMu guards openUntil and probing: it is taken in gobreaker's
	// state-change callback, so never while calling into a breaker.
	openMu    sync.Mutex
	openUntil map[string]time.Time // endpoint → when its open circuit lets a probe through
	probing   map[string]bool      // endpoint → a person's request is out as the probe
}

type breakerEntry struct {
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
	lastUsed time.Time
}

// NewBreakers returns an empty set; onChange, if not nil, is called on
// every state change. It runs under gobreaker's lock and sometimes under
// the set's own: it must not call back into the Breakers.
func NewBreakers(cfg BreakerConfig, onChange func(endpoint, from, to string)) *Breakers {
	return newBreakers(cfg, onChange, time.Now)
}

func newBreakers(cfg BreakerConfig, onChange func(endpoint, from, to string), now func() time.Time) *Breakers {
	b := &Breakers{cfg: cfg.WithDefaults(), m: map[string]*breakerEntry{}, now: now,
		openUntil: map[string]time.Time{}, probing: map[string]bool{}}
	b.onChange = func(endpoint, from, to string) {
		b.openMu.Lock()
		if to == BreakerOpen {
			b.openUntil[endpoint] = b.now().Add(b.cfg.Cooldown)
		} else {
			delete(b.openUntil, endpoint)
		}
		b.openMu.Unlock()
		if onChange != nil {
			onChange(endpoint, from, to)
		}
	}
	return b
}

// OpenUntil is when the endpoint's open circuit lets its half-open probe
// through; zero when the circuit is not open.
func (b *Breakers) OpenUntil(endpoint string) time.Time {
	b.openMu.Lock()
	defer b.openMu.Unlock()
	return b.openUntil[endpoint]
}

// Probe lets a request that a person asked for (a redelivery) through an
// endpoint whose circuit is not closed, as its probe: one at a time. It
// returns false when another is out. done reports what the request said:
// Healthy closes the circuit at once.
func (b *Breakers) Probe(endpoint string) (done func(Verdict), ok bool) {
	b.openMu.Lock()
	if b.probing[endpoint] {
		b.openMu.Unlock()
		return nil, false
	}
	b.probing[endpoint] = true
	b.openMu.Unlock()
	return func(v Verdict) {
		if v == Healthy {
			b.reset(endpoint)
		}
		b.openMu.Lock()
		delete(b.probing, endpoint)
		b.openMu.Unlock()
	}, true
}

// reset closes an endpoint's circuit: a fresh breaker replaces it.
func (b *Breakers) reset(endpoint string) {
	b.mu.Lock()
	e, ok := b.m[endpoint]
	delete(b.m, endpoint)
	b.mu.Unlock()
	if ok && e.cb.State() != gobreaker.StateClosed {
		b.onChange(endpoint, stateName(e.cb.State()), BreakerClosed)
	}
}

// Allow asks the endpoint's breaker for one request. When it is refused
// no request may be sent: ErrCircuitOpen while the circuit is open,
// ErrProbeOut while it is half-open and its probes are out. Otherwise the
// caller must call done exactly once with what the request said.
func (b *Breakers) Allow(endpoint string) (done func(Verdict), err error) {
	allowed, err := b.get(endpoint).Allow()
	switch {
	case errors.Is(err, gobreaker.ErrOpenState):
		return nil, ErrCircuitOpen
	case errors.Is(err, gobreaker.ErrTooManyRequests):
		return nil, ErrProbeOut
	case err != nil:
		return nil, err
	}
	return func(v Verdict) {
		switch v {
		case Healthy:
			allowed(nil)
		case Unhealthy:
			allowed(errUnhealthy)
		default:
			allowed(errNotSent)
		}
	}, nil
}

// ErrCircuitOpen means an endpoint's circuit is open: no request goes out
// until its cooldown ends.
var ErrCircuitOpen = errors.New("circuit open")

// ErrProbeOut means an endpoint's circuit is half-open and its probes are
// out: no other request goes out until they answer.
var ErrProbeOut = errors.New("circuit half-open, probe out")

// State is the endpoint's breaker state; an endpoint never seen is closed.
func (b *Breakers) State(endpoint string) string {
	b.mu.Lock()
	e, ok := b.m[endpoint]
	b.mu.Unlock()
	if !ok {
		return BreakerClosed
	}
	return stateName(e.cb.State())
}

// Cooldown is how long an open circuit stays open.
func (b *Breakers) Cooldown() time.Duration { return b.cfg.Cooldown }

func (b *Breakers) get(endpoint string) *gobreaker.TwoStepCircuitBreaker[struct{}] {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.m[endpoint]; ok {
		e.lastUsed = now
		return e.cb
	}
	if len(b.m) >= 10000 && now.Sub(b.lastSweep) > time.Minute {
		b.lastSweep = now
		b.forgetIdle(now.Add(-10 * time.Minute))
	}
	cb := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        endpoint,
		MaxRequests: b.cfg.Probes,
		Timeout:     b.cfg.Cooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= b.cfg.Failures },
		IsExcluded:  func(err error) bool { return errors.Is(err, errNotSent) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			if b.onChange != nil {
				b.onChange(name, stateName(from), stateName(to))
			}
		},
	})
	b.m[endpoint] = &breakerEntry{cb: cb, lastUsed: now}
	return cb
}

// forgetIdle drops closed breakers unused since before cutoff. Called with
// b.mu held.
func (b *Breakers) forgetIdle(cutoff time.Time) {
	for id, e := range b.m {
		if e.lastUsed.Before(cutoff) && e.cb.State() == gobreaker.StateClosed {
			delete(b.m, id)
		}
	}
}

func stateName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateOpen:
		return BreakerOpen
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	default:
		return BreakerClosed
	}
}
