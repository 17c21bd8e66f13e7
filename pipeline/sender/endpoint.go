package sender

import (
	"context"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/hookline/hookline/pipeline/stage"
	"github.com/hookline/hookline/schemas"
)

// work is one job in flight: its input, and the context (ended at the
// hard stop) and outbox of the run that fetched it.
type work struct {
	job    schemas.Job
	in     *stage.Input
	ctx    context.Context
	out    *stage.Outbox
	queued time.Time // when it entered its endpoint's queue
	// back is set for a job admitted on its return from a put-off: the
	// resource's jobs still put off come after it.
	back bool
}

// Why a job is put off without a request, as hookline_sender_deferred_total
// counts them. Every reason but circuit_open is recorded on the job as
// schemas.RetryEndpointBusy.
const (
	whyCircuit = schemas.RetryCircuitOpen
	whyBusy    = schemas.RetryEndpointBusy // its predicted wait is past MaxQueueWait
	whyShare   = "endpoint_share"          // its endpoint holds its share of MaxInFlight
	whyOrder   = "resource_order"          // an earlier job of its resource is put off
)

// minPutOff is the shortest wait of a job put off for room: long enough
// that two jobs put off one after the other are both read back (and held
// until due) before the first is due, even from two retry topics fetched
// at different times, so they come back in order.
const minPutOff = time.Second

// orderGap separates the due times of two put-off jobs of one resource, so
// that they come back in order even from two retry topics.
const orderGap = 50 * time.Millisecond

// deferralGrace is how long past its due time a put-off job is still
// awaited before its resource's later jobs stop waiting behind it (it may
// have gone to another sender after a rebalance).
const deferralGrace = 30 * time.Second

// endpoint is one webhook's queue and flow control. Jobs wait in lanes: a
// resource's jobs always take the same lane, so they go out in order; a
// lane's goroutine exists only while the lane has work. A lane sends when
// the endpoint has a free slot: the requests in flight stay under an
// adaptive concurrency limit. A job is admitted while the endpoint's
// predicted wait (queued jobs times the time one job takes) stays under
// MaxQueueWait and the endpoint holds less than its share of MaxInFlight;
// otherwise it is put off, due when the endpoint is predicted to have room.
type endpoint struct {
	id string

	mu       sync.Mutex
	lanes    [][]work
	running  []bool
	queued   int
	inflight int
	conc     *concurrency
	// wake is closed (and replaced) when a slot may have come free.
	wake chan struct{}
	// pauseUntil holds every lane after a 429 with Retry-After.
	pauseUntil time.Time
	// latency is a moving average of request durations; interval of the
	// time between two completions while jobs wait (1 / throughput).
	latency, interval time.Duration
	// progress is the last completion, or when a request went out with
	// none in flight: a stalled endpoint is seen before any request ends.
	progress time.Time
	// busyDone says jobs were waiting at the last completion: the time
	// from it to the next is the endpoint's pace, not idle time.
	busyDone bool
	// room is when the next job put off for room is due: put-off jobs come
	// back spaced at the endpoint's pace.
	room time.Time
	// deferred holds, per resource, its jobs put off and not yet back, so
	// that a later job of the resource waits behind them.
	deferred map[string]deferral
	limiter  *rate.Limiter
	rate     float64
	shown    bool // the endpoint has queue metrics series
	// gone is set when the endpoint is forgotten: a job must then go to
	// the endpoint's new queue, or one resource could take two lanes.
	gone bool
}

type deferral struct {
	// arrivals are when the jobs put off and not yet back came to the
	// endpoint (queued, or fetched), in the order they come back.
	arrivals []time.Time
	last     time.Time // due time of the last of them
	tier     int       // retry tier of the last of them
}

// endpoint returns the queue of a webhook, creating it on first use, and
// its share of MaxInFlight: all of it alone, an even part beside others.
func (s *Stage) endpoint(wh schemas.Webhook) (*endpoint, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.endpoints[wh.ID]
	if !ok {
		n := wh.Concurrency()
		e = &endpoint{id: wh.ID, lanes: make([][]work, n), running: make([]bool, n),
			conc: newConcurrency(s.cfg.EndpointConcurrency, n), wake: make(chan struct{}), deferred: map[string]deferral{}}
		s.endpoints[wh.ID] = e
	}
	return e, s.shareLocked()
}

