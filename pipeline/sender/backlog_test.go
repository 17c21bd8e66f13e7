package sender

import (
	"fmt"
	"testing"
	"time"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/schemas"
)

// Tests of how an endpoint's backlog waits on the delay topics: parked
// until there is room, joined by new jobs, each lane back in its order.

func backlogJob(id, resource string) schemas.Job {
	return schemas.Job{DeliveryID: id, WebhookID: "w", Tenant: "t", EventIDs: []string{"e" + id}, ResourceID: resource, Payload: []byte(`{}`)}
}

// beside makes a job of another webhook come from w's partition, and go
// out: w no longer keeps all of its backlog in memory (core.keepsAll).
func (h *coreHarness) beside() {
	h.hook.m["beside"] = schemas.Webhook{ID: "beside", Tenant: "t", Enabled: true, Retries: 5, MaxConcurrency: 1}
	job := backlogJob(fmt.Sprint("beside", len(h.sent)), "z")
	job.WebhookID = "beside"
	h.c.arrive(h.now, job, nil, srcPart{topic: schemas.TopicDeliveries}, 0, h.now, 1000)
	h.take()
}

// overflowJob is the job the effects wrote to hookline.overflow, as it
// comes back from there.
func overflowJob(t *testing.T, effects []effect) schemas.Job {
	t.Helper()
	for _, f := range effects {
		for _, m := range f.out.build() {
			if m.Topic == schemas.TopicOverflow {
				var job schemas.Job
				if err := records.DecodeJob(m.Value, &job); err != nil {
					t.Fatal(err)
				}
				return job
			}
		}
	}
	t.Fatal("nothing was written to hookline.overflow")
	return schemas.Job{}
}

// putOffTopics returns the topics of the jobs the effects since the last
// take wrote.
func (h *coreHarness) putOffTopics() []string {
	var out []string
	for _, f := range h.c.take() {
		if f.kind != effEmit {
			continue
		}
		for _, m := range f.out.build() {
			if m.Topic != schemas.TopicAttempts {
				out = append(out, m.Topic)
			}
		}
	}
	return out
}

// TestALaterJobOfALaneNeverComesBackBeforeAnEarlierOne: a job put off for
// room whose lane's earlier job is away on a longer delay (a deep
// backlog's job, put off to the 10 s topic) waits as long, on the rung
// that comes back after it, not on hookline.overflow: back first, it would
// only be held behind the earlier one and go round again. (Before: a
// 200,000-job backlog's lanes came back out of order and each job went
// round three times.) A rung far longer than the earlier job's wait is
// not taken.
func TestALaterJobOfALaneNeverComesBackBeforeAnEarlierOne(t *testing.T) {
	h := newCoreHarness(t)
	h.arrive(backlogJob("d1", "r")) // in flight: max_concurrency 1
	h.arrive(backlogJob("d2", "r"))
	h.arrive(backlogJob("d3", "r"))
	h.arrive(backlogJob("d4", "r"))
	e := h.c.endpoints["w"]
	q := e.queuedItems()
	d2, d3, d4 := q[0], q[1], q[2]
	h.c.putOff(d2, whyBusy, h.now)
	if got := h.putOffTopics(); len(got) != 1 || got[0] != schemas.TopicOverflow {
		t.Fatalf("d2 went to %v, want %s", got, schemas.TopicOverflow)
	}
	e.out["r"][0].back = h.now.Add(9 * time.Second) // as if its place sent it to the 10 s topic
	h.c.putOff(d3, whyBusy, h.now)
	if got, want := h.putOffTopics(), h.c.cfg.schedule.Topic(2); len(got) != 1 || got[0] != want {
		t.Fatalf("d3, behind d2 back in 9 s, went to %v, want %s (10 s)", got, want)
	}
	// An earlier job away for an hour: the longest rung under its wait,
	// not one twice as long.
	e.out["r"][0].back = h.now.Add(time.Hour)
	e.out["r"][1].back = h.now.Add(time.Hour)
	h.c.putOff(d4, whyBusy, h.now)
	if got, want := h.putOffTopics(), h.c.cfg.schedule.Topic(2); len(got) != 1 || got[0] != want {
		t.Fatalf("d4, behind jobs back in an hour, went to %v, want %s", got, want)
	}
}

