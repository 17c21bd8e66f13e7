package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/schemas"
)

func TestPublishOneEvent(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	rec := h.do(http.MethodPost, "/v1/events", "",
		`{"resource":"ticket","trigger":"update","resource_id":"t1","data":{"priority":"High"},"occurred_at":"2026-11-22T11:00:00+01:00"}`)
	mustStatus(t, rec, http.StatusAccepted)
	ids := decodeBody[publishedBody](t, rec).IDs
	evs := h.events.all()
	if len(evs) != 1 || !slices.Equal(ids, []string{evs[0].ID}) || evs[0].ID != "id-0001" {
		t.Fatalf("ids %v, published %+v", ids, evs)
	}
	ev := evs[0]
	if ev.Type != "ticket.updated" || ev.Tenant != schemas.DefaultTenant || string(ev.Data) != `{"priority":"High"}` {
		t.Errorf("published %+v", ev)
	}
	if !ev.OccurredAt.Equal(t0) || ev.OccurredAt.Location() != time.UTC {
		t.Errorf("occurred_at %v, want %v in UTC", ev.OccurredAt, t0)
	}
}

func TestPublishEventArray(t *testing.T) {
	h := newHarness(t, Config{Tokens: map[string]string{"tok-a": "acme"}}, nil)
	rec := h.do(http.MethodPost, "/v1/events", "tok-a", `[
		{"id":"mine-1","resource":"order","trigger":"scan","resource_id":"o1"},
		{"resource":"shop","trigger":"paid","resource_id":"s1","tenant":"acme","related":[{"resource":"event","id":"e1"}]},
		{"type":"custom.thing","resource":"product","trigger":"restock","resource_id":"p1"}
	]`)
	mustStatus(t, rec, http.StatusAccepted)
	ids := decodeBody[publishedBody](t, rec).IDs
	if want := []string{"mine-1", "id-0001", "id-0002"}; !slices.Equal(ids, want) {
		t.Errorf("ids %v, want %v", ids, want)
	}
	evs := h.events.all()
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
		if ev.Tenant != "acme" {
			t.Errorf("event %s has tenant %q, want the token's", ev.ID, ev.Tenant)
		}
		if ev.OccurredAt.IsZero() {
			t.Errorf("event %s has no occurred_at", ev.ID)
		}
	}
	if want := []string{"order.scanned", "shop.paid", "custom.thing"}; !slices.Equal(types, want) {
		t.Errorf("types %v, want %v", types, want)
	}
	if h.events.calls != 1 {
		t.Errorf("%d publish calls, want the array in one", h.events.calls)
	}
}

func TestPublishEventsRefusesBadInputAndPublishesNothing(t *testing.T) {
	ok := `{"resource":"ticket","trigger":"create","resource_id":"t1"}`
	tests := []struct {
		name, body, code, field string
	}{
		{"missing resource_id", `{"resource":"ticket","trigger":"create"}`, codeInvalid, "resource_id"},
		{"bad event after a good one", `[` + ok + `,{"resource":"ticket","trigger":"create"}]`, codeInvalid, "[1].resource_id"},
		{"missing trigger in array", `[{"resource":"ticket","resource_id":"t1"}]`, codeInvalid, "[0].trigger"},
		{"dotted resource", `{"resource":"ticket.x","trigger":"create","resource_id":"t1"}`, codeInvalid, "resource"},
		{"related without id", `{"resource":"ticket","trigger":"create","resource_id":"t1","related":[{"resource":"event"}]}`, codeInvalid, "related[0]"},
		{"another tenant", `{"resource":"ticket","trigger":"create","resource_id":"t1","tenant":"globex"}`, codeInvalid, "tenant"},
		{"another tenant in array", `[` + ok + `,{"resource":"ticket","trigger":"create","resource_id":"t1","tenant":"globex"}]`, codeInvalid, "[1].tenant"},
		{"unknown field", `{"resource":"ticket","trigger":"create","resource_id":"t1","payload":{}}`, codeInvalid, "payload"},
		{"unknown field in array", `[` + ok + `,{"resource":"ticket","trigger":"create","resource_id":"t1","x":1}]`, codeInvalid, "[1].x"},
		{"bad occurred_at", `{"resource":"ticket","trigger":"create","resource_id":"t1","occurred_at":"yesterday"}`, codeInvalid, "occurred_at"},
		{"wrong type", `{"resource":"ticket","trigger":"create","resource_id":42}`, codeInvalid, "resource_id"},
		{"not an object in array", `[` + ok + `,"ticket"]`, codeInvalid, "[1]"},
		{"duplicate ids", `[{"id":"a","resource":"t","trigger":"create","resource_id":"1"},{"id":"a","resource":"t","trigger":"create","resource_id":"2"}]`, codeInvalid, "[1].id"},
		{"empty array", `[]`, codeInvalid, ""},
		{"too many events", `[` + ok + `,` + ok + `,` + ok + `]`, codeInvalid, ""},
		{"malformed JSON", `[` + ok + `,`, codeBadJSON, ""},
		{"a string", `"ticket"`, codeBadJSON, ""},
		{"empty body", ``, codeBadJSON, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{MaxEvents: 2}, nil)
			wantError(t, h.do(http.MethodPost, "/v1/events", "", tc.body), http.StatusBadRequest, tc.code, tc.field)
			if h.events.calls != 0 {
				t.Errorf("published %d times for a refused request", h.events.calls)
			}
		})
	}
}

func TestPublishEventsAnswers503WhenPublishingFails(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	h.events.err = errors.New("kafka: not enough replicas")
	rec := h.do(http.MethodPost, "/v1/events", "", `{"resource":"ticket","trigger":"create","resource_id":"t1"}`)
	e := wantError(t, rec, http.StatusServiceUnavailable, codeUnavailable, "")
	if strings.Contains(e.Message, "replicas") {
		t.Errorf("message leaks the dependency error: %q", e.Message)
	}
}

func TestPublishEventsAcceptsTheMaximum(t *testing.T) {
	h := newHarness(t, Config{MaxEvents: 50}, nil)
	var b strings.Builder
	b.WriteString("[")
	for i := range 50 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"resource":"ticket","trigger":"create","resource_id":"t%d"}`, i)
	}
	b.WriteString("]")
	rec := h.do(http.MethodPost, "/v1/events", "", b.String())
	mustStatus(t, rec, http.StatusAccepted)
	if n := len(h.events.all()); n != 50 {
		t.Errorf("published %d events, want 50", n)
	}
}

// TestPublishEventsAnswers413ForAnEventOverTheBrokersLimit: the writer's
// refusal of an event that no write could take is a 413 naming it.
func TestPublishEventsAnswers413ForAnEventOverTheBrokersLimit(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	h.events.err = &EventTooLargeError{Index: 1, Size: 12100, Limit: 10000}
	event := `{"resource":"ticket","trigger":"create","resource_id":"T-1"}`
	e := wantError(t, h.do(http.MethodPost, "/v1/events", "", "["+event+","+event+"]"), http.StatusRequestEntityTooLarge, codeTooLarge, "[1]")
	if !strings.Contains(e.Message, "12100") || !strings.Contains(e.Message, "10000") {
		t.Errorf("message %q does not give the sizes", e.Message)
	}
	wantError(t, h.do(http.MethodPost, "/v1/events", "", event), http.StatusRequestEntityTooLarge, codeTooLarge, "")
}
