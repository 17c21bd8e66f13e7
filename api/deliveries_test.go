package api

import (
	"errors"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

func seedDelivery(h *harness, tenant, id, webhookID, state string) projections.Delivery {
	d := projections.Delivery{
		ID: id, WebhookID: webhookID, EventIDs: []string{"e1"}, EventType: "ticket.created",
		State: state, AttemptCount: 1, LastStatusCode: 200,
		CreatedAt: t0.In(time.FixedZone("X", -5*3600)), UpdatedAt: t0.Add(time.Second),
		Request:  &projections.Request{Headers: map[string]string{"Webhook-Signature": "***"}, Body: "{}"},
		Attempts: []projections.AttemptView{{N: 1, At: t0.Add(time.Second), StatusCode: 200, DurationMS: 12}},
	}
	h.dels.add(tenant, d)
	return d
}

func TestListDeliveriesPassesTheQueryThrough(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	wh := createWebhook(t, h, "", validWebhook)
	seedDelivery(h, schemas.DefaultTenant, "d2", wh.ID, schemas.StateFailed)
	seedDelivery(h, schemas.DefaultTenant, "d1", wh.ID, schemas.StateSucceeded)
	h.dels.nextCursor = "opaque-next"

	rec := h.do(http.MethodGet, "/v1/webhooks/"+wh.ID+"/deliveries?state=failed&since=2026-11-01T00:00:00Z&until=2026-11-23T00:00:00.5Z&limit=10&cursor="+encodeCursor("c1"), "", "")
	mustStatus(t, rec, http.StatusOK)
	want := projections.DeliveryQuery{
		Tenant: schemas.DefaultTenant, WebhookID: wh.ID, State: schemas.StateFailed,
		Since: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 11, 23, 0, 0, 0, 5e8, time.UTC),
		Limit: 10, Cursor: "c1",
	}
	if got := h.dels.query(); got == nil || !reflect.DeepEqual(*got, want) {
		t.Errorf("store asked %+v, want %+v", got, want)
	}
	page := decodeBody[list[projections.Delivery]](t, rec)
	if len(page.Data) != 1 || page.Data[0].ID != "d2" || page.NextCursor != encodeCursor("opaque-next") {
		t.Errorf("page %+v", page)
	}
	if !strings.Contains(rec.Body.String(), `"created_at":"2026-11-22T10:00:00Z"`) {
		t.Errorf("times are not UTC: %s", rec.Body.String())
	}

	mustStatus(t, h.do(http.MethodGet, "/v1/webhooks/"+wh.ID+"/deliveries", "", ""), http.StatusOK)
	if got := h.dels.query(); got.Limit != DefaultLimit || got.State != "" || !got.Since.IsZero() || got.Cursor != "" {
		t.Errorf("defaults: store asked %+v", got)
	}
}

func TestListDeliveriesRefusesBadQueries(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	wh := createWebhook(t, h, "", validWebhook)
	tests := []struct{ name, query, field string }{
		{"unknown state", "state=done", "state"},
		{"since not RFC 3339", "since=2026-11-01", "since"},
		{"until not RFC 3339", "until=yesterday", "until"},
		{"until before since", "since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z", "until"},
		{"limit too big", "limit=1000", "limit"},
		{"event_type with a wildcard", "event_type=ticket.*", "event_type"},
		{"status out of range", "status=600", "status"},
		{"status class out of range", "status=6xx", "status"},
		{"status word", "status=bad", "status"},
		{"unknown parameter", "from=x", "from"},
		{"garbage cursor", "cursor=garbage", "cursor"},
		{"a delivery id as cursor", "cursor=d2", "cursor"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.dels.lastQuery = nil
			wantError(t, h.do(http.MethodGet, "/v1/webhooks/"+wh.ID+"/deliveries?"+tc.query, "", ""),
				http.StatusBadRequest, codeInvalid, tc.field)
			if h.dels.query() != nil {
				t.Error("the store was asked anyway")
			}
		})
	}
	t.Run("unknown webhook", func(t *testing.T) {
		wantError(t, h.do(http.MethodGet, "/v1/webhooks/nope/deliveries", "", ""), http.StatusNotFound, codeNotFound, "")
	})
}

func TestGetDelivery(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	seedDelivery(h, schemas.DefaultTenant, "d1", "w1", schemas.StateSucceeded)

	rec := h.do(http.MethodGet, "/v1/deliveries/d1", "", "")
	mustStatus(t, rec, http.StatusOK)
	got := decodeBody[projections.Delivery](t, rec)
	if got.ID != "d1" || len(got.Attempts) != 1 || got.Attempts[0].DurationMS != 12 || got.Request == nil {
		t.Errorf("delivery %+v", got)
	}

	wantError(t, h.do(http.MethodGet, "/v1/deliveries/nope", "", ""), http.StatusNotFound, codeNotFound, "")

	h.dels.err = errors.New("clickhouse: dial tcp 10.1.2.3:9000")
	e := wantError(t, h.do(http.MethodGet, "/v1/deliveries/d1", "", ""), http.StatusServiceUnavailable, codeUnavailable, "")
	if strings.Contains(e.Message, "10.1.2.3") {
		t.Errorf("message leaks the store error: %q", e.Message)
	}
	wh := createWebhook(t, h, "", validWebhook)
	wantError(t, h.do(http.MethodGet, "/v1/webhooks/"+wh.ID+"/deliveries", "", ""), http.StatusServiceUnavailable, codeUnavailable, "")
}

