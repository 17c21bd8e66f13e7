package storetest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// base is the creation time of the first delivery of a case: fixed, with
// milliseconds, so that expectations do not depend on the clock.
var base = time.Date(2026, 3, 4, 10, 0, 0, 123_000_000, time.UTC)

// delivery describes one delivery whose attempts a case inserts.
type delivery struct {
	ID, Tenant, WebhookID string
	Created               time.Time
}

// newDelivery makes a delivery with a fresh UUIDv7 id, so that deliveries
// made later in a case have higher ids, as the matcher's do.
// It is safe to call from any goroutine.
func newDelivery(tenant, webhook string, created time.Time) delivery {
	id := uuid.Must(uuid.NewV7())
	return delivery{ID: id.String(), Tenant: tenant, WebhookID: webhook, Created: created}
}

// newDeliveries makes count deliveries created a minute apart from base.
func newDeliveries(tenant, webhook string, count int) []delivery {
	ds := make([]delivery, count)
	for i := range ds {
		ds[i] = newDelivery(tenant, webhook, base.Add(time.Duration(i)*time.Minute))
	}
	return ds
}

// attempt is attempt n of d, ending in state with an HTTP status (0 for a
// connection error).
func (d delivery) attempt(n int, state string, status int) schemas.Attempt {
	a := schemas.Attempt{
		DeliveryID: d.ID, WebhookID: d.WebhookID, Tenant: d.Tenant,
		EventIDs: []string{"evt-" + d.ID[len(d.ID)-6:], "evt-second"}, EventType: "ticket.updated",
		N: n, State: state, StatusCode: status, DurationMS: int64(40 + n),
		At:                d.Created.Add(time.Duration(n)*10*time.Second + 250*time.Millisecond),
		DeliveryCreatedAt: d.Created,
		URL:               "https://receiver.example/hooks/" + d.WebhookID,
		RequestHeaders: map[string]string{
			"Content-Type": "application/json", "webhook-id": d.ID, "webhook-signature": "v1,****",
			"X-Hookline-Attempt": fmt.Sprint(n),
		},
		RequestBody:     fmt.Sprintf(`{"id":%q,"data":{"priority":"High","n":%d}}`, d.ID, n),
		ResponseHeaders: map[string]string{"Content-Type": "text/plain", "Retry-After": "10"},
		ResponseBody:    fmt.Sprintf("answer %d to attempt %d", status, n),
	}
	switch {
	case status == 0:
		a.Error, a.ResponseHeaders, a.ResponseBody = "dial tcp 203.0.113.9:443: connection refused", nil, ""
	case status >= 300:
		a.Error = fmt.Sprintf("endpoint answered %d", status)
	}
	if state == schemas.StateRetrying {
		next := a.At.Add(time.Duration(n) * time.Minute)
		a.NextAttemptAt = &next
	}
	return a
}

// mark is a pending mark of d (n 0) written at created+at, saying that d
// waits until created+until. It carries the payload, as a mark of a
// delivery with no attempt yet does.
func (d delivery) mark(at, until time.Duration) schemas.Attempt {
	next := d.Created.Add(until)
	return schemas.Attempt{
		DeliveryID: d.ID, WebhookID: d.WebhookID, Tenant: d.Tenant,
		EventIDs: []string{"evt-" + d.ID[len(d.ID)-6:], "evt-second"}, EventType: "ticket.updated",
		N: 0, State: schemas.StatePending, At: d.Created.Add(at), DeliveryCreatedAt: d.Created,
		Error: "waiting for room at the endpoint", URL: "https://receiver.example/hooks/" + d.WebhookID,
		RequestBody:   fmt.Sprintf(`{"id":%q,"data":{"priority":"High","waiting":true}}`, d.ID),
		NextAttemptAt: &next,
	}
}

func (d delivery) succeeded() schemas.Attempt { return d.attempt(1, schemas.StateSucceeded, 200) }
func (d delivery) failed() schemas.Attempt    { return d.attempt(1, schemas.StateFailed, 400) }
func (d delivery) retrying() schemas.Attempt  { return d.attempt(1, schemas.StateRetrying, 503) }

