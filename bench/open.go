package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookline/hookline/client"
	"github.com/hookline/hookline/schemas"
)

// Open-loop scenarios publish through the public API, POST /v1/events, and
// never wait for deliveries: a burst publishes its events as fast as the
// API accepts them, a paced scenario publishes what is due on a ticker.
// Then they wait for every delivery as long as deliveries keep coming.
//
// Event g (0, 1, ...) is about resource g % benchResources and is that
// resource's event number g / benchResources (data.seq). Each resource's
// events go through one of benchPublishers publishers (resource %
// benchPublishers), which sends one request at a time: a resource's events
// are published in order, so the receiver can tell when two of them arrive
// swapped.
const (
	benchResources  = 1000 // distinct resource ids, cycling
	benchPublishers = 4    // requests in flight at once
	benchArrayMax   = 500  // events in one request at most
	// benchBodyBudget is what a request's events may weigh, under the API's
	// 1 MiB body limit.
	benchBodyBudget = 900 << 10
	// benchEventOverhead is what an event weighs besides its data.
	benchEventOverhead = 400
	benchMinData       = 64
	benchMaxData       = 512 << 10
	// benchPaceTick is how often a paced scenario publishes what is due.
	benchPaceTick = 10 * time.Millisecond
	// benchPublishAttempts bounds the tries of one request the API refuses
	// with 429 or 5xx, or that fails on the way.
	benchPublishAttempts = 10
	benchViaAPI          = "POST /v1/events"
)

// benchArray is how many events of dataBytes of data one request carries:
// benchArrayMax, fewer when they would pass the API's body limit.
func benchArray(dataBytes int) int {
	return max(1, min(benchArrayMax, benchBodyBudget/(dataBytes+benchEventOverhead)))
}

// burstDefaults lists the burst scenarios' default event counts.
func burstDefaults() string {
	var parts []string
	for _, s := range benchScenarios() {
		if s.loop == benchBurst {
			parts = append(parts, fmt.Sprintf("%d %s", s.events, s.name))
		}
	}
	return strings.Join(parts, ", ")
}

// benchDue is how many of a paced scenario's n events are due elapsed after
// its start at rate events/s: the first at once, then one every 1/rate.
func benchDue(elapsed time.Duration, rate float64, n int) int {
	if elapsed < 0 {
		return 0
	}
	return min(n, int(elapsed.Seconds()*rate)+1)
}

// benchPacedEvents is how many events a paced scenario publishes.
func benchPacedEvents(rate int, d time.Duration) int {
	return max(1, int(float64(rate)*d.Seconds()))
}

// benchResourceOf is event g's resource index, its number among that
// resource's events, and the publisher that sends it.
func benchResourceOf(g int) (resource, seq, publisher int) {
	resource = g % benchResources
	return resource, g / benchResources, resource % benchPublishers
}

// benchFiller is the text a ticket's description is cut from.
const benchFiller = "The printer on the fourth floor smells of smoke again and the paper tray jams on every second page. "

// benchTicket is an event's data: a ticket of size bytes of JSON (strings,
// numbers, nulls, nested objects and an array), padded with its
// description. seq is the event's number among its resource's events. It
// is exactly size bytes unless size is below the smallest ticket (about 50
// bytes).
func benchTicket(seq, resource, size int) json.RawMessage {
	b := make([]byte, 0, max(size, 64))
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"ticket_id":"T-`...)
	b = strconv.AppendInt(b, int64(resource), 10)
	b = append(b, '"')
	minimal := len(b)
	b = append(b, `,"subject":"Printer on fire in building `...)
	b = strconv.AppendInt(b, int64(resource%9+1), 10)
	b = append(b, `","status":"open","priority":"High","type":"incident","channel":"email","assignee":null,`+
		`"group":{"id":42,"name":"Level 2 support"},`+
		`"requester":{"id":`...)
	b = strconv.AppendInt(b, int64(90000+resource), 10)
	b = append(b, `,"name":"Ada Lovelace","email":"ada@example.com","organization":{"id":311,"name":"Example Corp","tier":"enterprise"}},`+
		`"tags":["printer","hardware","urgent"],`+
		`"custom_fields":{"asset_tag":"PRN-00417","floor":4,"cost_center":"CC-1200","impact":2.5},`+
		`"sla":{"policy":"enterprise-4h","breach_in_minutes":213,"paused":false},"satisfaction":null`...)
	const open, closing = `,"description":"`, `"}`
	if len(b)+len(open)+len(closing) > size {
		b = b[:minimal] // too small for the whole ticket: seq, id and description
	}
	b = append(b, open...)
	for i := 0; len(b)+len(closing) < size; i++ {
		b = append(b, benchFiller[i%len(benchFiller)])
	}
	return append(b, closing...)
}

