package matcher

import (
	"context"
	"testing"
	"time"

	"github.com/hookline/hookline/schemas"
)

// TestRelatedPropagation checks every cell of SPEC §3's table: a trigger on
// the row's resource fires include_related webhooks of the column's
// resource when the event's related list names it, and no other cell does.
func TestRelatedPropagation(t *testing.T) {
	table := map[string]map[string][]string{ // trigger on → propagates to → triggers
		"ticket":  {"event": {"create", "update", "delete"}},
		"product": {"event": {"create", "update", "delete"}},
		"shop":    {"event": {"paid", "update"}, "ticket": {"paid"}, "product": {"paid"}},
		"order":   {"event": {"create", "delete", "scan"}, "ticket": {"scan"}, "product": {"scan"}},
	}
	rows := []string{"ticket", "product", "shop", "order", "scanner"}
	cols := []string{"event", "ticket", "product", "shop"}
	triggers := []string{"create", "update", "delete", "paid", "scan", "relation", "reorder"}
	for _, row := range rows {
		for _, col := range cols {
			for _, trig := range triggers {
				want := contains(table[row][col], trig)
				name := row + "." + trig + "→" + col
				t.Run(name, func(t *testing.T) {
					w := hook("w", func(w *schemas.Webhook) { w.IncludeRelated, w.Events = true, []string{col + ".*"} })
					ev := schemas.Event{ID: "e", Tenant: "t1", Resource: row, Trigger: trig, Type: schemas.TypeFor(row, trig),
						ResourceID: "R", Related: []schemas.Related{{Resource: col, ID: "C-1"}}}
					jobs, err := New(staticWebhooks{"t1": {w}}).Process(context.Background(), Input{Event: ev, Time: time.Now()})
					if err != nil {
						t.Fatal(err)
					}
					if got := len(jobs) == 1; got != want && row != col {
						t.Fatalf("fired = %v, want %v", got, want)
					}
				})
			}
		}
	}
}

func TestRelatedNeedsTheFlagTheRelationAndTheIdentifier(t *testing.T) {
	ev := schemas.Event{ID: "e", Tenant: "t1", Resource: "ticket", Trigger: "create", Type: "ticket.created",
		ResourceID: "T-1", Related: []schemas.Related{{Resource: "event", ID: "E-42"}}}
	tests := []struct {
		name string
		mod  func(*schemas.Webhook)
		ev   func(*schemas.Event)
		want bool
	}{
		{"include_related on", func(w *schemas.Webhook) { w.IncludeRelated = true }, nil, true},
		{"include_related off", func(w *schemas.Webhook) {}, nil, false},
		{"identifier names the related id", func(w *schemas.Webhook) { w.IncludeRelated, w.Identifier = true, "E-42" }, nil, true},
		{"identifier names another event", func(w *schemas.Webhook) { w.IncludeRelated, w.Identifier = true, "E-7" }, nil, false},
		{"event not related to an event", func(w *schemas.Webhook) { w.IncludeRelated = true },
			func(e *schemas.Event) { e.Related = []schemas.Related{{Resource: "shop", ID: "S"}} }, false},
		{"webhook only for event.deleted", func(w *schemas.Webhook) { w.IncludeRelated, w.Events = true, []string{"event.deleted"} }, nil, false},
		{"webhook for event.created", func(w *schemas.Webhook) { w.IncludeRelated, w.Events = true, []string{"event.created"} }, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := hook("w", func(w *schemas.Webhook) { w.Events = []string{"event.*"}; tt.mod(w) })
			e := ev
			if tt.ev != nil {
				tt.ev(&e)
			}
			jobs, _ := New(staticWebhooks{"t1": {w}}).Process(context.Background(), Input{Event: e, Time: time.Now()})
			if got := len(jobs) == 1; got != tt.want {
				t.Fatalf("fired = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOneDeliveryPerWebhookEvenWhenMatchedTwice(t *testing.T) {
	w := hook("w", func(w *schemas.Webhook) {
		w.IncludeRelated, w.Events = true, []string{"ticket.*", "ticket.created", "event.*", "*"}
	})
	ev := schemas.Event{ID: "e", Tenant: "t1", Resource: "ticket", Trigger: "create", Type: "ticket.created",
		ResourceID: "T", Related: []schemas.Related{{Resource: "event", ID: "E"}, {Resource: "event", ID: "E2"}}}
	jobs, _ := New(staticWebhooks{"t1": {w}}).Process(context.Background(), Input{Event: ev, Time: time.Now()})
	if len(jobs) != 1 {
		t.Fatalf("%d jobs for one webhook, want 1", len(jobs))
	}
}
