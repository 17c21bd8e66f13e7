package sender

import (
	"container/heap"
	"math"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/hookline/hookline/schemas"
)

// item is one job the sender holds: queued in its endpoint's memory,
// held there a little, or in flight. ref is the driver's handle of its
// input (the Stage's work, the simulation's input): the core never calls
// it, it only names it in effects.
type item struct {
	job    schemas.Job
	ref    any
	src    srcPart
	offset int64
	size   int64
	// written is when its record was written (the Kafka timestamp): a job
	// written before its webhook was last disabled is failed, not sent.
	written time.Time
	// seq is its place in its endpoint's queue, in arrival order (kept
	// across put-offs by this session): one lane's jobs go out by seq.
	seq uint64
	// pos is its place among its endpoint's arrivals (how far back it is,
	// beside front).
	pos  uint64
	lane string
	e    *endpoint

	state itemState
	since time.Time // when it entered its state (queued: its queue wait)
	// until is when a held item is looked at again: its due time, or the
	// end of its order hold.
	until time.Time
	// forOrder marks an item held behind an earlier job of its lane that
	// is away (put off); otherwise a held item waits for its due time.
	forOrder bool
	hidx     int // in endpoint.held while held

	// fl is set when it is sent (its request, until it is released);
	// revoked, whether a rebalance took its partition away meanwhile.
	fl      *flight
	revoked bool
}

// flight is what an item in flight holds beside its job: the breaker's
// verdict function, the webhook it was sent to and when. Apart from the
// item, so that the tens of thousands queued in a burst do not each carry
// a webhook (an item was 872 bytes with it, 480 without).
type flight struct {
	verdict func(Verdict)
	wh      schemas.Webhook
	started time.Time
}

type itemState int

const (
	stateNew itemState = iota // arrived, not placed yet
	stateQueued
	stateHeld
	stateInFlight
	stateGone // finished, put off, failed or abandoned: no longer the core's
)

// srcPart is the partition an item was read from.
type srcPart struct {
	topic     string
	partition int
}

// endpoint is one webhook's queue and flow control, all in memory. Jobs
// wait in lanes, one per lane key (a resource, or a delivery without one),
// so that a resource's jobs go out one after another, in order; lanes
// whose head may go wait in ready, oldest head first. Requests in flight
// stay under an adaptive concurrency limit, the webhook's rate limit and
// its breaker. What does not fit in memory is put off to
// hookline.overflow, and an earlier job of a lane put off makes the later
// ones wait behind it (out, held) for at most the order hold.
type endpoint struct {
	id   string
	part int // the partition number its jobs come from
	// shared is set while it holds jobs once another endpoint held jobs
	// of its partition beside them (core.keepsAll).
	shared bool

	lanes map[string]*lane
	ready laneHeap
	// held are items waiting in memory: for their due time, or behind an
	// earlier job of their lane that is away; the earliest until first.
	// heldFor has, per lane, those held for order, in seq order.
	held    heldHeap
	heldFor map[string][]*item
	// out are, per lane, the seqs of this session's items put off and not
	// back, in seq order, with when each is expected back.
	out  map[string][]outRec
	nOut int
	// roomOut counts those put off because it is behind: while any is out,
	// it is behind still (its backlog is on hookline.overflow).
	roomOut int

	// arrivals counts the jobs that came to it (pos), front is the pos of
	// the last one sent: a job is about pos - front behind.
	arrivals, front uint64

	queued   int // in lanes, not in flight
	inflight int
	flying   []*item // in flight
	bytes    int64   // of its items the core holds
	flyBytes int64   // of those in flight

	conc       *concurrency
	limiter    *rate.Limiter
	rate       float64
	tokenAt    time.Time // the rate limiter has no token before then
	pauseUntil time.Time // a 429's Retry-After holds every lane until then
	pausedAt   time.Time // when a 429 last asked for a pause
	probing    bool      // half-open, its probe out: no other request
	// probeFor is the end of the open period for which a job put off is
	// due back as the probe (circuitDue).
	probeFor time.Time
	// backlogSince is when jobs last started to wait in the queue (zero:
	// none waits). An endpoint that stays behind for slowAfter is judged
	// by the rate it keeps up (capacity).
	backlogSince time.Time
	meter        meter
	latencies    latencyRing
	checked      time.Time // the webhook's state was last looked at
	last         schemas.Webhook

	wake time.Time // when the core looks at it again; zero for never
	// more is set when a look put off putOffBurst jobs and left more to
	// put off: the core looks again at once, its lock let go between.
	more    bool
	heapIdx int  // in core.wakes, -1 when not there
	shown   bool // it has queue metrics series
}