// shareLocked is an endpoint's share of MaxInFlight. Called with s.mu held.
func (s *Stage) shareLocked() int {
	return max(1, s.cfg.MaxInFlight/max(1, len(s.endpoints)))
}

// putOffJob is a job to put off, with when, where and why.
type putOffJob struct {
	w   work
	why string
	putOff
}

// dispatch queues a job for its endpoint, or puts it off when its
// endpoint has no room, so that one slow endpoint never holds the fetch
// loop nor takes every slot.
func (s *Stage) dispatch(w work) {
	wh, ok := s.webhookByID(w.ctx, w.job.WebhookID)
	if !ok || (!wh.Enabled && !w.job.Test) {
		s.metrics.dropped.Inc()
		s.finish(w, nil)
		return
	}
	e, share := s.endpoint(wh)
	e.mu.Lock()
	for e.gone {
		e.mu.Unlock()
		e, share = s.endpoint(wh)
		e.mu.Lock()
	}
	now := time.Now()
	e.conc = e.conc.resize(wh.Concurrency())
	var off []putOffJob
	why := s.admit(e, w, share, now)
	start, lane := false, laneOf(w.job.ResourceID, len(e.lanes))
	if why == "" {
		w.queued = now
		w.back = e.returning(w.job)
		e.lanes[lane] = append(e.lanes[lane], w)
		e.queued++
		start = !e.running[lane]
		e.running[lane] = true
	} else {
		if why == whyBusy {
			off = s.trim(e, now)
		}
		off = append(off, putOffJob{w: w, why: why, putOff: s.deferFor(e, w, now)})
	}
	s.metrics.setQueued(e)
	// Written under the lock, in the order their due times were given: a
	// resource's put-offs must reach their partition in that order.
	for _, p := range off {
		s.putOffUntil(p.w, wh, p.why, p.putOff)
	}
	e.mu.Unlock()
	if start {
		s.lanes.Add(1)
		go func() { defer s.lanes.Done(); s.runLane(e, lane) }()
	}
}

// admit decides whether a job joins its endpoint's queue; it returns why
// not, or "". A job back from a put-off always joins, so that a resource's
// jobs keep their order. Called with e.mu held.
func (s *Stage) admit(e *endpoint, w work, share int, now time.Time) string {
	back := e.returning(w.job)
	if d, ok := e.deferred[w.job.ResourceID]; ok {
		switch {
		case back:
			if d.arrivals = d.arrivals[1:]; len(d.arrivals) > 0 {
				e.deferred[w.job.ResourceID] = d
			} else {
				delete(e.deferred, w.job.ResourceID)
			}
			return ""
		case now.Before(d.last.Add(deferralGrace)):
			return whyOrder
		}
		delete(e.deferred, w.job.ResourceID) // never came back here: stop waiting
	}
	switch {
	case back:
		return ""
	case e.queued+e.inflight >= share:
		return whyShare
	case s.pressing(e, share, now) && e.predictedWait(now) > s.cfg.MaxQueueWait:
		return whyBusy
	}
	return ""
}

// pressing reports whether an endpoint's wait matters to others: it
// shares the sender with other endpoints with work, or it answers slowly
// (in more than stallAfter, or not at all). An endpoint that answers and
// is alone may take every slot: a burst to it waits in memory while
// fetching waits for room, instead of a round trip through a retry topic
// that would help no one. Called with e.mu held.
func (s *Stage) pressing(e *endpoint, share int, now time.Time) bool {
	alone := share >= s.cfg.MaxInFlight
	slow := e.latency > stallAfter || (e.inflight > 0 && now.Sub(e.progress) > stallAfter)
	return !alone || slow
}

// returning reports whether a job comes back from a put-off.
func (e *endpoint) returning(job schemas.Job) bool {
	return job.Deferrals > 0 && (job.Reason == schemas.RetryEndpointBusy || job.Reason == schemas.RetryCircuitOpen)
}

