package sender

import (
	"container/heap"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/time/rate"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/schemas"
)

// core is the sender's scheduling: every decision about a job (queue it,
// hold it, put it off, send it, fail it, give it up at a rebalance) is
// made here, one call at a time (the Stage's lock), at the time the
// caller gives, with a seeded source of randomness. It reads no clock,
// starts no goroutine and does no I/O: it returns what is to be done
// (effects), and its driver does it. The driver is the Stage in
// production and the simulation in tests, which replays any run exactly
// from its seed (sim_test.go).
//
// What it keeps is in memory and bounded: per endpoint its queue (at most
// what it sends in --max-queue-wait, once it has shown its pace), the jobs
// it holds briefly, and the seqs of the jobs it put off; all of it bounded
// in bytes by MaxQueueBytes. What goes to Kafka is only jobs that wait:
// a retry after a failure, a wait for an open circuit or a Retry-After,
// each on the delay topic whose exact delay is the longest that fits (and
// on from shorter ones when back early), and an endpoint's overflow, on
// hookline.overflow, back after its fixed delay to look for room again.
type core struct {
	cfg      coreConfig
	rnd      *rand.Rand
	policy   Policy
	hooks    webhookSource
	breakers *Breakers
	health   healthBook
	metrics  *metrics
	log      *slog.Logger

	endpoints map[string]*endpoint
	// live is every item held, by delivery id: a second copy of a job
	// (read again after a rebalance, from its put-off and from its input)
	// is dropped, not sent twice.
	live   map[string]*item
	wakes  wakeHeap
	seq    uint64
	bytes  int64 // of every item held
	flying int64 // of the items in flight among them
	active int   // endpoints holding items
	// onPart counts the endpoints holding items by the partition their
	// jobs come from, and sole is the one that holds items of a partition
	// alone since it had none (keepsAll).
	onPart map[int]int
	sole   map[int]*endpoint
	// revoked counts the items in flight whose partition a rebalance took
	// away: the rebalance waits for them (Stage.Revoke).
	revoked  int
	stopping bool
	effects  []effect
	// trace, if set, hears every decision about an item (the simulation's
	// trace); nil in production.
	trace func(it *item, what string)
}

// note tells trace a decision.
func (c *core) note(it *item, format string, args ...any) {
	if c.trace != nil {
		c.trace(it, fmt.Sprintf(format, args...))
	}
}

// coreConfig is the core's part of StageConfig, with defaults applied.
type coreConfig struct {
	ladder ladder
	// queueWait (--max-queue-wait) is how long an endpoint's queue may
	// take to drain, at the pace it keeps, and hookline.overflow's delay.
	queueWait time.Duration
	// orderHold is the longest a job waits in memory behind an earlier
	// job of its lane that is put off.
	orderHold          time.Duration
	maxBytes           int64
	initialConcurrency int
	schedule           Schedule
	disableAfter       time.Duration
	// session names this run of the core on the jobs it puts off.
	session string
}

// slowAfter is how long an endpoint stays behind (jobs waiting in its
// queue) before its queue is bounded by the pace it keeps: a pause shorter
// than this costs it nothing but the pause.
func (c coreConfig) slowAfter() time.Duration { return c.queueWait / 2 }

// horizon is how much of an endpoint's work its queue keeps once it is
// behind: half the queue wait, so that a job queued waits about that, and
// no more than the queue wait (evictStale) when the endpoint's pace was
// read high.
func (c coreConfig) horizon() time.Duration { return c.queueWait / 2 }

// parkLimit bounds how long past its due time a job put off for room
// waits on hookline.overflow, parked, for its endpoint to have room: the
// queue wait (a backlog that its endpoint sends within that waits there
// once). A put-off not back within the order hold after that is lost
// (check).
func (c coreConfig) parkLimit() time.Duration { return parkLimitOf(c.queueWait) }

// parkLimitOf is the park limit of a queue wait: Stage.due reads it
// without the core.
func parkLimitOf(queueWait time.Duration) time.Duration { return queueWait }

// overflowDelay is hookline.overflow's delay: the queue's horizon, so that
// the jobs an endpoint gives up come back as the queue it kept runs out.
func (c coreConfig) overflowDelay() time.Duration { return c.queueWait / 2 }

// checkEvery is how often an endpoint with jobs looks at its webhook (a
// webhook disabled or deleted while its jobs wait fails them) and at the
// put-offs that never came back.
const checkEvery = time.Second

// maxPause bounds how long a 429's Retry-After holds an endpoint's lanes;
// the job itself waits as long as the endpoint asks, on a retry topic.
const maxPause = time.Minute

// Why a job is put off without a request, as hookline_sender_deferred_total
// counts them.
const (
	whyBusy    = schemas.RetryEndpointBusy // no room in its endpoint's queue: hookline.overflow
	whyMemory  = "memory"                  // no room in the sender's memory (MaxQueueBytes): hookline.overflow
	whyCircuit = schemas.RetryCircuitOpen  // its endpoint's circuit is open
)

// Why a job fails without a request (SPEC §4: only these).
const (
	unsentDisabled = "webhook_disabled"
	unsentDeleted  = "webhook_deleted"
)

// webhookSource is the webhook state the core reads.
type webhookSource interface {
	ByID(id string) (schemas.Webhook, bool)
	// Unreadable reports why the webhook's latest change could not be
	// read: its jobs wait in memory, neither sent with what is stale nor
	// failed as if it were gone.
	Unreadable(id string) (string, bool)
}

// healthBook keeps each endpoint's failing-since clock and last
// concurrency limit (health, on hookline.endpoints).
type healthBook interface {
	note(webhookID string, ok bool, at time.Time) time.Time
	// failingSince is since when every attempt has failed; zero if not.
	failingSince(webhookID string) time.Time
	setLimit(webhookID string, limit int)
}

type effectKind int

const (
	// effSend: make the item's request, then call finished.
	effSend effectKind = iota
	// effEmit: write the outputs; then the item's input is done.
	effEmit
	// effAbandon: leave the item's input uncommitted, to be read again.
	effAbandon
)

type effect struct {
	kind effectKind
	it   *item
	out  outputs
	// disable, on an emission, asks for the webhook to be disabled first
	// for this reason; ifDisabled is written too when that call is the one
	// that disabled it.
	disable    string
	ifDisabled outputs
}

// outputs builds an emission's records. The driver calls it outside the
// core's lock: marshaling a job or an attempt with its payload costs
// microseconds a record, which every arrival and every finished request
// would otherwise wait for. It reads only the values it captured.
type outputs func() []kafka.Message

// build returns the records; none for a nil outputs.
func (o outputs) build() []kafka.Message {
	if o == nil {
		return nil
	}
	return o()
}

