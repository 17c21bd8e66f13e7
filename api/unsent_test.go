package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// waitingHistory stores, for the acme tenant's webhook id-0001, one
// delivery in each state, and deliveries of globex under the same webhook
// id (which must never be touched from acme's webhook).
func waitingHistory(h *harness) {
	created := t0.Add(-time.Hour)
	next := t0.Add(time.Hour)
	for _, d := range []projections.Delivery{
		// Waiting for its first attempt: a pending mark alone.
		{ID: "d-pending", EventIDs: []string{"e1"}, EventType: "ticket.created", State: schemas.StatePending,
			CreatedAt: created, NextAttemptAt: &next, URL: "https://example.com/hook",
			Request: &projections.Request{Body: `{"id":"d-pending","data":{"a":1}}`}},
		// Two attempts failed, waiting for the third; a redelivery of a
		// replayed delivery.
		{ID: "d-retrying", EventIDs: []string{"e2", "e3"}, EventType: "ticket.updated", State: schemas.StateRetrying,
			AttemptCount: 2, LastStatusCode: 503, CreatedAt: created.Add(time.Minute), NextAttemptAt: &next,
			RedeliveryOf: "d-old", ReplayID: "r-1", URL: "https://example.com/old-hook",
			Request: &projections.Request{Headers: map[string]string{"X-Hookline-Attempt": "2"}, Body: `[{"id":"d-retrying"}]`}},
		// A form-encoded body: the dead letter's payload is its JSON.
		{ID: "d-form", EventIDs: []string{"e4"}, EventType: "ticket.created", State: schemas.StateRetrying,
			AttemptCount: 1, CreatedAt: created, Request: &projections.Request{Body: "payload=%7B%22a%22%3A1%7D"}},
		// Too large to be stored: failed all the same, without a payload.
		{ID: "d-large", EventIDs: []string{"e5"}, EventType: "ticket.created", State: schemas.StatePending,
			CreatedAt: created, Request: &projections.Request{}},
		// Done: never touched.
		{ID: "d-succeeded", EventType: "ticket.created", State: schemas.StateSucceeded, AttemptCount: 1, CreatedAt: created},
		{ID: "d-failed", EventType: "ticket.created", State: schemas.StateFailed, AttemptCount: 6, CreatedAt: created},
		// A test delivery goes to a disabled webhook too, not to a
		// deleted one.
		{ID: "d-ping", EventType: schemas.PingEventType, State: schemas.StateRetrying, AttemptCount: 1, CreatedAt: created,
			Request: &projections.Request{Body: `{}`}},
		// Created after the change: not one that waited through it.
		{ID: "d-later", EventType: "ticket.created", State: schemas.StatePending, CreatedAt: t0.Add(time.Hour)},
	} {
		d.WebhookID = "id-0001"
		h.dels.add("acme", d)
	}
	h.dels.add("globex", projections.Delivery{ID: "g-retrying", WebhookID: "id-0001", State: schemas.StateRetrying,
		AttemptCount: 1, CreatedAt: created, Request: &projections.Request{Body: `{}`}})
}

