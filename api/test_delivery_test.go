package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// TestTestDeliveryEnqueuesAPing: POST /v1/webhooks/{id}/test answers 202
// with a pending delivery and enqueues a job marked as a test, with a
// hookline.ping envelope for the webhook (or the event type given); bad
// input is a 400, an unknown or another tenant's webhook a 404.
func TestTestDeliveryEnqueuesAPing(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	created := createWebhook(t, h, "", validWebhook)
	rec := h.do(http.MethodPost, "/v1/webhooks/"+created.ID+"/test", "", "")
	mustStatus(t, rec, http.StatusAccepted)
	d := decodeBody[projections.Delivery](t, rec)
	jobs := h.jobs.all()
	if len(jobs) != 1 {
		t.Fatalf("%d jobs enqueued, want 1", len(jobs))
	}
	job := jobs[0]
	if !job.Test || job.EventType != schemas.PingEventType || job.WebhookID != created.ID || job.DeliveryID != d.ID || d.State != schemas.StatePending {
		t.Fatalf("job %+v, answer %+v; want a pending test job of hookline.ping for the webhook", job, d)
	}
	var env schemas.Envelope
	if err := json.Unmarshal(job.Payload, &env); err != nil || env.ID != job.DeliveryID || env.EventType != schemas.PingEventType ||
		env.WebhookID != created.ID || env.Resource != "hookline" || len(env.Data) == 0 {
		t.Fatalf("payload %s (%v): want a hookline.ping envelope naming the delivery and the webhook", job.Payload, err)
	}

	mustStatus(t, h.do(http.MethodPost, "/v1/webhooks/"+created.ID+"/test", "", `{"event_type":"ticket.created"}`), http.StatusAccepted)
	if got := h.jobs.all()[1].EventType; got != "ticket.created" {
		t.Fatalf("event type %q, want ticket.created", got)
	}
	for _, bad := range []string{`{"event_type":"ticket.*"}`, `{"event_type":"nodot"}`, `{"kind":"x"}`, `[1]`} {
		if rec := h.do(http.MethodPost, "/v1/webhooks/"+created.ID+"/test", "", bad); rec.Code != http.StatusBadRequest {
			t.Errorf("test with %s: %d, want 400", bad, rec.Code)
		}
	}
	if rec := h.do(http.MethodPost, "/v1/webhooks/nope/test", "", ""); rec.Code != http.StatusNotFound {
		t.Errorf("test of an unknown webhook: %d, want 404", rec.Code)
	}
	if n := len(h.jobs.all()); n != 2 {
		t.Errorf("%d jobs after refused requests, want still 2", n)
	}
}

// TestEventTypesAndWarnings: GET /v1/event-types answers the catalogue; a
// webhook naming a type outside it is created, with a warning that names
// it; a PATCH of its events warns too, other PATCHes do not.
func TestEventTypesAndWarnings(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	rec := h.do(http.MethodGet, "/v1/event-types", "", "")
	mustStatus(t, rec, http.StatusOK)
	cat := decodeBody[schemas.Catalogue](t, rec)
	if len(cat.Resources) == 0 || len(cat.Related) == 0 {
		t.Fatalf("catalogue %+v", cat)
	}
	created := createWebhook(t, h, "", `{"name":"n","url":"https://example.com/h","events":["tickt.created","ticket.*"]}`)
	if len(created.Warnings) != 1 || !strings.Contains(created.Warnings[0], "tickt.created") {
		t.Fatalf("warnings %q, want one naming tickt.created", created.Warnings)
	}
	patched := decodeBody[schemas.PublicWebhook](t, h.do(http.MethodPatch, "/v1/webhooks/"+created.ID, "", `{"events":["ticket.creatd"]}`))
	if len(patched.Warnings) != 1 {
		t.Fatalf("PATCH of events: warnings %q, want one", patched.Warnings)
	}
	renamed := decodeBody[schemas.PublicWebhook](t, h.do(http.MethodPatch, "/v1/webhooks/"+created.ID, "", `{"name":"m"}`))
	if len(renamed.Warnings) != 0 {
		t.Fatalf("PATCH of the name: warnings %q, want none", renamed.Warnings)
	}
	if got := decodeBody[schemas.PublicWebhook](t, h.do(http.MethodGet, "/v1/webhooks/"+created.ID, "", "")); len(got.Warnings) != 0 {
		t.Fatalf("GET shows warnings %q", got.Warnings)
	}
}