func (d delivery) query(limit int) projections.DeliveryQuery {
	return projections.DeliveryQuery{Tenant: d.Tenant, WebhookID: d.WebhookID, Limit: limit}
}

// want is what a store must answer for these attempts: Derive over them with
// times cut to milliseconds, the precision every store keeps.
func want(attempts []schemas.Attempt, detail bool) projections.Delivery {
	cut := make([]schemas.Attempt, len(attempts))
	for i, a := range attempts {
		a.At = a.At.Truncate(time.Millisecond)
		a.DeliveryCreatedAt = a.DeliveryCreatedAt.Truncate(time.Millisecond)
		if a.NextAttemptAt != nil {
			next := a.NextAttemptAt.Truncate(time.Millisecond)
			a.NextAttemptAt = &next
		}
		cut[i] = a
	}
	d, _ := projections.Derive(cut, detail)
	return d
}

// checkDelivery compares a delivery field by field: times must be equal and
// in UTC, and an empty map or list equals a missing one.
func checkDelivery(t *testing.T, label string, got, want projections.Delivery) {
	t.Helper()
	checkTime(t, label+": created_at", got.CreatedAt, want.CreatedAt)
	checkTime(t, label+": updated_at", got.UpdatedAt, want.UpdatedAt)
	checkNext(t, label, got.NextAttemptAt, want.NextAttemptAt)
	if len(got.Attempts) == len(want.Attempts) {
		for i := range got.Attempts {
			checkTime(t, fmt.Sprintf("%s: attempt %d at", label, i), got.Attempts[i].At, want.Attempts[i].At)
		}
	}
	g, w := comparable(got), comparable(want)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s: delivery differs\n got: %s\nwant: %s", label, asJSON(g), asJSON(w))
	}
}

func checkTime(t *testing.T, label string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("%s = %s; want %s in UTC", label, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
}

// checkNext compares next_attempt_at: both absent, or equal and in UTC.
func checkNext(t *testing.T, label string, got, want *time.Time) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil:
		t.Errorf("%s: next_attempt_at absent; want %s", label, want.Format(time.RFC3339Nano))
	case want == nil:
		t.Errorf("%s: next_attempt_at = %s; want none", label, got.Format(time.RFC3339Nano))
	default:
		checkTime(t, label+": next_attempt_at", *got, *want)
	}
}

// comparable blanks what checkTime and checkNext check and turns empty
// collections into nil.
func comparable(d projections.Delivery) projections.Delivery {
	d.CreatedAt, d.UpdatedAt, d.NextAttemptAt = time.Time{}, time.Time{}, nil
	if len(d.EventIDs) == 0 {
		d.EventIDs = nil
	}
	if d.Request != nil {
		r := *d.Request
		if len(r.Headers) == 0 {
			r.Headers = nil
		}
		d.Request = &r
	}
	attempts := make([]projections.AttemptView, len(d.Attempts))
	for i, a := range d.Attempts {
		a.At = time.Time{}
		if len(a.ResponseHeaders) == 0 {
			a.ResponseHeaders = nil
		}
		attempts[i] = a
	}
	d.Attempts = nil
	if len(attempts) > 0 {
		d.Attempts = attempts
	}
	return d
}

func asJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

// ids lists the ids of deliveries, in order.
func ids(ds []projections.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// idsNewestFirst lists the ids of fixtures from the last made to the first.
func idsNewestFirst(ds []delivery) []string {
	out := make([]string, 0, len(ds))
	for i := len(ds) - 1; i >= 0; i-- {
		out = append(out, ds[i].ID)
	}
	return out
}

func checkIDs(t *testing.T, label string, got []projections.Delivery, want []string) {
	t.Helper()
	if g := ids(got); !reflect.DeepEqual(g, want) && (len(g) != 0 || len(want) != 0) {
		t.Errorf("%s: ids\n got: %q\nwant: %q", label, g, want)
	}
}