// TestWaitingDeliveriesShowTheirNextAttempt: a pending or retrying
// delivery answers next_attempt_at in RFC 3339 UTC, in the list and the
// detail, whatever zone the store answered in; a finished one has none.
func TestWaitingDeliveriesShowTheirNextAttempt(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	wh := createWebhook(t, h, "", validWebhook)
	zone := time.FixedZone("X", 2*3600)
	retryAt, waitUntil := t0.Add(5*time.Minute).In(zone), t0.Add(90*time.Second+250*time.Millisecond).In(zone)
	add := func(id, state string, attempts int, next *time.Time) {
		d := seedDelivery(h, schemas.DefaultTenant, id, wh.ID, state)
		h.dels.mu.Lock()
		defer h.dels.mu.Unlock()
		for i := range h.dels.deliveries {
			if h.dels.deliveries[i].ID == d.ID {
				h.dels.deliveries[i].NextAttemptAt = next
				h.dels.deliveries[i].AttemptCount = attempts
				if attempts == 0 {
					h.dels.deliveries[i].Attempts, h.dels.deliveries[i].LastStatusCode = nil, 0
				}
			}
		}
	}
	add("d-retrying", schemas.StateRetrying, 1, &retryAt)
	add("d-pending", schemas.StatePending, 0, &waitUntil)
	add("d-done", schemas.StateSucceeded, 1, nil)
	want := map[string]string{"d-retrying": "2026-11-22T10:05:00Z", "d-pending": "2026-11-22T10:01:30.25Z", "d-done": ""}

	rec := h.do(http.MethodGet, "/v1/webhooks/"+wh.ID+"/deliveries", "", "")
	mustStatus(t, rec, http.StatusOK)
	list := decodeBody[struct {
		Data []map[string]any `json:"data"`
	}](t, rec)
	if len(list.Data) != 3 {
		t.Fatalf("listed %d deliveries; want 3: %s", len(list.Data), rec.Body.String())
	}
	for _, d := range list.Data {
		id, _ := d["id"].(string)
		got, has := d["next_attempt_at"]
		if w := want[id]; w == "" && has || w != "" && got != w {
			t.Errorf("list: %s has next_attempt_at %v (present %v); want %q", id, got, has, w)
		}
	}
	for id, w := range want {
		rec := h.do(http.MethodGet, "/v1/deliveries/"+id, "", "")
		mustStatus(t, rec, http.StatusOK)
		d := decodeBody[map[string]any](t, rec)
		got, has := d["next_attempt_at"]
		if w == "" && has || w != "" && got != w {
			t.Errorf("detail: %s has next_attempt_at %v (present %v); want %q", id, got, has, w)
		}
		if id == "d-pending" && (d["attempt_count"] != 0.0 || d["attempts"] != nil || d["state"] != "pending") {
			t.Errorf("detail of a delivery waiting for its first attempt: %s", rec.Body.String())
		}
	}
}

func TestListDeliveriesPassesEventTypeAndStatus(t *testing.T) {
	for _, status := range []string{"503", "5xx", "2xx", "error"} {
		h := newHarness(t, Config{}, nil)
		createWebhook(t, h, "", validWebhook)
		mustStatus(t, h.do(http.MethodGet, "/v1/webhooks/id-0001/deliveries?event_type=ticket.created&status="+status, "", ""), http.StatusOK)
		if q := h.dels.query(); q == nil || q.EventType != "ticket.created" || q.Status != status {
			t.Fatalf("query passed to the store = %+v", q)
		}
	}
}

func TestWebhookStats(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	createWebhook(t, h, "", validWebhook)
	rec := h.do(http.MethodGet, "/v1/webhooks/id-0001/stats?since=2026-11-01T00:00:00Z", "", "")
	mustStatus(t, rec, http.StatusOK)
	body := decodeBody[map[string]any](t, rec)
	if body["webhook_id"] != "id-0001" || body["breaker_state"] != "open" || body["since"] != "2026-11-01T00:00:00Z" {
		t.Fatalf("stats = %v", body)
	}
	if q := h.dels.lastStats; q == nil || q.Since.IsZero() || q.WebhookID != "id-0001" {
		t.Fatalf("stats query = %+v", q)
	}
	wantError(t, h.do(http.MethodGet, "/v1/webhooks/id-0001/stats?since=yesterday", "", ""), http.StatusBadRequest, codeInvalid, "since")
	wantError(t, h.do(http.MethodGet, "/v1/webhooks/nope/stats", "", ""), http.StatusNotFound, "not_found", "")
}