// TestANewJobJoinsItsEndpointsBacklog: while jobs of an endpoint wait on
// hookline.overflow for room, enough to fill its queue, a new job of it
// that would wait in its queue goes there too, behind them, and a job
// back from there takes the room: the backlog goes first. A new job that
// the endpoint would otherwise wait for (its queue shorter than its
// concurrency) is queued.
func TestANewJobJoinsItsEndpointsBacklog(t *testing.T) {
	h := newCoreHarness(t)
	h.arrive(backlogJob("d1", "a")) // in flight
	h.arrive(backlogJob("d2", "b")) // queued
	h.now = h.now.Add(time.Second)
	h.c.finished(h.now, h.sent[0], delivery.Result{Attempt: schemas.Attempt{StatusCode: 204}, Outcome: delivery.Outcome{Class: delivery.Succeeded}}, true)
	h.take()                        // a latency: its pace is 1/s, its queue holds 2 jobs once behind; d2 in flight
	h.arrive(backlogJob("d3", "c")) // queued
	h.arrive(backlogJob("d4", "d")) // queued, then put off for room
	e := h.c.endpoints["w"]
	h.c.putOff(e.queuedItems()[1], whyBusy, h.now)
	back := overflowJob(t, h.c.take()) // d4 as it comes back: as it was written
	if e.roomOut != 1 || e.queued != 1 {
		t.Fatalf("%d away for room, %d queued; want 1 and 1", e.roomOut, e.queued)
	}

	h.arrive(backlogJob("d5", "e"))
	if e.queued != 1 || e.roomOut != 2 {
		t.Fatalf("a new job with the backlog away: %d queued, %d away; want it put off behind them", e.queued, e.roomOut)
	}
	h.c.arrive(h.now, back, nil, srcPart{topic: schemas.TopicOverflow}, 0, h.now, 1000)
	h.take()
	if e.queued != 2 || e.roomOut != 1 {
		t.Fatalf("a job back from the overflow: %d queued, %d away; want it queued", e.queued, e.roomOut)
	}

	// The queue empties: a new job is queued rather than leave the
	// endpoint idle.
	for e.queued > 0 || e.inflight > 0 {
		h.now = h.now.Add(10 * time.Millisecond)
		h.c.finished(h.now, h.sent[len(h.sent)-1], delivery.Result{Attempt: schemas.Attempt{StatusCode: 204}, Outcome: delivery.Outcome{Class: delivery.Succeeded}}, true)
		h.take()
	}
	h.arrive(backlogJob("d6", "f"))
	if e.roomOut != 1 || len(h.sent) == 0 || h.sent[len(h.sent)-1].job.DeliveryID != "d6" {
		t.Fatalf("a new job to an idle endpoint with its backlog away was not sent (%d away)", e.roomOut)
	}
}

// TestAnEndpointParksOnlyOnAPartitionOfItsOwn: room lists an endpoint
// short of room (its jobs back from hookline.overflow wait there, parked)
// only while no other endpoint with jobs away reads from its partition: a
// parked head would hold theirs back. Memory's room is counted in jobs.
func TestAnEndpointParksOnlyOnAPartitionOfItsOwn(t *testing.T) {
	h := newCoreHarness(t)
	h.hook.m["x"] = schemas.Webhook{ID: "x", Tenant: "t", Enabled: true, Retries: 5, MaxConcurrency: 1}
	h.arrive(backlogJob("d1", "a")) // in flight
	h.arrive(backlogJob("d2", "b"))
	h.beside()
	e := h.c.endpoints["w"]
	h.c.putOff(e.queuedItems()[0], whyBusy, h.now)
	h.take()
	spot, ok := h.c.room(h.now)["w"]
	if want := e.capacity(h.c.cfg.horizon(), h.now) - e.queued; !ok || spot.left != want || spot.part != 0 {
		t.Fatalf("w behind: room %+v (listed %v), want %d on partition 0", spot, ok, want)
	}

	other := func(id string, partition int) {
		job := backlogJob(id, "z")
		job.WebhookID = "x"
		h.c.arrive(h.now, job, nil, srcPart{topic: schemas.TopicDeliveries, partition: partition}, 0, h.now, 1000)
		h.take()
	}
	other("x1", 0) // in flight
	other("x2", 0)
	x := h.c.endpoints["x"]
	h.c.putOff(x.queuedItems()[0], whyCircuit, h.now)
	h.take()
	if room := h.c.room(h.now); len(room) != 0 {
		t.Fatalf("w and x both with jobs away on partition 0: room %v, want neither parked", room)
	}
	x.part = 1
	if _, ok := h.c.room(h.now)["w"]; !ok {
		t.Fatal("x's jobs read from partition 1: w does not park on its own partition 0")
	}

	// Memory: what is free, in jobs of the size w holds.
	h2 := newCoreHarness(t)
	h2.c.cfg.maxBytes = 10_500
	h2.arrive(backlogJob("m1", "a")) // in flight
	for i := range 5 {
		h2.arrive(backlogJob("m"+string(rune('2'+i)), "b"))
	}
	if room := h2.c.room(h2.now); len(room) != 0 {
		t.Fatalf("nothing away, nothing to park: room %v", room)
	}
	w := h2.c.endpoints["w"]
	h2.c.putOff(w.queuedItems()[4], whyMemory, h2.now)
	h2.take()
	if spot := h2.c.room(h2.now)["w"]; spot.left != 5 {
		t.Fatalf("4 jobs of 1,000 bytes waiting under a 10,500-byte bound: room %d, want 5 (6 fit, less one: a job a little bigger than those held would be put off for memory)", spot.left)
	}
}

