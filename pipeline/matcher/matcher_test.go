package matcher

import (
	"context"
	"encoding/json"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookline/hookline/schemas"
)

type staticWebhooks map[string][]schemas.Webhook

func (s staticWebhooks) Webhooks(tenant string) []schemas.Webhook { return s[tenant] }

func hook(id string, mod func(*schemas.Webhook)) schemas.Webhook {
	w := schemas.Webhook{ID: id, Tenant: "t1", Name: id, URL: "https://example.com", Enabled: true, Events: []string{"*"}}
	if mod != nil {
		mod(&w)
	}
	return w
}

func TestProcessMatching(t *testing.T) {
	hooks := staticWebhooks{"t1": {
		hook("all", nil),
		hook("disabled", func(w *schemas.Webhook) { w.Enabled = false }),
		hook("tickets", func(w *schemas.Webhook) { w.Events = []string{"ticket.*"} }),
		hook("created", func(w *schemas.Webhook) { w.Events = []string{"ticket.created"} }),
		hook("one-ticket", func(w *schemas.Webhook) { w.Identifier = "T-1" }),
		hook("orders", func(w *schemas.Webhook) { w.Events = []string{"order.*"} }),
	}, "t2": {hook("other-tenant", func(w *schemas.Webhook) { w.Tenant = "t2" })}}
	tests := []struct {
		name string
		ev   schemas.Event
		want []string
	}{
		{"update of T-1", schemas.Event{Tenant: "t1", Type: "ticket.updated", Resource: "ticket", Trigger: "update", ResourceID: "T-1"},
			[]string{"all", "tickets", "one-ticket"}},
		{"create of T-2", schemas.Event{Tenant: "t1", Type: "ticket.created", Resource: "ticket", Trigger: "create", ResourceID: "T-2"},
			[]string{"all", "tickets", "created"}},
		{"order paid", schemas.Event{Tenant: "t1", Type: "order.paid", Resource: "order", Trigger: "paid", ResourceID: "O"},
			[]string{"all", "orders"}},
		{"unknown tenant", schemas.Event{Tenant: "t3", Type: "order.paid", Resource: "order", Trigger: "paid", ResourceID: "O"}, nil},
	}
	m := New(hooks)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ev.ID = "e1"
			jobs, err := m.Process(context.Background(), Input{Event: tt.ev, Time: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, j := range jobs {
				got = append(got, j.WebhookID)
			}
			sort.Strings(got)
			sort.Strings(tt.want)
			if len(got) != len(tt.want) {
				t.Fatalf("matched %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("matched %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestJobPayload(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 123e6, time.UTC)
	ev := schemas.Event{ID: "e1", Tenant: "t1", Type: "ticket.updated", Resource: "ticket", Trigger: "update",
		ResourceID: "T-1", OccurredAt: at, Data: json.RawMessage(`{"priority":"High"}`), Context: json.RawMessage(`{"actor":"a@b"}`)}
	jobs, err := New(staticWebhooks{"t1": {hook("w1", nil)}}).Process(context.Background(), Input{Event: ev, Time: at})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs=%v err=%v", jobs, err)
	}
	job := jobs[0]
	var env schemas.Envelope
	if err := json.Unmarshal(job.Payload, &env); err != nil {
		t.Fatal(err)
	}
	if env.ID != job.DeliveryID || env.EventID != "e1" || env.EventType != "ticket.updated" || env.WebhookID != "w1" ||
		env.ResourceID != "T-1" || string(env.Data) != `{"priority":"High"}` || string(env.CurrentContext) != `{"actor":"a@b"}` ||
		!env.EventTime.Equal(at) {
		t.Fatalf("envelope = %+v", env)
	}
	if job.Tenant != "t1" || job.EventType != "ticket.updated" || len(job.EventIDs) != 1 || !job.CreatedAt.Equal(at) {
		t.Fatalf("job = %+v", job)
	}

	ev.Trigger, ev.Type = "delete", "ticket.deleted"
	jobs, _ = New(staticWebhooks{"t1": {hook("w1", nil)}}).Process(context.Background(), Input{Event: ev, Time: at})
	var del map[string]any
	json.Unmarshal(jobs[0].Payload, &del)
	if _, has := del["data"]; has {
		t.Fatalf("delete payload carries data: %s", jobs[0].Payload)
	}
}

func TestDeliveryIDIsDeterministicAndTimeOrdered(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	a := DeliveryID(t0, "e1", "w1", "")
	if a != DeliveryID(t0, "e1", "w1", "") {
		t.Fatal("same input gave two ids")
	}
	if a == DeliveryID(t0, "e1", "w2", "") || a == DeliveryID(t0, "e2", "w1", "") || a == DeliveryID(t0, "e1", "w1", "r1") {
		t.Fatal("different inputs gave the same id")
	}
	u, err := uuid.Parse(a)
	if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 {
		t.Fatalf("%s is not a UUIDv7: %v", a, err)
	}
	if sec, nsec := u.Time().UnixTime(); time.Unix(sec, nsec).UnixMilli() != t0.UnixMilli() {
		t.Fatalf("id time = %v, want %v", time.Unix(sec, nsec), t0)
	}
	if later := DeliveryID(t0.Add(time.Millisecond), "a", "a", ""); later <= a {
		t.Fatalf("later id %s sorts before %s", later, a)
	}
	// An occurred_at out of a UUIDv7's range is clamped, never wrapped: a
	// time before 1970 sorts first, not after every other.
	early, late := DeliveryID(time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), "e1", "w1", ""), DeliveryID(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), "e1", "w1", "")
	if !(early < a && a < late) {
		t.Fatalf("ids of 1960, 2026 and 9999 sort %s, %s, %s", early, a, late)
	}
	if u, err := uuid.Parse(early); err != nil || u.Version() != 7 {
		t.Fatalf("the 1960 id %s is not a UUIDv7: %v", early, err)
	}
}

func TestConditionsAndShapingThroughProcess(t *testing.T) {
	at := time.Now()
	tests := []struct {
		name     string
		mod      func(*schemas.Webhook)
		ev       schemas.Event
		match    bool
		wantData string
	}{
		{"seed: High and unassigned", func(w *schemas.Webhook) { w.Condition = `data.priority == "High" && data.assignee == nil` },
			schemas.Event{Trigger: "create", Data: json.RawMessage(`{"priority":"High"}`)}, true, `{"priority":"High"}`},
		{"seed: High but assigned", func(w *schemas.Webhook) { w.Condition = `data.priority == "High" && data.assignee == nil` },
			schemas.Event{Trigger: "create", Data: json.RawMessage(`{"priority":"High","assignee":"bob"}`)}, false, ""},
		{"tag in list", func(w *schemas.Webhook) { w.Condition = `"vip" in data.tags` },
			schemas.Event{Trigger: "create", Data: json.RawMessage(`{"tags":["a","vip"]}`)}, true, `{"tags":["a","vip"]}`},
		{"status changed to closed", func(w *schemas.Webhook) { w.Condition = `changes.status.new == "closed"` },
			schemas.Event{Trigger: "update", Changes: json.RawMessage(`{"status":{"old":"open","new":"closed"}}`)}, true, ""},
		{"status not among the changes", func(w *schemas.Webhook) { w.Condition = `changes.status.new == "closed"` },
			schemas.Event{Trigger: "update", Changes: json.RawMessage(`{"priority":{"old":"a","new":"b"}}`)}, false, ""},
		{"actor domain", func(w *schemas.Webhook) { w.Condition = `context.actor endsWith "@acme.com"` },
			schemas.Event{Trigger: "create", Context: json.RawMessage(`{"actor":"ann@acme.com"}`)}, true, ""},
		{"field selection", func(w *schemas.Webhook) { w.Fields = []string{"priority", "customer.email"} },
			schemas.Event{Trigger: "create", Data: json.RawMessage(`{"priority":"High","subject":"x","customer":{"email":"a@b","name":"A"}}`)},
			true, `{"customer":{"email":"a@b"},"priority":"High"}`},
		{"changed-only update", func(w *schemas.Webhook) { f := false; w.IncludeAllFields = &f },
			schemas.Event{Trigger: "update", Data: json.RawMessage(`{"priority":"High","subject":"x"}`),
				Changes: json.RawMessage(`{"priority":{"old":"Low","new":"High"}}`)}, true, `{"priority":"High","subject":null}`},
		{"delete sends no data", func(w *schemas.Webhook) {},
			schemas.Event{Trigger: "delete", Data: json.RawMessage(`{"priority":"High"}`)}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := hook("w", tt.mod)
			ev := tt.ev
			ev.ID, ev.Tenant, ev.Resource, ev.ResourceID = "e", "t1", "ticket", "T"
			ev.Type = schemas.TypeFor("ticket", ev.Trigger)
			jobs, err := New(staticWebhooks{"t1": {w}}).Process(context.Background(), Input{Event: ev, Time: at})
			if err != nil {
				t.Fatal(err)
			}
			if (len(jobs) == 1) != tt.match {
				t.Fatalf("matched %d, want match=%v", len(jobs), tt.match)
			}
			if !tt.match {
				return
			}
			var env struct {
				Data json.RawMessage `json:"data"`
			}
			json.Unmarshal(jobs[0].Payload, &env)
			if string(env.Data) != tt.wantData {
				t.Fatalf("data = %s, want %s", env.Data, tt.wantData)
			}
		})
	}
}