// behindPutOff reports whether a job about to be sent must wait behind a
// job of its resource that came before it and was put off after it was
// queued (its circuit was open): unless it came back from a put-off
// itself, the first of them. If so it records the put-off and returns it.
// Called with e.mu held.
func (s *Stage) behindPutOff(e *endpoint, w work, now time.Time) (putOff, bool) {
	if w.back {
		return putOff{}, false
	}
	d, ok := e.deferred[w.job.ResourceID]
	if !ok || len(d.arrivals) == 0 || !d.arrivals[0].Before(w.queued) || now.After(d.last.Add(deferralGrace)) {
		return putOff{}, false // none put off, or only jobs that came after it
	}
	return e.deferUntil(w.job.ResourceID, now.Add(minPutOff), now, w.queued, s.cfg.Schedule), true
}

// putOffBehind puts off a job that must wait behind its resource's put-off
// jobs (behindPutOff), written under the endpoint's lock like every
// put-off, and reports whether it did.
func (s *Stage) putOffBehind(e *endpoint, w work, wh schemas.Webhook) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, behind := s.behindPutOff(e, w, time.Now())
	if behind {
		s.putOffUntil(w, wh, whyOrder, p)
	}
	return behind
}

// perJob is how long the endpoint takes per job, all lanes together: the
// time between completions while jobs wait, or before there is one, the
// latency over the concurrency limit; at least, once requests in flight
// have gone unanswered for much longer than the latency, that time over
// the limit. Called with e.mu held.
func (e *endpoint) perJob(now time.Time) time.Duration {
	limit := time.Duration(min(e.conc.current(), len(e.lanes)))
	per := e.interval
	if per == 0 {
		per = e.latency / limit
	}
	// Requests in flight and unanswered for much longer than the endpoint
	// takes: it has slowed down (or is new and slow), before any answer
	// says so. A hiccup of a few latencies is not that.
	if stall := now.Sub(e.progress); e.inflight > 0 && stall > max(stallAfter, 4*e.latency) {
		per = max(per, stall/limit)
	}
	return per
}

// predictedWait is how long a job joining the queue now would wait.
// Called with e.mu held.
func (e *endpoint) predictedWait(now time.Time) time.Duration {
	wait := time.Duration(e.queued+1) * e.perJob(now)
	if e.pauseUntil.After(now) {
		wait += e.pauseUntil.Sub(now)
	}
	return wait
}

// nextRoom returns when the next job put off for room is due: once the
// queue is predicted to have drained under the bound (in a second at the
// soonest), then one job's time after the previous one. Called with e.mu
// held.
func (e *endpoint) nextRoom(now time.Time, bound time.Duration) time.Time {
	at := now.Add(max(e.predictedWait(now)-bound, minPutOff))
	if e.room.Before(at) {
		e.room = at
	}
	due := e.room
	e.room = e.room.Add(max(e.perJob(now), time.Millisecond))
	return due
}

// putOff is when a put-off job is due and the retry tier it waits on.
type putOff struct {
	due  time.Time
	tier int
}

// deferUntil returns when a put-off job of a resource is due, at the
// earliest, and on which tier, behind the resource's jobs already put off,
// and records it. A resource's put-off jobs come back in order: a later
// one is due after the earlier ones and never waits on a lower tier than
// they do. On the same tier (and partition: jobs are keyed by webhook) it
// is read after them; on a higher one its wait is longer than the lower
// tier's delay, which bounds how long they can be held up there. Called
// with e.mu held.
func (e *endpoint) deferUntil(resource string, earliest, now, arrived time.Time, sched Schedule) putOff {
	d := e.deferred[resource]
	due := earliest
	if len(d.arrivals) > 0 && due.Before(d.last.Add(orderGap)) {
		due = d.last.Add(orderGap)
	}
	tier := sched.tierFor(max(due.Sub(now), 0))
	if len(d.arrivals) > 0 {
		tier = max(tier, d.tier)
	}
	e.deferred[resource] = deferral{arrivals: append(d.arrivals, arrived), last: due, tier: tier}
	return putOff{due: due, tier: tier}
}