// TestParked: a job put off for room comes back at its time if its
// endpoint has room; without room it is looked at again on the recheck
// grid, until parkLimit past its time.
func TestParked(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 5_000_000, time.UTC)
	const parkLimit = 5 * time.Second
	none, some := func() bool { return true }, func() bool { return false }
	if got := parked(now.Add(time.Second), now, parkLimit, none); !got.Equal(now.Add(time.Second)) {
		t.Errorf("not due yet: %v, want its due time", got)
	}
	if got := parked(now, now, parkLimit, some); !got.Equal(now) {
		t.Errorf("due, with room: %v, want now", got)
	}
	if got := parked(now.Add(-time.Second), now, parkLimit, none); !got.After(now) || got.Sub(now) > roomRecheck {
		t.Errorf("due, without room: %v, want within %v", got, roomRecheck)
	}
	if got := parked(now.Add(-parkLimit), now, parkLimit, none); got.After(now) {
		t.Errorf("parked for parkLimit: %v, want it back now", got)
	}
}

// TestATrimGivesUpTheNewestJobs: an endpoint fallen behind with more
// queued than it sends in its horizon gives up its newest jobs (by their
// place), not those queued last: a job back from a put-off, queued after
// newer ones, stays, or it would go round again while they went first.
func TestATrimGivesUpTheNewestJobs(t *testing.T) {
	h := newCoreHarness(t)
	h.arrive(backlogJob("d0", "a")) // in flight
	h.arrive(backlogJob("d1", "b")) // queued
	h.now = h.now.Add(10 * time.Millisecond)
	h.c.finished(h.now, h.sent[0], delivery.Result{Attempt: schemas.Attempt{StatusCode: 204}, Outcome: delivery.Outcome{Class: delivery.Succeeded}}, true)
	h.take() // a pace of 100/s: it sends 200 in its horizon; d1 in flight, for good
	h.beside()
	e := h.c.endpoints["w"]
	h.arrive(backlogJob("early", "early"))
	for i := range 399 {
		h.arrive(backlogJob(fmt.Sprint("n", i), fmt.Sprint("r", i)))
	}
	early := e.lanes["early"].q[0]
	h.c.putOff(early, whyBusy, h.now)
	back := overflowJob(t, h.c.take())
	h.now = h.now.Add(time.Second)
	h.c.arrive(h.now, back, nil, srcPart{topic: schemas.TopicOverflow}, 0, h.now, 1000)
	h.take()
	if e.queued != 400 {
		t.Fatalf("%d queued, want 400 (the early job back)", e.queued)
	}
	h.advance(h.c.cfg.slowAfter() + 100*time.Millisecond) // behind: the trim
	if e.queued >= 400 {
		t.Fatalf("%d queued after the trim: nothing was given up", e.queued)
	}
	if ln := e.lanes["early"]; ln == nil || len(ln.q) != 1 {
		t.Fatal("the job back from a put-off, the oldest queued, was given up")
	}
	if ln := e.lanes["r398"]; ln != nil {
		t.Fatal("the newest job was kept")
	}
}

// pacedHarness is a core whose endpoint w has shown a pace of 100/s (one
// request of 10 ms, its max_concurrency 1): it keeps 200 jobs in its
// horizon once behind.
func pacedHarness(t *testing.T) *coreHarness {
	h := newCoreHarness(t)
	h.arrive(backlogJob("d0", "a")) // in flight
	h.now = h.now.Add(10 * time.Millisecond)
	h.c.finished(h.now, h.sent[0], delivery.Result{Attempt: schemas.Attempt{StatusCode: 204}, Outcome: delivery.Outcome{Class: delivery.Succeeded}}, true)
	h.take()
	return h
}

