package sender

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/schemas"
)

// coreHarness drives a core directly: its webhooks, its health, the
// effects it asks for.
type coreHarness struct {
	t    *testing.T
	c    *core
	now  time.Time
	hook *simHooks
	sent []*item
}

func newCoreHarness(t *testing.T) *coreHarness {
	t.Helper()
	h := &coreHarness{t: t, now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), hook: &simHooks{m: map[string]schemas.Webhook{}}}
	cfg := StageConfig{Schedule: MustSchedule("1s,3s,10s"), MaxQueueWait: 4 * time.Second}.WithDefaults()
	h.c = newCore(cfg.coreConfig("s1"), 1, h.hook, newBreakers(cfg.Breaker, nil, func() time.Time { return h.now }),
		&simHealth{since: map[string]time.Time{}}, newMetrics(nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.hook.m["w"] = schemas.Webhook{ID: "w", Tenant: "t", Enabled: true, Retries: 5, MaxConcurrency: 1}
	return h
}

// arrive gives the core a job and collects what it asks to send.
func (h *coreHarness) arrive(job schemas.Job) {
	h.c.arrive(h.now, job, nil, srcPart{topic: schemas.TopicDeliveries}, 0, h.now, 1000)
	h.take()
}

func (h *coreHarness) take() (emitted int) {
	for _, f := range h.c.take() {
		switch f.kind {
		case effSend:
			h.sent = append(h.sent, f.it)
		case effEmit:
			emitted++
		}
	}
	return emitted
}

func (h *coreHarness) advance(d time.Duration) {
	h.now = h.now.Add(d)
	h.c.tick(h.now)
	h.take()
}

// TestAPutOffThatNeverComesBackIsForgotten: a job put off to
// hookline.overflow that never comes back to this sender (another took its
// partition, or a crash lost its write) holds its resource's later jobs
// only for the order hold past its due time, and then its endpoint, with
// nothing left, is forgotten: no record of it stays. (Before, such
// put-offs stayed recorded for ever: the endpoint was never forgotten and
// its resource detoured through the retry topics for good.)
func TestAPutOffThatNeverComesBackIsForgotten(t *testing.T) {
	h := newCoreHarness(t)
	job := func(id string) schemas.Job {
		return schemas.Job{DeliveryID: id, WebhookID: "w", Tenant: "t", EventIDs: []string{"e" + id}, ResourceID: "r", Payload: []byte(`{}`)}
	}
	h.arrive(job("d1")) // in flight: max_concurrency 1
	h.arrive(job("d2")) // queued behind it
	e := h.c.endpoints["w"]
	it := e.queuedItems()[0]
	h.c.putOff(it, whyBusy, h.now)
	if h.take() == 0 || e.nOut != 1 {
		t.Fatalf("the put-off wrote nothing or was not recorded (%d out)", e.nOut)
	}
	h.c.finished(h.now, h.sent[0], delivery.Result{Attempt: schemas.Attempt{StatusCode: 204}, Outcome: delivery.Outcome{Class: delivery.Succeeded}}, true)
	h.take()
	// d2 never comes back. A later job of its resource waits behind it.
	h.arrive(job("d3"))
	if len(h.sent) != 1 || len(e.held) != 1 {
		t.Fatalf("a later job of the resource went ahead of the put-off (%d sent, %d held)", len(h.sent), len(e.held))
	}
	h.advance(h.c.cfg.orderHold + time.Second) // d3 follows d2 onto the overflow
	h.advance(h.c.cfg.overflowDelay() + h.c.cfg.parkLimit() + h.c.cfg.orderHold + 2*time.Second)
	if len(h.c.endpoints) != 0 || len(h.c.wakes) != 0 || h.c.bytes != 0 {
		t.Fatalf("after every put-off is past its time: %d endpoints, %d wakes, %d bytes held; want nothing", len(h.c.endpoints), len(h.c.wakes), h.c.bytes)
	}
	// A later job of the resource goes at once.
	h.arrive(job("d4"))
	if len(h.sent) != 2 || h.sent[1].job.DeliveryID != "d4" {
		t.Fatalf("the next job of the resource waited for put-offs that are gone (%d sent)", len(h.sent))
	}
}

// TestACutRequestNeverClosesTheCircuit: a half-open circuit's probe that
// a rebalance or the drain deadline cut short is no success: the circuit
// stays half-open and the next request is the probe. (Before: the drain
// cut and a put-off behind another job reported a success to gobreaker.)
func TestACutRequestNeverClosesTheCircuit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { // gobreaker reads time.Now
		h := newCoreHarness(t)
		h.now = time.Now()
		for range int(h.c.breakers.cfg.Failures) {
			done, err := h.c.breakers.Allow("w")
			if err != nil {
				t.Fatal(err)
			}
			done(Unhealthy)
		}
		time.Sleep(h.c.breakers.Cooldown() + time.Second)
		h.now = time.Now()
		h.arrive(schemas.Job{DeliveryID: "d1", WebhookID: "w", Tenant: "t", EventIDs: []string{"e"}, ResourceID: "r", Payload: []byte(`{}`)})
		if len(h.sent) != 1 {
			t.Fatalf("the half-open circuit let %d requests through, want the probe", len(h.sent))
		}
		h.c.finished(h.now, h.sent[0], delivery.Result{}, false)
		h.take()
		if st := h.c.breakers.State("w"); st != BreakerHalfOpen {
			t.Fatalf("after a cut probe the circuit is %s, want half-open", st)
		}
		h.arrive(schemas.Job{DeliveryID: "d2", WebhookID: "w", Tenant: "t", EventIDs: []string{"e2"}, ResourceID: "r2", Payload: []byte(`{}`)})
		if len(h.sent) != 2 {
			t.Fatalf("after a cut probe, %d requests in all, want the next job as the probe", len(h.sent))
		}
	})
}

