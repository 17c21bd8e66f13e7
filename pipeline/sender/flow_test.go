package sender

import (
	"testing"
	"time"

	"github.com/hookline/hookline/schemas"
)

// TestConcurrencyGrowsWhileLatencyHolds: requests that keep the limit busy
// and answer in steady time raise the limit from where it starts up to the
// webhook's max_concurrency, never past it.
func TestConcurrencyGrowsWhileLatencyHolds(t *testing.T) {
	c := newConcurrency(4, 32)
	start := time.Now()
	for i := 0; i < 500; i++ {
		c.sample(start, 50*time.Millisecond, c.current(), false)
	}
	if got := c.current(); got != 32 {
		t.Fatalf("limit %d after 500 steady answers at the limit, want the max 32", got)
	}
	if got := c.resize(8).current(); got != 8 {
		t.Fatalf("limit %d after max_concurrency went down to 8", got)
	}
}

// TestConcurrencyIgnoresIdleEndpoints: an endpoint given less work than
// its limit does not have its limit raised for it.
func TestConcurrencyIgnoresIdleEndpoints(t *testing.T) {
	c := newConcurrency(4, 32)
	for i := 0; i < 200; i++ {
		c.sample(time.Now(), 50*time.Millisecond, 1, false)
	}
	if got := c.current(); got != 4 {
		t.Fatalf("limit %d with one request in flight at a time, want 4 still", got)
	}
}

// TestConcurrencyShrinksOnFailuresAndLatency: failures that ask for fewer
// requests (timeouts, 5xx, 429) and growing latency bring the limit down,
// to 1 at the least.
func TestConcurrencyShrinksOnFailuresAndLatency(t *testing.T) {
	c := newConcurrency(32, 32)
	now := time.Now()
	c.sample(now, 10*time.Millisecond, 32, false) // the latency with no queue
	for i := 0; i < 5; i++ {
		c.sample(now, 10*time.Millisecond, 32, true)
	}
	if got := c.current(); got > 20 || got < 15 {
		t.Fatalf("limit %d after 5 failures from 32, want about 32×0.9⁵ ≈ 18", got)
	}
	for i := 0; i < 100; i++ {
		c.sample(now, 10*time.Millisecond, 32, true)
	}
	if got := c.current(); got != 1 {
		t.Fatalf("limit %d after 100 failures, want 1", got)
	}

	c = newConcurrency(32, 32)
	c.sample(now, 10*time.Millisecond, 32, false)
	for i := 0; i < 20; i++ { // answers now take ten times as long: the endpoint queues
		c.sample(now, 100*time.Millisecond, c.current(), false)
	}
	if got := c.current(); got >= 16 {
		t.Fatalf("limit %d after latency went from 10 to 100 ms, want it well down from 32", got)
	}
}

func flowStage(wait time.Duration) *Stage {
	return &Stage{cfg: StageConfig{MaxQueueWait: wait, MaxInFlight: 100000, Schedule: MustSchedule("1s,10s,1m")}}
}

func flowEndpoint() *endpoint {
	return &endpoint{id: "w", lanes: make([][]work, 32), running: make([]bool, 32),
		conc: newConcurrency(4, 32), wake: make(chan struct{}), deferred: map[string]deferral{}}
}

func flowJob(resource string) work {
	return work{job: schemas.Job{DeliveryID: "d", WebhookID: "w", ResourceID: resource}}
}

// TestAdmissionIsByTime: an endpoint takes jobs while its queue would be
// served within MaxQueueWait at its pace: thousands for a fast endpoint,
// a handful for a slow one.
func TestAdmissionIsByTime(t *testing.T) {
	s := flowStage(5 * time.Second)
	now := time.Now()
	for _, tt := range []struct {
		name     string
		interval time.Duration // between completions
		admitted int
	}{
		{"fast", 200 * time.Microsecond, 25000},
		{"slow", 500 * time.Millisecond, 10},
	} {
		e := flowEndpoint()
		e.interval = tt.interval
		n := 0
		for ; n < 100000 && s.admit(e, flowJob("r"), 50000, now) == ""; n++ {
			e.queued++
		}
		if n != tt.admitted {
			t.Errorf("%s endpoint (%v per job): %d admitted, want %d", tt.name, tt.interval, n, tt.admitted)
		}
		if why := s.admit(e, flowJob("r"), 50000, now); why != whyBusy {
			t.Errorf("%s endpoint: the next is refused for %q, want %q", tt.name, why, whyBusy)
		}
	}
}