// lane is one lane key's jobs in an endpoint's queue, in seq order; busy
// while its head is in flight.
type lane struct {
	key  string
	q    []*item
	busy bool
	idx  int // in endpoint.ready, -1 when not there
}

type outRec struct {
	seq  uint64
	back time.Time
	room bool // put off because the endpoint is behind (whyBusy)
}

func newEndpoint(id string, part, initial, maxConc int) *endpoint {
	return &endpoint{id: id, part: part, lanes: map[string]*lane{}, out: map[string][]outRec{}, heldFor: map[string][]*item{},
		conc: newConcurrency(initial, maxConc), heapIdx: -1}
}

// waiting is the bytes of its items held and not in flight.
func (e *endpoint) waiting() int64 { return e.bytes - e.flyBytes }

// slots is how many requests the endpoint may have in flight now.
func (e *endpoint) slots() int { return e.conc.current() }

// idle reports whether the endpoint holds nothing: it can be forgotten.
func (e *endpoint) idle() bool {
	return len(e.lanes) == 0 && len(e.held) == 0 && e.inflight == 0 && e.nOut == 0
}

// enqueue puts an item in its lane, by seq.
func (e *endpoint) enqueue(it *item, now time.Time) {
	ln := e.lanes[it.lane]
	if ln == nil {
		ln = &lane{key: it.lane, idx: -1}
		e.lanes[it.lane] = ln
	}
	i, _ := slices.BinarySearchFunc(ln.q, it, cmpItems)
	ln.q = slices.Insert(ln.q, i, it)
	it.state, it.since = stateQueued, now
	e.setQueued(e.queued+1, now)
	switch {
	case ln.busy:
	case ln.idx < 0:
		heap.Push(&e.ready, ln)
	case i == 0:
		heap.Fix(&e.ready, ln.idx)
	}
}

// popHead takes the head of a ready lane to send it.
func (e *endpoint) popHead(ln *lane, now time.Time) *item {
	heap.Remove(&e.ready, ln.idx)
	it := ln.q[0]
	ln.q[0] = nil
	ln.q = ln.q[1:]
	ln.busy = true
	e.setQueued(e.queued-1, now)
	return it
}

// remove takes a queued item out of its lane (put off, failed, dropped).
func (e *endpoint) remove(it *item, now time.Time) {
	ln := e.lanes[it.lane]
	i := slices.Index(ln.q, it)
	ln.q = slices.Delete(ln.q, i, i+1)
	e.setQueued(e.queued-1, now)
	switch {
	case ln.idx >= 0 && len(ln.q) == 0:
		heap.Remove(&e.ready, ln.idx)
	case ln.idx >= 0 && i == 0:
		heap.Fix(&e.ready, ln.idx)
	}
	e.dropLaneIfEmpty(ln)
}

// laneDone frees a lane whose head finished.
func (e *endpoint) laneDone(key string) {
	ln := e.lanes[key]
	ln.busy = false
	if len(ln.q) > 0 {
		heap.Push(&e.ready, ln)
		return
	}
	e.dropLaneIfEmpty(ln)
}

func (e *endpoint) dropLaneIfEmpty(ln *lane) {
	if len(ln.q) == 0 && !ln.busy {
		delete(e.lanes, ln.key)
	}
}

// setQueued changes the count of queued items and keeps the backlog's
// start and the throughput meter in step.
func (e *endpoint) setQueued(n int, now time.Time) {
	e.meter.advance(now, n > 0)
	switch {
	case e.queued == 0 && n > 0:
		e.backlogSince = now
	case n == 0:
		e.backlogSince = time.Time{}
	}
	e.queued = n
}

// queuedItems lists every queued item in seq order.
func (e *endpoint) queuedItems() []*item {
	var out []*item
	for _, ln := range e.lanes {
		out = append(out, ln.q...)
	}
	slices.SortFunc(out, cmpItems)
	return out
}

// oldestQueued is when its longest-queued item was queued; zero when
// none is.
func (e *endpoint) oldestQueued() time.Time {
	var oldest time.Time
	for _, ln := range e.lanes {
		for _, it := range ln.q {
			if oldest.IsZero() || it.since.Before(oldest) {
				oldest = it.since
			}
		}
	}
	return oldest
}