// TestAJobWaitingForAnOpenCircuitIsWrittenOnce: the open period's probe
// comes back exactly when the circuit lets it through (on down the ladder
// from a shorter rung); every other job put off for the circuit goes, in
// one write, to the shortest delay topic that waits past the probe, due
// exactly its delay after it is written, not hopped down the ladder.
func TestAJobWaitingForAnOpenCircuitIsWrittenOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { // gobreaker reads time.Now
		h := newCoreHarness(t)
		cfg := StageConfig{Schedule: MustSchedule("10s,1m,5m"), MaxQueueWait: 4 * time.Second}.WithDefaults()
		h.c.cfg = cfg.coreConfig("s1")
		h.now = time.Now()
		for range int(h.c.breakers.cfg.Failures) {
			done, err := h.c.breakers.Allow("w")
			if err != nil {
				t.Fatal(err)
			}
			done(Unhealthy)
		}
		opens := h.c.breakers.OpenUntil("w")
		var put []effect
		for i := range 3 {
			h.c.arrive(h.now, schemas.Job{DeliveryID: fmt.Sprint("d", i), WebhookID: "w", Tenant: "t", EventIDs: []string{"e"},
				ResourceID: fmt.Sprint("r", i), Payload: []byte(`{}`)}, nil, srcPart{topic: schemas.TopicDeliveries}, int64(i), h.now, 1000)
			put = append(put, h.c.take()...)
		}
		if len(h.sent) != 0 || len(put) != 3 {
			t.Fatalf("%d sent, %d effects; want 3 put off", len(h.sent), len(put))
		}
		for i, f := range put {
			var job *kafka.Message
			for _, m := range f.messages(false) {
				if m.Topic != schemas.TopicAttempts {
					job = &m
				}
			}
			if job == nil {
				t.Fatalf("put-off %d wrote no job", i)
			}
			due := records.DueAt(*job)
			var j schemas.Job
			if err := records.DecodeJob(job.Value, &j); err != nil {
				t.Fatal(err)
			}
			switch {
			case i == 0 && (job.Topic != "hookline.retry.10s" || j.DueAt.Before(opens) || j.DueAt.After(opens.Add(h.c.breakers.Cooldown()/10))):
				t.Errorf("the probe went to %s due %v, want hookline.retry.10s, due as the circuit lets it through (%v)", job.Topic, j.DueAt, opens)
			case i > 0 && (job.Topic != "hookline.retry.1m" || !due.Equal(h.now.Add(time.Minute)) || !j.DueAt.Equal(due)):
				t.Errorf("put-off %d went to %s due %v (job due %v), want hookline.retry.1m due a minute after it was written (%v)",
					i, job.Topic, due, j.DueAt, h.now.Add(time.Minute))
			}
			if i == 0 && !due.Equal(h.now.Add(10*time.Second)) {
				t.Errorf("the probe's record is due %v, want exactly its topic's delay after it was written", due.Sub(h.now))
			}
		}
	})
}