// messages is an emission's records, with ifDisabled's when its call to
// disable the webhook was the one that disabled it.
func (f effect) messages(disabled bool) []kafka.Message {
	msgs := f.out.build()
	if disabled {
		msgs = append(msgs, f.ifDisabled.build()...)
	}
	return msgs
}

func newCore(cfg coreConfig, seed uint64, hooks webhookSource, breakers *Breakers, health healthBook, m *metrics, log *slog.Logger) *core {
	c := &core{cfg: cfg, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), hooks: hooks,
		breakers: breakers, health: health, metrics: m, log: log, endpoints: map[string]*endpoint{}, live: map[string]*item{}, onPart: map[int]int{}, sole: map[int]*endpoint{}}
	c.policy = Policy{Schedule: cfg.schedule, Jitter: 0.1, Rand: c.rnd.Float64}
	return c
}

// take returns the effects of the calls since the last take, in order.
func (c *core) take() []effect {
	out := c.effects
	c.effects = nil
	return out
}

// next is when tick is due; zero for never.
func (c *core) next() time.Time {
	if len(c.wakes) == 0 {
		return time.Time{}
	}
	return c.wakes[0].wake
}

// arrive takes a job read from src at offset, written at written (its
// Kafka timestamp), whose record is size bytes; ref is the driver's
// handle.
func (c *core) arrive(now time.Time, job schemas.Job, ref any, src srcPart, offset int64, written time.Time, size int64) {
	it := &item{job: job, ref: ref, src: src, offset: offset, written: written, size: size, lane: job.LaneKey(), since: now}
	c.bytes += size
	if c.stopping {
		c.abandon(it)
		return
	}
	if other, ok := c.live[job.DeliveryID]; ok && other.job.Attempts == job.Attempts {
		// The same attempt of the same delivery is held already: the
		// copy held finishes it (its own input stays uncommitted until
		// then), this one is done.
		c.note(it, "a copy of a job held already")
		c.emit(it, nil)
		return
	}
	c.live[job.DeliveryID] = it
	if s := c.sole[src.partition]; s != nil && s.id != job.WebhookID {
		c.share(s, now) // another webhook's job is behind its own (even one failed unsent)
	}
	wh, found := c.hooks.ByID(job.WebhookID)
	if reason := unsendable(it, wh, found); reason != "" {
		// Unless its webhook is unreadable, not gone: place holds it.
		if _, unreadable := c.hooks.Unreadable(job.WebhookID); !unreadable {
			c.failUnsent(it, wh, reason, now)
			return
		}
	}
	e := c.endpoints[job.WebhookID]
	if e == nil {
		e = newEndpoint(job.WebhookID, src.partition, c.cfg.initialConcurrency, wh.Concurrency())
		c.endpoints[job.WebhookID] = e
	}
	e.last = wh
	e.conc = e.conc.resize(wh.Concurrency())
	it.e = e
	if e.bytes == 0 {
		c.active++
		c.joinPart(e, src.partition, now)
	} else if e.part != src.partition {
		c.leavePart(e)
		c.joinPart(e, src.partition, now)
		c.share(e, now)
	}
	e.bytes += size
	if q := job.Queue; q != nil && q.Session == c.cfg.session {
		it.seq, it.pos = q.Seq, q.Pos // back from a put-off of this session: its old place
	} else {
		c.seq++
		e.arrivals++
		it.seq, it.pos = c.seq, e.arrivals
	}
	c.place(it, now)
	c.dispatch(e, now)
	c.touch(e, now)
}

// unreadableRecheck is how often a job of a webhook that cannot be read
// looks again.
const unreadableRecheck = time.Second

// unsendable is why a job is failed without a request: its webhook is
// gone, or disabled (now, or since the job was written: a person who
// disables a webhook fails what waits for it, even if they enable it
// again before it comes back); "" when it may go. A test delivery goes
// to a disabled webhook too.
func unsendable(it *item, wh schemas.Webhook, found bool) string {
	switch {
	case !found:
		return unsentDeleted
	case it.job.Test:
		return ""
	case !wh.Enabled:
		return unsentDisabled
	case wh.DisabledAt != nil && !it.written.IsZero() && it.written.Before(*wh.DisabledAt):
		return unsentDisabled
	}
	return ""
}

// place decides where an item of its endpoint goes: on to a delay topic
// or held in memory if it is not due yet, put off while the circuit is
// open, held behind an earlier job of its lane that is away, queued if
// there is room, put off to hookline.overflow if not.
func (c *core) place(it *item, now time.Time) {
	e := it.e
	if why, bad := c.hooks.Unreadable(e.id); bad {
		c.note(it, "held: its webhook cannot be read (%s)", why)
		e.hold(it, now.Add(unreadableRecheck), false, now)
		return
	}
	if due := it.job.DueAt; due.After(now) {
		r, ok := c.cfg.ladder.below(due.Sub(now))
		if !ok && c.waiting() > c.cfg.maxBytes {
			r, ok = c.cfg.ladder[0], true // no memory for the rest of its wait: a little late
		}
		if ok {
			c.hop(it, r, now)
			return
		}
		c.note(it, "held until due")
		e.hold(it, due, false, now)
		return
	}
	if c.breakers.State(e.id) == BreakerOpen && !manual(it.job) {
		c.putOff(it, whyCircuit, now)
		return
	}
	e.backIn(it.lane, it.seq)
	full := c.full(e, it, now)
	switch {
	case e.earlierOut(it.lane, it.seq) && full == "":
		c.note(it, "held behind an earlier job of its lane")
		e.hold(it, now.Add(c.cfg.orderHold), true, now)
	case full != "":
		c.putOff(it, full, now)
	default:
		c.note(it, "queued (seq %d, %d queued)", it.seq, e.queued)
		e.enqueue(it, now)
		c.releaseHeld(e, it.lane, now)
	}
}

// full reports why an item may not wait in its endpoint's queue, or ""
// when it may: memory does not allow it (whyMemory: the jobs waiting, all
// endpoints together, are over MaxQueueBytes and this endpoint's over its
// even share, or the others have nothing left to give up), or the
// endpoint does not keep up (whyBusy: once behind for slowAfter, its
// queue holds at most what it sends in queueWait at the pace it kept, and
// one lane at most what its latency sends in queueWait, as a resource's
// jobs go one at a time).
func (c *core) full(e *endpoint, it *item, now time.Time) string {
	if c.waiting() > c.cfg.maxBytes && !e.earlierOut(it.lane, it.seq) {
		c.shedFollowers(e, now)
	}
	if c.waiting() > c.cfg.maxBytes {
		if e.waiting() > c.cfg.maxBytes/int64(max(1, c.active)) {
			return whyMemory
		}
		if c.shed(e, now); c.waiting() > c.cfg.maxBytes {
			return whyMemory
		}
	}
	if e.roomOut > 0 && !it.returning(c.cfg.session) && e.queued >= e.slots() && e.queued+e.roomOut >= e.capacity(c.cfg.horizon(), now) {
		// Its endpoint's backlog waits on hookline.overflow, parked
		// until there is room, and is enough to fill its queue: what
		// room there is goes to the backlog first, and a new job joins
		// it, once (else each job back from there would find room taken
		// by newer ones and go round again). A backlog smaller than
		// that leaves the new job its room.
		return whyBusy
	}
	if !c.keepsAll(e) && c.behind(e, now) && e.queued >= e.capacity(c.cfg.horizon(), now) {
		return whyBusy
	}
	if ln := e.lanes[it.lane]; ln != nil && c.laneBehind(ln, now) {
		if lat := e.latencies.median(now); lat > 0 && time.Duration(len(ln.q)+1)*lat > c.cfg.horizon() {
			return whyBusy
		}
	}
	return ""
}

