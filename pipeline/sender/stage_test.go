package sender_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/delivery"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/sender"
	"github.com/hookline/hookline/schemas"
)

// hooks is the webhook state of a stage test.
type hooks struct {
	mu       sync.Mutex
	m        map[string]schemas.Webhook
	disabled map[string]string
	// pending are webhooks this process has not read yet: Sync reads them.
	pending map[string]schemas.Webhook
	syncs   int
}

func (h *hooks) ByID(id string) (schemas.Webhook, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w, ok := h.m[id]
	return w, ok
}

// Unreadable: every webhook of these tests can be read.
func (h *hooks) Unreadable(string) (string, bool) { return "", false }

func (h *hooks) Sync(context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.syncs++
	for id, w := range h.pending {
		h.m[id] = w
		delete(h.pending, id)
	}
	return nil
}

// EachID: the webhooks known, and those made elsewhere not synced yet.
func (h *hooks) EachID(f func(id string)) {
	h.mu.Lock()
	ids := make([]string, 0, len(h.m)+len(h.pending))
	for id := range h.m {
		ids = append(ids, id)
	}
	for id := range h.pending {
		if _, ok := h.m[id]; !ok {
			ids = append(ids, id)
		}
	}
	h.mu.Unlock()
	for _, id := range ids {
		f(id)
	}
}

func (h *hooks) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.m)
}

func (h *hooks) DisableWebhook(_ context.Context, id, reason string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w, ok := h.m[id]
	if !ok || !w.Enabled {
		return false, nil
	}
	w.Enabled = false
	h.m[id] = w
	h.disabled[id] = reason
	return true, nil
}

func (h *hooks) add(id, url string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.m[id] = schemas.Webhook{ID: id, Tenant: "t", Name: id, URL: url, Enabled: true,
		ContentType: schemas.ContentTypeJSON, Retries: 5, TimeoutMS: 10000}
}

// set changes a webhook.
func (h *hooks) set(id string, change func(*schemas.Webhook)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := h.m[id]
	change(&w)
	h.m[id] = w
}

// stageEnv runs a sender stage against an in-process kfake broker and
// collects what it produces.
type stageEnv struct {
	t     testing.TB
	b     *broker.Broker
	hooks *hooks
	reg   *prometheus.Registry

	mu       sync.Mutex
	attempts map[string][]schemas.Attempt // by delivery id
	dead     []schemas.DeadLetter
	stop     func()
}

func testStageConfig() sender.StageConfig {
	return sender.StageConfig{
		HTTP:           delivery.Config{AllowPrivateTargets: true},
		Schedule:       sender.MustSchedule("1s,2s"),
		Breaker:        sender.BreakerConfig{Failures: 1000, Cooldown: time.Second},
		CommitInterval: 20 * time.Millisecond,
	}
}

func newStageEnv(t testing.TB, cfg sender.StageConfig, opts ...func(*broker.Config)) *stageEnv {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bcfg := broker.Config{DataDir: t.TempDir(), Partitions: 3, RetryTopics: cfg.Schedule.Topics()}
	for _, o := range opts {
		o(&bcfg)
	}
	b, err := broker.Start(ctx, bcfg, log)
	if err != nil {
		t.Fatal(err)
	}
	e := &stageEnv{t: t, b: b, hooks: &hooks{m: map[string]schemas.Webhook{}, disabled: map[string]string{}},
		reg: prometheus.NewRegistry(), attempts: map[string][]schemas.Attempt{}}
	cfg.Registerer = e.reg
	stage, err := sender.NewStage(b, e.hooks, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := stage.Run(runCtx); err != nil {
			t.Errorf("stage: %v", err)
		}
	}()
	go func() { defer wg.Done(); e.collect(runCtx, schemas.TopicAttempts) }()
	go func() { defer wg.Done(); e.collect(runCtx, schemas.TopicDead) }()
	e.stop = func() { stopRun(); wg.Wait(); b.Close() }
	t.Cleanup(e.stop)
	return e
}

