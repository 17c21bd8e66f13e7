package sender

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// transitions records the state changes Breakers reports.
type transitions struct {
	mu  sync.Mutex
	got []string
}

func (tr *transitions) record(endpoint, from, to string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.got = append(tr.got, endpoint+": "+from+"->"+to)
}

func (tr *transitions) list() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.got)
}

func (tr *transitions) check(t *testing.T, want ...string) {
	t.Helper()
	if got := tr.list(); !slices.Equal(got, want) {
		t.Fatalf("state changes = %q, want %q", got, want)
	}
}

// mustAllow asks for one request that the breaker must let through.
func mustAllow(t *testing.T, b *Breakers, endpoint string) func(healthy bool) {
	t.Helper()
	done, err := b.Allow(endpoint)
	if err != nil {
		t.Fatalf("Allow(%q) = %v, want the request let through", endpoint, err)
	}
	if done == nil {
		t.Fatalf("Allow(%q) returned a nil done", endpoint)
	}
	return func(healthy bool) {
		if healthy {
			done(Healthy)
		} else {
			done(Unhealthy)
		}
	}
}

// mustRefuse asks for one request that the breaker must refuse.
func mustRefuse(t *testing.T, b *Breakers, endpoint string) {
	t.Helper()
	done, err := b.Allow(endpoint)
	if !errors.Is(err, ErrCircuitOpen) && !errors.Is(err, ErrProbeOut) {
		t.Fatalf("Allow(%q) error = %v, want ErrCircuitOpen or ErrProbeOut", endpoint, err)
	}
	if done != nil {
		t.Fatalf("Allow(%q) refused but returned a done func", endpoint)
	}
}

// attempts sends one request per result, failing the test if any is refused.
func attempts(t *testing.T, b *Breakers, endpoint string, healthy ...bool) {
	t.Helper()
	for _, h := range healthy {
		mustAllow(t, b, endpoint)(h)
	}
}

func failures(n int) []bool { return make([]bool, n) }

func checkState(t *testing.T, b *Breakers, endpoint, want string) {
	t.Helper()
	if got := b.State(endpoint); got != want {
		t.Fatalf("State(%q) = %q, want %q", endpoint, got, want)
	}
}

// openBreaker trips endpoint's breaker with cfg's failures.
func openBreaker(t *testing.T, b *Breakers, endpoint string) {
	t.Helper()
	attempts(t, b, endpoint, failures(int(b.cfg.Failures))...)
	checkState(t, b, endpoint, BreakerOpen)
}

func TestBreakerOpensAfterConsecutiveFailures(t *testing.T) {
	tests := []struct {
		name     string
		cfg      BreakerConfig
		failures int
	}{
		{name: "default of 5 failures", cfg: BreakerConfig{}, failures: 5},
		{name: "one failure", cfg: BreakerConfig{Failures: 1}, failures: 1},
		{name: "three failures", cfg: BreakerConfig{Failures: 3}, failures: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var tr transitions
				b := NewBreakers(tt.cfg, tr.record)
				for i := range tt.failures {
					checkState(t, b, "ep", BreakerClosed)
					if i > 0 {
						time.Sleep(time.Second)
					}
					mustAllow(t, b, "ep")(false)
				}
				checkState(t, b, "ep", BreakerOpen)
				mustRefuse(t, b, "ep")
				mustRefuse(t, b, "ep")
				tr.check(t, "ep: closed->open")
			})
		})
	}
}