// TestAnEndpointAloneWaitsInMemory: an endpoint that answers and has the
// sender to itself is not put off for time (fetching waits instead); one
// that answers slowly is, alone or not.
func TestAnEndpointAloneWaitsInMemory(t *testing.T) {
	s := flowStage(5 * time.Second)
	now := time.Now()
	e := flowEndpoint()
	e.interval, e.latency, e.queued = 10*time.Millisecond, 40*time.Millisecond, 5000 // 50 s of work
	if why := s.admit(e, flowJob("r"), s.cfg.MaxInFlight, now); why != "" {
		t.Fatalf("answering endpoint alone: %q, want admitted", why)
	}
	if why := s.admit(e, flowJob("r"), s.cfg.MaxInFlight/2, now); why != whyBusy {
		t.Fatalf("answering endpoint beside another: %q, want %q", why, whyBusy)
	}
	e.latency = 2 * time.Second
	if why := s.admit(e, flowJob("r"), s.cfg.MaxInFlight, now); why != whyBusy {
		t.Fatalf("endpoint answering in 2 s alone: %q, want %q", why, whyBusy)
	}
}

// TestAStalledEndpointIsSeenBeforeItAnswers: requests in flight without an
// answer count as the endpoint's pace, so a dead slow endpoint stops
// taking jobs before the first of them times out.
func TestAStalledEndpointIsSeenBeforeItAnswers(t *testing.T) {
	s := flowStage(5 * time.Second)
	e := flowEndpoint()
	now := time.Now()
	e.inflight, e.progress, e.queued = 4, now.Add(-2*time.Second), 10
	if why := s.admit(e, flowJob("r"), 10000, now); why != whyBusy {
		t.Fatalf("a job for an endpoint that has not answered for 2 s with 10 queued: %q, want %q", why, whyBusy)
	}
}

// TestAnEndpointKeepsToItsShare: beside other endpoints, one holds at most
// its share of MaxInFlight however fast it is.
func TestAnEndpointKeepsToItsShare(t *testing.T) {
	s := flowStage(5 * time.Second)
	e := flowEndpoint()
	e.interval = time.Microsecond
	e.queued, e.inflight = 4990, 10
	if why := s.admit(e, flowJob("r"), 5000, time.Now()); why != whyShare {
		t.Fatalf("at its share: %q, want %q", why, whyShare)
	}
	if why := s.admit(e, flowJob("r"), 10000, time.Now()); why != "" {
		t.Fatalf("under its share: %q, want admitted", why)
	}
}

// TestPutOffJobsKeepTheirResourcesOrder: once a resource has a job put
// off, its later jobs are put off behind it, due after it; the job back
// from its put-off is admitted even over the bound, and after the last is
// back the resource is admitted again.
func TestPutOffJobsKeepTheirResourcesOrder(t *testing.T) {
	s := flowStage(time.Second)
	e := flowEndpoint()
	now := time.Now()
	e.interval = 100 * time.Millisecond
	e.queued = 20 // 2 s of work: busy (beside another endpoint)
	if why := s.admit(e, flowJob("a"), 5000, now); why != whyBusy {
		t.Fatalf("first job: %q, want %q", why, whyBusy)
	}
	first := s.deferFor(e, flowJob("a"), now).due
	e.queued = 0 // the endpoint caught up...
	if why := s.admit(e, flowJob("a"), 10000, now); why != whyOrder {
		t.Fatalf("a later job of the resource: %q, want %q", why, whyOrder)
	}
	second := s.deferFor(e, flowJob("a"), now).due
	if !second.After(first) {
		t.Fatalf("second due %v, not after the first %v", second, first)
	}
	if why := s.admit(e, flowJob("b"), 10000, now); why != "" {
		t.Fatalf("another resource: %q, want admitted", why)
	}
	back := flowJob("a")
	back.job.Deferrals, back.job.Reason = 1, schemas.RetryEndpointBusy
	e.queued = 1000 // ...and fell behind again: what comes back still goes in
	for i := 0; i < 2; i++ {
		if why := s.admit(e, back, 10000, now); why != "" {
			t.Fatalf("job back from its put-off: %q, want admitted", why)
		}
	}
	e.queued = 0
	if why := s.admit(e, flowJob("a"), 10000, now); why != "" {
		t.Fatalf("with nothing of the resource put off: %q, want admitted", why)
	}
}

// TestPutOffJobsComeBackAtTheEndpointsPace: jobs put off for room are due
// once the queue is predicted to have drained under the bound, then one
// job's time apart.
func TestPutOffJobsComeBackAtTheEndpointsPace(t *testing.T) {
	e := flowEndpoint()
	now := time.Now()
	e.interval = 100 * time.Millisecond
	e.queued = 29 // 3 s of work with itself, 2 s past a bound of 1 s
	first := e.nextRoom(now, time.Second)
	if d := first.Sub(now); d != 2*time.Second {
		t.Fatalf("first put-off due in %v, want 2s", d)
	}
	if d := e.nextRoom(now, time.Second).Sub(first); d != 100*time.Millisecond {
		t.Fatalf("the next is due %v later, want 100ms", d)
	}
}