func (e *stageEnv) collect(ctx context.Context, topic string) {
	r := e.b.GroupReader(topic, "test-collector")
	defer r.Close()
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return
		}
		e.mu.Lock()
		if topic == schemas.TopicAttempts {
			var a schemas.Attempt
			json.Unmarshal(m.Value, &a)
			e.attempts[a.DeliveryID] = append(e.attempts[a.DeliveryID], a)
		} else {
			var d schemas.DeadLetter
			json.Unmarshal(m.Value, &d)
			e.dead = append(e.dead, d)
		}
		e.mu.Unlock()
	}
}

var jobSeq int

func (e *stageEnv) publish(webhookID string, n int) []string {
	e.t.Helper()
	w := e.b.Writer(schemas.TopicDeliveries, nil)
	defer w.Close()
	return e.publishWith(w, webhookID, n)
}

func (e *stageEnv) publishWith(w *broker.Writer, webhookID string, n int) []string {
	return e.publishPayload(w, webhookID, n, json.RawMessage(`{"n":1}`))
}

// publishRedelivery publishes one job that redelivers another, as the API
// does for a person's request.
func (e *stageEnv) publishRedelivery(w *broker.Writer, webhookID string) string {
	e.t.Helper()
	jobSeq++
	job := schemas.Job{
		DeliveryID: fmt.Sprintf("d-%s-%06d", webhookID, jobSeq), WebhookID: webhookID, Tenant: "t",
		EventIDs: []string{fmt.Sprint("e", jobSeq)}, EventType: "ticket.created", ResourceID: "r-redelivered",
		CreatedAt: time.Now().UTC(), Payload: json.RawMessage(`{"n":1}`), RedeliveryOf: "d-earlier",
	}
	v, _ := json.Marshal(job)
	if err := w.Write(context.Background(), []kafka.Message{{Key: []byte(webhookID), Value: v}}); err != nil {
		e.t.Fatal(err)
	}
	return job.DeliveryID
}

func (e *stageEnv) publishPayload(w *broker.Writer, webhookID string, n int, payload json.RawMessage) []string {
	e.t.Helper()
	return e.publishJobs(w, webhookID, n, func(i int) (string, json.RawMessage) { return fmt.Sprint("r", i), payload })
}

// publishJobs publishes n jobs for a webhook, the ith about the resource
// and with the payload that job gives.
func (e *stageEnv) publishJobs(w *broker.Writer, webhookID string, n int, job func(i int) (resource string, payload json.RawMessage)) []string {
	e.t.Helper()
	var msgs []kafka.Message
	var ids []string
	for i := 0; i < n; i++ {
		jobSeq++
		resource, payload := job(i)
		job := schemas.Job{
			DeliveryID: fmt.Sprintf("d-%s-%06d", webhookID, jobSeq), WebhookID: webhookID, Tenant: "t",
			EventIDs: []string{fmt.Sprint("e", jobSeq)}, EventType: "ticket.created",
			ResourceID: resource, CreatedAt: time.Now().UTC(), Payload: payload,
		}
		v, _ := json.Marshal(job)
		msgs = append(msgs, kafka.Message{Key: []byte(webhookID), Value: v})
		ids = append(ids, job.DeliveryID)
	}
	if err := w.Write(context.Background(), msgs); err != nil {
		e.t.Fatal(err)
	}
	return ids
}

// final returns the last attempt of a delivery, if any.
func (e *stageEnv) final(id string) (schemas.Attempt, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	as := e.attempts[id]
	if len(as) == 0 {
		return schemas.Attempt{}, 0
	}
	sort.Slice(as, func(i, j int) bool { return as[i].N < as[j].N })
	return as[len(as)-1], len(as)
}

