package sender

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hookline/hookline/schemas"
)

// Scripted worlds of the simulation: each plays one of the failures the
// old sender had (issue "The sender, proven") on the real core, with every
// invariant of the drawn worlds checked too, and asserts its own figure.

// scripted runs a scripted world in a synctest bubble: setup adds its
// endpoints and traffic, check reads the outcome.
func scripted(t *testing.T, setup func(w *simWorld), check func(t *testing.T, w *simWorld)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		w := newEmptyWorld(t, 1)
		setup(w)
		w.script()
		w.play("go test -run '" + t.Name() + "$' ./pipeline/sender/")
		if !t.Failed() {
			check(t, w)
		}
	})
}

// deferred is how many jobs the run's (last) sender put off, by reason.
func (w *simWorld) deferred(reason string) float64 {
	return testutil.ToFloat64(w.proc.core.metrics.deferred.WithLabelValues(reason))
}

// TestSimAPauseCostsAFastEndpointOnlyThePause: a fast endpoint that stops
// answering for 1.5 s every 10 s, beside a healthy, a slow (5 s) and a
// dead one, 100 events/s each: none of its jobs is put off, and each goes
// out within the silence it met and a second. (Before: fewer than half of
// its events arrived within 50 s, the latest 41 s late.)
func TestSimAPauseCostsAFastEndpointOnlyThePause(t *testing.T) {
	scripted(t, func(w *simWorld) {
		w.healAt = 40 * time.Second
		w.endpoint("pausing", kindPausing, 10*time.Millisecond, nil).pauseAt = 3 * time.Second
		w.endpoint("healthy", kindHealthy, 10*time.Millisecond, nil)
		w.endpoint("slow", kindSlow, 5*time.Second, nil)
		w.endpoint("dead", kindDead, 0, nil)
		for _, id := range []string{"pausing", "healthy", "slow", "dead"} {
			w.steady(id, 0, 30*time.Second, 100, 50)
		}
	}, func(t *testing.T, w *simWorld) {
		if n := w.deferred(whyBusy) + w.deferred(whyMemory); n == 0 {
			t.Error("nothing was put off for room: the slow and dead endpoints did not load the sender")
		}
		worst := time.Duration(0)
		for id, first := range w.firstRequests("pausing") {
			late := first.Sub(w.jobs[id].produced)
			if in := w.jobs[id].produced.Sub(w.start) % (10 * time.Second); in >= 3*time.Second && in < 4500*time.Millisecond {
				late -= 4500*time.Millisecond - in // it met the silence
			}
			worst = max(worst, late)
		}
		if worst > time.Second {
			t.Errorf("a job of the pausing endpoint went out %s after it was produced (beyond the silence it met), want within a second", worst)
		}
		for _, id := range w.jobOrder {
			if a, _ := w.final(id); w.jobs[id].webhook == "pausing" && a.N != 1 {
				t.Errorf("%s to the pausing endpoint: %d attempts, want 1", id, a.N)
				break
			}
		}
	})
}

// TestSimNothingFailsUnsentBehindABusyEndpoint: an endpoint that answers
// in 1.5 s one at a time, beside a fast one, 20 events/s for 60 s, with
// retries 1s,2s and a 1 s queue wait: every delivery succeeds, none fails
// without a request. (Before: jobs put off for room longer than the retry
// schedule failed unsent, "endpoint_busy for 27s".)
func TestSimNothingFailsUnsentBehindABusyEndpoint(t *testing.T) {
	scripted(t, func(w *simWorld) {
		w.schedule, w.queueWait, w.healAt = MustSchedule("1s,2s"), time.Second, 70*time.Second
		w.endpoint("busy", kindFast, 1500*time.Millisecond, func(wh *schemas.Webhook) { wh.MaxConcurrency = 1 })
		w.endpoint("fast", kindFast, 5*time.Millisecond, nil)
		w.steady("busy", 0, 60*time.Second, 20, 20)
		w.steady("fast", 0, 60*time.Second, 20, 20)
	}, func(t *testing.T, w *simWorld) {
		for _, id := range w.jobOrder {
			if a, _ := w.final(id); a.State != schemas.StateSucceeded {
				t.Fatalf("%s to %s: %s %q, want succeeded", id, w.jobs[id].webhook, a.State, a.Error)
			}
		}
		if w.deferred(whyBusy) == 0 {
			t.Error("no job of the busy endpoint was put off: the test proves less than it says")
		}
	})
}