// TestDisablingOrDeletingAWebhookFailsItsWaitingDeliveries: whichever way
// the API turns a webhook off, each of its deliveries that waits (pending
// or retrying) gets the record the sender would write when it comes back
// (n = attempts + 1, failed, webhook_disabled or webhook_deleted, no
// status) and a dead letter with the job rebuilt from the history; the
// deliveries that are done, another tenant's, and those created after the
// change are untouched.
func TestDisablingOrDeletingAWebhookFailsItsWaitingDeliveries(t *testing.T) {
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		reason                   string
	}{
		{"PATCH enabled false", http.MethodPatch, "/v1/webhooks/id-0001", `{"enabled":false}`, http.StatusOK, "webhook_disabled"},
		{"bulk disable", http.MethodPost, "/v1/webhooks/bulk", `{"action":"disable","ids":["id-0001"]}`, http.StatusOK, "webhook_disabled"},
		{"DELETE", http.MethodDelete, "/v1/webhooks/id-0001", "", http.StatusNoContent, "webhook_deleted"},
		{"bulk delete", http.MethodPost, "/v1/webhooks/bulk", `{"action":"delete","ids":["id-0001"]}`, http.StatusOK, "webhook_deleted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, twoTenants, nil)
			createWebhook(t, h, "tok-acme", validWebhook)
			waitingHistory(h)
			mustStatus(t, h.do(tc.method, tc.path, "tok-acme", tc.body), tc.status)
			h.waitSweeps()

			byID := map[string]Failure{}
			for _, f := range h.fails.all() {
				if _, twice := byID[f.Attempt.DeliveryID]; twice {
					t.Errorf("delivery %s failed twice", f.Attempt.DeliveryID)
				}
				byID[f.Attempt.DeliveryID] = f
			}
			want := []string{"d-form", "d-large", "d-pending", "d-retrying"}
			if tc.reason == "webhook_deleted" {
				want = append(want, "d-ping")
			}
			slices.Sort(want)
			got := slices.Sorted(func(yield func(string) bool) {
				for id := range byID {
					if !yield(id) {
						return
					}
				}
			})
			if !slices.Equal(got, want) {
				t.Fatalf("failed %v, want %v", got, want)
			}
			for _, f := range byID {
				a := f.Attempt
				if a.State != schemas.StateFailed || a.Error != tc.reason || a.StatusCode != 0 || a.Tenant != "acme" ||
					a.WebhookID != "id-0001" || a.At.IsZero() || a.At.Location() != time.UTC || a.NextAttemptAt != nil {
					t.Errorf("attempt record %+v", a)
				}
			}

			pending := byID["d-pending"]
			wantAttempt := schemas.Attempt{DeliveryID: "d-pending", WebhookID: "id-0001", Tenant: "acme", EventIDs: []string{"e1"},
				EventType: "ticket.created", N: 1, State: schemas.StateFailed, At: pending.Attempt.At,
				DeliveryCreatedAt: t0.Add(-time.Hour), Error: tc.reason, URL: "https://example.com/hook",
				RequestBody: `{"id":"d-pending","data":{"a":1}}`}
			if !reflect.DeepEqual(pending.Attempt, wantAttempt) {
				t.Errorf("pending-only delivery's record\n%+v, want\n%+v", pending.Attempt, wantAttempt)
			}

			retrying := byID["d-retrying"]
			wantAttempt = schemas.Attempt{DeliveryID: "d-retrying", WebhookID: "id-0001", Tenant: "acme", EventIDs: []string{"e2", "e3"},
				EventType: "ticket.updated", N: 3, State: schemas.StateFailed, At: retrying.Attempt.At,
				DeliveryCreatedAt: t0.Add(-time.Hour + time.Minute), Error: tc.reason, URL: "https://example.com/old-hook",
				RedeliveryOf: "d-old", ReplayID: "r-1"}
			if !reflect.DeepEqual(retrying.Attempt, wantAttempt) {
				t.Errorf("retrying delivery's record\n%+v, want\n%+v (no body: its first attempt's record has it)", retrying.Attempt, wantAttempt)
			}

			if f := byID["d-form"]; f.Attempt.N != 2 || f.Attempt.URL != "https://example.com/hook" {
				t.Errorf("form-encoded delivery: n %d, url %q; want 2, the webhook's url", f.Attempt.N, f.Attempt.URL)
			}
			if f := byID["d-large"]; f.Attempt.RequestBody != "" || f.Attempt.N != 1 {
				t.Errorf("delivery without a stored body: %+v", f)
			}
		})
	}
}