// benchOpenEvent is event g of an open-loop scenario as the API takes it.
func benchOpenEvent(g, dataBytes int, now time.Time) ([]byte, error) {
	resource, seq, _ := benchResourceOf(g)
	id := "T-" + strconv.Itoa(resource)
	return json.Marshal(schemas.Event{
		ID: fmt.Sprintf("bench-%d-%d", benchOpen, g), Resource: "ticket", Trigger: "update",
		ResourceID: id, OccurredAt: now,
		Data:    benchTicket(seq, resource, dataBytes),
		Changes: json.RawMessage(`{"priority":{"old":"Low","new":"High"},"status":{"old":"new","new":"open"}}`),
		Context: json.RawMessage(`{"actor":"bench@example.com","source":"hookline bench"}`),
	})
}

// benchQueued is an event waiting for its publisher; due is when a paced
// scenario made it due (zero in a burst: it counts from its request).
type benchQueued struct {
	g   int
	due time.Time
}

// benchQueue is one publisher's events in the order it publishes them.
type benchQueue struct {
	mu     sync.Mutex
	items  []benchQueued
	closed bool
	wake   chan struct{}
}

func (q *benchQueue) put(items ...benchQueued) {
	q.mu.Lock()
	q.items = append(q.items, items...)
	q.mu.Unlock()
	trySend(q.wake, struct{}{})
}

// close says no more events come; take drains what is queued first.
func (q *benchQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	trySend(q.wake, struct{}{})
}

// take waits for events and returns up to n of them; false when the queue
// is closed and empty.
func (q *benchQueue) take(ctx context.Context, n int) ([]benchQueued, bool, error) {
	for {
		q.mu.Lock()
		if k := min(n, len(q.items)); k > 0 {
			out := slices.Clone(q.items[:k])
			q.items = q.items[k:]
			q.mu.Unlock()
			return out, true, nil
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, false, nil
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// benchOpenPublisher publishes open-loop events through POST /v1/events:
// benchPublishers publishers, each sending one array at a time of what is
// queued for it.
type benchOpenPublisher struct {
	client    *client.Client
	dataBytes int
	array     int
	// stamp sets an event's publish time, just before its request (or at
	// its due time when it has one).
	stamp     func(g int, at time.Time)
	queues    [benchPublishers]*benchQueue
	published atomic.Int64
	retries   atomic.Int64

	mu   sync.Mutex
	took []time.Duration // of each request the API accepted, tries included
}

// requestTimes are the p50 and p99 of the requests' durations.
func (p *benchOpenPublisher) requestTimes() (p50, p99 time.Duration) {
	p.mu.Lock()
	took := slices.Clone(p.took)
	p.mu.Unlock()
	slices.Sort(took)
	return quantile(took, 0.5), quantile(took, 0.99)
}

func newBenchOpenPublisher(base string, hc *http.Client, dataBytes int, stamp func(g int, at time.Time)) *benchOpenPublisher {
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 2 * benchPublishers, IdleConnTimeout: time.Minute}}
	}
	p := &benchOpenPublisher{client: client.New(base, "", hc), dataBytes: dataBytes, array: benchArray(dataBytes), stamp: stamp}
	for i := range p.queues {
		p.queues[i] = &benchQueue{wake: make(chan struct{}, 1)}
	}
	return p
}

// put queues events from..to-1, due at due (zero: when sent).
func (p *benchOpenPublisher) put(from, to int, due time.Time) {
	var byPub [benchPublishers][]benchQueued
	for g := from; g < to; g++ {
		_, _, pub := benchResourceOf(g)
		byPub[pub] = append(byPub[pub], benchQueued{g: g, due: due})
	}
	for i, items := range byPub {
		if len(items) > 0 {
			p.queues[i].put(items...)
		}
	}
}

// close says every event is queued.
func (p *benchOpenPublisher) close() {
	for _, q := range p.queues {
		q.close()
	}
}

