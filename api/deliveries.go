package api

import (
	"errors"
	"net/http"

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
	// SPEC §5 lists these filters; the store cannot answer them yet, and
	// ignoring them would return deliveries the client did not ask for.
	for _, name := range []string{"event_type", "status"} {
		if _, ok := q.get(name); ok {
			return dq, invalid(name, "filtering deliveries by %s is not supported yet by this version of Hookline", name)
		}
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
		if v == "" {
			return dq, invalid("cursor", "is not a cursor from a previous page")
		}
		dq.Cursor = v
	}
	return dq, nil
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
	out := list[projections.Delivery]{Data: make([]projections.Delivery, 0, len(page.Deliveries)), NextCursor: page.NextCursor}
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
	writeJSON(w, http.StatusOK, deliveryView(d))
}

// deliveryView puts every time of a delivery in UTC, whatever the store
// answered with.
func deliveryView(d projections.Delivery) projections.Delivery {
	d.CreatedAt = d.CreatedAt.UTC()
	d.UpdatedAt = d.UpdatedAt.UTC()
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