// TestOnlyTurningAWebhookOffFailsWhatWaits: changes that leave a webhook
// on, or that find it off already, fail nothing; enabling it again before
// its sweep ran stops the sweep (what waits since before is the sender's
// to fail: it knows when each job was written).
func TestOnlyTurningAWebhookOffFailsWhatWaits(t *testing.T) {
	h := newHarness(t, twoTenants, nil)
	createWebhook(t, h, "tok-acme", validWebhook)
	waitingHistory(h)
	mustStatus(t, h.do(http.MethodPatch, "/v1/webhooks/id-0001", "tok-acme", `{"name":"renamed"}`), http.StatusOK)
	mustStatus(t, h.do(http.MethodPatch, "/v1/webhooks/id-0001", "tok-acme", `{"enabled":true}`), http.StatusOK)
	mustStatus(t, h.do(http.MethodPost, "/v1/webhooks/bulk", "tok-acme", `{"action":"enable","ids":["id-0001"]}`), http.StatusOK)
	// Another tenant cannot turn it off.
	wantError(t, h.do(http.MethodPatch, "/v1/webhooks/id-0001", "tok-globex", `{"enabled":false}`), http.StatusNotFound, codeNotFound, "")
	wantError(t, h.do(http.MethodDelete, "/v1/webhooks/id-0001", "tok-globex", ""), http.StatusNotFound, codeNotFound, "")
	h.waitSweeps()
	if f, lists := h.fails.all(), h.dels.listCalls(); len(f) != 0 || lists != 0 {
		t.Fatalf("changes that left the webhook on failed %d deliveries (%d store lists)", len(f), lists)
	}

	h.srv.sweeps.settle = 300 * time.Millisecond
	mustStatus(t, h.do(http.MethodPatch, "/v1/webhooks/id-0001", "tok-acme", `{"enabled":false}`), http.StatusOK)
	mustStatus(t, h.do(http.MethodPatch, "/v1/webhooks/id-0001", "tok-acme", `{"enabled":true}`), http.StatusOK)
	h.waitSweeps()
	if f := h.fails.all(); len(f) != 0 {
		t.Fatalf("a sweep of a webhook enabled again before it ran failed %d deliveries", len(f))
	}

	h.srv.sweeps.settle = 0
	mustStatus(t, h.do(http.MethodPatch, "/v1/webhooks/id-0001", "tok-acme", `{"enabled":false}`), http.StatusOK)
	h.waitSweeps()
	n := len(h.fails.all())
	if n != 4 {
		t.Fatalf("disabling failed %d deliveries, want 4", n)
	}
	// Disabling again is no change; the failed ones no longer wait.
	for id, state := range map[string]string{"d-pending": "failed", "d-retrying": "failed", "d-form": "failed", "d-large": "failed"} {
		d, _ := h.dels.GetDelivery(context.Background(), "acme", id)
		d.State = state
		h.dels.set(d)
	}
	lists := h.dels.listCalls()
	mustStatus(t, h.do(http.MethodPatch, "/v1/webhooks/id-0001", "tok-acme", `{"enabled":false}`), http.StatusOK)
	mustStatus(t, h.do(http.MethodPost, "/v1/webhooks/bulk", "tok-acme", `{"action":"disable","ids":["id-0001"]}`), http.StatusOK)
	h.waitSweeps()
	if got, more := len(h.fails.all()), h.dels.listCalls()-lists; got != n || more != 0 {
		t.Fatalf("disabling a disabled webhook swept it again (%d store lists) and failed %d more deliveries", more, got-n)
	}
}