// start runs the publishers; the channel gets nil when they published
// everything queued before close, or the first error (the others stop
// then).
func (p *benchOpenPublisher) start(ctx context.Context) <-chan error {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, q := range p.queues {
		wg.Go(func() {
			if err := p.run(ctx, q); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		})
	}
	go func() {
		wg.Wait()
		cancel()
		done <- first
	}()
	return done
}

// run is one publisher.
func (p *benchOpenPublisher) run(ctx context.Context, q *benchQueue) error {
	for {
		items, ok, err := q.take(ctx, p.array)
		if err != nil || !ok {
			return err
		}
		now := time.Now().UTC()
		body := make([]byte, 0, len(items)*(p.dataBytes+benchEventOverhead)+2)
		body = append(body, '[')
		for i, it := range items {
			ev, err := benchOpenEvent(it.g, p.dataBytes, now)
			if err != nil {
				return err
			}
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, ev...)
		}
		body = append(body, ']')
		sent := time.Now()
		for _, it := range items {
			p.stamp(it.g, cmpTime(it.due, sent))
		}
		if err := p.post(ctx, body); err != nil {
			return err
		}
		took := time.Since(sent)
		p.mu.Lock()
		p.took = append(p.took, took)
		p.mu.Unlock()
		p.published.Add(int64(len(items)))
	}
}

// cmpTime is t, or or when t is zero.
func cmpTime(t, or time.Time) time.Time {
	if t.IsZero() {
		return or
	}
	return t
}

// post sends one array, again when the API refuses it with 429 or 5xx or
// the request fails on the way (at most benchPublishAttempts tries).
func (p *benchOpenPublisher) post(ctx context.Context, body []byte) error {
	var err error
	for try := 1; try <= benchPublishAttempts; try++ {
		err = p.client.Do(ctx, http.MethodPost, "/v1/events", json.RawMessage(body), nil)
		var apiErr *client.Error
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &apiErr) && apiErr.Status != http.StatusTooManyRequests && apiErr.Status < 500:
			return fmt.Errorf("POST /v1/events: %w", err)
		}
		p.retries.Add(1)
		t := time.NewTimer(time.Duration(try) * 100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return fmt.Errorf("POST /v1/events, %d tries: %w", benchPublishAttempts, err)
}

// openLoop runs an open-loop scenario: it publishes every event without
// waiting for deliveries, then waits for the deliveries as long as they
// keep coming.
func (r *benchRun) openLoop(ctx context.Context) (benchPhaseResult, error) {
	n := r.c.burstEvents(r.sc)
	if r.sc.loop == benchPaced {
		n = benchPacedEvents(r.c.rate, r.c.duration)
	}
	r.rec.setPhase(benchOpen, n)
	pub := newBenchOpenPublisher(r.child.base, nil, r.c.dataBytes, func(g int, at time.Time) { r.rec.stampOne(benchOpen, g, at) })
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cpu0 := r.cpuNow()
	start := time.Now()
	done := pub.start(ctx)
	if r.sc.loop == benchBurst {
		pub.put(0, n, time.Time{})
	} else if err := r.pace(ctx, pub, n, start, done); err != nil {
		return benchPhaseResult{}, err
	}
	pub.close()
	if err := <-done; err != nil {
		return benchPhaseResult{}, err
	}
	pubElapsed := time.Since(start)
	reqP50, reqP99 := pub.requestTimes()
	r.log.Info("bench: published", "scenario", r.sc.name, "events", n, "took", pubElapsed.Round(time.Millisecond),
		"events_per_s", int(float64(n)/pubElapsed.Seconds()), "requests", len(pub.took), "request_p50", reqP50.Round(time.Microsecond),
		"request_p99", reqP99.Round(time.Microsecond), "request_retries", pub.retries.Load())
	ok, err := r.rec.waitProgress(ctx, benchOpen, n, benchWait)
	if err != nil {
		return benchPhaseResult{}, err
	}
	if !ok {
		r.log.Warn("bench: deliveries still missing, none arrived for a while", "scenario", r.sc.name, "wait", benchWait)
	}
	res := benchPhaseResult{events: n, elapsed: time.Since(start), offered: float64(n) / pubElapsed.Seconds()}
	cpu1 := r.cpuNow()
	res.childCPU = cpu1.child - cpu0.child
	other := (cpu1.busy - cpu0.busy) - res.childCPU - (cpu1.self - cpu0.self)
	res.others = max(0, other.Seconds()/(res.elapsed.Seconds()*float64(runtime.NumCPU())))
	r.log.Info("bench: open-loop scenario delivered", "scenario", r.sc.name, "elapsed", res.elapsed.Round(time.Millisecond),
		"deliveries_per_s_by_fifth", ratesByFifth(r.rec.stats(benchOpen, benchHealthy).times))
	return res, nil
}

