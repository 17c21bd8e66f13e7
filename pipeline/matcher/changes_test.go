package matcher

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hookline/hookline/schemas"
)

// TestUpdatesCarryTheirChanges: an update's payload carries its changes
// beside data (of the webhook's field selection) unless include_changes is
// false; a create carries none; select_values applies to data and changes.
func TestUpdatesCarryTheirChanges(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	ev := schemas.Event{ID: "e1", Tenant: "t1", Type: "ticket.updated", Resource: "ticket", Trigger: "update", ResourceID: "T1", OccurredAt: at,
		Data:    json.RawMessage(`{"subject":"Printer","priority":{"id":"p1","display":"High"},"secret":"x"}`),
		Changes: json.RawMessage(`{"priority":{"old":{"id":"p0","display":"Low"},"new":{"id":"p1","display":"High"}},"secret":{"old":"a","new":"x"}}`)}
	no := false
	tests := []struct {
		name    string
		w       schemas.Webhook
		trigger string
		want    string // the envelope's changes, "" for none
		data    string
	}{
		{name: "default", w: schemas.Webhook{ID: "w"}, trigger: "update",
			want: string(ev.Changes), data: string(ev.Data)},
		{name: "include_changes false", w: schemas.Webhook{ID: "w", IncludeChanges: &no}, trigger: "update",
			data: string(ev.Data)},
		{name: "a create carries none", w: schemas.Webhook{ID: "w"}, trigger: "create",
			data: string(ev.Data)},
		{name: "field selection", w: schemas.Webhook{ID: "w", Fields: []string{"priority"}}, trigger: "update",
			want: `{"priority":{"old":{"id":"p0","display":"Low"},"new":{"id":"p1","display":"High"}}}`,
			data: `{"priority":{"id":"p1","display":"High"}}`},
		{name: "select_values display", w: schemas.Webhook{ID: "w", Fields: []string{"priority"}, SelectValues: schemas.SelectValuesDisplay}, trigger: "update",
			want: `{"priority":{"new":"High","old":"Low"}}`, data: `{"priority":"High"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ev
			e.Trigger = tt.trigger
			m := newMatch(&tt.w, &e, at)
			if m.Err != nil {
				t.Fatal(m.Err)
			}
			var body struct {
				Data    json.RawMessage `json:"data"`
				Changes json.RawMessage `json:"changes"`
			}
			if err := json.Unmarshal(m.Job.Payload, &body); err != nil {
				t.Fatalf("payload %s: %v", m.Job.Payload, err)
			}
			if string(body.Changes) != tt.want {
				t.Errorf("changes %s, want %s", body.Changes, tt.want)
			}
			if string(body.Data) != tt.data {
				t.Errorf("data %s, want %s", body.Data, tt.data)
			}
		})
	}
}