func (e *stageEnv) waitState(id, state string, timeout time.Duration) schemas.Attempt {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if a, _ := e.final(id); a.State == state {
			return a
		}
		if time.Now().After(deadline) {
			a, n := e.final(id)
			e.t.Fatalf("delivery %s: %d attempts, last %+v; want state %s", id, n, a, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// statusServer answers each request with the next status of its script
// (the last one repeats), with optional extra headers.
func statusServer(t testing.TB, header http.Header, statuses ...int) (*httptest.Server, func() int) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		code := statuses[min(n, len(statuses)-1)]
		n++
		mu.Unlock()
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	return srv, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

func TestStageOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		header   http.Header
		state    string
		attempts int
		dead     bool
		disabled bool
	}{
		{name: "2xx succeeds at once", statuses: []int{204}, state: schemas.StateSucceeded, attempts: 1},
		{name: "503 then 500 then 200 is retried to success", statuses: []int{503, 500, 200}, state: schemas.StateSucceeded, attempts: 3},
		{name: "429, 408, 425, 409 are retried", statuses: []int{429, 408, 425, 409, 200}, state: schemas.StateSucceeded, attempts: 5},
		{name: "400 fails at once", statuses: []int{400}, state: schemas.StateFailed, attempts: 1, dead: true},
		{name: "404 fails at once", statuses: []int{404}, state: schemas.StateFailed, attempts: 1, dead: true},
		{name: "3xx is a failure, not followed", statuses: []int{302}, header: http.Header{"Location": {"http://elsewhere/"}}, state: schemas.StateFailed, attempts: 1, dead: true},
		{name: "410 fails and disables the webhook", statuses: []int{410}, state: schemas.StateFailed, attempts: 1, dead: true, disabled: true},
		{name: "retries run out", statuses: []int{502}, state: schemas.StateFailed, attempts: 3, dead: true},
	}
	e := newStageEnv(t, testStageConfig())
	ids := map[string]string{}
	for i, tt := range tests {
		srv, _ := statusServer(t, tt.header, tt.statuses...)
		hook := fmt.Sprint("w", i)
		e.hooks.add(hook, srv.URL)
		if tt.name == "retries run out" {
			e.hooks.mu.Lock()
			w := e.hooks.m[hook]
			w.Retries = 2
			e.hooks.m[hook] = w
			e.hooks.mu.Unlock()
		}
		ids[tt.name] = e.publish(hook, 1)[0]
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			last := e.waitState(ids[tt.name], tt.state, 20*time.Second)
			if _, n := e.final(ids[tt.name]); n != tt.attempts || last.N != tt.attempts {
				t.Fatalf("%d attempts (last n=%d), want %d", n, last.N, tt.attempts)
			}
			e.mu.Lock()
			dead := false
			for _, d := range e.dead {
				dead = dead || (d.Job != nil && d.Job.DeliveryID == ids[tt.name] && d.LastAttempt != nil && d.LastAttempt.N == tt.attempts)
			}
			e.mu.Unlock()
			if dead != tt.dead {
				t.Fatalf("dead-lettered = %v, want %v", dead, tt.dead)
			}
			e.hooks.mu.Lock()
			_, disabled := e.hooks.disabled[fmt.Sprint("w", i)]
			e.hooks.mu.Unlock()
			if disabled != tt.disabled {
				t.Fatalf("webhook disabled = %v, want %v", disabled, tt.disabled)
			}
			if tt.header.Get("Location") != "" && last.ResponseHeaders["Location"] != tt.header.Get("Location") {
				t.Fatalf("Location not recorded: %v", last.ResponseHeaders)
			}
		})
	}
}