// room says, for each endpoint with jobs away that may park them, how
// many more jobs it has room for now (0: none) and its partition: none
// while memory is over MaxQueueBytes; when it is behind, what its
// capacity leaves; at most memory's room. An endpoint not listed has
// room, or nothing away, or shares its partition with another endpoint
// that has jobs on a delay topic: a parked job of its own would hold
// theirs back (the reader stops at a partition's head). nil when no
// endpoint is listed.
func (c *core) room(now time.Time) map[string]roomSpot {
	var away map[int]int // partition → endpoints with jobs away
	for _, e := range c.endpoints {
		if e.nOut > 0 {
			if away == nil {
				away = map[int]int{}
			}
			away[e.part]++
		}
	}
	if away == nil {
		return nil // the common case: nothing away, nothing to park
	}
	var out map[string]roomSpot
	free := c.cfg.maxBytes - c.waiting()
	for id, e := range c.endpoints {
		if e.nOut == 0 {
			continue // nothing of this run away to park (a put-off of an earlier run comes back unparked)
		}
		n := -1
		switch {
		case free <= 0:
			n = 0
		case c.keepsAll(e): // only memory bounds it
		case c.behind(e, now):
			n = max(0, e.capacity(c.cfg.horizon(), now)-e.queued)
		}
		if items := int64(e.queued + len(e.held) + e.inflight); n != 0 && items > 0 && e.bytes > 0 {
			// Memory's room, in jobs the size of those it holds, less
			// one (a job a little bigger would be put off for memory):
			// a backlog let through all at once would only be put off
			// for memory again.
			if m := max(0, int(free/max(1, e.bytes/items))-1); n < 0 || m < n {
				n = m
			}
		}
		if others := away[e.part] - 1; n >= 0 && others == 0 {
			if out == nil {
				out = map[string]roomSpot{}
			}
			out[id] = roomSpot{left: n, part: e.part}
		}
	}
	return out
}

// roomSpot is an endpoint's room (core.room): how many more jobs, and
// the partition its jobs are read from.
type roomSpot struct{ left, part int }

// keepsAll reports whether an endpoint keeps its whole backlog in memory,
// however far behind it is, up to MaxQueueBytes (and the memory rules of
// full, as any endpoint): no other webhook's job came from its partition
// since it last held none, so that its queue holds back no one else's
// commit. It is not trimmed to its capacity, nor are its jobs queued for
// the queue wait put off (evictStale): putting its backlog off to
// hookline.overflow would only cost writes (burst-50ms: 30,000 put-offs
// of 20,000 jobs). Its lanes are still bounded (a resource's jobs go one
// at a time), so its jobs go about in the order they came, and a crash
// sends again little more than its requests in flight. Once another
// webhook's job comes from its partition it is trimmed as before, until
// it holds nothing again.
func (c *core) keepsAll(e *endpoint) bool { return !e.shared }

// joinPart counts an endpoint that holds items from now among those of
// partition part, and marks it shared when it is not alone there (arrive
// marked the one that was).
func (c *core) joinPart(e *endpoint, part int, now time.Time) {
	e.part = part
	if c.onPart[part]++; c.onPart[part] == 1 {
		c.sole[part] = e
		return
	}
	c.share(e, now)
}

// share marks an endpoint no longer alone on its partition, and looks at
// it at once: its queue is trimmed to its capacity.
func (c *core) share(e *endpoint, now time.Time) {
	if e.shared {
		return
	}
	e.shared = true
	if e.queued > 0 {
		c.wakeAt(e, now)
	}
}

// leavePart is joinPart undone, when the endpoint holds nothing any more.
func (c *core) leavePart(e *endpoint) {
	e.shared = false
	if c.onPart[e.part]--; c.onPart[e.part] <= 0 {
		delete(c.onPart, e.part)
	}
	if c.sole[e.part] == e {
		delete(c.sole, e.part)
	}
}

// laneBehind reports whether a lane's oldest queued job has waited for
// slowAfter: its resource has more jobs than its endpoint's latency sends
// one after another.
func (c *core) laneBehind(ln *lane, now time.Time) bool {
	return len(ln.q) > 0 && now.Sub(ln.q[0].since) >= c.cfg.slowAfter()
}

// waiting is the bytes of the jobs held and not in flight: what
// MaxQueueBytes bounds (requests in flight are bounded by the endpoints'
// concurrency).
func (c *core) waiting() int64 { return c.bytes - c.flying }

// behind reports whether the endpoint is behind: jobs have waited in its
// queue for slowAfter without a break, or some of its jobs wait on
// hookline.overflow for room (its backlog is there).
func (c *core) behind(e *endpoint, now time.Time) bool {
	return e.roomOut > 0 || !e.backlogSince.IsZero() && now.Sub(e.backlogSince) >= c.cfg.slowAfter()
}

// shed gives up the latest jobs waiting at the endpoint with the most of
// them (not keep) until memory is under MaxQueueBytes again: queued or
// held for order, to hookline.overflow; held for their due time, on to
// the shortest delay topic.
func (c *core) shed(keep *endpoint, now time.Time) {
	defer c.inSeqOrder(len(c.effects))
	for c.waiting() > c.cfg.maxBytes {
		var big *endpoint
		for _, e := range c.endpoints {
			if e != keep && (e.queued > 0 || len(e.held) > 0) && (big == nil || e.waiting() > big.waiting() || e.waiting() == big.waiting() && e.id < big.id) {
				big = e
			}
		}
		if big == nil {
			return
		}
		items := append(big.queuedItems(), big.held...) // the latest is looked for, no order needed
		last := items[0]
		for _, it := range items[1:] {
			if it.seq > last.seq {
				last = it
			}
		}
		if last.state == stateHeld && !last.forOrder {
			big.unhold(last)
			c.hop(last, c.cfg.ladder[0], now)
		} else {
			c.putOff(last, whyMemory, now)
		}
		c.touch(big, now)
	}
}

