package schemas

import (
	"errors"
	"testing"
	"time"
)

func TestDecodeEvent(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		raw       string
		wantType  string
		wantField string // non-empty: a FieldError on this field
		notJSON   bool
	}{
		{name: "type derived from update", raw: `{"resource":"ticket","trigger":"update","resource_id":"t1"}`, wantType: "ticket.updated"},
		{name: "type derived from scan", raw: `{"resource":"order","trigger":"scan","resource_id":"o1"}`, wantType: "order.scanned"},
		{name: "type derived from relation", raw: `{"resource":"event","trigger":"relation","resource_id":"e1"}`, wantType: "event.related"},
		{name: "type derived from reorder", raw: `{"resource":"product","trigger":"reorder","resource_id":"p1"}`, wantType: "product.reordered"},
		{name: "unknown trigger kept as is", raw: `{"resource":"shop","trigger":"refund","resource_id":"s1"}`, wantType: "shop.refund"},
		{name: "explicit type kept", raw: `{"type":"ticket.moved","resource":"ticket","trigger":"update","resource_id":"t1"}`, wantType: "ticket.moved"},
		{name: "missing resource", raw: `{"trigger":"update","resource_id":"t1"}`, wantField: "resource"},
		{name: "missing trigger", raw: `{"resource":"ticket","resource_id":"t1"}`, wantField: "trigger"},
		{name: "missing resource id", raw: `{"resource":"ticket","trigger":"update"}`, wantField: "resource_id"},
		{name: "resource with a dot", raw: `{"resource":"a.b","trigger":"update","resource_id":"x"}`, wantField: "resource"},
		{name: "related without id", raw: `{"resource":"ticket","trigger":"update","resource_id":"x","related":[{"resource":"event"}]}`, wantField: "related[0]"},
		{name: "wildcard type", raw: `{"type":"ticket.*","resource":"ticket","trigger":"update","resource_id":"t1"}`, wantField: "type"},
		{name: "type without a dot", raw: `{"type":"ticket","resource":"ticket","trigger":"update","resource_id":"t1"}`, wantField: "type"},
		{name: "data a number", raw: `{"resource":"ticket","trigger":"update","resource_id":"t1","data":5}`, wantField: "data"},
		{name: "data an array", raw: `{"resource":"ticket","trigger":"update","resource_id":"t1","data":[1]}`, wantField: "data"},
		{name: "changes a string", raw: `{"resource":"ticket","trigger":"update","resource_id":"t1","changes":"x"}`, wantField: "changes"},
		{name: "context true", raw: `{"resource":"ticket","trigger":"update","resource_id":"t1","context":true}`, wantField: "context"},
		{name: "data null is no data", raw: `{"resource":"ticket","trigger":"update","resource_id":"t1","data":null,"context":{}}`, wantType: "ticket.updated"},
		{name: "not json", raw: `hello`, notJSON: true},
		{name: "array", raw: `[1,2]`, notJSON: true},
		{name: "empty", raw: ``, notJSON: true},
		{name: "truncated", raw: `{"resource":"ticket"`, notJSON: true},
		{name: "wrong type of field", raw: `{"resource":5,"trigger":"update","resource_id":"x"}`, notJSON: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeEvent([]byte(tt.raw), now, "fallback-id")
			var fe *FieldError
			switch {
			case tt.notJSON:
				if !errors.Is(err, ErrNotJSON) {
					t.Fatalf("err = %v, want ErrNotJSON", err)
				}
			case tt.wantField != "":
				if !errors.As(err, &fe) || fe.Field != tt.wantField {
					t.Fatalf("err = %v, want a FieldError on %s", err, tt.wantField)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if ev.Type != tt.wantType {
					t.Errorf("type = %q, want %q", ev.Type, tt.wantType)
				}
				if ev.ID != "fallback-id" || ev.Tenant != DefaultTenant || !ev.OccurredAt.Equal(now) {
					t.Errorf("defaults not applied: id=%q tenant=%q at=%v", ev.ID, ev.Tenant, ev.OccurredAt)
				}
			}
		})
	}
}

func TestDecodeEventKeepsProducerFields(t *testing.T) {
	raw := `{"id":"e1","resource":"ticket","trigger":"create","resource_id":"t1","tenant":"acme",
		"occurred_at":"2026-01-02T03:04:05Z","data":{"a":1},"context":{"actor":"x"}}`
	ev, err := DecodeEvent([]byte(raw), time.Now(), "fallback")
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != "e1" || ev.Tenant != "acme" || ev.OccurredAt.Year() != 2026 || string(ev.Data) != `{"a":1}` || string(ev.Context) != `{"actor":"x"}` {
		t.Fatalf("fields lost: %+v", ev)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"resource":"ticket","trigger":"update","resource_id":"t1"}`))
	f.Add([]byte(`{"resource":"ticket","trigger":"update","resource_id":"t1","related":[{"resource":"event","id":"e"}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := DecodeEvent(raw, time.Unix(0, 0), "fb")
		if err == nil && (ev.Resource == "" || ev.Trigger == "" || ev.ResourceID == "" || ev.Type == "" || ev.ID == "") {
			t.Fatalf("accepted an incomplete event: %+v", ev)
		}
	})
}

func TestDecodeEventAtGivesAnEventWithoutIDItsPosition(t *testing.T) {
	ev, err := DecodeEventAt([]byte(`{"resource":"ticket","trigger":"create","resource_id":"t1"}`), time.Now(), TopicEvents, 2, 7)
	if err != nil {
		t.Fatal(err)
	}
	if want := PositionEventID(TopicEvents, 2, 7); ev.ID != want {
		t.Fatalf("id %q, want the position's %q", ev.ID, want)
	}
	ev, err = DecodeEventAt([]byte(`{"id":"own","resource":"ticket","trigger":"create","resource_id":"t1"}`), time.Now(), TopicEvents, 2, 7)
	if err != nil || ev.ID != "own" {
		t.Fatalf("id %q (%v), want its own", ev.ID, err)
	}
}
