package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/hookline/hookline/schemas"
)

// testDeliveryInput is the optional body of POST /v1/webhooks/{id}/test.
type testDeliveryInput struct {
	// EventType names the test event; default hookline.ping.
	EventType string `json:"event_type"`
}

// testDelivery sends a test delivery through the normal pipeline: a job on
// hookline.deliveries that the sender signs, sends and records like any
// other, even to a disabled webhook or one whose events, identifier or
// condition would not match, and through an open circuit as its probe.
func (s *Server) testDelivery(w http.ResponseWriter, r *http.Request) {
	wh, aerr := s.lookup(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var in testDeliveryInput
	if aerr := s.optionalBody(r, &in); aerr != nil {
		writeError(w, aerr)
		return
	}
	eventType := schemas.PingEventType
	if in.EventType != "" {
		eventType = in.EventType
		if !schemas.ValidEventPattern(eventType) || strings.Contains(eventType, "*") || len(eventType) > 200 {
			writeError(w, invalid("event_type", "%q is not an event type: use resource.trigger, such as ticket.created", in.EventType))
			return
		}
	}
	now := s.deps.Now().UTC().Truncate(time.Millisecond)
	id, eventID := s.deps.NewID(), s.deps.NewID()
	resource, _, _ := strings.Cut(eventType, ".")
	data, _ := json.Marshal(map[string]string{
		"message": "A test delivery from Hookline: your endpoint is reachable.", "webhook_id": wh.ID, "webhook_name": wh.Name,
	})
	body, err := json.Marshal(schemas.Envelope{ID: id, EventID: eventID, EventType: eventType, EventTime: now,
		Resource: resource, ResourceID: wh.ID, WebhookID: wh.ID, Data: data})
	if err != nil {
		s.dependencyFailed(w, r, "encode test delivery", err)
		return
	}
	job := schemas.Job{DeliveryID: id, WebhookID: wh.ID, Tenant: wh.Tenant, EventIDs: []string{eventID},
		EventType: eventType, ResourceID: wh.ID, CreatedAt: now, Payload: body, Test: true}
	if err := s.deps.Jobs.PublishJobs(r.Context(), []schemas.Job{job}); err != nil {
		s.dependencyFailed(w, r, "enqueue test delivery", err)
		return
	}
	s.log.Info("api: test delivery", "tenant", wh.Tenant, "webhook_id", wh.ID, "delivery_id", id)
	writeJSON(w, http.StatusAccepted, pendingView(job))
}