// TestSweepPagesThroughEveryWaitingDelivery: a backlog larger than a page
// is failed whole, each delivery once.
func TestSweepPagesThroughEveryWaitingDelivery(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	createWebhook(t, h, "", validWebhook)
	h.dels.pageSize = 3
	for i := range 10 {
		state := schemas.StateRetrying
		if i%3 == 0 {
			state = schemas.StatePending
		}
		h.dels.add(schemas.DefaultTenant, projections.Delivery{ID: fmt.Sprintf("d-%02d", i), WebhookID: "id-0001", State: state,
			AttemptCount: i % 3, CreatedAt: t0.Add(-time.Hour), Request: &projections.Request{Body: `{}`}})
	}
	mustStatus(t, h.do(http.MethodDelete, "/v1/webhooks/id-0001", "", ""), http.StatusNoContent)
	h.waitSweeps()
	seen := map[string]int{}
	for _, f := range h.fails.all() {
		seen[f.Attempt.DeliveryID]++
		var i int
		fmt.Sscanf(f.Attempt.DeliveryID, "d-%d", &i)
		if want := i%3 + 1; f.Attempt.N != want {
			t.Errorf("%s: n %d, want %d", f.Attempt.DeliveryID, f.Attempt.N, want)
		}
	}
	if len(seen) != 10 {
		t.Fatalf("failed %d distinct deliveries of 10: %v", len(seen), seen)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s failed %d times", id, n)
		}
	}
}

// logBuffer is a slog handler's output, safe to read while the API logs.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// blockingStore answers ListDeliveries only when its context ends, and
// says so.
type blockingStore struct {
	*fakeDeliveries
	started chan struct{}
	cut     chan error
}

func (b *blockingStore) ListDeliveries(ctx context.Context, _ projections.DeliveryQuery) (projections.DeliveryPage, error) {
	b.started <- struct{}{}
	<-ctx.Done()
	b.cut <- ctx.Err()
	return projections.DeliveryPage{}, ctx.Err()
}

// TestSweepsAreLoggedAndStopAtShutdown: a sweep logs how many deliveries it
// failed, a failed write is logged as an error, and Shutdown waits for a
// running sweep until its deadline, then cuts it, leaving no goroutine.
func TestSweepsAreLoggedAndStopAtShutdown(t *testing.T) {
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	hooks, dels, fails := newFakeWebhooks(), newFakeDeliveries(), &fakeFailures{}
	wh := schemas.Webhook{ID: "w1", Tenant: "t", URL: "https://example.com", Enabled: true, Version: 1}
	if err := hooks.PublishWebhook(context.Background(), schemas.WebhookEvent{Op: schemas.OpCreated, Webhook: wh}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		dels.add("t", projections.Delivery{ID: fmt.Sprint("d", i), WebhookID: "w1", State: schemas.StateRetrying, AttemptCount: 1})
	}
	store := &blockingStore{fakeDeliveries: dels, started: make(chan struct{}, sweepWorkers), cut: make(chan error, sweepWorkers)}
	deps := Deps{Webhooks: hooks, Events: &fakeEvents{}, Deliveries: dels, Jobs: &fakeJobs{}, Failures: fails}
	srv, err := New(Config{}, deps, log)
	if err != nil {
		t.Fatal(err)
	}
	srv.sweeps.settle = 0
	srv.failWaiting(wh, errWebhookDeleted, time.Now())
	h := &harness{t: t, srv: srv}
	h.waitSweeps()
	if !strings.Contains(logs.String(), "waiting deliveries failed") || !strings.Contains(logs.String(), "failed=3") {
		t.Fatalf("no log line says 3 deliveries were failed:\n%s", logs)
	}

	fails.mu.Lock()
	fails.err = errors.New("broker gone")
	fails.mu.Unlock()
	srv.failWaiting(wh, errWebhookDeleted, time.Now())
	h.waitSweeps()
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "broker gone") {
		t.Fatalf("a failed write is not logged as an error:\n%s", logs)
	}

	srv.sweeps.store = store
	srv.failWaiting(wh, errWebhookDeleted, time.Now())
	<-store.started
	srv.failWaiting(schemas.Webhook{ID: "w2", Tenant: "t"}, errWebhookDeleted, time.Now())
	srv.failWaiting(schemas.Webhook{ID: "w3", Tenant: "t"}, errWebhookDeleted, time.Now()) // queued behind two workers
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a sweep that outlives its deadline: %v, want the deadline", err)
	}
	if took := time.Since(start); took < 100*time.Millisecond || took > 5*time.Second {
		t.Fatalf("Shutdown took %v; want its 100 ms deadline, then the cut", took)
	}
	// The second worker's sweep was cut as well, if it had started.
	for len(store.started) > 0 {
		<-store.started
	}
	if err := <-store.cut; !errors.Is(err, context.Canceled) {
		t.Fatalf("the running sweep's context ended with %v, want cancelled", err)
	}
	srv.sweeps.mu.Lock()
	running, queued := srv.sweeps.running, len(srv.sweeps.queue)
	srv.sweeps.mu.Unlock()
	if running != 0 || queued != 0 {
		t.Fatalf("after Shutdown: %d workers, %d queued sweeps", running, queued)
	}
	// Turned off after the shutdown: nothing starts.
	srv.failWaiting(wh, errWebhookDeleted, time.Now())
	srv.sweeps.mu.Lock()
	defer srv.sweeps.mu.Unlock()
	if srv.sweeps.running != 0 || len(srv.sweeps.queue) != 0 {
		t.Fatal("a sweep was queued after Shutdown")
	}
}

