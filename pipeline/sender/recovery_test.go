package sender_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/pipeline/sender"
	"github.com/hookline/hookline/schemas"
	"github.com/segmentio/kafka-go"
)

// scripted is an endpoint that fails until it is told to recover, and
// remembers when each request came.
type scripted struct {
	mu      sync.Mutex
	healthy bool
	at      []time.Time
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at = append(s.at, time.Now())
	if !s.healthy {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
}

func (s *scripted) recover() {
	s.mu.Lock()
	s.healthy = true
	s.mu.Unlock()
}

func (s *scripted) requests() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.at...)
}

// TestAnOpenCircuitNeverFailsAJobWithoutARequest: with a retry schedule
// shorter than the breaker's cooldown, jobs put off by an open circuit wait
// for it instead of failing unsent, and succeed once the endpoint is back.
func TestAnOpenCircuitNeverFailsAJobWithoutARequest(t *testing.T) {
	cfg := testStageConfig()
	cfg.Schedule = sender.MustSchedule("1s")
	cfg.Breaker = sender.BreakerConfig{Failures: 2, Cooldown: 2 * time.Second}
	e := newStageEnv(t, cfg)
	ep := &scripted{}
	srv := httptest.NewServer(ep)
	defer srv.Close()
	e.hooks.add("w", srv.URL)
	e.hooks.mu.Lock()
	w := e.hooks.m["w"]
	w.Retries = 1
	e.hooks.m["w"] = w
	e.hooks.mu.Unlock()

	ids := e.publish("w", 5)
	time.AfterFunc(1500*time.Millisecond, ep.recover)
	for _, id := range ids {
		a := e.waitState(id, schemas.StateSucceeded, 30*time.Second)
		if strings.Contains(a.Error, "not sent") {
			t.Fatalf("delivery %s: %q", id, a.Error)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, as := range e.attempts {
		for _, a := range as {
			if strings.Contains(a.Error, "not sent") {
				t.Errorf("delivery %s failed without a request: %q", id, a.Error)
			}
		}
	}
}

// TestTheProbeGoesOutWhenTheCooldownEnds: a dead endpoint behind an open
// circuit gets its probe one cooldown after each opening, not after the
// growing put-off delays of the retry schedule.
func TestTheProbeGoesOutWhenTheCooldownEnds(t *testing.T) {
	cfg := testStageConfig()
	cfg.Schedule = sender.MustSchedule("1s,10s,60s")
	cfg.Breaker = sender.BreakerConfig{Failures: 2, Cooldown: time.Second}
	cfg.EndpointConcurrency = 1 // one request at a time: the circuit opens after the second
	e := newStageEnv(t, cfg)
	ep := &scripted{}
	srv := httptest.NewServer(ep)
	defer srv.Close()
	e.hooks.add("w", srv.URL)
	e.publish("w", 6)

	deadline := time.Now().Add(20 * time.Second)
	for len(ep.requests()) < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests in 20 s: the probes stopped", len(ep.requests()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	at := ep.requests()
	// The first two requests open the circuit; each probe follows the
	// previous failure by about one cooldown (1 s, plus the fetch).
	for i := 2; i < 5; i++ {
		if gap := at[i].Sub(at[i-1]); gap > 3*time.Second {
			t.Errorf("probe %d came %v after the request before it; want about one cooldown (1 s)", i-1, gap)
		}
	}
}

// TestARedeliveryIsTheProbeAndClosesTheCircuit: with the circuit open for a
// long cooldown, a redelivery is sent at once; its success closes the
// circuit, and the jobs waiting behind it follow without waiting out the
// cooldown.
func TestARedeliveryIsTheProbeAndClosesTheCircuit(t *testing.T) {
	cfg := testStageConfig()
	cfg.Breaker = sender.BreakerConfig{Failures: 2, Cooldown: time.Minute}
	e := newStageEnv(t, cfg)
	ep := &scripted{}
	srv := httptest.NewServer(ep)
	defer srv.Close()
	e.hooks.add("w", srv.URL)
	e.publish("w", 2)
	deadline := time.Now().Add(20 * time.Second)
	for len(ep.requests()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the failing endpoint got no requests")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	ep.recover()

	w := e.b.Writer(schemas.TopicDeliveries, nil)
	defer w.Close()
	redelivery := e.publishRedelivery(w, "w")
	start := time.Now()
	e.waitState(redelivery, schemas.StateSucceeded, 10*time.Second)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the redelivery took %v behind a circuit with a 1 min cooldown", took)
	}
	waiting := e.publish("w", 3)
	for _, id := range waiting {
		e.waitState(id, schemas.StateSucceeded, 10*time.Second)
	}
}

// TestQueueMetricsFollowTheBacklog: an endpoint that is behind has a
// queue-depth series while at least 10 jobs wait, none once it caught up,
// and every job's wait in the queue is observed.
func TestQueueMetricsFollowTheBacklog(t *testing.T) {
	cfg := testStageConfig()
	cfg.EndpointConcurrency = 1
	e := newStageEnv(t, cfg)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	e.hooks.add("w", srv.URL)
	ids := e.publish("w", 30)

	gauge := func() (float64, bool) { return gaugeValue(e, "hookline_sender_endpoint_queued") }
	deadline := time.Now().Add(20 * time.Second)
	for {
		if v, ok := gauge(); ok && v >= 20 {
			break
		}
		if time.Now().After(deadline) {
			v, ok := gauge()
			t.Fatalf("queue depth %v (series %v) with 29 jobs waiting", v, ok)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	for _, id := range ids {
		e.waitState(id, schemas.StateSucceeded, 20*time.Second)
	}
	if v, ok := gauge(); ok {
		t.Errorf("queue depth series still there (%v) after the endpoint caught up", v)
	}
	mfs, _ := e.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "hookline_sender_queue_wait_seconds" {
			if n := mf.GetMetric()[0].GetHistogram().GetSampleCount(); n != 30 {
				t.Errorf("%d queue waits observed, want 30", n)
			}
			return
		}
	}
	t.Error("no hookline_sender_queue_wait_seconds")
}

// TestATestDeliveryGoesOutToADisabledWebhook: a test delivery is sent and
// recorded even when its webhook is disabled, whose other jobs fail
// without a request (webhook_disabled).
func TestATestDeliveryGoesOutToADisabledWebhook(t *testing.T) {
	srv, requests := statusServer(t, nil, 204)
	e := newStageEnv(t, testStageConfig())
	e.hooks.add("w", srv.URL)
	e.hooks.set("w", func(w *schemas.Webhook) { w.Enabled = false })
	w := e.b.Writer(schemas.TopicDeliveries, nil)
	defer w.Close()
	dropped := e.publishWith(w, "w", 1)[0]
	job := schemas.Job{DeliveryID: "d-test-1", WebhookID: "w", Tenant: "t", EventIDs: []string{"e-test"},
		EventType: schemas.PingEventType, ResourceID: "w", CreatedAt: time.Now().UTC(), Payload: json.RawMessage(`{"ping":1}`), Test: true}
	v, _ := json.Marshal(job)
	if err := w.Write(context.Background(), []kafka.Message{{Key: []byte("w"), Value: v}}); err != nil {
		t.Fatal(err)
	}
	e.waitState(job.DeliveryID, schemas.StateSucceeded, 20*time.Second)
	if n := requests(); n != 1 {
		t.Fatalf("%d requests, want the test delivery's alone", n)
	}
	if a, n := e.final(dropped); n != 1 || a.State != schemas.StateFailed || a.Error != "webhook_disabled" || a.StatusCode != 0 {
		t.Fatalf("the disabled webhook's ordinary job: %d records, last %s %q status %d; want one, failed webhook_disabled, no request",
			n, a.State, a.Error, a.StatusCode)
	}
}

// TestAFailedDeliveryPublishesAHooklineEvent: a delivery that fails for
// good publishes hookline.delivery_failed on hookline.events for the
// tenant (SPEC §4); a failed delivery of such an event publishes none.
func TestAFailedDeliveryPublishesAHooklineEvent(t *testing.T) {
	srv, _ := statusServer(t, nil, 404)
	e := newStageEnv(t, testStageConfig())
	e.hooks.add("w", srv.URL)
	w := e.b.Writer(schemas.TopicDeliveries, nil)
	defer w.Close()
	failed := e.publishWith(w, "w", 1)[0]
	e.waitState(failed, schemas.StateFailed, 20*time.Second)
	op := schemas.Job{DeliveryID: "d-op-1", WebhookID: "w", Tenant: "t", EventIDs: []string{"hookline-failed-x"},
		EventType: schemas.TypeDeliveryFailed, ResourceID: "w", CreatedAt: time.Now().UTC(), Payload: json.RawMessage(`{}`)}
	v, _ := json.Marshal(op)
	if err := w.Write(context.Background(), []kafka.Message{{Key: []byte("w"), Value: v}}); err != nil {
		t.Fatal(err)
	}
	e.waitState(op.DeliveryID, schemas.StateFailed, 20*time.Second)

	events := e.events()
	if len(events) != 1 {
		t.Fatalf("%d events on hookline.events, want one (none for the operational delivery): %+v", len(events), events)
	}
	ev := events[0]
	if ev.Type != schemas.TypeDeliveryFailed || ev.Tenant != "t" || ev.ResourceID != "w" || !strings.Contains(string(ev.Data), failed) {
		t.Fatalf("event %+v (data %s): want hookline.delivery_failed of tenant t naming the delivery", ev, ev.Data)
	}
}

// events reads every event on hookline.events.
func (e *stageEnv) events() []schemas.Event {
	e.t.Helper()
	r, err := e.b.PartitionsReader(schemas.TopicEvents, map[int]int64{0: kafka.FirstOffset, 1: kafka.FirstOffset, 2: kafka.FirstOffset})
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Close()
	var events []schemas.Event
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		m, err := r.FetchMessage(ctx)
		cancel()
		if err != nil {
			return events
		}
		ev, err := schemas.DecodeEvent(m.Value, m.Time, "")
		if err != nil {
			e.t.Fatalf("an event that does not decode: %s", m.Value)
		}
		events = append(events, ev)
	}
}

// TestAWebhookFailingForDisableAfterIsDisabled: a webhook whose every
// delivery fails for --disable-after is disabled, with a disabled_reason
// and a hookline.webhook_disabled event; one whose endpoint succeeds now
// and then is not, however long it fails in between.
func TestAWebhookFailingForDisableAfterIsDisabled(t *testing.T) {
	cfg := testStageConfig()
	cfg.DisableAfter = 1500 * time.Millisecond
	e := newStageEnv(t, cfg)
	dead, _ := statusServer(t, nil, 500)
	var mu sync.Mutex
	n := 0
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		ok := n%4 == 0
		mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(flaky.Close)
	for id, url := range map[string]string{"dead": dead.URL, "flaky": flaky.URL} {
		e.hooks.add(id, url)
		e.hooks.set(id, func(w *schemas.Webhook) { w.Retries = 0; w.UpdatedAt = time.Now().Add(-time.Hour) })
	}
	w := e.b.Writer(schemas.TopicDeliveries, nil)
	defer w.Close()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for {
		e.hooks.mu.Lock()
		reason, disabled := e.hooks.disabled["dead"]
		e.hooks.mu.Unlock()
		if disabled {
			if !strings.Contains(reason, "every delivery failed since") || !strings.Contains(reason, "--disable-after 1.5s") {
				t.Fatalf("disabled_reason %q", reason)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the webhook failing for longer than --disable-after was not disabled")
		}
		last = e.publishWith(w, "dead", 1)[0]
		e.publishWith(w, "flaky", 1)
		time.Sleep(100 * time.Millisecond)
	}
	e.waitState(last, schemas.StateFailed, 20*time.Second)
	e.hooks.mu.Lock()
	_, flakyDisabled := e.hooks.disabled["flaky"]
	e.hooks.mu.Unlock()
	if flakyDisabled {
		t.Fatal("the endpoint that succeeds now and then was disabled")
	}
	var disabledEvents int
	for _, ev := range e.events() {
		if ev.Type == schemas.TypeWebhookDisabled {
			disabledEvents++
			if ev.ResourceID != "dead" || !strings.Contains(string(ev.Data), "every delivery failed since") {
				t.Fatalf("event %+v (data %s): want the dead webhook's, with its reason", ev, ev.Data)
			}
		}
	}
	if disabledEvents != 1 {
		t.Fatalf("%d hookline.webhook_disabled events, want 1", disabledEvents)
	}
}

// TestAJobOfAWebhookNotYetReadIsDeliveredAfterCatchingUp: a job can come
// from a process that saw its webhook made before this one did; the
// sender catches up with the webhooks' topic before it drops a job of an
// unknown webhook, at most once every few seconds per id.
func TestAJobOfAWebhookNotYetReadIsDeliveredAfterCatchingUp(t *testing.T) {
	srv, requests := statusServer(t, nil, 204)
	e := newStageEnv(t, testStageConfig())
	e.hooks.add("new", srv.URL)
	e.hooks.mu.Lock()
	e.hooks.pending = map[string]schemas.Webhook{"new": e.hooks.m["new"]}
	delete(e.hooks.m, "new")
	e.hooks.mu.Unlock()
	w := e.b.Writer(schemas.TopicDeliveries, nil)
	defer w.Close()
	id := e.publishWith(w, "new", 1)[0]
	e.waitState(id, schemas.StateSucceeded, 20*time.Second)
	if n := requests(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	// A deleted (never known) webhook: its jobs are dropped, and the
	// registry is asked to catch up once for them, not once a job.
	e.publishWith(w, "gone", 5)
	ok := e.publishWith(w, "new", 1)[0]
	e.waitState(ok, schemas.StateSucceeded, 20*time.Second)
	e.hooks.mu.Lock()
	syncs := e.hooks.syncs
	e.hooks.mu.Unlock()
	if syncs != 2 {
		t.Fatalf("%d catch-ups, want 2 (one for the new webhook, one for the unknown one's five jobs)", syncs)
	}
}
