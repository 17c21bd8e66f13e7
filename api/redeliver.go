package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// Jobs enqueues delivery jobs on hookline.deliveries.
type Jobs interface {
	// PublishJobs writes every job durably, or returns an error.
	PublishJobs(ctx context.Context, jobs []schemas.Job) error
}

// maxRedeliverFailed bounds one redeliver-failed call; a wider range is
// split by the client (the answer says so).
const maxRedeliverFailed = 10000

type redeliverInput struct {
	// Force redelivers a delivery that did not fail.
	Force bool `json:"force"`
}

// redeliver is POST /v1/deliveries/{id}/redeliver: the same payload again,
// under a new delivery id that names the one it redelivers.
func (s *Server) redeliver(w http.ResponseWriter, r *http.Request) {
	var in redeliverInput
	if aerr := s.optionalBody(r, &in); aerr != nil {
		writeError(w, aerr)
		return
	}
	d, err := s.deps.Deliveries.GetDelivery(r.Context(), tenantOf(r), mux.Vars(r)["id"])
	switch {
	case errors.Is(err, projections.ErrNotFound):
		writeError(w, notFound("delivery"))
		return
	case err != nil:
		s.dependencyFailed(w, r, "get delivery", err)
		return
	}
	if d.State != schemas.StateFailed && !in.Force {
		writeError(w, &apiError{Status: http.StatusConflict, Code: codeConflict,
			Message: "only failed deliveries can be redelivered; this one is " + d.State + " (give force: true to send it again anyway)"})
		return
	}
	wh, ok := s.deps.Webhooks.Webhook(tenantOf(r), d.WebhookID)
	if !ok {
		writeError(w, &apiError{Status: http.StatusConflict, Code: codeWebhookDisabled, Message: "the delivery's webhook was deleted"})
		return
	}
	if !wh.Enabled {
		writeError(w, disabledConflict())
		return
	}
	if !bodyStored(d) {
		writeError(w, &apiError{Status: http.StatusConflict, Code: codeConflict,
			Message: "the delivery's request body is not in the history (it was over the broker's message size limit), so it cannot be sent again"})
		return
	}
	job := s.redeliveryJob(d, tenantOf(r))
	if err := s.deps.Jobs.PublishJobs(r.Context(), []schemas.Job{job}); err != nil {
		s.dependencyFailed(w, r, "enqueue redelivery", err)
		return
	}
	writeJSON(w, http.StatusAccepted, pendingView(job))
}

// disabledConflict answers a redelivery to a disabled webhook: the sender
// would drop it, so it is refused instead of answered with an id that
// never gets an attempt.
func disabledConflict() *apiError {
	return &apiError{Status: http.StatusConflict, Code: codeWebhookDisabled,
		Message: "the webhook is disabled: enable it first (a test delivery, POST /v1/webhooks/{id}/test, goes out to a disabled webhook)"}
}

// bodyStored reports whether the history holds the delivery's request
// body: not when the body was over the broker's size limit (its delivery
// failed as too_large, or its attempt record was kept without it).
func bodyStored(d projections.Delivery) bool { return d.Request != nil && d.Request.Body != "" }

// redeliveryJob is a new delivery of d's payload. A form-encoded request is
// turned back into its JSON payload, which the sender encodes again.
func (s *Server) redeliveryJob(d projections.Delivery, tenant string) schemas.Job {
	body := storedPayload(d)
	return schemas.Job{
		DeliveryID: s.deps.NewID(), WebhookID: d.WebhookID, Tenant: tenant,
		EventIDs: d.EventIDs, EventType: d.EventType, CreatedAt: s.deps.Now().UTC().Truncate(time.Millisecond),
		Payload: []byte(body), RedeliveryOf: d.ID, ReplayID: d.ReplayID,
	}
}

// storedPayload is the payload of d as the history has its request body:
// a form-encoded body is turned back into its JSON; "" when the body is
// not stored.
func storedPayload(d projections.Delivery) string {
	body := ""
	if d.Request != nil {
		body = d.Request.Body
	}
	if v, ok := strings.CutPrefix(body, "payload="); ok {
		if decoded, err := url.QueryUnescape(v); err == nil {
			body = decoded
		}
	}
	return body
}