// shedFollowers puts off the endpoint's jobs held behind an earlier job of
// their lane that is away, the latest first, until memory is an eighth
// under MaxQueueBytes: they would follow it onto hookline.overflow after
// the order hold anyway, and the memory they hold is what a lane's first
// job needs to be sent (without it, a deep backlog's lanes, each led by a
// job away, can fill memory with jobs none of which may go).
func (c *core) shedFollowers(e *endpoint, now time.Time) {
	var followers []*item
	for _, it := range e.held {
		if it.forOrder && e.earlierOut(it.lane, it.seq) {
			followers = append(followers, it)
		}
	}
	slices.SortFunc(followers, func(a, b *item) int { return cmpItems(b, a) })
	defer c.inSeqOrder(len(c.effects))
	for _, it := range followers {
		if c.waiting() <= c.cfg.maxBytes-c.cfg.maxBytes/8 {
			return
		}
		c.note(it, "held behind its lane, given up for memory a lane's first job needs")
		c.putOff(it, whyMemory, now)
	}
}

// inSeqOrder puts the effects from start on in seq order, so that jobs put
// off together, the latest chosen first, are written, and come back, in
// their lanes' order: a lane's later job back first would be held behind
// the earlier one for nothing.
func (c *core) inSeqOrder(start int) {
	slices.SortStableFunc(c.effects[start:], func(a, b effect) int { return cmpItems(a.it, b.it) })
}

// releaseHeld queues the items of a lane held behind earlier jobs that
// are all back.
func (c *core) releaseHeld(e *endpoint, lane string, now time.Time) {
	// In seq order: once one waits behind an earlier job away, so do
	// those after it.
	for q := e.heldFor[lane]; len(q) > 0 && !e.earlierOut(lane, q[0].seq); q = e.heldFor[lane] {
		it := q[0]
		c.note(it, "released: the earlier jobs of its lane are back")
		e.unhold(it)
		e.enqueue(it, now)
	}
}

// manual reports whether a job is one a person asked for (a redelivery's
// or a test's first attempt): it goes through an open circuit as its probe.
func manual(job schemas.Job) bool {
	return (job.RedeliveryOf != "" || job.Test) && job.Attempts == 0
}

// dispatch starts the requests the endpoint has room for: its queue's
// oldest ready lanes first, within its concurrency limit, its rate limit,
// a Retry-After pause and its breaker.
func (c *core) dispatch(e *endpoint, now time.Time) {
	for !c.stopping && e.inflight < e.slots() && e.ready.Len() > 0 {
		if now.Before(e.pauseUntil) || now.Before(e.tokenAt) || e.probing {
			return
		}
		ln := e.ready[0]
		it := ln.q[0]
		wh, found := c.hooks.ByID(e.id)
		if reason := unsendable(it, wh, found); reason != "" {
			c.failUnsent(it, wh, reason, now)
			continue
		}
		e.last = wh
		var token *rate.Reservation
		if lim := e.rateLimiter(wh); lim != nil {
			token = lim.ReserveN(now, 1)
			if d := token.DelayFrom(now); d > 0 {
				token.CancelAt(now)
				e.tokenAt = now.Add(d)
				return
			}
		}
		verdict, err := c.breakers.Allow(e.id)
		if err != nil {
			if token != nil {
				token.CancelAt(now)
			}
			probe, ok := c.manualProbe(e.id, it.job)
			switch {
			case ok:
				verdict = probe
			case errors.Is(err, ErrProbeOut):
				e.probing = true // until a request in flight answers
				return
			default:
				c.putOffAll(e, now)
				return
			}
		}
		e.popHead(ln, now)
		e.front = max(e.front, it.pos)
		e.inflight++
		e.flyBytes += it.size
		c.flying += it.size
		e.flying = append(e.flying, it)
		it.state, it.fl = stateInFlight, &flight{verdict: verdict, wh: wh, started: now}
		c.metrics.wait.Observe(now.Sub(it.since).Seconds())
		c.effects = append(c.effects, effect{kind: effSend, it: it})
	}
}

// manualProbe lets the first attempt of a redelivery or a test delivery
// through an open circuit as its probe (Breakers.Probe); other jobs wait.
func (c *core) manualProbe(endpoint string, job schemas.Job) (func(Verdict), bool) {
	if !manual(job) {
		return nil, false
	}
	return c.breakers.Probe(endpoint)
}

// putOffAll puts off every job the endpoint holds in memory for its open
// circuit, in seq order (a person's job that finds the probe taken too:
// it tries again when it comes back).
func (c *core) putOffAll(e *endpoint, now time.Time) {
	items := append(e.queuedItems(), e.held...)
	slices.SortFunc(items, cmpItems)
	if len(items) > putOffBurst {
		items, e.more = items[:putOffBurst], true // the rest at the next look
	}
	for _, it := range items {
		c.putOff(it, whyCircuit, now)
	}
}

// putOffBurst is the most jobs one look at an endpoint puts off (a trim,
// an open circuit, jobs stale in the queue); the rest go at the next
// look, at once, with the core's lock let go between: a trim of
// thousands held it for up to 14 ms, which every other endpoint's
// finishing request waited for.
const putOffBurst = 256

// circuitDue is when a job put off for its endpoint's open circuit comes
// back. The first job put off in an open period comes back when the
// circuit lets a probe through (a tenth of a cooldown later when half-open
// with its probe out), to be that probe: a recovered endpoint is seen
// within a cooldown. The others come back after it, within two cooldowns:
// after the shortest delay topic that waits long enough, when that is
// within two cooldowns (the job is written once for its wait, not once
// per rung it would hop down: a dead endpoint's backlog costs one write a
// job each wait), else spread over the cooldown that follows. Once the
// endpoint has failed for circuitBackoffAfter, they come back no sooner
// than the retry schedule's delay for the times they were put off
// already, so that a long outage's backlog backs off like retries do
// instead of coming back every cooldown.
func (c *core) circuitDue(e *endpoint, it *item, now time.Time) time.Time {
	cooldown := c.breakers.Cooldown()
	opens := c.breakers.OpenUntil(e.id)
	if !opens.After(now) {
		opens = now.Add(cooldown / 10)
	}
	if e.probeFor.Before(opens) {
		e.probeFor = opens // this one is the probe
		return opens.Add(time.Duration(float64(min(cooldown/10, c.cfg.queueWait)) * c.rnd.Float64()))
	}
	due := opens
	if failing := c.health.failingSince(e.id); !failing.IsZero() && now.Sub(failing) >= circuitBackoffAfter {
		due = maxTime(due, now.Add(c.cfg.schedule[min(it.job.Deferrals, len(c.cfg.schedule)-1)]))
	}
	if r, ok := c.cfg.ladder.atLeast(due.Sub(now)); ok && !now.Add(r.delay).After(due.Add(2*cooldown)) {
		return now.Add(r.delay)
	}
	// Spread over a cooldown: a dead endpoint's backlog does not come back
	// all at once every cooldown, and follows a successful probe within one.
	return due.Add(time.Duration(float64(cooldown) * c.rnd.Float64()))
}

