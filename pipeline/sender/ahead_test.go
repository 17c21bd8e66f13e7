package sender_test

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
)

// TestAPartitionIsReadNoFurtherThanItsWebhooksNeed: a burst of 3,000 jobs
// of the one webhook of a partition, at work already, is not all read into
// memory: the sender holds what it sends in a quarter of a second (and at
// least 64 jobs), the rest waits in Kafka. A webhook made meanwhile whose jobs go to
// that partition has its job read, past the backlog, and sent within a
// couple of seconds; the backlog goes out whole and in order.
func TestAPartitionIsReadNoFurtherThanItsWebhooksNeed(t *testing.T) {
	recv := &orderReceiver{delay: 20 * time.Millisecond, seen: map[string][]int{}}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	cfg := testStageConfig()
	e := newStageEnv(t, cfg)
	e.hooks.add("w", srv.URL)
	e.hooks.set("w", func(w *schemas.Webhook) { w.MaxConcurrency = 4 }) // about 200 a second
	const jobSize = 300                                                 // bytes of a job record, about
	// The webhook at work first, then its backlog written as a burst comes
	// from the matcher, in pieces (what is fetched between two of the
	// core's looks, every 10 ms, is handed out whole).
	ids := e.publishSeq("w", 100, 100)
	e.waitState(ids[0], schemas.StateSucceeded, 10*time.Second)
	for range 30 {
		ids = append(ids, e.publishSeq("w", 100, 100)...)
		time.Sleep(10 * time.Millisecond)
	}

	// Memory, sampled while the backlog drains.
	deadline := time.Now().Add(3 * time.Second)
	peak := 0.0
	for time.Now().Before(deadline) {
		v, _ := gaugeValue(e, "hookline_sender_queued_bytes")
		peak = max(peak, v)
		time.Sleep(20 * time.Millisecond)
	}
	// The hold's quarter of a second, and what is handed out between two
	// looks (about 1,000 here): far from the 3,000 a sender reading on
	// holds.
	t.Logf("peak: about %.0f jobs (%.0f bytes)", peak/(jobSize+512), peak)
	if jobs := peak / (jobSize + 512); jobs > 2000 {
		t.Errorf("the sender held about %.0f jobs at once (%.0f bytes): the partition was read on past what its one webhook needs", jobs, peak)
	}

	// A webhook made now, on w's partition: its job is behind the backlog.
	other := ""
	for i := 0; other == ""; i++ {
		if id := "v" + strconv.Itoa(i); broker.HashPartition([]byte(id), 3) == broker.HashPartition([]byte("w"), 3) {
			other = id
		}
	}
	otherRecv := &orderReceiver{seen: map[string][]int{}}
	otherSrv := httptest.NewServer(otherRecv)
	defer otherSrv.Close()
	e.hooks.add(other, otherSrv.URL)
	start := time.Now()
	vid := e.publish(other, 1)[0]
	e.waitState(vid, schemas.StateSucceeded, 10*time.Second)
	t.Logf("the new webhook's job: %s, %d of the backlog left", time.Since(start), len(ids)-delivered(recv))
	if took := time.Since(start); took > time.Second {
		t.Errorf("a new webhook's job behind the backlog took %s, want under a second (the count is looked at every 20 ms)", took)
	}
	if left := len(ids) - delivered(recv); left < 500 {
		t.Fatalf("the backlog was nearly done (%d left) when the new job went: the test proves nothing", left)
	}
	for _, id := range ids {
		e.waitState(id, schemas.StateSucceeded, 60*time.Second)
	}
	if swaps, total := recv.swaps(); swaps != 0 || total != len(ids) {
		t.Errorf("%d of %d jobs arrived after a later job of their resource", swaps, total)
	}
}

func delivered(o *orderReceiver) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.total
}

// gaugeValue is the value of the stage's gauge name (its first series),
// and whether it has one.
func gaugeValue(e *stageEnv, name string) (float64, bool) {
	mfs, _ := e.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}