// TestAnEndpointAloneOnItsPartitionKeepsItsBacklog: an endpoint fallen
// behind keeps its whole queue in memory while no other webhook's job
// came from its partition (its queue holds no one's commit back); once
// one does, it is trimmed to what it sends in its horizon, until it holds
// nothing again. A job of another partition changes nothing.
func TestAnEndpointAloneOnItsPartitionKeepsItsBacklog(t *testing.T) {
	h := pacedHarness(t)
	for i := range 400 {
		h.arrive(backlogJob(fmt.Sprint("n", i), fmt.Sprint("r", i)))
	}
	e := h.c.endpoints["w"]
	h.hook.m["far"] = schemas.Webhook{ID: "far", Tenant: "t", Enabled: true, Retries: 5, MaxConcurrency: 1}
	far := backlogJob("far1", "z")
	far.WebhookID = "far"
	h.c.arrive(h.now, far, nil, srcPart{topic: schemas.TopicDeliveries, partition: 1}, 0, h.now, 1000)
	h.take()
	h.advance(h.c.cfg.slowAfter() + 100*time.Millisecond) // behind
	if e.queued != 399 || e.roomOut != 0 {
		t.Fatalf("alone on its partition: %d queued, %d away; want 399 queued (one in flight) and none away", e.queued, e.roomOut)
	}
	h.beside()
	h.advance(10 * time.Millisecond)
	if e.queued >= 399 || e.roomOut == 0 {
		t.Fatalf("another webhook's job from its partition: %d queued, %d away; want it trimmed", e.queued, e.roomOut)
	}
	if !e.shared {
		t.Fatal("not marked shared")
	}
	for e.queued > 0 || e.inflight > 0 {
		h.now = h.now.Add(10 * time.Millisecond)
		for _, it := range h.sent {
			if it.state == stateInFlight && it.e == e {
				h.c.finished(h.now, it, delivery.Result{Attempt: schemas.Attempt{StatusCode: 204}, Outcome: delivery.Outcome{Class: delivery.Succeeded}}, true)
			}
		}
		h.take()
	}
	if e.shared {
		t.Fatal("an endpoint that holds nothing is still marked shared: it would never keep its backlog again")
	}
}

// TestATrimPutsOffABurstAtATime: a trim of more than putOffBurst jobs puts
// off putOffBurst and has the core look again at once (its lock let go
// between); a trim that can give up nothing (every tail's lane has a
// later job away) does not: it would look again and again for nothing.
func TestATrimPutsOffABurstAtATime(t *testing.T) {
	h := pacedHarness(t)
	h.beside()
	for i := range 1000 {
		h.arrive(backlogJob(fmt.Sprint("n", i), fmt.Sprint("r", i)))
	}
	e := h.c.endpoints["w"]
	h.now = h.now.Add(h.c.cfg.slowAfter() + 100*time.Millisecond)
	h.c.service(e, h.now) // behind: the trim
	if away := e.roomOut; away != putOffBurst || !e.more || !h.c.next().Equal(h.now) {
		t.Fatalf("one look: %d put off (more %v, next look %v); want %d and a look at once", away, e.more, h.c.next().Sub(h.now), putOffBurst)
	}
	h.take()
	h.advance(0)
	if e.roomOut <= putOffBurst {
		t.Fatalf("the next look put off nothing more (%d away)", e.roomOut)
	}

	// Every tail with a later job of its lane away: nothing to give up.
	h2 := pacedHarness(t)
	h2.beside()
	for i := range 600 {
		h2.arrive(backlogJob(fmt.Sprint("a", i), fmt.Sprint("r", i)))
		h2.arrive(backlogJob(fmt.Sprint("b", i), fmt.Sprint("r", i)))
	}
	for i := range 600 {
		ln := h2.c.endpoints["w"].lanes[fmt.Sprint("r", i)]
		h2.c.putOff(ln.q[len(ln.q)-1], whyBusy, h2.now)
	}
	h2.take()
	w := h2.c.endpoints["w"]
	h2.now = h2.now.Add(h2.c.cfg.slowAfter() + 100*time.Millisecond)
	h2.c.service(w, h2.now)
	if w.more {
		t.Fatalf("a trim that gave up nothing (%d away) looks again at once", w.roomOut)
	}
}