// TestSimAReplayOfOldEventsIsDelivered: a replay of 100 events 42 s old to
// an endpoint that answers in 1.5 s, with retries 15s,30s: every event is
// delivered; age never fails a job. (Before: 2 failed unsent.)
func TestSimAReplayOfOldEventsIsDelivered(t *testing.T) {
	scripted(t, func(w *simWorld) {
		w.schedule, w.healAt = MustSchedule("15s,30s"), 10*time.Minute
		w.endpoint("slow", kindFast, 1500*time.Millisecond, nil)
		w.after(time.Second, "replay", func() {
			for i := range 100 {
				w.produce("slow", fmt.Sprintf("old%d", i), false, false, "", w.now.Add(-42*time.Second))
			}
		})
	}, func(t *testing.T, w *simWorld) {
		for _, id := range w.jobOrder {
			if a, _ := w.final(id); a.State != schemas.StateSucceeded {
				t.Fatalf("%s: %s %q, want succeeded", id, a.State, a.Error)
			}
		}
	})
}

// TestSimDisablingAWebhookFailsWhatWaitsAndSendsNoMore: jobs of a dead
// endpoint wait for retries and for its circuit; its webhook is disabled:
// each ends failed webhook_disabled, without a request after the disable,
// and none stays retrying. The same for a deleted webhook. (Before: they
// were dropped, and stayed retrying for ever.)
func TestSimDisablingAWebhookFailsWhatWaitsAndSendsNoMore(t *testing.T) {
	scripted(t, func(w *simWorld) {
		w.healAt = 2 * time.Minute
		w.endpoint("disabled", kindDead, 0, nil)
		w.endpoint("deleted", kindDead, 0, nil)
		w.steady("disabled", 0, 5*time.Second, 10, 5)
		w.steady("deleted", 0, 5*time.Second, 10, 5)
		w.after(8*time.Second, "disable", func() { w.setEnabled("disabled", false) })
		w.after(8*time.Second, "delete", func() {
			delete(w.hooks.m, "deleted")
			w.deletedAt["deleted"] = w.now
		})
	}, func(t *testing.T, w *simWorld) {
		off := w.start.Add(8 * time.Second)
		for _, id := range w.jobOrder {
			j := w.jobs[id]
			want := map[string]string{"disabled": unsentDisabled, "deleted": unsentDeleted}[j.webhook]
			if a, _ := w.final(id); a.State != schemas.StateFailed || a.Error != want {
				t.Fatalf("%s to %s: %s %q, want failed %q", id, j.webhook, a.State, a.Error, want)
			}
			for _, r := range w.received[id] {
				if r.at.After(off) {
					t.Fatalf("%s was sent at %s, after its webhook was %s", id, w.at(r.at), j.webhook)
				}
			}
		}
	})
}

