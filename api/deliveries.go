package api

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

var deliveryStates = map[string]bool{
	schemas.StatePending: true, schemas.StateSucceeded: true,
	schemas.StateRetrying: true, schemas.StateFailed: true,
}

// parseDeliveryQuery reads the query of GET /v1/webhooks/{id}/deliveries.
// Tenant and WebhookID are left for the caller.
func parseDeliveryQuery(r *http.Request) (projections.DeliveryQuery, *apiError) {
	var dq projections.DeliveryQuery
	q, aerr := parseQuery(r.URL.RawQuery,
		[]string{"state", "event_type", "status", "since", "until", "limit", "cursor"})
	if aerr != nil {
		return dq, aerr
	}
	if v, ok := q.get("event_type"); ok {
		if !schemas.ValidEventPattern(v) || strings.Contains(v, "*") {
			return dq, invalid("event_type", "must be an event type like ticket.created")
		}
		dq.EventType = v
	}
	if v, ok := q.get("status"); ok {
		if !validStatusFilter(v) {
			return dq, invalid("status", "must be a status code (503), a class (2xx, 3xx, 4xx, 5xx) or error")
		}
		dq.Status = v
	}
	if v, ok := q.get("state"); ok {
		if !deliveryStates[v] {
			return dq, invalid("state", "must be one of pending, succeeded, retrying, failed")
		}
		dq.State = v
	}
	if dq.Since, aerr = q.time("since"); aerr != nil {
		return dq, aerr
	}
	if dq.Until, aerr = q.time("until"); aerr != nil {
		return dq, aerr
	}
	if !dq.Since.IsZero() && !dq.Until.IsZero() && !dq.Since.Before(dq.Until) {
		return dq, invalid("until", "must be later than since")
	}
	if dq.Limit, aerr = q.limit(); aerr != nil {
		return dq, aerr
	}
	if v, ok := q.get("cursor"); ok {
		c, ok := decodeCursor(v)
		if !ok {
			return dq, invalid("cursor", "is not a cursor from a previous page")
		}
		dq.Cursor = c
	}
	return dq, nil
}

// validStatusFilter accepts 100 to 599, 1xx to 5xx, and error.
func validStatusFilter(v string) bool {
	if v == "error" {
		return true
	}
	if len(v) != 3 || v[0] < '1' || v[0] > '5' {
		return false
	}
	if v[1:] == "xx" {
		return true
	}
	return v[1] >= '0' && v[1] <= '9' && v[2] >= '0' && v[2] <= '9'
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	dq, aerr := parseDeliveryQuery(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	wh, aerr := s.lookup(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	dq.Tenant, dq.WebhookID = wh.Tenant, wh.ID
	page, err := s.deps.Deliveries.ListDeliveries(r.Context(), dq)
	if err != nil {
		s.dependencyFailed(w, r, "list deliveries", err)
		return
	}
	out := list[projections.Delivery]{Data: make([]projections.Delivery, 0, len(page.Deliveries)), NextCursor: encodeCursor(page.NextCursor)}
	for _, d := range page.Deliveries {
		out.Data = append(out.Data, deliveryView(d))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getDelivery(w http.ResponseWriter, r *http.Request) {
	d, err := s.deps.Deliveries.GetDelivery(r.Context(), tenantOf(r), mux.Vars(r)["id"])
	switch {
	case errors.Is(err, projections.ErrNotFound):
		writeError(w, notFound("delivery"))
		return
	case err != nil:
		s.dependencyFailed(w, r, "get delivery", err)
		return
	}
	view := detailView{Delivery: deliveryView(d)}
	if view.RedeliveredBy, err = s.redeliveredBy(r, d); err != nil {
		s.dependencyFailed(w, r, "find redeliveries", err)
		return
	}
	writeJSON(w, http.StatusOK, view)
}

// detailView is one delivery with the deliveries that redeliver it, so
// that a redelivery links both ways.
type detailView struct {
	projections.Delivery
	RedeliveredBy []string `json:"redelivered_by,omitempty"`
}

// redeliveredByScan bounds the deliveries looked through for the
// redeliveries of one: those created after it, newest first.
const redeliveredByScan = 2000

// redeliveredBy lists the deliveries that redeliver d, among the
// redeliveredByScan first created after it (a redelivery comes after its
// original), oldest first.
func (s *Server) redeliveredBy(r *http.Request, d projections.Delivery) ([]string, error) {
	var out []string
	q := projections.DeliveryQuery{Tenant: tenantOf(r), WebhookID: d.WebhookID, Since: d.CreatedAt, Limit: 500}
	for scanned := 0; scanned < redeliveredByScan; {
		page, err := s.deps.Deliveries.ListDeliveries(r.Context(), q)
		if err != nil {
			return nil, err
		}
		for _, later := range page.Deliveries {
			if later.RedeliveryOf == d.ID {
				out = append(out, later.ID)
			}
		}
		scanned += len(page.Deliveries)
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	slices.Reverse(out)
	return out, nil
}

// deliveryView puts every time of a delivery in UTC, whatever the store
// answered with.
func deliveryView(d projections.Delivery) projections.Delivery {
	d.CreatedAt = d.CreatedAt.UTC()
	d.UpdatedAt = d.UpdatedAt.UTC()
	if d.NextAttemptAt != nil {
		next := d.NextAttemptAt.UTC()
		d.NextAttemptAt = &next
	}
	if d.EventIDs == nil {
		d.EventIDs = []string{}
	}
	if d.Attempts != nil {
		attempts := make([]projections.AttemptView, len(d.Attempts))
		for i, a := range d.Attempts {
			a.At = a.At.UTC()
			attempts[i] = a
		}
		d.Attempts = attempts
	}
	return d
}

// statsView is GET /v1/webhooks/{id}/stats: the store's aggregates and the
// endpoint's breaker state.
type statsView struct {
	WebhookID string     `json:"webhook_id"`
	Since     *time.Time `json:"since,omitempty"`
	projections.Stats
	BreakerState string `json:"breaker_state,omitempty"`
}

func (s *Server) webhookStats(w http.ResponseWriter, r *http.Request) {
	q, aerr := parseQuery(r.URL.RawQuery, []string{"since"})
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	since, aerr := q.time("since")
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	wh, aerr := s.lookup(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	st, err := s.deps.Deliveries.Stats(r.Context(), projections.StatsQuery{Tenant: wh.Tenant, WebhookID: wh.ID, Since: since})
	if err != nil {
		s.dependencyFailed(w, r, "webhook stats", err)
		return
	}
	out := statsView{WebhookID: wh.ID, Stats: st}
	if !since.IsZero() {
		utc := since.UTC()
		out.Since = &utc
	}
	if s.deps.Breakers != nil {
		out.BreakerState = s.deps.Breakers.State(wh.ID)
	}
	writeJSON(w, http.StatusOK, out)
}