func TestRedeliver(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	createWebhook(t, h, "", validWebhook)
	body := `{"id":"d-failed","event_type":"ticket.created"}`
	h.dels.add("default", projections.Delivery{ID: "d-failed", WebhookID: "id-0001", State: "failed", EventType: "ticket.created",
		EventIDs: []string{"e1"}, Request: &projections.Request{Body: body}})
	h.dels.add("default", projections.Delivery{ID: "d-ok", WebhookID: "id-0001", State: "succeeded",
		Request: &projections.Request{Body: "payload=%7B%22a%22%3A1%7D"}})
	h.dels.add("other", projections.Delivery{ID: "d-other", WebhookID: "x", State: "failed"})

	rec := h.do(http.MethodPost, "/v1/deliveries/d-failed/redeliver", "", "")
	mustStatus(t, rec, http.StatusAccepted)
	got := decodeBody[map[string]any](t, rec)
	if got["redelivery_of"] != "d-failed" || got["state"] != "pending" || got["id"] == "d-failed" {
		t.Fatalf("redelivery = %v", got)
	}
	jobs := h.jobs.all()
	if len(jobs) != 1 || string(jobs[0].Payload) != body || jobs[0].RedeliveryOf != "d-failed" || jobs[0].Tenant != "default" {
		t.Fatalf("enqueued %+v", jobs)
	}

	wantError(t, h.do(http.MethodPost, "/v1/deliveries/d-ok/redeliver", "", ""), http.StatusConflict, codeConflict, "")
	mustStatus(t, h.do(http.MethodPost, "/v1/deliveries/d-ok/redeliver", "", `{"force":true}`), http.StatusAccepted)
	if jobs := h.jobs.all(); string(jobs[1].Payload) != `{"a":1}` {
		t.Fatalf("a form-encoded request was not turned back into its JSON payload: %s", jobs[1].Payload)
	}
	wantError(t, h.do(http.MethodPost, "/v1/deliveries/d-other/redeliver", "", ""), http.StatusNotFound, codeNotFound, "")
	// A delivery too large to have its body in the history cannot be sent
	// again: a 409, not a job with an empty body.
	h.dels.add("default", projections.Delivery{ID: "d-large", WebhookID: "id-0001", State: "failed", Request: &projections.Request{}})
	wantError(t, h.do(http.MethodPost, "/v1/deliveries/d-large/redeliver", "", ""), http.StatusConflict, codeConflict, "")
	if n := len(h.jobs.all()); n != 2 {
		t.Fatalf("%d jobs after a refused redelivery, want 2", n)
	}
	wantError(t, h.do(http.MethodPost, "/v1/deliveries/d-failed/redeliver", "", `{"frob":1}`), http.StatusBadRequest, codeInvalid, "frob")

	// A disabled webhook's sender drops what it is sent: a redelivery to it
	// is a 409, not an id that never gets an attempt.
	mustStatus(t, h.do(http.MethodPatch, "/v1/webhooks/id-0001", "", `{"enabled":false}`), http.StatusOK)
	wantError(t, h.do(http.MethodPost, "/v1/deliveries/d-failed/redeliver", "", ""), http.StatusConflict, codeWebhookDisabled, "")
	wantError(t, h.do(http.MethodPost, "/v1/webhooks/id-0001/redeliver-failed", "", `{}`), http.StatusConflict, codeWebhookDisabled, "")
	if n := len(h.jobs.all()); n != 2 {
		t.Fatalf("%d jobs after redeliveries to a disabled webhook, want 2", n)
	}
}

func TestRedeliverFailedSkipsChainsAlreadyRedelivered(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	createWebhook(t, h, "", validWebhook)
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	add := func(id, state, of string, minute int) {
		h.dels.add("default", projections.Delivery{ID: id, WebhookID: "id-0001", State: state, RedeliveryOf: of,
			CreatedAt: at.Add(time.Duration(minute) * time.Minute), Request: &projections.Request{Body: `{}`}})
	}
	add("a", "failed", "", 1) // redelivered by a2, which succeeded: skip
	add("a2", "succeeded", "a", 5)
	add("b", "failed", "", 2) // redelivered by b2, which failed too: b2 is the one to send
	add("b2", "failed", "b", 6)
	add("c", "failed", "", 3) // never redelivered: send
	add("d", "succeeded", "", 4)
	add("e", "failed", "", 90) // outside the range
	rec := h.do(http.MethodPost, "/v1/webhooks/id-0001/redeliver-failed", "", `{"since":"2026-11-22T10:00:00Z","until":"2026-11-22T11:00:00Z"}`)
	mustStatus(t, rec, http.StatusAccepted)
	out := decodeBody[redeliverFailedOutput](t, rec)
	var of []string
	for _, j := range h.jobs.all() {
		of = append(of, j.RedeliveryOf)
	}
	sort.Strings(of)
	if out.Count != 2 || strings.Join(of, ",") != "b2,c" {
		t.Fatalf("count=%d redelivered %v, want b2 and c", out.Count, of)
	}
	wantError(t, h.do(http.MethodPost, "/v1/webhooks/id-0001/redeliver-failed", "", `{"since":"2026-11-22T11:00:00Z","until":"2026-11-22T10:00:00Z"}`),
		http.StatusBadRequest, codeInvalid, "until")
}