// TestSimRedeliveriesGoOutSideBySide: 300 redeliveries (no resource of
// their own) to an endpoint that answers in 50 ms go out several at a
// time, like fresh events do. (Before: they shared one lane, one at a time,
// 28.5 s.)
func TestSimRedeliveriesGoOutSideBySide(t *testing.T) {
	scripted(t, func(w *simWorld) {
		w.healAt = 20 * time.Second
		w.endpoint("w", kindFast, 50*time.Millisecond, nil)
		w.after(time.Second, "redeliver", func() {
			for range 300 {
				w.produce("w", "", false, false, "d-earlier", time.Time{})
			}
		})
	}, func(t *testing.T, w *simWorld) {
		if peak := w.eps["w"].peak; peak < 4 {
			t.Errorf("at most %d redeliveries in flight at once, want at least the starting limit 4", peak)
		}
		last := time.Time{}
		for _, at := range w.firstRequests("w") {
			last = maxTime(last, at)
		}
		if took := last.Sub(w.start.Add(time.Second)); took > 5*time.Second {
			t.Errorf("300 redeliveries took %s, want under 5 s (15 s one at a time)", took)
		}
	})
}

// TestSimASlowEndpointsBacklogNeverHoldsAnotherBack: 2,000 jobs at once
// to an endpoint that answers in 800 ms, then a healthy endpoint's steady
// traffic on the same partition: the healthy one's jobs go out at once
// (the invariant), and the slow one's backlog waits on hookline.overflow,
// not in memory, where it would hold back the healthy one's commit.
// (Before: alone, it could hold all of --max-in-flight and the healthy
// jobs behind it waited for fetching.)
func TestSimASlowEndpointsBacklogNeverHoldsAnotherBack(t *testing.T) {
	slowBacklogBeside(t, "other", 100, true) // "slow" and "other": partition 1 of 3
}

// TestSimASlowEndpointsBacklogAloneOnItsPartitionWaitsInMemory: the same
// with the healthy endpoint on another partition: the slow one's backlog
// holds no one back, and waits in memory, in order, without a put-off.
// (Each job of its own resource: a lane deeper than its latency sends in
// the queue wait is put off, alone or not.)
func TestSimASlowEndpointsBacklogAloneOnItsPartitionWaitsInMemory(t *testing.T) {
	slowBacklogBeside(t, "healthy", 2000, false) // "healthy": partition 2 of 3
}

func slowBacklogBeside(t *testing.T, healthy string, resources int, putOff bool) {
	scripted(t, func(w *simWorld) {
		w.healAt = 60 * time.Second
		w.endpoint("slow", kindFast, 800*time.Millisecond, nil)
		w.endpoint(healthy, kindHealthy, 10*time.Millisecond, nil)
		w.after(0, "burst", func() {
			for i := range 2000 {
				w.produce("slow", fmt.Sprintf("b%d", i%resources), false, false, "", time.Time{})
			}
		})
		w.steady(healthy, 100*time.Millisecond, 20*time.Second, 50, 40)
	}, func(t *testing.T, w *simWorld) {
		if n := w.deferred(whyBusy); putOff && n == 0 {
			t.Error("nothing of the slow endpoint was put off: its backlog waited in memory")
		} else if !putOff && n != 0 {
			t.Errorf("%.0f put-offs of the slow endpoint alone on its partition, want none", n)
		}
	})
}

// TestSimAFastEndpointsBacklogOverMemoryNeverHoldsAnotherBack: 4,000 jobs
// at once to an endpoint that answers in 15 ms one at a time, more than
// the sender's memory (1 MiB) holds, then a healthy endpoint's steady
// traffic on the same partitions, with the fetch waiting while memory is
// over (Stage.WaitForRoom). Memory stays about one job over the bound and
// each request the fast endpoint finishes lets the fetch take one more
// job: any rule that holds the fetch rather than putting off for memory
// (a grace before put-offs restarted at every dip) fed the healthy
// endpoint's jobs at the fast one's pace, 1.5 s late.
func TestSimAFastEndpointsBacklogOverMemoryNeverHoldsAnotherBack(t *testing.T) {
	scripted(t, func(w *simWorld) {
		w.healAt = 60 * time.Second
		w.maxBytes = 1 << 20
		w.endpoint("fast", kindFast, 15*time.Millisecond, func(wh *schemas.Webhook) { wh.MaxConcurrency = 1 })
		w.endpoint("healthy", kindHealthy, 10*time.Millisecond, nil)
		w.after(0, "burst", func() {
			for i := range 4000 {
				w.produce("fast", fmt.Sprintf("f%d", i%500), false, false, "", time.Time{})
			}
		})
		w.steady("healthy", 100*time.Millisecond, 20*time.Second, 50, 40)
	}, func(t *testing.T, w *simWorld) {
		if w.deferred(whyMemory) == 0 {
			t.Error("nothing was put off for memory: the fast endpoint's backlog never filled it, the case tests nothing")
		}
	})
}