// circuitBackoffAfter is how long an endpoint fails before the jobs put
// off for its open circuit back off.
const circuitBackoffAfter = 10 * time.Minute

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// putOff sends an item to a delay topic without a request: for room, to
// hookline.overflow, back after its delay to look for room again; for
// its circuit, until circuitDue. A put-off never counts against the
// delivery's retries, and the item keeps its place (seq): later jobs of
// its lane wait behind it until it is back. A delivery never attempted
// gets a pending mark, so that the history shows it waiting.
func (c *core) putOff(it *item, why string, now time.Time) {
	e := it.e
	c.detach(it, now)
	job := it.job
	first := job.Attempts == 0 && job.Queue == nil
	job.Queue = &schemas.QueuePlace{Session: c.cfg.session, Seq: it.seq, Pos: it.pos}
	var r rung
	var back time.Time
	var marks []schemas.Attempt
	if why == whyCircuit {
		due := c.circuitDue(e, it, now)
		job.Deferrals++
		job.Reason, job.DueAt = schemas.RetryCircuitOpen, due.UTC()
		r, _ = c.cfg.ladder.below(due.Sub(now))
		if r.topic == "" {
			r = c.cfg.ladder[0]
		}
		back = due
		if first || due.Sub(now) >= time.Minute { // a mark each lap of a short wait would cost more than it tells
			marks = append(marks, c.mark(it, "waiting for the endpoint's circuit to close", due, now))
		}
	} else {
		job.Reason, job.DueAt = schemas.RetryEndpointBusy, time.Time{}
		r = c.lap(e, it, now)
		back = now.Add(r.delay)
		if first {
			text := "waiting for room at the endpoint (it is behind)"
			if why == whyMemory {
				text = "waiting for room in the sender's memory (--max-queue-bytes)"
			}
			marks = append(marks, c.mark(it, text, back, now))
		}
	}
	e.putOut(it.lane, it.seq, back, why == whyBusy)
	c.note(it, "put off (%s) to %s", why, r.topic)
	c.metrics.deferred.WithLabelValues(why).Inc()
	topic, due := r.topic, now.Add(r.delay)
	c.emit(it, func() []kafka.Message {
		msgs := make([]kafka.Message, 0, len(marks)+1)
		for _, m := range marks {
			if job.Attempts == 0 {
				m.RequestBody = string(job.Payload) // see mark
			}
			msgs = append(msgs, records.Attempt(m))
		}
		return append(msgs, records.DelayedJob(topic, job, due))
	})
}

// lap is where a job put off for room waits before it looks for room
// again: hookline.overflow, or, for a job far back in a deep backlog (its
// place behind the endpoint's last job sent, at the fastest the endpoint
// could go, is more than four overflow delays away), the
// longest delay topic no longer than a quarter of that wait. So a backlog
// of B jobs is rewritten about pace × log B times a second, not B ÷ the
// overflow's delay, and a job never comes back after the endpoint could
// have had room for it (it comes back early when the endpoint is slower
// than it could be, and waits on). Its record is due its topic's delay
// after it is written, like every record there.
func (c *core) lap(e *endpoint, it *item, now time.Time) rung {
	r := c.lapFor(e, it, now)

	// Never back before an earlier job of its lane that is away (on a
	// longer rung): it would only be held behind it, and go round again.
	// A rung far longer than that (an earlier job waits hours for its
	// circuit) is not taken: it comes back before, and is held or goes
	// round once more.
	if need := e.earlierBack(it.lane, it.seq).Sub(now); need > r.delay {
		if longer, ok := c.cfg.ladder.atLeast(need); ok && longer.delay <= 2*need {
			return longer
		}
		if shorter, ok := c.cfg.ladder.below(need); ok && shorter.delay > r.delay {
			return shorter
		}
	}
	return r
}

// lapFor is lap's rung for the job's place in its endpoint's backlog.
func (c *core) lapFor(e *endpoint, it *item, now time.Time) rung {
	overflow := rung{topic: schemas.TopicOverflow, delay: c.cfg.overflowDelay()}
	pace := e.fastest(now)
	if pace <= 0 || it.pos <= e.front {
		return overflow
	}
	wait := time.Duration(float64(it.pos-e.front) / pace * float64(time.Second))
	if r, ok := c.cfg.ladder.below(wait / 4); ok && r.delay > overflow.delay {
		return r
	}
	return overflow
}

// hop sends an item that came back before its due time on to the rung
// that fits what is left of its wait. A job waiting for its circuit stays
// away for its lane's order.
func (c *core) hop(it *item, r rung, now time.Time) {
	e := it.e
	job := it.job
	if job.Reason == schemas.RetryCircuitOpen {
		job.Queue = &schemas.QueuePlace{Session: c.cfg.session, Seq: it.seq, Pos: it.pos}
		e.putOut(it.lane, it.seq, job.DueAt, false)
	}
	c.metrics.hops.Inc()
	c.note(it, "on to %s", r.topic)
	topic, due := r.topic, now.Add(r.delay)
	c.emit(it, func() []kafka.Message { return []kafka.Message{records.DelayedJob(topic, job, due)} })
}

// mark is the pending mark of a delivery that waits without an attempt
// (schemas.Attempt with N 0).
//
// Its request body (the job's payload, on a delivery's first wait) is
// left to the emission to copy when it builds the record: a trim puts off
// thousands of jobs at once, and their copies made here would all be
// alive until the outbox took the last (a fifth of serve's peak heap in
// burst-50ms).
func (c *core) mark(it *item, why string, next, now time.Time) schemas.Attempt {
	job := it.job
	next = next.UTC()
	return schemas.Attempt{
		DeliveryID: job.DeliveryID, WebhookID: job.WebhookID, Tenant: job.Tenant,
		EventIDs: job.EventIDs, EventType: job.EventType, N: 0, State: schemas.StatePending,
		At: now.UTC(), DeliveryCreatedAt: job.CreatedAt, Error: why, URL: it.e.last.URL,
		RedeliveryOf: job.RedeliveryOf, ReplayID: job.ReplayID, NextAttemptAt: &next,
	}
}

// detach takes an item out of its endpoint's lanes or holds.
func (c *core) detach(it *item, now time.Time) {
	switch it.state {
	case stateQueued:
		it.e.remove(it, now)
	case stateHeld:
		it.e.unhold(it)
	}
}