// TestProducerWritesFailuresAsTheSenderDoes: each failure is an attempt
// record on hookline.attempts keyed by delivery id, and nothing on
// hookline.dead: the dead letter is the sender's, when it meets the job
// (two of them for one delivery only doubled what people read there).
func TestProducerWritesFailuresAsTheSenderDoes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, p := startProducer(t, ctx, broker.Config{})
	d := projections.Delivery{ID: "d1", WebhookID: "w1", EventIDs: []string{"e1"}, EventType: "ticket.created",
		State: schemas.StateRetrying, AttemptCount: 2, CreatedAt: t0, Request: &projections.Request{Body: `{"a":1}`}}
	f := unsentFailure(d, "t", "https://example.com", errWebhookDisabled, t0.Add(time.Hour))
	if err := p.PublishFailures(ctx, []Failure{f}); err != nil {
		t.Fatal(err)
	}

	read := func(topic string) topicRecord {
		r, err := b.PartitionReader(topic, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("read %s: %v", topic, err)
		}
		return topicRecord{key: string(m.Key), value: m.Value, reason: broker.Header(m, broker.HeaderReason)}
	}
	att := read(schemas.TopicAttempts)
	var got schemas.Attempt
	if err := json.Unmarshal(att.value, &got); err != nil || att.key != "d1" {
		t.Fatalf("attempt record key %q: %v", att.key, err)
	}
	if !reflect.DeepEqual(got, f.Attempt) || got.N != 3 || got.Error != "webhook_disabled" {
		t.Fatalf("attempt record %+v, want %+v", got, f.Attempt)
	}
	if end, err := b.EndOffsets(ctx, schemas.TopicDead); err != nil || end[0] != 0 {
		t.Fatalf("hookline.dead ends at %v (%v), want nothing written there", end, err)
	}
}

type topicRecord struct {
	key    string
	value  []byte
	reason string
}

