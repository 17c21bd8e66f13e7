package sender_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/pipeline/sender"
	"github.com/hookline/hookline/schemas"
)

// orderReceiver records, per resource, the sequence numbers of the jobs
// it receives, and the most requests it had in flight at once.
type orderReceiver struct {
	delay    time.Duration
	inflight atomic.Int64
	peak     atomic.Int64

	mu    sync.Mutex
	seen  map[string][]int // resource → seq in arrival order (first attempts)
	total int
}

func (o *orderReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := o.inflight.Add(1)
	defer o.inflight.Add(-1)
	for p := o.peak.Load(); n > p && !o.peak.CompareAndSwap(p, n); p = o.peak.Load() {
	}
	var body struct {
		Data struct {
			Resource string `json:"resource"`
			Seq      int    `json:"seq"`
		} `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	time.Sleep(o.delay)
	o.mu.Lock()
	o.seen[body.Data.Resource] = append(o.seen[body.Data.Resource], body.Data.Seq)
	o.total++
	o.mu.Unlock()
}

// swaps counts, per resource, the jobs that arrived after a later one.
func (o *orderReceiver) swaps() (swaps, total int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, seqs := range o.seen {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] < seqs[i-1] {
				swaps++
			}
		}
	}
	return swaps, o.total
}

// publishSeq publishes n jobs for a webhook over resources resources, each
// job carrying its resource and its sequence within it.
func (e *stageEnv) publishSeq(webhookID string, n, resources int) []string {
	e.t.Helper()
	w := e.b.Writer(schemas.TopicDeliveries, nil)
	defer w.Close()
	return e.publishJobs(w, webhookID, n, func(i int) (string, json.RawMessage) {
		res := "r" + strconv.Itoa(i%resources)
		return res, json.RawMessage(fmt.Sprintf(`{"data":{"resource":%q,"seq":%d}}`, res, i/resources))
	})
}

func sumCounter(e *stageEnv, name string) (sum float64, byLabel map[string]float64) {
	byLabel = map[string]float64{}
	mfs, _ := e.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
			for _, l := range m.GetLabel() {
				byLabel[l.GetValue()] += m.GetCounter().GetValue()
			}
		}
	}
	return sum, byLabel
}

// TestABurstToAHealthyEndpointIsNeverPutOff: thousands of jobs at once to
// an endpoint that answers in 5 ms go out as fast as it answers: none is
// put off, the concurrency limit grows past where it starts (4) but never
// past the webhook's max_concurrency, and every resource's jobs arrive in
// order.
func TestABurstToAHealthyEndpointIsNeverPutOff(t *testing.T) {
	recv := &orderReceiver{delay: 5 * time.Millisecond, seen: map[string][]int{}}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	cfg := testStageConfig()
	// Generous for a machine this test shares with -race, kfake and the
	// receiver: the sender itself is the bottleneck here, and a sender
	// slower than 2,000 / 30 s per job would be behind.
	cfg.MaxQueueWait = 30 * time.Second
	e := newStageEnv(t, cfg)
	e.hooks.add("w", srv.URL)
	e.hooks.set("w", func(w *schemas.Webhook) { w.MaxConcurrency = 12 })
	ids := e.publishSeq("w", 2000, 200)
	for _, id := range ids {
		e.waitState(id, schemas.StateSucceeded, 60*time.Second)
	}
	if n, by := sumCounter(e, "hookline_sender_deferred_total"); n != 0 {
		t.Errorf("%v jobs put off (%v), want none", n, by)
	}
	if p := recv.peak.Load(); p <= 4 || p > 12 {
		t.Errorf("at most %d requests in flight at once, want more than the starting 4 and at most max_concurrency 12", p)
	}
	if swaps, total := recv.swaps(); swaps != 0 || total != len(ids) {
		t.Errorf("%d of %d jobs arrived after a later job of their resource, want none", swaps, total)
	}
}

// TestASlowEndpointIsPutOffInOrder: an endpoint that takes 100 ms per
// request, sent more than it can serve within MaxQueueWait, beside another
// endpoint whose jobs come from the same partition, has the rest put off
// to hookline.overflow (endpoint_busy) instead of holding them in memory,
// where they would hold back the other's commit; they come back and every
// resource's jobs still arrive in order.
func TestASlowEndpointIsPutOffInOrder(t *testing.T) {
	slowEndpointBeside(t, "sharer", 10, true) // "sharer" and "w": partition 2 of 3
}

// TestASlowEndpointAloneOnItsPartitionKeepsItsBacklog: the same endpoint
// with the other endpoint's jobs on another partition keeps its backlog in
// memory, in order: putting it off would only cost writes. (Each job of
// its own resource: a lane deeper than its latency sends in the queue
// wait is put off, alone or not.)
func TestASlowEndpointAloneOnItsPartitionKeepsItsBacklog(t *testing.T) {
	slowEndpointBeside(t, "other", 200, false) // "other": partition 1 of 3
}

func slowEndpointBeside(t *testing.T, other string, resources int, putOff bool) {
	recv := &orderReceiver{delay: 100 * time.Millisecond, seen: map[string][]int{}}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	cfg := testStageConfig()
	cfg.MaxQueueWait = time.Second
	cfg.Schedule = sender.MustSchedule("1s,5s,30s")
	e := newStageEnv(t, cfg)
	e.hooks.add("w", srv.URL)
	e.hooks.set("w", func(w *schemas.Webhook) { w.MaxConcurrency = 4 })
	// Another endpoint with work beside it.
	otherRecv := &orderReceiver{delay: 3 * time.Second, seen: map[string][]int{}}
	otherSrv := httptest.NewServer(otherRecv)
	defer otherSrv.Close()
	e.hooks.add(other, otherSrv.URL)
	e.publish(other, 4)
	ids := e.publishSeq("w", 200, resources)
	for _, id := range ids {
		e.waitState(id, schemas.StateSucceeded, 60*time.Second)
	}
	n, by := sumCounter(e, "hookline_sender_deferred_total")
	if putOff && by[schemas.RetryEndpointBusy] == 0 {
		t.Errorf("put-offs %v: want some endpoint_busy", by)
	}
	if !putOff && n != 0 {
		t.Errorf("put-offs %v: want none, alone on its partition", by)
	}
	if swaps, total := recv.swaps(); swaps != 0 || total != len(ids) {
		t.Errorf("%d of %d jobs arrived after a later job of their resource (%v put-offs %v), want none", swaps, total, n, by)
	}
	t.Logf("put-offs: %v", by)
}

// TestA429PausesTheEndpoint: a 429 with Retry-After holds the endpoint's
// other jobs for that long, not only the job that got it.
func TestA429PausesTheEndpoint(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		first := len(times) == 1
		mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	cfg := testStageConfig()
	cfg.EndpointConcurrency = 1
	e := newStageEnv(t, cfg)
	e.hooks.add("w", srv.URL)
	ids := e.publish("w", 5)
	for _, id := range ids {
		e.waitState(id, schemas.StateSucceeded, 30*time.Second)
	}
	mu.Lock()
	defer mu.Unlock()
	// One request may already be on its way when the 429 comes back (the
	// limit can have grown past 1); the rest wait out the second.
	early := 0
	for _, at := range times[1:] {
		if at.Sub(times[0]) < 900*time.Millisecond {
			early++
		}
	}
	if early > 1 {
		t.Fatalf("%d of %d requests came within 0.9 s of the 429 with Retry-After: 1, want at most one", early, len(times)-1)
	}
}

// TestAnEndpointThatFillsMemoryMakesRoomForAnother: a slow endpoint (160
// requests/s) sent 1,500 jobs of 2 KB fills MaxQueueBytes (1 MiB) before it
// is behind. A healthy endpoint's 50 jobs published behind them go out
// within seconds: the slow endpoint's jobs that arrive over the bound are
// put off (memory), so the fetch reaches the healthy ones. (A fetch gate
// that waited for room instead, with nothing put off, held them until the
// slow backlog drained: 7.5 s. Kept as the guard of that trade.)
func TestAnEndpointThatFillsMemoryMakesRoomForAnother(t *testing.T) {
	slow := &orderReceiver{delay: 200 * time.Millisecond, seen: map[string][]int{}}
	slowSrv := httptest.NewServer(slow)
	defer slowSrv.Close()
	fast := &orderReceiver{seen: map[string][]int{}}
	fastSrv := httptest.NewServer(fast)
	defer fastSrv.Close()
	cfg := testStageConfig()
	cfg.MaxQueueWait = 5 * time.Second
	cfg.MaxQueueBytes = 1 << 20
	e := newStageEnv(t, cfg)
	e.hooks.add("slow", slowSrv.URL)
	e.hooks.set("slow", func(w *schemas.Webhook) { w.MaxConcurrency = 32 })
	e.hooks.add("fast", fastSrv.URL)
	w := e.b.Writer(schemas.TopicDeliveries, nil)
	defer w.Close()
	pad := strings.Repeat("x", 2000)
	e.publishJobs(w, "slow", 1500, func(i int) (string, json.RawMessage) {
		res := "s" + strconv.Itoa(i)
		return res, json.RawMessage(fmt.Sprintf(`{"data":{"resource":%q,"seq":0,"pad":%q}}`, res, pad))
	})
	start := time.Now()
	ids := e.publishSeq("fast", 50, 50)
	for _, id := range ids {
		e.waitState(id, schemas.StateSucceeded, 60*time.Second)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the healthy endpoint's 50 jobs took %v behind the slow endpoint's backlog, want seconds at most", took)
	}
	_, by := sumCounter(e, "hookline_sender_deferred_total")
	t.Logf("healthy jobs done %v after publishing; put-offs %v", time.Since(start).Round(time.Millisecond), by)
}