// emit hands an item's outputs to the driver: once they are written, its
// input is done.
func (c *core) emit(it *item, out outputs) {
	c.release(it)
	c.effects = append(c.effects, effect{kind: effEmit, it: it, out: out})
}

// abandon gives an item back to the driver unfinished: its input is not
// committed and is read again by the partition's next owner or run.
func (c *core) abandon(it *item) {
	c.release(it)
	c.effects = append(c.effects, effect{kind: effAbandon, it: it})
}

// release forgets an item's bytes.
func (c *core) release(it *item) {
	if c.live[it.job.DeliveryID] == it {
		delete(c.live, it.job.DeliveryID)
	}
	c.bytes -= it.size
	if e := it.e; e != nil {
		if e.bytes -= it.size; e.bytes == 0 {
			c.active--
			c.leavePart(e)
		}
	}
	it.state = stateGone
}

// failUnsent fails a delivery without a request because its webhook was
// disabled or deleted while it waited (SPEC §4): its attempt record says
// so, and it is dead-lettered, so that redeliver-failed sends it again
// once the webhook is enabled. No hookline.delivery_failed: the person who
// disabled or deleted the webhook knows.
func (c *core) failUnsent(it *item, wh schemas.Webhook, reason string, now time.Time) {
	job := it.job
	if e := it.e; e != nil {
		c.detach(it, now)
		e.backIn(it.lane, it.seq)
		c.releaseHeld(e, it.lane, now)
	}
	body := string(job.Payload)
	if job.Attempts > 0 {
		body = "" // an earlier attempt's record holds it
	}
	att := schemas.Attempt{
		DeliveryID: job.DeliveryID, WebhookID: job.WebhookID, Tenant: job.Tenant,
		EventIDs: job.EventIDs, EventType: job.EventType, N: job.Attempts + 1,
		State: schemas.StateFailed, At: now.UTC(), DeliveryCreatedAt: job.CreatedAt,
		Error: reason, URL: wh.URL, RequestBody: body,
		RedeliveryOf: job.RedeliveryOf, ReplayID: job.ReplayID,
	}
	c.metrics.unsent.WithLabelValues(reason).Inc()
	c.metrics.attempts.WithLabelValues(att.State, statusClass(0)).Inc()
	c.emit(it, func() []kafka.Message { return []kafka.Message{records.Attempt(att), records.DeadJob(job, att)} })
}

// finished takes the result of an item's request; sent is false when the
// request was cut short (the drain deadline, a rebalance) and says
// nothing: the item is given back unfinished.
func (c *core) finished(now time.Time, it *item, r delivery.Result, sent bool) {
	e := it.e
	e.inflight--
	e.flyBytes -= it.size
	c.flying -= it.size
	if i := slices.Index(e.flying, it); i >= 0 {
		e.flying = slices.Delete(e.flying, i, i+1)
	}
	e.probing = false // a probe may have answered: Allow tells
	e.laneDone(it.lane)
	if it.revoked {
		c.revoked--
	}
	if !sent {
		it.fl.verdict(NotSent)
		c.abandon(it)
	} else {
		rtt := now.Sub(it.fl.started)
		retryable := r.Outcome.Class == delivery.Retryable
		tooMany := r.Attempt.StatusCode == http.StatusTooManyRequests
		if retryable && !tooMany {
			it.fl.verdict(Unhealthy)
		} else {
			it.fl.verdict(Healthy) // a 429 is a live endpoint asking for less
		}
		e.conc.sample(it.fl.started, rtt, e.inflight+1, retryable)
		e.latencies.add(now, rtt)
		e.meter.completed(now)
		if tooMany {
			if p := RetryAfter(r.Attempt.ResponseHeaders["Retry-After"], now); p > 0 {
				e.pauseUntil, e.pausedAt = now.Add(min(p, maxPause)), now
			}
		}
		c.metrics.observe(r)
		out, disable, ifDisabled := c.outcome(now, it, r)
		c.release(it)
		c.effects = append(c.effects, effect{kind: effEmit, it: it, out: out, disable: disable, ifDisabled: ifDisabled})
	}
	c.dispatch(e, now)
	c.touch(e, now)
}

// outcome decides what follows an attempt and returns the messages that
// record it: the attempt, and a retry on the delay topic that fits its
// wait or a dead letter. disable asks for the webhook to be disabled (410
// Gone, or failing for DisableAfter); ifDisabled is then written too.
func (c *core) outcome(now time.Time, it *item, r delivery.Result) (out outputs, disable string, ifDisabled outputs) {
	job, wh := it.job, it.fl.wh
	att := r.Attempt
	if job.Attempts > 0 {
		// The first attempt's record holds the body; the history shows it
		// from there. Each retry repeating it would make every attempt
		// record as large as the payload.
		att.RequestBody = ""
	}
	succeeded := r.Outcome.Class == delivery.Succeeded
	if since := c.health.note(wh.ID, succeeded, att.At); r.Outcome.DisableWebhook {
		disable = fmt.Sprintf("endpoint answered 410 Gone to delivery %s", att.DeliveryID)
	} else if !succeeded && c.failingTooLong(wh, since, att.At) {
		disable = fmt.Sprintf("every delivery failed since %s (--disable-after %s)", since.Format(time.RFC3339), c.cfg.disableAfter)
	}
	var follow func(att schemas.Attempt) []kafka.Message
	switch {
	case succeeded:
		att.State = schemas.StateSucceeded
	case r.Outcome.Class == delivery.Retryable && job.Attempts < wh.Retries && disable == "":
		att.State = schemas.StateRetrying
		wait := c.policy.Delay(job.Attempts+1, RetryAfter(att.ResponseHeaders["Retry-After"], now))
		next := job
		next.Attempts++
		next.DueAt = now.Add(wait).UTC()
		next.Reason, next.Queue, next.Deferrals = schemas.RetryAfterFailure, nil, 0
		due := next.DueAt
		att.NextAttemptAt = &due
		rg, ok := c.cfg.ladder.below(wait)
		if !ok {
			rg = c.cfg.ladder[0]
		}
		topic, at := rg.topic, now.Add(rg.delay)
		follow = func(schemas.Attempt) []kafka.Message { return []kafka.Message{records.DelayedJob(topic, next, at)} }
	default:
		att.State = schemas.StateFailed
		// Copies for the closures, made only here: captured, job and wh
		// would move to the heap on every attempt (640 bytes each).
		job, wh := job, wh
		if disable != "" && wh.Enabled {
			off := wh
			off.DisabledReason = disable
			last := att
			ifDisabled = func() []kafka.Message {
				return operational(off, job, schemas.TypeWebhookDisabled, "disabled-"+job.DeliveryID, last, now)
			}
		} else {
			disable = ""
		}
		follow = func(att schemas.Attempt) []kafka.Message { return failedForGood(wh, job, att, now) }
	}
	c.metrics.attempts.WithLabelValues(att.State, statusClass(att.StatusCode)).Inc()
	return func() []kafka.Message {
		msgs := []kafka.Message{records.Attempt(att)}
		if follow != nil {
			msgs = append(msgs, follow(att)...)
		}
		return msgs
	}, disable, ifDisabled
}