func TestConditionRuntimeErrorIsNoMatchAndCounted(t *testing.T) {
	w := hook("w", func(w *schemas.Webhook) { w.Condition = `data.amount > 5` })
	m := New(staticWebhooks{"t1": {w}})
	errs := 0
	m.OnConditionError = func(string, error) { errs++ }
	ev := schemas.Event{ID: "e", Tenant: "t1", Resource: "order", Trigger: "paid", Type: "order.paid", ResourceID: "O",
		Data: json.RawMessage(`{"amount":"many"}`)}
	jobs, err := m.Process(context.Background(), Input{Event: ev, Time: time.Now()})
	if err != nil || len(jobs) != 0 || errs != 1 {
		t.Fatalf("jobs=%d err=%v errors counted=%d; want no match and one counted error", len(jobs), err, errs)
	}
}

// swappable is webhook state whose slices are replaced on change, as the
// registry's are.
type swappable struct{ m map[string][]schemas.Webhook }

func (s *swappable) Webhooks(tenant string) []schemas.Webhook { return s.m[tenant] }

func TestWebhookChangesTakeEffectAtOnce(t *testing.T) {
	state := &swappable{m: map[string][]schemas.Webhook{"t1": {hook("w", func(w *schemas.Webhook) { w.Events = []string{"order.*"} })}}}
	m := New(state)
	ev := schemas.Event{ID: "e", Tenant: "t1", Resource: "ticket", Trigger: "create", Type: "ticket.created", ResourceID: "T"}
	if jobs, _ := m.Process(context.Background(), Input{Event: ev, Time: time.Now()}); len(jobs) != 0 {
		t.Fatal("matched before the change")
	}
	state.m["t1"] = []schemas.Webhook{hook("w", func(w *schemas.Webhook) { w.Events = []string{"ticket.*"}; w.Condition = `resource == "ticket"` })}
	if jobs, _ := m.Process(context.Background(), Input{Event: ev, Time: time.Now()}); len(jobs) != 1 {
		t.Fatal("the change did not take effect")
	}
	state.m["t1"] = nil
	if jobs, _ := m.Process(context.Background(), Input{Event: ev, Time: time.Now()}); len(jobs) != 0 {
		t.Fatal("a deleted webhook still matches")
	}
}