// TestALanesFirstJobGetsTheRoomItsFollowersHold: when memory is full of
// jobs held behind earlier jobs of their lanes that are away, a lane's
// earlier job coming back is queued, not put off for memory: the latest
// followers of other lanes make room (they would follow their own earlier
// jobs onto hookline.overflow anyway), written in seq order so that they
// come back in their lanes' order. (Before, a deep backlog's lanes, each
// led by a job away, filled memory with jobs none of which could go, and
// the jobs they waited for bounced off the full memory: a burst of
// 200,000 events to one fast endpoint went at 1,000 a second.)
func TestALanesFirstJobGetsTheRoomItsFollowersHold(t *testing.T) {
	h := newCoreHarness(t)
	h.c.cfg.maxBytes = 3000 // three jobs of the harness's 1,000 bytes
	job := func(id, resource string) schemas.Job {
		return schemas.Job{DeliveryID: id, WebhookID: "w", Tenant: "t", EventIDs: []string{"e" + id}, ResourceID: resource, Payload: []byte(`{}`)}
	}
	h.arrive(job("d0", "r0")) // in flight: max_concurrency 1
	e := h.c.endpoints["w"]
	places := map[string]*schemas.QueuePlace{}
	for _, r := range []string{"r1", "r2", "r3"} {
		h.arrive(job("a-"+r, r))
		it := h.c.live["a-"+r]
		places[r] = &schemas.QueuePlace{Session: h.c.cfg.session, Seq: it.seq, Pos: it.pos}
		h.c.putOff(it, whyBusy, h.now)
		h.take()
	}
	for _, r := range []string{"r1", "r2", "r3"} {
		h.arrive(job("f-"+r, r))
	}
	if len(e.held) != 3 || e.queued != 0 {
		t.Fatalf("%d held, %d queued; want the three followers held", len(e.held), e.queued)
	}
	back := job("a-r1", "r1")
	back.Queue = places["r1"]
	h.c.arrive(h.now, back, nil, srcPart{topic: schemas.TopicOverflow}, 0, h.now, 1000)
	var shed []string
	for _, f := range h.c.take() {
		if f.kind == effEmit {
			shed = append(shed, f.it.job.DeliveryID)
		}
	}
	if e.queued != 2 || len(e.held) != 0 {
		t.Fatalf("%d queued, %d held; want a-r1 and its follower queued", e.queued, len(e.held))
	}
	if want := []string{"f-r2", "f-r3"}; !slices.Equal(shed, want) {
		t.Fatalf("put off %v, want %v (the other lanes' followers, in seq order)", shed, want)
	}
}

// TestAJobOfAnUnreadableWebhookWaits: a job whose webhook's latest change
// cannot be read (another --secrets-key) is neither sent nor failed as if
// its webhook were gone: it waits in memory, uncommitted, and goes once
// the webhook can be read. (Before, it was dropped as a job of an unknown
// webhook, and its input committed.)
func TestAJobOfAnUnreadableWebhookWaits(t *testing.T) {
	h := newCoreHarness(t)
	h.hook.bad = map[string]string{"w2": "its secrets do not open with --secrets-key"}
	var emitted int
	h.c.arrive(h.now, schemas.Job{DeliveryID: "d1", WebhookID: "w2", Tenant: "t", EventIDs: []string{"e"}, ResourceID: "r", Payload: []byte(`{}`)},
		nil, srcPart{topic: schemas.TopicDeliveries}, 0, h.now, 1000)
	emitted += h.take()
	for range 5 {
		h.advance(time.Second)
		emitted += h.take()
	}
	if len(h.sent) != 0 || emitted != 0 || h.c.bytes != 1000 {
		t.Fatalf("%d sent, %d emitted, %d bytes held; want the job held, nothing sent or written", len(h.sent), emitted, h.c.bytes)
	}
	h.hook.m["w2"] = schemas.Webhook{ID: "w2", Tenant: "t", Enabled: true, Retries: 5, MaxConcurrency: 1}
	delete(h.hook.bad, "w2")
	h.advance(time.Second)
	if len(h.sent) != 1 || h.sent[0].job.DeliveryID != "d1" {
		t.Fatalf("%d sent once the webhook can be read, want d1", len(h.sent))
	}
}