// failingTooLong reports whether a webhook whose endpoint has failed since
// since is to be disabled at at: every attempt failed for DisableAfter,
// counted from the webhook's last change at the earliest (a user who
// enables it again, or changes its URL, starts the clock again).
func (c *core) failingTooLong(wh schemas.Webhook, since, at time.Time) bool {
	if since.IsZero() {
		return false
	}
	if wh.UpdatedAt.After(since) {
		since = wh.UpdatedAt
	}
	return at.Sub(since) >= c.cfg.disableAfter
}

// failedForGood is what follows a delivery's last attempt when it failed:
// its dead letter and a hookline.delivery_failed event.
func failedForGood(wh schemas.Webhook, job schemas.Job, att schemas.Attempt, now time.Time) []kafka.Message {
	return append([]kafka.Message{records.DeadJob(job, att)},
		operational(wh, job, schemas.TypeDeliveryFailed, "failed-"+job.DeliveryID, att, now)...)
}

// operational is the Hookline event of a delivery that failed for good or
// a webhook disabled (SPEC §4), on hookline.events for the webhooks of the
// tenant that name it. A delivery of such an event makes none: a failure
// to deliver one never loops. Its id derives from the delivery, so a job
// handled again after a crash publishes the same event.
func operational(wh schemas.Webhook, job schemas.Job, typ, id string, att schemas.Attempt, now time.Time) []kafka.Message {
	if strings.HasPrefix(job.EventType, schemas.OperationalResource+".") {
		return nil
	}
	data, err := records.Marshal(map[string]any{
		"webhook_id": wh.ID, "webhook_name": wh.Name, "url": wh.URL, "delivery_id": job.DeliveryID,
		"event_type": job.EventType, "event_ids": job.EventIDs, "attempts": att.N,
		"status_code": att.StatusCode, "error": att.Error, "disabled_reason": wh.DisabledReason,
	})
	if err != nil {
		return nil
	}
	_, trigger, _ := strings.Cut(typ, ".")
	return []kafka.Message{records.Event(schemas.Event{
		ID: "hookline-" + id, Type: typ, Resource: schemas.OperationalResource, Trigger: trigger,
		ResourceID: wh.ID, Tenant: job.Tenant, OccurredAt: now.UTC(), Data: data,
	})}
}

// tick does what is due by now: held items come due, order holds end,
// endpoints look at their webhook and their pace, pauses end.
func (c *core) tick(now time.Time) {
	for len(c.wakes) > 0 && !c.wakes[0].wake.After(now) {
		e := heap.Pop(&c.wakes).(*endpoint)
		e.wake = time.Time{}
		c.service(e, now)
	}
}

// service looks at one endpoint.
func (c *core) service(e *endpoint, now time.Time) {
	e.more = false
	for len(e.held) > 0 && !e.held[0].until.After(now) {
		it := e.held[0]
		e.unhold(it)
		switch {
		case !it.forOrder:
			c.place(it, now)
		case !e.earlierOut(it.lane, it.seq):
			e.enqueue(it, now)
		default:
			// The earlier job is still away after the order hold (it
			// found no room when it came back): this one follows it onto
			// hookline.overflow, and comes back behind it.
			c.note(it, "order hold over: put off behind the earlier job of its lane")
			c.putOff(it, whyBusy, now)
		}
	}
	if now.Sub(e.checked) >= checkEvery {
		c.check(e, now)
		c.evictStale(e, now)
	}
	if c.waiting() > c.cfg.maxBytes {
		c.shedFollowers(e, now) // memory for the earlier jobs they wait for
	}
	c.trim(e, now)
	c.dispatch(e, now)
	c.touch(e, now)
}

// check fails the jobs the endpoint holds when its webhook was disabled or
// deleted, and forgets the put-offs that did not come back within the
// order hold of their time (they went to another sender, or were lost
// with a crash of the writer: their lane waits no longer).
func (c *core) check(e *endpoint, now time.Time) {
	e.checked = now
	wh, found := c.hooks.ByID(e.id)
	if _, bad := c.hooks.Unreadable(e.id); !bad && (!found || !wh.Enabled || wh.DisabledAt != nil) {
		items := append(e.queuedItems(), e.heldItems()...)
		for _, it := range items {
			if reason := unsendable(it, wh, found); reason != "" {
				c.failUnsent(it, wh, reason, now)
			}
		}
	}
	if e.nOut == 0 {
		return
	}
	lanes := make([]string, 0, len(e.out))
	for lane := range e.out {
		lanes = append(lanes, lane)
	}
	slices.Sort(lanes)
	for _, lane := range lanes {
		for _, r := range slices.Clone(e.out[lane]) {
			if now.Sub(r.back) > c.cfg.orderHold+c.cfg.parkLimit() {
				e.backIn(lane, r.seq)
				c.metrics.lostPutOffs.Inc()
			}
		}
		c.releaseHeld(e, lane, now)
	}
}

