package matcher

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/hookline/hookline/schemas"
)

func TestAppendEnvelopeAgreesWithEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	tests := []schemas.Envelope{
		{ID: "d", EventID: "e", EventType: "ticket.updated", EventTime: at, Resource: "ticket", ResourceID: "T-1", WebhookID: "w"},
		{ID: "d", EventID: "quote \" backslash \\ newline \n tab \t ctrl \x01", EventType: "t.x", EventTime: at.In(time.FixedZone("X", 3600)),
			Resource: "r", ResourceID: "<&> é ☃ \u2028 \xff bad utf8", WebhookID: "w",
			CurrentContext: json.RawMessage(`{"actor":"a@b"}`), Data: json.RawMessage(`{"n":12345678901234567890,"s":"x"}`)},
		{ID: "d", EventID: "e", EventType: "t.x", EventTime: time.Time{}, Resource: "r", ResourceID: "", WebhookID: "w",
			Data: json.RawMessage(`[1, 2,  3]`)},
	}
	for i, env := range tests {
		got := appendEnvelope(nil, &env)
		want, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("case %d: not JSON: %s: %v", i, got, err)
		}
		json.Unmarshal(want, &b)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

func FuzzAppendEnvelope(f *testing.F) {
	f.Add("id", "ticket.created", "T-1\n\"x\"", int64(0))
	f.Fuzz(func(t *testing.T, id, typ, res string, nanos int64) {
		env := schemas.Envelope{ID: id, EventID: id, EventType: typ, EventTime: time.Unix(0, nanos).UTC(), Resource: res, ResourceID: res, WebhookID: id}
		got := appendEnvelope(nil, &env)
		var back schemas.Envelope
		if err := json.Unmarshal(got, &back); err != nil {
			if env.EventTime.Year() < 0 || env.EventTime.Year() > 9999 {
				return // encoding/json refuses such years too
			}
			t.Fatalf("invalid JSON %q: %v", got, err)
		}
		want, _ := json.Marshal(env)
		var a, b any
		json.Unmarshal(got, &a)
		json.Unmarshal(want, &b)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("differs from encoding/json:\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkAppendEnvelope(b *testing.B) {
	env := schemas.Envelope{ID: "01a20219-7b85-7f1a-9113-d8770b6aba16", EventID: "01a20219-7b84-744a-8368-2841d088e4ec",
		EventType: "ticket.updated", EventTime: time.Now().UTC(), Resource: "ticket", ResourceID: "T-1",
		WebhookID: "01a20219-7b73-74e2-b50e-e78b3066e36c", CurrentContext: json.RawMessage(`{"actor":"admin@company.com"}`),
		Data: json.RawMessage(`{"subject":"Printer on fire","priority":"High","assignee":null,"tags":["hardware","vip"]}`)}
	b.Run("hand-written", func(b *testing.B) {
		buf := make([]byte, 0, 512)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf = appendEnvelope(buf[:0], &env)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			json.Marshal(env)
		}
	})
}