// deferFor returns the put-off of a job for room. Called with e.mu held.
func (s *Stage) deferFor(e *endpoint, w work, now time.Time) putOff {
	arrived := w.queued
	if arrived.IsZero() { // put off as it came: it arrives now
		arrived = now
	}
	return e.deferUntil(w.job.ResourceID, e.nextRoom(now, s.cfg.MaxQueueWait), now, arrived, s.cfg.Schedule)
}

// trim takes jobs off the end of the queue until its predicted wait is
// under the bound again, latest first, and returns them in the order they
// came with their due times. A job whose resource has jobs put off stays:
// it must go before them. Called with e.mu held.
func (s *Stage) trim(e *endpoint, now time.Time) []putOffJob {
	var taken []work
	for e.queued > 0 && e.predictedWait(now) > s.cfg.MaxQueueWait {
		lane := -1
		for i, l := range e.lanes {
			if len(l) < 2 { // a lane's head may be about to go out
				continue
			}
			tail := l[len(l)-1]
			if _, ok := e.deferred[tail.job.ResourceID]; ok {
				continue
			}
			if lane < 0 || tail.queued.After(e.lanes[lane][len(e.lanes[lane])-1].queued) {
				lane = i
			}
		}
		if lane < 0 {
			break
		}
		l := e.lanes[lane]
		taken = append(taken, l[len(l)-1])
		e.lanes[lane] = l[:len(l)-1]
		e.queued--
	}
	slices.Reverse(taken)
	out := make([]putOffJob, len(taken))
	for i, w := range taken {
		out[i] = putOffJob{w: w, why: whyBusy, putOff: s.deferFor(e, w, now)}
	}
	return out
}

// trimBehind puts off the latest jobs of an endpoint that has fallen
// behind since they were admitted (it slowed down, or a burst came before
// its pace was known), so that they wait on a retry topic, not in memory.
func (s *Stage) trimBehind(e *endpoint) {
	s.mu.Lock()
	share := s.shareLocked()
	s.mu.Unlock()
	e.mu.Lock()
	now := time.Now()
	if e.queued == 0 || !s.pressing(e, share, now) || e.predictedWait(now) <= s.cfg.MaxQueueWait {
		e.mu.Unlock()
		return
	}
	off := s.trim(e, now)
	s.metrics.setQueued(e)
	defer e.mu.Unlock() // written under the lock: see dispatch
	if len(off) == 0 {
		return
	}
	wh, ok := s.webhooks.ByID(e.id)
	for _, p := range off {
		if !ok {
			s.metrics.dropped.Inc()
			s.finish(p.w, nil)
			continue
		}
		s.putOffUntil(p.w, wh, p.why, p.putOff)
	}
}

func laneOf(resourceID string, lanes int) int {
	if lanes == 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(resourceID))
	return int(h.Sum32() % uint32(lanes))
}

// runLane sends a lane's jobs one after another until the lane is empty.
// Once shutdown begins it sends no more: the jobs still queued are left
// uncommitted for the next run, so that a slow endpoint does not hold the
// shutdown for the whole drain timeout.
func (s *Stage) runLane(e *endpoint, lane int) {
	for {
		e.mu.Lock()
		if s.stopping.Load() {
			for _, w := range e.lanes[lane] {
				e.queued--
				s.abandon(w)
			}
			e.lanes[lane] = nil
			s.metrics.setQueued(e)
		}
		if len(e.lanes[lane]) == 0 {
			e.running[lane] = false
			e.lanes[lane] = nil
			idle := e.queued == 0 && e.inflight == 0 && !anyTrue(e.running)
			e.mu.Unlock()
			if idle {
				s.forget(e)
			}
			return
		}
		w := e.lanes[lane][0]
		e.mu.Unlock()
		if !s.acquire(e, w) {
			continue // stopping: the loop abandons the lane
		}
		e.mu.Lock()
		e.lanes[lane] = e.lanes[lane][1:]
		e.queued--
		s.metrics.setQueued(e)
		e.mu.Unlock()
		s.metrics.wait.Observe(time.Since(w.queued).Seconds())
		s.process(e, w)
		s.trimBehind(e)
	}
}