// TestAFastEndpointsCapacityIsReadAtItsMaxConcurrency: an endpoint whose
// concurrency limit has not grown yet (4 of its 32) answering in 6 ms is
// read at what 32 requests at 6 ms send, not 4: read at its limit, a burst's
// first seconds trimmed a fast endpoint's queue to a tenth of its pace and
// sent the rest round hookline.overflow (a 200,000-event burst: 750,000
// put-offs).
func TestAFastEndpointsCapacityIsReadAtItsMaxConcurrency(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	e := newEndpoint("w", 0, 4, 32)
	for i := range 20 {
		e.latencies.add(now.Add(time.Duration(i)*time.Millisecond), 6*time.Millisecond)
	}
	now = now.Add(20 * time.Millisecond)
	if got, want := e.capacity(2500*time.Millisecond, now), 13000; got < want {
		t.Fatalf("capacity in 2.5 s = %d jobs, want about %d (32 requests in flight at 6 ms)", got, want)
	}
}

// TestAPendingMarkCarriesTheRequestBodyOnItsFirstWait: a delivery put off
// for room before any attempt is marked pending in its history with its
// request body (the payload it will send), copied when the record is
// built and no longer at the put-off (42c5f03); a job put off after an
// attempt gets no mark (its attempt's record already says it waits).
func TestAPendingMarkCarriesTheRequestBodyOnItsFirstWait(t *testing.T) {
	h := newCoreHarness(t)
	payload := []byte(`{"event_type":"ticket.updated","data":{"id":"t1"}}`)
	job := func(id string, attempts int) schemas.Job {
		return schemas.Job{DeliveryID: id, WebhookID: "w", Tenant: "t", EventIDs: []string{"e" + id},
			ResourceID: id, Payload: payload, Attempts: attempts}
	}
	h.arrive(job("d0", 0)) // in flight: max_concurrency 1
	h.arrive(job("d1", 0))
	h.arrive(job("d2", 2))
	e := h.c.endpoints["w"]
	marks := func() map[string]schemas.Attempt {
		out := map[string]schemas.Attempt{}
		for _, f := range h.c.take() {
			if f.kind != effEmit {
				continue
			}
			for _, m := range f.out.build() {
				if m.Topic != schemas.TopicAttempts {
					continue
				}
				var a schemas.Attempt
				if err := json.Unmarshal(m.Value, &a); err != nil {
					t.Fatal(err)
				}
				out[a.DeliveryID] = a
			}
		}
		return out
	}
	for _, it := range e.queuedItems() {
		h.c.putOff(it, whyBusy, h.now)
	}
	got := marks()
	if a, ok := got["d1"]; !ok || a.State != schemas.StatePending || a.N != 0 || a.RequestBody != string(payload) {
		t.Errorf("first wait of a new delivery: %+v, want a pending mark with the payload as its body", a)
	}
	if a, ok := got["d2"]; ok {
		t.Errorf("a wait after an attempt was marked (%+v): its attempt's record says it waits", a)
	}
}

// A queued job costs the sender its payload and an item: tens of thousands
// wait in a burst (50,000 events: ~45,000 at the peak). An item carried its
// request's webhook (384 bytes) until its in-flight state moved to a
// flight made when it is sent (issue 23: 872 -> 480 bytes, burst peak RSS
// 450 -> 365 MiB); this keeps it from growing back unnoticed.
func TestAQueuedJobsItemStaysSmall(t *testing.T) {
	if size := unsafe.Sizeof(item{}); size > 512 {
		t.Fatalf("an item is %d bytes, over 512: what only a job in flight needs belongs in flight", size)
	}
}