// TestRedeliverFailedSendsWhatDisablingFailed: the deliveries failed
// webhook_disabled are failed deliveries like any: redeliver-failed is a
// 409 while the webhook is disabled, and sends each of them (with its
// payload) once it is enabled again, except one whose body is not stored.
func TestRedeliverFailedSendsWhatDisablingFailed(t *testing.T) {
	h := newHarness(t, twoTenants, nil)
	createWebhook(t, h, "tok-acme", validWebhook)
	waitingHistory(h)
	mustStatus(t, h.do(http.MethodPatch, "/v1/webhooks/id-0001", "tok-acme", `{"enabled":false}`), http.StatusOK)
	h.waitSweeps()
	// What the projector makes of the records written.
	for _, f := range h.fails.all() {
		d, err := h.dels.GetDelivery(context.Background(), "acme", f.Attempt.DeliveryID)
		if err != nil {
			t.Fatal(err)
		}
		d.State, d.AttemptCount, d.LastStatusCode, d.NextAttemptAt = f.Attempt.State, f.Attempt.N, 0, nil
		h.dels.set(d)
	}
	wantError(t, h.do(http.MethodPost, "/v1/webhooks/id-0001/redeliver-failed", "tok-acme", `{}`), http.StatusConflict, codeWebhookDisabled, "")
	wantError(t, h.do(http.MethodPost, "/v1/deliveries/d-pending/redeliver", "tok-acme", ""), http.StatusConflict, codeWebhookDisabled, "")
	if jobs := h.jobs.all(); len(jobs) != 0 {
		t.Fatalf("%d jobs enqueued for a disabled webhook", len(jobs))
	}

	mustStatus(t, h.do(http.MethodPatch, "/v1/webhooks/id-0001", "tok-acme", `{"enabled":true}`), http.StatusOK)
	rec := h.do(http.MethodPost, "/v1/webhooks/id-0001/redeliver-failed", "tok-acme", `{}`)
	mustStatus(t, rec, http.StatusAccepted)
	out := decodeBody[redeliverFailedOutput](t, rec)
	payloads := map[string]string{}
	for _, j := range h.jobs.all() {
		if j.Tenant != "acme" || j.WebhookID != "id-0001" {
			t.Errorf("redelivery %+v", j)
		}
		payloads[j.RedeliveryOf] = string(j.Payload)
	}
	// d-large (and d-failed, failed before) have no stored body to send.
	want := map[string]string{"d-pending": `{"id":"d-pending","data":{"a":1}}`, "d-retrying": `[{"id":"d-retrying"}]`,
		"d-form": `{"a":1}`}
	if out.Count != 3 || len(payloads) != 3 || !reflect.DeepEqual(payloads, want) {
		t.Fatalf("redeliver-failed: count %d, payloads by original %v; want %v", out.Count, payloads, want)
	}
}

// fixedOwner is the replay manager's ownership, for tests.
type fixedOwner bool

func (o fixedOwner) Owns(string) bool { return bool(o) }

// TestOneProcessSweepsAfterASendersDisable: a disable the registry tells
// of that carries a sender's reason is swept by the API process that owns
// the webhook's partition, and only by it (each process would write its
// own dead letters); a recent one only, and not the API's own (no reason),
// which is swept where it is made.
func TestOneProcessSweepsAfterASendersDisable(t *testing.T) {
	h := newHarness(t, twoTenants, nil)
	createWebhook(t, h, "tok-acme", validWebhook)
	waitingHistory(h)
	at := h.srv.now().UTC()
	// The sender's change, as the registry folds it.
	wh, err := h.hooks.ChangeWebhook(context.Background(), "acme", "id-0001", func(ev *schemas.WebhookEvent) error {
		ev.Op, ev.At = schemas.OpUpdated, at
		ev.Webhook.Enabled, ev.Webhook.DisabledAt, ev.Webhook.DisabledReason = false, &at, "endpoint answered 410 Gone"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	h.srv.sweepOwner = fixedOwner(false)
	h.srv.disabledElsewhere(wh)
	h.waitSweeps()
	if n := len(h.fails.all()); n != 0 {
		t.Fatalf("a process that does not own the webhook swept it: %d failed", n)
	}
	own := wh
	own.DisabledReason = ""
	old := wh
	long := at.Add(-time.Hour)
	old.DisabledAt = &long
	h.srv.sweepOwner = fixedOwner(true)
	h.srv.disabledElsewhere(own)
	h.srv.disabledElsewhere(old)
	h.waitSweeps()
	if n := len(h.fails.all()); n != 0 {
		t.Fatalf("the API's own disable, or one an hour old, was swept again: %d failed", n)
	}
	h.srv.disabledElsewhere(wh)
	h.waitSweeps()
	if n := len(h.fails.all()); n != 4 {
		t.Fatalf("the owner's sweep failed %d deliveries, want the 4 waiting", n)
	}
}