// acquire waits for a slot of the endpoint's concurrency limit (and the
// end of a Retry-After pause). It returns false when shutdown begins.
func (s *Stage) acquire(e *endpoint, w work) bool {
	for {
		e.mu.Lock()
		if s.stopping.Load() || w.ctx.Err() != nil {
			e.mu.Unlock()
			return false
		}
		now := time.Now()
		if pause := e.pauseUntil.Sub(now); pause > 0 {
			wake := e.wake
			e.mu.Unlock()
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-wake:
			case <-w.ctx.Done():
			}
			t.Stop()
			continue
		}
		if e.inflight < min(e.conc.current(), len(e.lanes)) {
			if e.inflight == 0 {
				e.progress = now
			}
			e.inflight++
			e.mu.Unlock()
			return true
		}
		wake := e.wake
		e.mu.Unlock()
		select {
		case <-wake:
		case <-w.ctx.Done():
		}
	}
}

// stallAfter is the shortest time without an answer, requests in flight,
// that counts as an endpoint's pace: a cold start or a pause of the
// process is shorter.
const stallAfter = time.Second

// ewmaWeight is the weight of a new sample in the endpoint's averages.
const ewmaWeight = 0.1

// release returns a slot taken by acquire and learns from the request: its
// latency, the pace of completions, and whether it asked for fewer
// requests (drop) or a pause (a 429's Retry-After). A request that was
// not made (sent false) teaches nothing.
func (s *Stage) release(e *endpoint, start time.Time, sent, drop bool, pause time.Duration) {
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if sent {
		rtt := now.Sub(start)
		e.conc.sample(start, rtt, e.inflight, drop)
		e.latency = ewma(e.latency, rtt)
		if e.queued > 0 && e.busyDone {
			e.interval = ewma(e.interval, now.Sub(e.progress))
		}
		e.busyDone = e.queued > 0
		e.progress = now
		if pause > 0 {
			e.pauseUntil = now.Add(min(pause, maxPause))
		}
	}
	e.inflight--
	close(e.wake)
	e.wake = make(chan struct{})
}

// maxPause bounds how long a 429's Retry-After holds an endpoint's lanes;
// the job itself waits as long as the endpoint asks, on a retry topic.
const maxPause = time.Minute

func ewma(avg, sample time.Duration) time.Duration {
	if avg == 0 {
		return sample
	}
	return avg + time.Duration(ewmaWeight*float64(sample-avg))
}

// wakeAll wakes every lane waiting for a slot, at the soft stop.
func (s *Stage) wakeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.endpoints {
		e.mu.Lock()
		close(e.wake)
		e.wake = make(chan struct{})
		e.mu.Unlock()
	}
}

// forget drops an idle endpoint so that memory follows the endpoints with
// work, not every endpoint ever seen. One with jobs put off is kept while
// it waits for them, so that they come back to its queue in order.
func (s *Stage) forget(e *endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	for r, d := range e.deferred {
		if now.After(d.last.Add(deferralGrace)) {
			delete(e.deferred, r)
		}
	}
	if e.queued == 0 && e.inflight == 0 && !anyTrue(e.running) && len(e.deferred) == 0 && s.endpoints[e.id] == e {
		delete(s.endpoints, e.id)
		e.gone = true
		if h := s.health; h != nil {
			h.setLimit(e.id, e.conc.current()) // its last, as flushes no longer see it
		}
	}
}

func anyTrue(bs []bool) bool {
	for _, b := range bs {
		if b {
			return true
		}
	}
	return false
}

// rateLimiter returns the endpoint's limiter for the webhook's current
// rate_limit, or nil for none.
func (e *endpoint) rateLimiter(wh schemas.Webhook) *rate.Limiter {
	e.mu.Lock()
	defer e.mu.Unlock()
	if wh.RateLimit <= 0 {
		e.limiter, e.rate = nil, 0
		return nil
	}
	if e.limiter == nil || e.rate != wh.RateLimit {
		e.limiter = rate.NewLimiter(rate.Limit(wh.RateLimit), max(1, int(wh.RateLimit)))
		e.rate = wh.RateLimit
	}
	return e.limiter
}