// TestTrimPutsOffTheLatestJobs: when a slow endpoint's queue is past the
// bound, the latest jobs are taken off, in the order they came, so that the
// rest are served within it; heads of lanes stay.
func TestTrimPutsOffTheLatestJobs(t *testing.T) {
	s := flowStage(time.Second)
	e := flowEndpoint()
	now := time.Now()
	e.interval = 100 * time.Millisecond
	for i := 0; i < 40; i++ {
		w := flowJob(string(rune('a' + i%4)))
		w.queued = now.Add(time.Duration(i) * time.Millisecond)
		w.job.DeliveryID = string(rune('A' + i))
		lane := laneOf(w.job.ResourceID, len(e.lanes))
		e.lanes[lane] = append(e.lanes[lane], w)
		e.queued++
	}
	off := s.trim(e, now)
	if e.queued != 9 || len(off) != 31 {
		t.Fatalf("%d left, %d put off; want 9 left (under 1 s at 100 ms each) and 31 put off", e.queued, len(off))
	}
	for i := 1; i < len(off); i++ {
		if !off[i].w.queued.After(off[i-1].w.queued) || !off[i].due.After(off[i-1].due) {
			t.Fatalf("put-off %d (queued %v, due %v) is not after %d (queued %v, due %v)",
				i, off[i].w.queued, off[i].due, i-1, off[i-1].w.queued, off[i-1].due)
		}
	}
}

// TestAResourcesPutOffsNeverWaitOnALowerTier: a later put-off of a
// resource is due after the earlier ones and waits on the same tier as
// they do or a higher one, so that a short wait on a lower tier cannot
// bring it back before an earlier job still queued on a higher tier.
func TestAResourcesPutOffsNeverWaitOnALowerTier(t *testing.T) {
	sched := MustSchedule("1s,10s,1m")
	e := flowEndpoint()
	start := time.Now()
	first := e.deferUntil("a", start.Add(8*time.Second), start, start, sched)
	if first.tier != 1 {
		t.Fatalf("an 8 s wait on tier %d, want 1 (10s)", first.tier)
	}
	later := start.Add(7500 * time.Millisecond) // its wait is now 0.55 s: tier 0 would fit it
	second := e.deferUntil("a", later.Add(100*time.Millisecond), later, later, sched)
	if !second.due.After(first.due) || second.tier != 1 {
		t.Fatalf("second put-off due %v on tier %d; want after %v, on tier 1", second.due.Sub(start), second.tier, first.due.Sub(start))
	}
	third := e.deferUntil("a", later.Add(30*time.Second), later, later, sched)
	if third.tier != 2 {
		t.Fatalf("a 30 s wait on tier %d, want 2 (1m)", third.tier)
	}
	if other := e.deferUntil("b", later.Add(time.Second), later, later, sched); other.tier != 0 {
		t.Fatalf("another resource's 1 s wait on tier %d, want 0", other.tier)
	}
}

// TestAJobQueuedBehindAPutOffWaitsForIt: a job queued behind a job of its
// resource that was put off from the head of the lane (its circuit was
// open) is put off behind it, not sent before it; a job queued before the
// put-off jobs (which trim took from the end of the queue) and a job back
// from its own put-off are sent.
func TestAJobQueuedBehindAPutOffWaitsForIt(t *testing.T) {
	s := flowStage(time.Second)
	e := flowEndpoint()
	t0 := time.Now()
	head := flowJob("r")
	head.queued = t0
	e.deferUntil("r", t0.Add(time.Second), t0, head.queued, s.cfg.Schedule) // the head, put off
	later := flowJob("r")
	later.queued = t0.Add(time.Millisecond)
	if _, behind := s.behindPutOff(e, later, t0); !behind {
		t.Fatal("a job queued after the put-off head was not held behind it")
	}
	earlier := flowJob("r")
	earlier.queued = t0.Add(-time.Millisecond)
	if _, behind := s.behindPutOff(e, earlier, t0); behind {
		t.Fatal("a job queued before every put-off job was held behind them")
	}
	back := flowJob("r")
	back.queued, back.back = t0.Add(2*time.Millisecond), true
	if _, behind := s.behindPutOff(e, back, t0); behind {
		t.Fatal("a job back from its put-off was held")
	}
}
