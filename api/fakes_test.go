package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// fakeWebhooks is an in-memory hookline.subscriptions and its view.
type fakeWebhooks struct {
	mu        sync.Mutex
	byID      map[string]schemas.Webhook
	published []schemas.WebhookEvent
	err       error // returned by PublishWebhook and ChangeWebhook when set
}

func newFakeWebhooks() *fakeWebhooks {
	return &fakeWebhooks{byID: map[string]schemas.Webhook{}}
}

func (f *fakeWebhooks) Webhook(tenant, id string) (schemas.Webhook, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.byID[id]
	if !ok || w.Tenant != tenant {
		return schemas.Webhook{}, false
	}
	return w, true
}

func (f *fakeWebhooks) Webhooks(tenant string) []schemas.Webhook {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []schemas.Webhook
	for _, w := range f.byID {
		if w.Tenant == tenant {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b schemas.Webhook) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (f *fakeWebhooks) PublishWebhook(_ context.Context, ev schemas.WebhookEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if _, ok := f.byID[ev.Webhook.ID]; ok || ev.Webhook.Version != 1 {
		return fmt.Errorf("fake: a new webhook's id is taken or its version is not 1: %w", schemas.ErrVersionConflict)
	}
	f.published = append(f.published, ev)
	f.byID[ev.Webhook.ID] = ev.Webhook
	return nil
}

// ChangeWebhook changes one webhook under the fake's lock: every change
// is made from the current state, as the registry's compare-and-set does.
func (f *fakeWebhooks) ChangeWebhook(_ context.Context, tenant, id string, change func(*schemas.WebhookEvent) error) (schemas.Webhook, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return schemas.Webhook{}, f.err
	}
	cur, ok := f.byID[id]
	if !ok || cur.Tenant != tenant {
		return schemas.Webhook{}, schemas.ErrWebhookNotFound
	}
	ev := schemas.WebhookEvent{Webhook: cur}
	if err := change(&ev); errors.Is(err, schemas.ErrUnchanged) {
		return cur, nil
	} else if err != nil {
		return schemas.Webhook{}, err
	}
	ev.Webhook.Version = cur.Version + 1
	f.published = append(f.published, ev)
	if ev.Op == schemas.OpDeleted {
		delete(f.byID, id)
	} else {
		f.byID[id] = ev.Webhook
	}
	return ev.Webhook, nil
}

func (f *fakeWebhooks) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeWebhooks) events() []schemas.WebhookEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.published)
}

// fakeEvents records what hookline.events would hold.
type fakeEvents struct {
	mu        sync.Mutex
	published []schemas.Event
	calls     int
	err       error
}

func (f *fakeEvents) PublishEvents(_ context.Context, evs []schemas.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return f.err
	}
	f.published = append(f.published, evs...)
	return nil
}

func (f *fakeEvents) all() []schemas.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.published)
}

// fakeDeliveries is an attempts store holding finished deliveries, each
// with its tenant. It answers one page with everything that matches and
// records the last query.
type fakeDeliveries struct {
	mu         sync.Mutex
	deliveries []projections.Delivery
	tenants    map[string]string // delivery id -> tenant
	lastQuery  *projections.DeliveryQuery
	lists      int // ListDeliveries calls
	lastStats  *projections.StatsQuery
	nextCursor string
	// pageSize, when set, makes ListDeliveries page as a store does: by
	// id, newest first, below the cursor, Limit at most pageSize.
	pageSize int
	err      error
	panics   bool
}

func newFakeDeliveries() *fakeDeliveries {
	return &fakeDeliveries{tenants: map[string]string{}}
}

func (f *fakeDeliveries) add(tenant string, d projections.Delivery) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deliveries = append(f.deliveries, d)
	f.tenants[d.ID] = tenant
}

func (f *fakeDeliveries) ListDeliveries(_ context.Context, q projections.DeliveryQuery) (projections.DeliveryPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panics {
		panic("fake store panics")
	}
	f.lastQuery = &q
	f.lists++
	if f.err != nil {
		return projections.DeliveryPage{}, f.err
	}
	var page projections.DeliveryPage
	for _, d := range f.deliveries {
		if f.tenants[d.ID] == q.Tenant && d.WebhookID == q.WebhookID && (q.State == "" || d.State == q.State) &&
			!d.CreatedAt.Before(q.Since) && (q.Until.IsZero() || d.CreatedAt.Before(q.Until)) {
			page.Deliveries = append(page.Deliveries, d)
		}
	}
	page.NextCursor = f.nextCursor
	if f.pageSize > 0 {
		slices.SortFunc(page.Deliveries, func(a, b projections.Delivery) int { return strings.Compare(b.ID, a.ID) })
		if q.Cursor != "" {
			page.Deliveries = slices.DeleteFunc(page.Deliveries, func(d projections.Delivery) bool { return d.ID >= q.Cursor })
		}
		limit := min(q.Limit, f.pageSize)
		page.NextCursor = ""
		if len(page.Deliveries) > limit {
			page.Deliveries = page.Deliveries[:limit]
			page.NextCursor = page.Deliveries[limit-1].ID
		}
	}
	return page, nil
}

// set replaces the stored delivery with d's id, as the projector does with
// a delivery's newer record.
func (f *fakeDeliveries) set(d projections.Delivery) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.deliveries {
		if f.deliveries[i].ID == d.ID {
			f.deliveries[i] = d
		}
	}
}