func TestBreakerHealthyResultResetsFailures(t *testing.T) {
	const F, S = false, true
	tests := []struct {
		name    string
		results []bool
		want    string
	}{
		{name: "4 failures, a success, 4 failures stays closed", results: []bool{F, F, F, F, S, F, F, F, F}, want: BreakerClosed},
		{name: "4 failures, a success, 5 failures opens", results: []bool{F, F, F, F, S, F, F, F, F, F}, want: BreakerOpen},
		{name: "alternating results stay closed", results: []bool{F, S, F, S, F, S, F, S, F, S, F, S}, want: BreakerClosed},
		{name: "many successes then 5 failures opens", results: []bool{S, S, S, S, S, S, S, S, F, F, F, F, F}, want: BreakerOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var tr transitions
				b := NewBreakers(BreakerConfig{Failures: 5}, tr.record)
				attempts(t, b, "ep", tt.results...)
				checkState(t, b, "ep", tt.want)
				if tt.want == BreakerClosed {
					mustAllow(t, b, "ep")(true)
					tr.check(t)
				} else {
					mustRefuse(t, b, "ep")
					tr.check(t, "ep: closed->open")
				}
			})
		})
	}
}

func TestBreakerHalfOpenAfterCooldown(t *testing.T) {
	tests := []struct {
		name     string
		cfg      BreakerConfig
		cooldown time.Duration
		probes   int
	}{
		{name: "defaults: 30s cooldown, one probe", cfg: BreakerConfig{}, cooldown: 30 * time.Second, probes: 1},
		{name: "one minute cooldown, three probes", cfg: BreakerConfig{Cooldown: time.Minute, Probes: 3}, cooldown: time.Minute, probes: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var tr transitions
				b := NewBreakers(tt.cfg, tr.record)
				if got := b.Cooldown(); got != tt.cooldown {
					t.Fatalf("Cooldown() = %s, want %s", got, tt.cooldown)
				}
				openBreaker(t, b, "ep")

				time.Sleep(tt.cooldown - time.Millisecond)
				checkState(t, b, "ep", BreakerOpen)
				mustRefuse(t, b, "ep")

				time.Sleep(2 * time.Millisecond)
				checkState(t, b, "ep", BreakerHalfOpen)
				tr.check(t, "ep: closed->open", "ep: open->half-open")

				var inFlight []func(bool)
				for range tt.probes {
					inFlight = append(inFlight, mustAllow(t, b, "ep"))
				}
				mustRefuse(t, b, "ep")
				checkState(t, b, "ep", BreakerHalfOpen)
				if len(inFlight) != tt.probes {
					t.Fatalf("%d probes in flight, want %d", len(inFlight), tt.probes)
				}
			})
		})
	}
}

func TestBreakerProbeResults(t *testing.T) {
	tests := []struct {
		name    string
		probes  uint32
		results []bool // one per probe, in the order they finish
		want    string
		changes []string // after closed->open, open->half-open
	}{
		{name: "probe success closes", probes: 1, results: []bool{true}, want: BreakerClosed, changes: []string{"ep: half-open->closed"}},
		{name: "probe failure reopens", probes: 1, results: []bool{false}, want: BreakerOpen, changes: []string{"ep: half-open->open"}},
		{name: "all probes must succeed to close", probes: 3, results: []bool{true, true, true}, want: BreakerClosed, changes: []string{"ep: half-open->closed"}},
		{name: "one probe failure among successes reopens", probes: 3, results: []bool{true, false}, want: BreakerOpen, changes: []string{"ep: half-open->open"}},
		{name: "probes still in flight keep it half-open", probes: 3, results: []bool{true, true}, want: BreakerHalfOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const cooldown = 30 * time.Second
				var tr transitions
				b := NewBreakers(BreakerConfig{Failures: 2, Cooldown: cooldown, Probes: tt.probes}, tr.record)
				openBreaker(t, b, "ep")
				time.Sleep(cooldown + time.Millisecond)

				var probes []func(bool)
				for range tt.probes {
					probes = append(probes, mustAllow(t, b, "ep"))
				}
				for i, healthy := range tt.results {
					probes[i](healthy)
				}
				checkState(t, b, "ep", tt.want)
				tr.check(t, append([]string{"ep: closed->open", "ep: open->half-open"}, tt.changes...)...)

				switch tt.want {
				case BreakerClosed:
					// A closed breaker starts counting failures afresh.
					attempts(t, b, "ep", false)
					checkState(t, b, "ep", BreakerClosed)
					attempts(t, b, "ep", false)
					checkState(t, b, "ep", BreakerOpen)
				case BreakerOpen:
					// Reopened for another full cooldown.
					mustRefuse(t, b, "ep")
					time.Sleep(cooldown - time.Millisecond)
					checkState(t, b, "ep", BreakerOpen)
					mustRefuse(t, b, "ep")
					time.Sleep(2 * time.Millisecond)
					checkState(t, b, "ep", BreakerHalfOpen)
					mustAllow(t, b, "ep")(true)
					for range tt.probes - 1 {
						mustAllow(t, b, "ep")(true)
					}
					checkState(t, b, "ep", BreakerClosed)
				}
			})
		})
	}
}

func TestBreakersArePerEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tr transitions
		b := NewBreakers(BreakerConfig{Failures: 3, Cooldown: time.Minute}, tr.record)

		// Failures interleaved across endpoints count per endpoint.
		for range 2 {
			attempts(t, b, "a", false)
			attempts(t, b, "b", false)
		}
		checkState(t, b, "a", BreakerClosed)
		checkState(t, b, "b", BreakerClosed)

		attempts(t, b, "a", false)
		checkState(t, b, "a", BreakerOpen)
		checkState(t, b, "b", BreakerClosed)
		mustRefuse(t, b, "a")
		mustAllow(t, b, "b")(true)
		mustAllow(t, b, "c")(false)
		checkState(t, b, "c", BreakerClosed)

		time.Sleep(time.Minute + time.Millisecond)
		checkState(t, b, "a", BreakerHalfOpen)
		checkState(t, b, "b", BreakerClosed)
		// a's single probe in flight does not limit b.
		probe := mustAllow(t, b, "a")
		mustAllow(t, b, "b")(true)
		mustAllow(t, b, "b")(true)
		probe(true)
		checkState(t, b, "a", BreakerClosed)
		tr.check(t, "a: closed->open", "a: open->half-open", "a: half-open->closed")
	})
}

func TestBreakerStateOfUnknownEndpointIsClosed(t *testing.T) {
	b := NewBreakers(BreakerConfig{}, nil)
	checkState(t, b, "never-seen", BreakerClosed)
	b.mu.Lock()
	n := len(b.m)
	b.mu.Unlock()
	if n != 0 {
		t.Fatalf("State of an unknown endpoint created %d breakers", n)
	}
}

func TestBreakersWithoutOnChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreakers(BreakerConfig{Failures: 1, Cooldown: time.Second}, nil)
		openBreaker(t, b, "ep")
		time.Sleep(2 * time.Second)
		mustAllow(t, b, "ep")(true)
		checkState(t, b, "ep", BreakerClosed)
	})
}

func TestBreakerConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     BreakerConfig
		wantErr string
	}{
		{name: "zero value takes defaults", cfg: BreakerConfig{}},
		{name: "24h cooldown", cfg: BreakerConfig{Cooldown: 24 * time.Hour}},
		{name: "1000 failures and probes", cfg: BreakerConfig{Failures: 1000, Probes: 1000}},
		{name: "negative cooldown", cfg: BreakerConfig{Cooldown: -time.Second}, wantErr: "cooldown"},
		{name: "cooldown over 24h", cfg: BreakerConfig{Cooldown: 24*time.Hour + time.Second}, wantErr: "cooldown"},
		{name: "1001 failures", cfg: BreakerConfig{Failures: 1001}, wantErr: "at most 1000"},
		{name: "1001 probes", cfg: BreakerConfig{Probes: 1001}, wantErr: "at most 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestBreakersForgetIdleClosedBreakers(t *testing.T) {
	tests := []struct {
		name      string
		endpoints int // breakers created before idling, including "open" and "recent"
		cooldown  time.Duration
		idle      time.Duration
		wantLen   int  // breakers kept after a new endpoint is seen
		forgotten bool // whether idle closed ones were dropped
		openState string
	}{
		{
			name: "full map forgets idle closed breakers, keeps open and recent ones", endpoints: 10000,
			cooldown: time.Hour, idle: 11 * time.Minute, wantLen: 3, forgotten: true, openState: BreakerOpen,
		},
		{
			name: "full map keeps a breaker that went half-open", endpoints: 10000,
			cooldown: time.Minute, idle: 11 * time.Minute, wantLen: 3, forgotten: true, openState: BreakerHalfOpen,
		},
		{
			name: "full map keeps breakers used in the last 10 minutes", endpoints: 10000,
			cooldown: time.Hour, idle: 9 * time.Minute, wantLen: 10001, openState: BreakerOpen,
		},
		{
			name: "map below the limit keeps idle breakers", endpoints: 9000,
			cooldown: time.Hour, idle: 11 * time.Minute, wantLen: 9001, openState: BreakerOpen,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := NewBreakers(BreakerConfig{Failures: 2, Cooldown: tt.cooldown}, nil)
				openBreaker(t, b, "open")
				attempts(t, b, "recent", true)
				// An idle closed breaker that has counted a failure.
				attempts(t, b, "idle-0", false)
				for i := 1; i < tt.endpoints-2; i++ {
					attempts(t, b, fmt.Sprintf("idle-%d", i), true)
				}
				if n := breakerCount(b); n != tt.endpoints {
					t.Fatalf("%d breakers before idling, want %d", n, tt.endpoints)
				}

				time.Sleep(tt.idle)
				attempts(t, b, "recent", true)
				attempts(t, b, "new", true)

				if n := breakerCount(b); n != tt.wantLen {
					t.Fatalf("%d breakers after a new endpoint, want %d", n, tt.wantLen)
				}
				for _, ep := range []string{"open", "recent", "new"} {
					if !hasBreaker(b, ep) {
						t.Errorf("breaker of %q was forgotten", ep)
					}
				}
				if got := hasBreaker(b, "idle-0"); got == tt.forgotten {
					t.Errorf("idle breaker kept = %v, want %v", got, !tt.forgotten)
				}
				checkState(t, b, "open", tt.openState)

				// A forgotten breaker starts afresh; a kept one remembers
				// its failure.
				attempts(t, b, "idle-0", false)
				want := BreakerOpen
				if tt.forgotten {
					want = BreakerClosed
				}
				checkState(t, b, "idle-0", want)
			})
		})
	}
}

func breakerCount(b *Breakers) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

func hasBreaker(b *Breakers, endpoint string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.m[endpoint]
	return ok
}

// TestBreakerHearsOnlyRealRequests: a request allowed and then not sent
// (cut short) is no success: a half-open circuit stays half-open, its
// probe slot free for a real one, and a closed one counts no success
// between failures.
func TestBreakerHearsOnlyRealRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const cooldown = 30 * time.Second
		var tr transitions
		b := NewBreakers(BreakerConfig{Failures: 2, Cooldown: cooldown, Probes: 1}, tr.record)
		openBreaker(t, b, "ep")
		time.Sleep(cooldown + time.Millisecond)
		done, err := b.Allow("ep")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Allow("ep"); !errors.Is(err, ErrProbeOut) {
			t.Fatalf("a second request while the probe is out: %v, want ErrProbeOut", err)
		}
		done(NotSent)
		checkState(t, b, "ep", BreakerHalfOpen)
		mustAllow(t, b, "ep")(true) // the slot is free again: a real probe closes it
		checkState(t, b, "ep", BreakerClosed)

		// Closed: failure, not sent, failure opens it (2 consecutive).
		mustAllow(t, b, "ep")(false)
		d, _ := b.Allow("ep")
		d(NotSent)
		checkState(t, b, "ep", BreakerClosed)
		mustAllow(t, b, "ep")(false)
		checkState(t, b, "ep", BreakerOpen)
		tr.check(t, "ep: closed->open", "ep: open->half-open", "ep: half-open->closed", "ep: closed->open")
	})
}