// cmpItems orders items by seq, and two copies of one job that share it
// (a put-off read again after a rebalance) by where they were read, so
// that every order the core makes is the same in every run.
func cmpItems(a, b *item) int {
	if c := cmpSeq(a.seq, b.seq); c != 0 {
		return c
	}
	if c := strings.Compare(a.src.topic, b.src.topic); c != 0 {
		return c
	}
	if a.src.partition != b.src.partition {
		return a.src.partition - b.src.partition
	}
	return cmpSeq(uint64(a.offset), uint64(b.offset))
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// hold keeps an item in memory until, for its due time or (forOrder)
// behind an earlier job of its lane.
func (e *endpoint) hold(it *item, until time.Time, forOrder bool, now time.Time) {
	it.state, it.since, it.until, it.forOrder = stateHeld, now, until, forOrder
	heap.Push(&e.held, it)
	if forOrder {
		q := e.heldFor[it.lane]
		i, _ := slices.BinarySearchFunc(q, it, cmpItems)
		e.heldFor[it.lane] = slices.Insert(q, i, it)
	}
}

func (e *endpoint) unhold(it *item) {
	if it.hidx < 0 || it.hidx >= len(e.held) || e.held[it.hidx] != it {
		return
	}
	heap.Remove(&e.held, it.hidx)
	if !it.forOrder {
		return
	}
	q := e.heldFor[it.lane]
	i, found := slices.BinarySearchFunc(q, it, cmpItems)
	if !found || q[i] != it {
		i = slices.Index(q, it)
	}
	if i >= 0 {
		q = slices.Delete(q, i, i+1)
	}
	if len(q) == 0 {
		delete(e.heldFor, it.lane)
	} else {
		e.heldFor[it.lane] = q
	}
}

// heldUntil is the earliest until of its held items; zero when none.
func (e *endpoint) heldUntil() time.Time {
	if len(e.held) == 0 {
		return time.Time{}
	}
	return e.held[0].until
}

// heldItems is its held items in seq order.
func (e *endpoint) heldItems() []*item {
	out := slices.Clone([]*item(e.held))
	slices.SortFunc(out, cmpItems)
	return out
}

// heldHeap orders held items by until, then as cmpItems.
type heldHeap = placedHeap[*item]

func (it *item) before(o *item) bool {
	if !it.until.Equal(o.until) {
		return it.until.Before(o.until)
	}
	return cmpItems(it, o) < 0
}
func (it *item) place() *int { return &it.hidx }

// tailHeap orders lanes by their tail, the latest job (by seq) first:
// the tails a queue over its capacity gives up. By seq, not by when it
// was queued: a job back from a put-off is queued after newer ones, and
// given up before them it would go round again while they go first.
type tailHeap []*lane

func (h tailHeap) Len() int { return len(h) }
func (h tailHeap) Less(i, j int) bool {
	return cmpItems(h[i].q[len(h[i].q)-1], h[j].q[len(h[j].q)-1]) > 0
}
func (h tailHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *tailHeap) Push(x any)   { *h = append(*h, x.(*lane)) }
func (h *tailHeap) Pop() any {
	old := *h
	ln := old[len(old)-1]
	*h = old[:len(old)-1]
	return ln
}

// tails is a heap of the lanes with jobs queued, by their tail.
func (e *endpoint) tails() *tailHeap {
	h := make(tailHeap, 0, len(e.lanes))
	for _, ln := range e.lanes {
		if len(ln.q) > 0 {
			h = append(h, ln)
		}
	}
	heap.Init(&h)
	return &h
}

// putOut records an item of this session put off (for room, or for its
// circuit): later items of its lane wait behind it until it is back, or
// for at most the order hold.
func (e *endpoint) putOut(lane string, seq uint64, back time.Time, room bool) {
	recs := e.out[lane]
	i, found := slices.BinarySearchFunc(recs, seq, func(r outRec, seq uint64) int { return cmpSeq(r.seq, seq) })
	if found {
		if recs[i].room != room {
			e.roomOut += map[bool]int{true: 1, false: -1}[room]
		}
		recs[i].back, recs[i].room = back, room
		return
	}
	e.out[lane] = slices.Insert(recs, i, outRec{seq: seq, back: back, room: room})
	e.nOut++
	if room {
		e.roomOut++
	}
}

// backIn removes an item's out record; it reports whether there was one.
func (e *endpoint) backIn(lane string, seq uint64) bool {
	recs := e.out[lane]
	i, found := slices.BinarySearchFunc(recs, seq, func(r outRec, seq uint64) int { return cmpSeq(r.seq, seq) })
	if !found {
		return false
	}
	if recs[i].room {
		e.roomOut--
	}
	if recs = slices.Delete(recs, i, i+1); len(recs) == 0 {
		delete(e.out, lane)
	} else {
		e.out[lane] = recs
	}
	e.nOut--
	return true
}

// clearOut forgets every out record.
func (e *endpoint) clearOut() {
	clear(e.out)
	e.nOut, e.roomOut = 0, 0
}

// earlierOut reports whether a job of the lane with a seq before seq is
// away.
func (e *endpoint) earlierOut(lane string, seq uint64) bool {
	recs := e.out[lane]
	return len(recs) > 0 && recs[0].seq < seq
}

// earlierBack is when the last of the lane's jobs before seq that are
// away is due back; zero for none.
func (e *endpoint) earlierBack(lane string, seq uint64) time.Time {
	var back time.Time
	for _, r := range e.out[lane] {
		if r.seq >= seq {
			break
		}
		back = maxTime(back, r.back)
	}
	return back
}

// laterOut reports whether a job of the lane with a seq after seq is
// away.
func (e *endpoint) laterOut(lane string, seq uint64) bool {
	recs := e.out[lane]
	return len(recs) > 0 && recs[len(recs)-1].seq > seq
}

// capacity is how many jobs the endpoint's queue may hold once it has
// been behind for slowAfter: what it sends in wait (less what is left of
// a Retry-After pause) at its pace, and at least one, the next to go. Its
// pace is the most of: the rate it kept while behind, the rate of the last
// second (it is past a pause), and what its max_concurrency sends at its
// median latency (which a pause of a few requests does not move; its
// concurrency limit, not yet grown, or the sender's own CPU starved in a
// burst's first seconds, read it at a tenth of a fast endpoint's pace and
// trimmed its queue to that), unless it asked for pauses (429
// Retry-After) lately; capped by its rate limit. Read high, a job waits
// longer, up to the queue wait (evictStale); read low, the endpoint would
// run out of work while jobs it gave up wait on hookline.overflow: so it
// is read high.
func (e *endpoint) capacity(wait time.Duration, now time.Time) int {
	if e.pauseUntil.After(now) {
		wait -= e.pauseUntil.Sub(now)
	}
	return max(1, int(e.pace(now)*wait.Seconds()))
}

// pace is the requests per second the endpoint is read to send (capacity
// says which reading); 0 before it has shown one.
func (e *endpoint) pace(now time.Time) float64 {
	rate := max(e.meter.rate(), e.meter.lastSecond(now))
	if lat := e.latencies.median(now); lat > 0 && now.Sub(e.pausedAt) > meterTau {
		rate = max(rate, float64(e.conc.max)/lat.Seconds())
	}
	if e.limiter != nil {
		rate = min(rate, e.rate)
	}
	return rate
}

// fastest is the most requests per second the endpoint could send: its
// webhook's max_concurrency at its median latency, capped by its rate
// limit; 0 before a latency is known.
func (e *endpoint) fastest(now time.Time) float64 {
	lat := e.latencies.median(now)
	if lat <= 0 {
		return 0
	}
	rate := float64(e.conc.max) / lat.Seconds()
	if e.limiter != nil {
		rate = min(rate, e.rate)
	}
	return rate
}

// rateLimiter returns the endpoint's limiter for the webhook's current
// rate_limit, or nil for none.
func (e *endpoint) rateLimiter(wh schemas.Webhook) *rate.Limiter {
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

// meterTau is the time constant of an endpoint's throughput: what it sent
// while behind over about the last ten seconds of being behind.
const meterTau = 10 * time.Second

// meter measures an endpoint's throughput while jobs wait in its queue
// (completions per second of being behind), so that a pause costs the
// measure only its share of the last ten seconds, and an endpoint that
// is never behind is never judged.
type meter struct {
	busy, done float64 // exponentially decayed seconds behind and completions
	last       time.Time
	on         bool
	// Completions in the whole second sec, and in the one before.
	sec       time.Time
	cur, prev int
}

// advance accounts the time since the last call, behind or not.
func (m *meter) advance(now time.Time, behind bool) {
	if m.on && now.After(m.last) {
		f := math.Exp(-float64(now.Sub(m.last)) / float64(meterTau))
		m.busy = m.busy*f + meterTau.Seconds()*(1-f)
		m.done *= f
	}
	m.on, m.last = behind, now
}

// completed counts a request that finished now, if jobs waited.
func (m *meter) completed(now time.Time) {
	m.advance(now, m.on)
	if m.on {
		m.done++
	}
	if sec := now.Truncate(time.Second); !sec.Equal(m.sec) {
		m.prev = m.cur
		if !sec.Equal(m.sec.Add(time.Second)) {
			m.prev = 0 // a second or more without a completion
		}
		m.sec, m.cur = sec, 0
	}
	m.cur++
}

// lastSecond is how many requests finished in the last whole second.
func (m *meter) lastSecond(now time.Time) float64 {
	switch sec := now.Truncate(time.Second); {
	case sec.Equal(m.sec):
		return float64(m.prev)
	case sec.Equal(m.sec.Add(time.Second)):
		return float64(m.cur)
	}
	return 0
}

// rate is completions per second behind; 0 before any time behind.
func (m *meter) rate() float64 {
	if m.busy <= 0 {
		return 0
	}
	return m.done / m.busy
}

// latencyRing keeps an endpoint's last latencies: their median is its
// latency, which a pause (a few slow requests among many) does not move.
type latencyRing struct {
	d  [32]time.Duration
	at [32]time.Time
	n  int
}

// latencyWindow is how recent the latencies that make the median are
// (the last three at least).
const latencyWindow = 10 * time.Second

func (r *latencyRing) add(now time.Time, d time.Duration) {
	r.d[r.n%len(r.d)], r.at[r.n%len(r.d)] = d, now
	r.n++
}

// median is of the latencies of the last latencyWindow; 0 before any.
func (r *latencyRing) median(now time.Time) time.Duration {
	var s []time.Duration
	for i := r.n - 1; i >= max(0, r.n-len(r.d)); i-- {
		j := i % len(r.d)
		if len(s) >= 3 && now.Sub(r.at[j]) > latencyWindow {
			break
		}
		s = append(s, r.d[j])
	}
	if len(s) == 0 {
		return 0
	}
	slices.Sort(s)
	return s[len(s)/2]
}

// laneHeap orders ready lanes by when their head was queued: the queue is
// served first in, first out (within a lane, by seq), so that a job waits
// in memory for what is ahead of it there, never for jobs that come later.
type laneHeap = placedHeap[*lane]

func (ln *lane) before(o *lane) bool {
	a, b := ln.q[0], o.q[0]
	if !a.since.Equal(b.since) {
		return a.since.Before(b.since)
	}
	return cmpItems(a, b) < 0
}
func (ln *lane) place() *int { return &ln.idx }

// wakeHeap orders endpoints by when the core looks at them again.
type wakeHeap = placedHeap[*endpoint]

func (e *endpoint) before(o *endpoint) bool {
	if !e.wake.Equal(o.wake) {
		return e.wake.Before(o.wake)
	}
	return e.id < o.id
}
func (e *endpoint) place() *int { return &e.heapIdx }

// placed is an element of a placedHeap: it orders itself before another
// and keeps its index in the heap (-1 when out), so that it can be fixed
// or removed where it is.
type placed[T any] interface {
	before(T) bool
	place() *int
}

// placedHeap is a container/heap of placed elements.
type placedHeap[T placed[T]] []T

func (h placedHeap[T]) Len() int           { return len(h) }
func (h placedHeap[T]) Less(i, j int) bool { return h[i].before(h[j]) }
func (h placedHeap[T]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	*h[i].place(), *h[j].place() = i, j
}
func (h *placedHeap[T]) Push(x any) {
	v := x.(T)
	*v.place() = len(*h)
	*h = append(*h, v)
}
func (h *placedHeap[T]) Pop() any {
	old := *h
	v := old[len(old)-1]
	var zero T
	old[len(old)-1] = zero
	*h = old[:len(old)-1]
	*v.place() = -1
	return v
}

// returning reports whether the item is back from a put-off of this
// session (it kept its place).
func (it *item) returning(session string) bool {
	return it.job.Queue != nil && it.job.Queue.Session == session
}