func (f *fakeDeliveries) GetDelivery(_ context.Context, tenant, id string) (projections.Delivery, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return projections.Delivery{}, f.err
	}
	for _, d := range f.deliveries {
		if d.ID == id && f.tenants[id] == tenant {
			return d, nil
		}
	}
	return projections.Delivery{}, projections.ErrNotFound
}

// Stats counts the webhook's deliveries by state, as a store would.
func (f *fakeDeliveries) Stats(_ context.Context, q projections.StatsQuery) (projections.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return projections.Stats{}, f.err
	}
	f.lastStats = &q
	st := projections.Stats{Deliveries: map[string]int64{}, Attempts: map[string]int64{}}
	for _, d := range f.deliveries {
		if f.tenants[d.ID] == q.Tenant && d.WebhookID == q.WebhookID && !d.CreatedAt.Before(q.Since) &&
			(q.Until.IsZero() || d.CreatedAt.Before(q.Until)) {
			st.Deliveries[d.State]++
		}
	}
	return st, nil
}

// listCalls counts the ListDeliveries calls so far.
func (f *fakeDeliveries) listCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lists
}

func (f *fakeDeliveries) query() *projections.DeliveryQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastQuery
}

// harness is an API over fakes, with ids id-0001, id-0002, … and a clock
// that moves one second per reading.
type harness struct {
	t       *testing.T
	handler http.Handler
	hooks   *fakeWebhooks
	events  *fakeEvents
	dels    *fakeDeliveries
	jobs    *fakeJobs
	fails   *fakeFailures
	srv     *Server
}

// fakeFailures records the deliveries failed without a request.
type fakeFailures struct {
	mu     sync.Mutex
	failed []Failure
	err    error
}

func (f *fakeFailures) PublishFailures(_ context.Context, failed []Failure) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.failed = append(f.failed, failed...)
	return nil
}

func (f *fakeFailures) all() []Failure {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.failed)
}

// waitSweeps waits until the API's background sweeps are done: nothing
// queued, no worker left.
func (h *harness) waitSweeps() {
	h.t.Helper()
	w := h.srv.sweeps
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		idle := len(w.queue) == 0 && w.running == 0
		w.mu.Unlock()
		if idle {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatal("the sweeps of disabled webhooks did not finish within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// fakeJobs records the jobs enqueued.
type fakeJobs struct {
	mu   sync.Mutex
	jobs []schemas.Job
}

func (f *fakeJobs) PublishJobs(_ context.Context, jobs []schemas.Job) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs = append(f.jobs, jobs...)
	return nil
}

func (f *fakeJobs) all() []schemas.Job {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]schemas.Job(nil), f.jobs...)
}

// fakeBreakers reports every endpoint open but "closed-id".
type fakeBreakers struct{}

func (fakeBreakers) State(id string) string {
	if id == "closed-id" {
		return "closed"
	}
	return "open"
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func newHarness(t *testing.T, cfg Config, checks map[string]Check) *harness {
	t.Helper()
	return newHarnessKeeping(t, cfg, checks, nil)
}

// newHarnessKeeping is newHarness whose Idempotency-Key answers are kept in
// answers too.
func newHarnessKeeping(t *testing.T, cfg Config, checks map[string]Check, answers AnswerStore) *harness {
	t.Helper()
	h := &harness{t: t, hooks: newFakeWebhooks(), events: &fakeEvents{}, dels: newFakeDeliveries(), jobs: &fakeJobs{},
		fails: &fakeFailures{}}
	var mu sync.Mutex
	n, clock := 0, t0
	srv, err := New(cfg, Deps{
		Webhooks: h.hooks, Events: h.events, Deliveries: h.dels, Jobs: h.jobs, Failures: h.fails, Checks: checks, Breakers: fakeBreakers{}, Answers: answers,
		Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			clock = clock.Add(time.Second)
			// Not UTC on purpose: the API must answer in UTC anyway.
			return clock.In(time.FixedZone("CET", 3600))
		},
		NewID: func() string {
			mu.Lock()
			defer mu.Unlock()
			n++
			return fmt.Sprintf("id-%04d", n)
		},
	}, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv.sweeps.settle = 0 // no request is in flight here
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	h.srv, h.handler = srv, srv.Handler()
	return h
}

// do sends one request; token "" sends no Authorization header.
func (h *harness) do(method, path, token, body string) *httptest.ResponseRecorder {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Host = "127.0.0.1:8080" // the tokenless API answers to loopback only
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	return rec
}

// mustStatus fails the test unless the answer has the status.
func mustStatus(t *testing.T, rec *httptest.ResponseRecorder, want int) {
	t.Helper()
	if rec.Code != want {
		t.Fatalf("status %d, want %d; body %s", rec.Code, want, rec.Body.String())
	}
}

func decodeBody[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("answer is not JSON: %v; body %q", err, rec.Body.String())
	}
	return v
}

// wantError checks an error answer's status, code and field.
func wantError(t *testing.T, rec *httptest.ResponseRecorder, status int, code, field string) apiError {
	t.Helper()
	mustStatus(t, rec, status)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
	body := decodeBody[struct{ Error *apiError }](t, rec)
	if body.Error == nil {
		t.Fatalf("no error object in %s", rec.Body.String())
	}
	if body.Error.Code != code || body.Error.Field != field {
		t.Errorf("error code %q field %q, want %q %q (message %q)", body.Error.Code, body.Error.Field, code, field, body.Error.Message)
	}
	if body.Error.Message == "" {
		t.Error("error without a message")
	}
	return *body.Error
}