// trim puts off the latest queued jobs of an endpoint that has fallen
// behind since they were queued (it slowed down, or a burst came before
// its pace was known): what it cannot send within queueWait at the pace it
// keeps, and what a lane cannot send within queueWait at the endpoint's
// latency. They wait on hookline.overflow, not in memory, so that they
// never hold back the commit of the partitions they share for long.
func (c *core) trim(e *endpoint, now time.Time) {
	if e.queued == 0 {
		return
	}
	defer c.inSeqOrder(len(c.effects))
	if !c.keepsAll(e) && c.behind(e, now) {
		// What is over by less than half gets its chance: the pace was
		// read on the endpoint's past, and a job given up that the
		// endpoint could have sent leaves it idle until it is back.
		capacity := e.capacity(c.cfg.horizon(), now)
		excess := e.queued - capacity
		if e.queued <= capacity+capacity/2 {
			excess = 0
		}
		for tails, n := e.tails(), 0; excess > 0 && tails.Len() > 0; excess-- {
			ln := (*tails)[0]
			it := ln.q[len(ln.q)-1]
			if e.laterOut(it.lane, it.seq) {
				// A later job of its lane is away already: put off,
				// this one would come back behind it, which would wait
				// for it in memory, and go round again.
				heap.Pop(tails)
				excess++
				continue
			}
			if n++; n > putOffBurst {
				e.more = true // only after putOffBurst put-offs: the next look goes on
				break
			}
			c.note(it, "over its endpoint's capacity (%d queued, capacity %d at %.1f/s)", e.queued, capacity, e.pace(now))
			c.putOff(it, whyBusy, now)
			if len(ln.q) > 0 {
				heap.Fix(tails, 0)
			} else {
				heap.Pop(tails)
			}
		}
	}
	lat := e.latencies.median(now)
	if lat <= 0 {
		return
	}
	keep := max(1, int(c.cfg.horizon()/lat))
	keys := make([]string, 0, len(e.lanes))
	for key, ln := range e.lanes {
		if len(ln.q) > keep && c.laneBehind(ln, now) {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	n := 0
	for _, key := range keys {
		ln := e.lanes[key]
		for ln != nil && len(ln.q) > keep {
			if n++; n > putOffBurst {
				e.more = true
				return
			}
			c.note(ln.q[len(ln.q)-1], "over its lane's capacity (%d deep, keeps %d)", len(ln.q), keep)
			c.putOff(ln.q[len(ln.q)-1], whyBusy, now)
			ln = e.lanes[key]
		}
	}
}

// evictStale puts off the queued jobs that have waited queueWait in the
// queue and would wait longer than a lap of hookline.overflow still (by
// their place in the queue and the pace of the endpoint's last second),
// each with the later jobs of its lane, in order, so that they come back
// behind it. Whatever the reading of its endpoint's pace, no job waits in
// memory much longer than one and a half queue waits and the order hold:
// that bounds how far a partition's commit lags, and what a crash sends
// again.
func (c *core) evictStale(e *endpoint, now time.Time) {
	if oldest := e.oldestQueued(); oldest.IsZero() || now.Sub(oldest) < c.cfg.queueWait || c.keepsAll(e) {
		return // the common case, without sorting the queue
	}
	queue := e.queuedItems()
	slices.SortStableFunc(queue, func(a, b *item) int { return a.since.Compare(b.since) })
	if len(queue) == 0 || now.Sub(queue[0].since) < c.cfg.queueWait {
		return
	}
	rate := max(e.meter.lastSecond(now), e.meter.rate())
	var evict []*item
	for k, it := range queue {
		if now.Sub(it.since) < c.cfg.queueWait {
			break
		}
		if rate > 0 && time.Duration(float64(k)/rate*float64(time.Second)) <= c.cfg.overflowDelay() {
			continue // it goes before it would be back
		}
		evict = append(evict, it)
	}
	if len(evict) > putOffBurst {
		// The rest at the next look, at once, not a check later.
		evict, e.more, e.checked = evict[:putOffBurst], true, time.Time{}
	}
	for _, it := range evict {
		if it.state != stateQueued {
			continue // gone with an earlier job of its lane
		}
		ln := e.lanes[it.lane]
		for _, later := range slices.Clone(ln.q[slices.Index(ln.q, it):]) {
			c.note(later, "waited the queue wait in memory, and would wait on")
			c.putOff(later, whyBusy, now)
		}
	}
}

// touch sets when the core looks at the endpoint again, or forgets it
// when it holds nothing.
func (c *core) touch(e *endpoint, now time.Time) {
	c.metrics.setQueued(e)
	if e.idle() && c.endpoints[e.id] == e {
		delete(c.endpoints, e.id)
		if e.heapIdx >= 0 {
			heap.Remove(&c.wakes, e.heapIdx)
		}
		if c.health != nil {
			c.health.setLimit(e.id, e.conc.current()) // its last: flushes no longer see it
		}
		return
	}
	var w time.Time
	at := func(t time.Time) {
		if !t.IsZero() && (w.IsZero() || t.Before(w)) {
			w = t
		}
	}
	if e.queued > 0 {
		if e.pauseUntil.After(now) {
			at(e.pauseUntil)
		}
		if e.tokenAt.After(now) {
			at(e.tokenAt)
		}
		if !c.behind(e, now) {
			at(e.backlogSince.Add(c.cfg.slowAfter()))
		}
	}
	if len(e.held) > 0 {
		at(e.heldUntil())
	}
	if e.queued > 0 || len(e.held) > 0 || e.nOut > 0 {
		at(e.checked.Add(checkEvery))
	}
	if e.more {
		at(now)
	}
	if !w.IsZero() && w.Before(now) {
		w = now
	}
	c.wakeAt(e, w)
}

// wakeAt sets when the core looks at the endpoint next (zero: never).
func (c *core) wakeAt(e *endpoint, w time.Time) {
	switch {
	case w.IsZero() && e.heapIdx >= 0:
		heap.Remove(&c.wakes, e.heapIdx)
		e.wake = time.Time{}
	case w.IsZero():
	case e.heapIdx >= 0:
		e.wake = w
		heap.Fix(&c.wakes, e.heapIdx)
	default:
		e.wake = w
		heap.Push(&c.wakes, e)
	}
}

// revoke gives up what the core holds of partitions a rebalance takes
// away: their queued and held items are abandoned (their next owner reads
// them from the committed offset), their items in flight are returned,
// marked (the driver waits for them, cutting them short after a bound;
// revoked counts those not finished), and the put-offs of their endpoints
// are forgotten.
func (c *core) revoke(now time.Time, parts map[srcPart]bool) []*item {
	nums := map[int]bool{}
	for p := range parts {
		nums[p.partition] = true
	}
	var flying []*item
	for _, e := range c.sortedEndpoints() {
		for _, it := range append(e.queuedItems(), e.heldItems()...) {
			if parts[it.src] {
				c.detach(it, now)
				c.abandon(it)
			}
		}
		for _, it := range e.flying {
			if parts[it.src] && !it.revoked {
				it.revoked = true
				c.revoked++
				flying = append(flying, it)
			}
		}
		if nums[e.part] && e.nOut > 0 {
			e.clearOut()
			for _, it := range e.heldItems() {
				if it.forOrder {
					e.unhold(it)
					e.enqueue(it, now)
				}
			}
		}
		c.touch(e, now)
	}
	return flying
}

// stop is the soft stop: nothing more is sent, and what is queued or held
// is given back, to be read again at the next start.
func (c *core) stop(now time.Time) {
	c.stopping = true
	for _, e := range c.sortedEndpoints() {
		for _, it := range append(e.queuedItems(), e.heldItems()...) {
			c.detach(it, now)
			c.abandon(it)
		}
		c.touch(e, now)
	}
}

func (c *core) sortedEndpoints() []*endpoint {
	out := make([]*endpoint, 0, len(c.endpoints))
	for _, e := range c.endpoints {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *endpoint) int { return strings.Compare(a.id, b.id) })
	return out
}

func statusClass(code int) string {
	if code < 100 || code > 599 {
		return "error"
	}
	return fmt.Sprintf("%dxx", code/100)
}