// TestSimADeepBacklogToAFastEndpoint: 40,000 jobs at once over 1,000
// resources to an endpoint that answers in 2 ms, 16 at a time (8,000/s),
// slow (20 ms) for its first 3 s as a sender busy taking a burst reads it:
// a replay of a big range. Its backlog waits on the delay topics, each job
// put off about once: 22,875 put-offs, the last job first sent at 8.2 s.
// (Before: 67,437 and 13.8 s. A job back early found its lane's earlier
// job still away, given up after it, or its room taken by newer jobs or
// by jobs let back at once, and went round again.)
func TestSimADeepBacklogToAFastEndpoint(t *testing.T) {
	const jobs = 40000
	scripted(t, func(w *simWorld) {
		w.healAt = 5 * time.Minute
		fast := w.endpoint("fast", kindFast, 20*time.Millisecond, func(wh *schemas.Webhook) { wh.MaxConcurrency = 16 })
		w.after(0, "burst", func() {
			for i := range jobs {
				w.produce("fast", fmt.Sprintf("r%d", i%1000), false, false, "", time.Time{})
			}
		})
		w.after(3*time.Second, "faster", func() { fast.latency = 2 * time.Millisecond })
	}, func(t *testing.T, w *simWorld) {
		last := time.Time{}
		for _, at := range w.firstRequests("fast") {
			last = maxTime(last, at)
		}
		putOff := w.deferred(whyBusy) + w.deferred(whyMemory)
		t.Logf("last first request at %s; put off %.0f times (busy %.0f, memory %.0f)", w.at(last), putOff, w.deferred(whyBusy), w.deferred(whyMemory))
		if putOff == 0 {
			t.Error("nothing was put off: the backlog fit in memory, the case tests nothing")
		}
		if putOff > 1.2*jobs {
			t.Errorf("%.0f put-offs for %d jobs: jobs go round", putOff, jobs)
		}
	})
}

// TestSimACrashSendsAgainAFewSecondsOfAnEndpointAlone: an endpoint alone
// on its partition keeps a backlog of 3,000 jobs in memory, uncommitted
// (one resource 600 jobs deep, two minutes of the endpoint's latency one
// after another, the rest one job each), and the sender crashes 60 s in. The next run reads the whole backlog again but sends
// again only what went out within the pin bound before the crash (the
// duplicates invariant): the deep lane is bounded as for any endpoint, so
// the jobs go out about in the order they came and the commit follows.
// (Without that bound, the deep lane's head held the commit while the
// rest went out, and jobs sent 52 s before the crash went out again.)
func TestSimACrashSendsAgainAFewSecondsOfAnEndpointAlone(t *testing.T) {
	scripted(t, func(w *simWorld) {
		w.healAt = 150 * time.Second
		w.endpoint("slow", kindFast, 200*time.Millisecond, nil)
		w.after(0, "burst", func() {
			for i := range 3000 {
				resource := fmt.Sprintf("r%d", i)
				if i%5 == 0 {
					resource = "deep"
				}
				w.produce("slow", resource, false, false, "", time.Time{})
			}
		})
		w.after(60*time.Second, "crash", w.crash)
	}, func(t *testing.T, w *simWorld) {
		if len(w.disruptions) == 0 {
			t.Fatal("no crash: the test proves nothing")
		}
	})
}