func TestStageHonoursRetryAfter(t *testing.T) {
	e := newStageEnv(t, testStageConfig())
	srv, _ := statusServer(t, http.Header{"Retry-After": {"2"}}, 503, 200)
	e.hooks.add("w", srv.URL)
	id := e.publish("w", 1)[0]
	last := e.waitState(id, schemas.StateSucceeded, 20*time.Second)
	e.mu.Lock()
	first := e.attempts[id][0]
	e.mu.Unlock()
	if first.N != 1 || first.State != schemas.StateRetrying {
		t.Fatalf("first attempt = %+v", first)
	}
	if gap := last.At.Sub(first.At); gap < 2*time.Second {
		t.Fatalf("retried %v after a Retry-After of 2s", gap)
	}
}

func TestStageOpensTheCircuitAndPutsJobsOff(t *testing.T) {
	cfg := testStageConfig()
	cfg.Breaker = sender.BreakerConfig{Failures: 2, Cooldown: time.Second}
	cfg.Schedule = sender.MustSchedule("1s,2s,4s,8s")
	e := newStageEnv(t, cfg)
	var mu sync.Mutex
	healthy, requests := false, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		requests++
		if !healthy {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	e.hooks.add("w", srv.URL)
	ids := e.publish("w", 10)

	// Without a breaker, 10 jobs retried after 1 s and 2 s make about 30
	// requests in 3 s (20 counting jitter). With it, two failures open the circuit and then
	// only one probe per cooldown goes out.
	time.Sleep(3 * time.Second)
	mu.Lock()
	whileDown := requests
	healthy = true
	mu.Unlock()
	if whileDown > 10 {
		t.Fatalf("the endpoint got %d requests while failing; the circuit did not stop them", whileDown)
	}
	if got := testutil.ToFloat64(counterVec(t, e.reg, "hookline_sender_deferred_total", "circuit_open")); got < 1 {
		t.Fatalf("no job was put off while the circuit was open")
	}
	for _, id := range ids {
		e.waitState(id, schemas.StateSucceeded, 30*time.Second)
	}
}

// counterVec finds one series of a counter vector in a registry.
func counterVec(t *testing.T, reg *prometheus.Registry, name, label string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
					c.Add(m.GetCounter().GetValue())
					return c
				}
			}
		}
	}
	t.Fatalf("metric %s{%s} not found", name, label)
	return nil
}

// TestStageIsolatesEndpoints: one endpoint that takes 5 s per answer and
// one that answers 503 sit beside nine healthy ones on the same partitions;
// the healthy ones' deliveries finish as fast as without them (within a
// generous bound, and well before a single slow answer would return).
func TestStageIsolatesEndpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	const perEndpoint = 20
	run := func(withBad bool) time.Duration {
		cfg := testStageConfig()
		cfg.Breaker = sender.BreakerConfig{Failures: 5, Cooldown: 5 * time.Second}
		e := newStageEnv(t, cfg)
		ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		defer ok.Close()
		var healthy []string
		for i := 0; i < 9; i++ {
			e.hooks.add(fmt.Sprint("healthy", i), ok.URL)
		}
		if withBad {
			release := make(chan struct{})
			slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-time.After(5 * time.Second):
				case <-release:
				}
			}))
			defer slow.Close()
			defer close(release)
			failing, _ := statusServer(t, nil, 503)
			e.hooks.add("slow", slow.URL)
			e.hooks.add("failing", failing.URL)
			// The bad endpoints' jobs go first, ahead of every healthy job.
			e.publish("slow", perEndpoint)
			e.publish("failing", perEndpoint)
		}
		start := time.Now()
		for i := 0; i < 9; i++ {
			healthy = append(healthy, e.publish(fmt.Sprint("healthy", i), perEndpoint)...)
		}
		for _, id := range healthy {
			e.waitState(id, schemas.StateSucceeded, 30*time.Second)
		}
		return time.Since(start)
	}
	without := run(false)
	with := run(true)
	t.Logf("healthy deliveries finished in %v without bad endpoints, %v with them", without, with)
	if with > 3*without+time.Second || with >= 5*time.Second {
		t.Fatalf("healthy endpoints took %v beside a slow and a failing one, %v alone", with, without)
	}
}
