package matcher

import (
	"slices"
	"testing"
	"time"

	"github.com/hookline/hookline/schemas"
)

// TestHooklineEventsGoOnlyToWebhooksThatNameThem: "*" does not take
// Hookline's own events; "hookline.*" and the type itself do, also beside
// "*" (once).
func TestHooklineEventsGoOnlyToWebhooksThatNameThem(t *testing.T) {
	hooks := staticWebhooks{"t1": {
		hook("all", nil),
		hook("all-and-failures", func(w *schemas.Webhook) { w.Events = []string{"*", schemas.TypeDeliveryFailed} }),
		hook("hookline", func(w *schemas.Webhook) { w.Events = []string{"hookline.*"} }),
		hook("failures", func(w *schemas.Webhook) { w.Events = []string{schemas.TypeDeliveryFailed} }),
		hook("disabled-only", func(w *schemas.Webhook) { w.Events = []string{schemas.TypeWebhookDisabled} }),
	}}
	m := New(hooks)
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	ev := schemas.Event{ID: "op1", Tenant: "t1", Type: schemas.TypeDeliveryFailed, Resource: schemas.OperationalResource,
		Trigger: "delivery_failed", ResourceID: "w", OccurredAt: at}
	var got []string
	for _, mt := range m.Matches(Input{Event: ev, Time: at}) {
		got = append(got, mt.Job.WebhookID)
	}
	slices.Sort(got)
	if want := []string{"all-and-failures", "failures", "hookline"}; !slices.Equal(got, want) {
		t.Fatalf("hookline.delivery_failed went to %v, want %v", got, want)
	}
	ticket := schemas.Event{ID: "e1", Tenant: "t1", Type: "ticket.created", Resource: "ticket", Trigger: "create", ResourceID: "T1", OccurredAt: at}
	got = got[:0]
	for _, mt := range m.Matches(Input{Event: ticket, Time: at}) {
		got = append(got, mt.Job.WebhookID)
	}
	slices.Sort(got)
	if want := []string{"all", "all-and-failures"}; !slices.Equal(got, want) {
		t.Fatalf("ticket.created went to %v, want %v", got, want)
	}
}