// pace queues the events as they fall due, every benchPaceTick, whatever
// the publishers and the pipeline do.
func (r *benchRun) pace(ctx context.Context, pub *benchOpenPublisher, n int, start time.Time, done <-chan error) error {
	tick := time.NewTicker(benchPaceTick)
	defer tick.Stop()
	rate := float64(r.c.rate)
	queued := 0
	for queued < n {
		now := time.Now()
		if due := benchDue(now.Sub(start), rate, n); due > queued {
			pub.put(queued, due, now)
			queued = due
		}
		if queued == n {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-done:
			if err == nil {
				err = errors.New("the publishers stopped early")
			}
			return err
		case <-tick.C:
		}
	}
	return nil
}

// openRows are an open-loop scenario's lines of the table: one, or with
// the slow and dead endpoints one for the healthy endpoints and one for
// the bad ones.
func (r *benchRun) openRows(res benchPhaseResult, rssKB, putOff int64) []benchRow {
	all := r.rec.stats(benchOpen, benchAll)
	row := func(name string, sub benchSubset, webhooks int) benchRow {
		s := r.rec.stats(benchOpen, sub)
		lat := slices.Clone(s.lat)
		slices.Sort(lat)
		return benchRow{
			name: name, loop: r.sc.loop, webhooks: webhooks, events: res.events,
			deliveries: s.distinct, perSec: sustainedRate(s.times), offered: res.offered * float64(webhooks),
			p50: quantile(lat, 0.50), p95: quantile(lat, 0.95), p99: quantile(lat, 0.99), mx: quantile(lat, 1),
			cpuPer1k: res.childCPU.Seconds() * 1000 / float64(max(1, all.distinct)), others: res.others,
			rssKB: rssKB, putOff: putOff, dups: s.dups, swaps: s.swaps, via: benchViaAPI,
			lost: res.events*webhooks - s.distinct,
		}
	}
	if !r.sc.bad {
		return []benchRow{row(r.sc.name, benchHealthy, r.sc.healthy)}
	}
	bad := row(r.sc.name+"/bad", benchBad, 2)
	bad.lost = -1 // the dead endpoint never receives anything
	return []benchRow{row(r.sc.name+"/healthy", benchHealthy, r.sc.healthy), bad}
}

// isolation is one isolation ratio: the healthy endpoints' p99 beside the
// slow and dead endpoints (row beside) over their p99 alone (row alone).
type isolation struct {
	beside, alone string
	ratio         float64
}

// isolationRatios is the ratio of every scenario with bad endpoints whose
// alone scenario ran too, in the rows' order.
func isolationRatios(rows []benchRow) []isolation {
	p99 := map[string]time.Duration{}
	for _, r := range rows {
		p99[r.name] = r.p99
	}
	var out []isolation
	for _, r := range rows {
		name, ok := strings.CutSuffix(r.name, "/healthy")
		if !ok {
			continue
		}
		alone := benchScenarioNamed(name).alone
		if a := p99[alone]; alone != "" && a > 0 && r.p99 > 0 {
			out = append(out, isolation{beside: r.name, alone: alone, ratio: float64(r.p99) / float64(a)})
		}
	}
	return out
}

// received is how many receipts of a phase there were, first or not.
func (r *benchRecorder) received(phase int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.phases[phase].subsets[benchAll]
	return s.distinct + s.dups
}

// waitProgress waits until every healthy endpoint has need distinct
// deliveries of a phase, for as long as deliveries keep arriving: false
// when none arrived for stall.
func (r *benchRecorder) waitProgress(ctx context.Context, phase, need int, stall time.Duration) (bool, error) {
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	last, lastAt := r.received(phase), time.Now()
	for r.slowest(phase) < need {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-r.progress:
		case <-poll.C:
		}
		if got := r.received(phase); got != last {
			last, lastAt = got, time.Now()
		} else if time.Since(lastAt) > stall {
			return false, nil
		}
	}
	return true, nil
}