// pendingView is a delivery that is enqueued and not yet attempted.
func pendingView(job schemas.Job) projections.Delivery {
	return projections.Delivery{
		ID: job.DeliveryID, WebhookID: job.WebhookID, EventIDs: job.EventIDs, EventType: job.EventType,
		State: schemas.StatePending, CreatedAt: job.CreatedAt, UpdatedAt: job.CreatedAt,
		RedeliveryOf: job.RedeliveryOf, ReplayID: job.ReplayID,
	}
}

type redeliverFailedInput struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
}

type redeliverFailedOutput struct {
	Count       int      `json:"count"`
	DeliveryIDs []string `json:"delivery_ids"`
}

// redeliverFailed is POST /v1/webhooks/{id}/redeliver-failed {since, until}:
// every delivery created in the range whose state is failed and that has
// not been redelivered already (a failed redelivery is itself in the range
// or later, and is redelivered instead: each chain gets one new delivery).
func (s *Server) redeliverFailed(w http.ResponseWriter, r *http.Request) {
	var in redeliverFailedInput
	if aerr := s.optionalBody(r, &in); aerr != nil {
		writeError(w, aerr)
		return
	}
	if !in.Since.IsZero() && !in.Until.IsZero() && !in.Since.Before(in.Until) {
		writeError(w, invalid("until", "must be later than since"))
		return
	}
	wh, aerr := s.lookup(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if !wh.Enabled {
		writeError(w, disabledConflict())
		return
	}
	failed, aerr := s.failedTips(r, wh, in)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	out := redeliverFailedOutput{DeliveryIDs: []string{}}
	jobs := make([]schemas.Job, 0, len(failed))
	for _, d := range failed {
		if !bodyStored(d) {
			continue // too large to have been stored, and so to be sent again
		}
		job := s.redeliveryJob(d, wh.Tenant)
		jobs = append(jobs, job)
		out.DeliveryIDs = append(out.DeliveryIDs, job.DeliveryID)
	}
	if err := s.deps.Jobs.PublishJobs(r.Context(), jobs); err != nil {
		s.dependencyFailed(w, r, "enqueue redeliveries", err)
		return
	}
	out.Count = len(jobs)
	writeJSON(w, http.StatusAccepted, out)
}

// failedTips lists the failed deliveries of the range that no later
// delivery redelivers, with their requests.
func (s *Server) failedTips(r *http.Request, wh schemas.Webhook, in redeliverFailedInput) ([]projections.Delivery, *apiError) {
	redelivered := map[string]bool{}
	var candidates []projections.Delivery
	q := projections.DeliveryQuery{Tenant: wh.Tenant, WebhookID: wh.ID, Since: in.Since, Limit: 500}
	for {
		page, err := s.deps.Deliveries.ListDeliveries(r.Context(), q)
		if err != nil {
			return nil, &apiError{Status: http.StatusServiceUnavailable, Code: codeUnavailable, Message: "the attempts store is not available"}
		}
		for _, d := range page.Deliveries {
			if d.RedeliveryOf != "" {
				redelivered[d.RedeliveryOf] = true
			}
			if d.State == schemas.StateFailed && (in.Until.IsZero() || d.CreatedAt.Before(in.Until)) {
				candidates = append(candidates, d)
			}
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	var out []projections.Delivery
	for _, d := range candidates {
		if redelivered[d.ID] {
			continue
		}
		if len(out) == maxRedeliverFailed {
			return nil, invalid("until", "more than %d failed deliveries in the range: narrow it", maxRedeliverFailed)
		}
		full, err := s.deps.Deliveries.GetDelivery(r.Context(), wh.Tenant, d.ID)
		if err != nil {
			return nil, &apiError{Status: http.StatusServiceUnavailable, Code: codeUnavailable, Message: "the attempts store is not available"}
		}
		out = append(out, full)
	}
	return out, nil
}

// optionalBody decodes a JSON object body strictly, or leaves v as it is
// when there is no body.
func (s *Server) optionalBody(r *http.Request, v any) *apiError {
	data, aerr := readBody(r)
	if aerr != nil {
		return aerr
	}
	if strings.TrimSpace(string(data)) == "" {
		return nil
	}
	return decodeObject(data, v, "")
}
