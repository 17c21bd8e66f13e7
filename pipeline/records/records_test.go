package records

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
)

func TestMarshalKeepsMarkupItsOwnSize(t *testing.T) {
	b, err := Marshal(map[string]string{"html": "<b>&</b>"})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"html":"<b>&</b>"}` {
		t.Fatalf("Marshal = %s; want markup unescaped and no newline", b)
	}
}

func job(payloadBytes int) schemas.Job {
	return schemas.Job{DeliveryID: "d1", WebhookID: "w1", Tenant: "t", EventIDs: []string{"e1"}, EventType: "order.paid",
		CreatedAt: time.Unix(1700000000, 0).UTC(), Attempts: 2,
		Payload: json.RawMessage(`{"blob":"` + strings.Repeat("x", payloadBytes) + `"}`)}
}

// noPayload: a job's payload left out (it decodes as null).
func noPayload(p json.RawMessage) bool { return len(p) == 0 || string(p) == "null" }

func TestOversize(t *testing.T) {
	const limit = 4096
	t.Run("a job fails its delivery and goes dead without its payload", func(t *testing.T) {
		for _, topic := range []string{schemas.TopicDeliveries, schemas.TopicRetryPrefix + "1m"} {
			out := Oversize(Job(topic, job(10000)), limit)
			if len(out) != 2 || out[0].Topic != schemas.TopicAttempts || out[1].Topic != schemas.TopicDead {
				t.Fatalf("%s: replaced by %d messages %v", topic, len(out), out)
			}
			var a schemas.Attempt
			if err := json.Unmarshal(out[0].Value, &a); err != nil {
				t.Fatal(err)
			}
			if a.DeliveryID != "d1" || a.N != 3 || a.State != schemas.StateFailed || !strings.HasPrefix(a.Error, "too_large") {
				t.Errorf("attempt = %+v; want attempt 3 of d1 failed with too_large", a)
			}
			var d schemas.DeadLetter
			if err := json.Unmarshal(out[1].Value, &d); err != nil {
				t.Fatal(err)
			}
			if d.Job == nil || d.Job.DeliveryID != "d1" || !noPayload(d.Job.Payload) || broker.Size(out[1]) > limit {
				t.Errorf("dead letter = %+v; want the job without its payload, under the limit", d)
			}
		}
	})
	t.Run("an attempt loses its bodies, saying so", func(t *testing.T) {
		a := schemas.Attempt{DeliveryID: "d1", WebhookID: "w1", Tenant: "t", N: 1, State: schemas.StateSucceeded,
			RequestBody: strings.Repeat("q", 3000), ResponseBody: strings.Repeat("r", 3000)}
		out := Oversize(Attempt(a), limit)
		if len(out) != 1 || broker.Size(out[0]) > limit {
			t.Fatalf("replaced by %v", out)
		}
		var got schemas.Attempt
		json.Unmarshal(out[0].Value, &got)
		if got.RequestBody != "" || got.ResponseBody == "" || !strings.Contains(got.Error, "request body of 3000 bytes not stored") {
			t.Errorf("attempt = %+v; want the request body dropped, the answer kept, and a note", got)
		}
		a.ResponseBody = strings.Repeat("r", 6000)
		var both schemas.Attempt
		json.Unmarshal(Oversize(Attempt(a), limit)[0].Value, &both)
		if both.RequestBody != "" || both.ResponseBody != "" || !strings.Contains(both.Error, "response body of 6000 bytes") {
			t.Errorf("attempt %q; want both bodies dropped", both.Error)
		}
	})
	t.Run("a failed delivery's dead letter loses the payload", func(t *testing.T) {
		j := job(10000)
		out := Oversize(DeadJob(j, schemas.Attempt{DeliveryID: "d1", N: 3, StatusCode: 503}), limit)
		var d schemas.DeadLetter
		if len(out) != 1 || json.Unmarshal(out[0].Value, &d) != nil || d.Job == nil || !noPayload(d.Job.Payload) ||
			!strings.Contains(d.Reason, "503") {
			t.Fatalf("replaced by %v", out)
		}
	})
	t.Run("anything else becomes a too_large dead letter", func(t *testing.T) {
		out := Oversize(kafka.Message{Topic: schemas.TopicEvents, Key: []byte("k"), Value: make([]byte, 10000)}, limit)
		if len(out) != 1 || out[0].Topic != schemas.TopicDead || len(out[0].Value) != 0 ||
			!strings.HasPrefix(broker.Header(out[0], broker.HeaderReason), "too_large") {
			t.Fatalf("replaced by %+v", out)
		}
	})
}

func TestDueAtTravelsInAHeader(t *testing.T) {
	due := time.Date(2026, 12, 6, 10, 0, 0, 123, time.UTC)
	j := job(10)
	j.DueAt = due
	m := Job(schemas.TopicRetryPrefix+"10s", j)
	if got := broker.Header(m, HeaderDueAt); got == "" {
		t.Fatal("a waiting job has no due-at header")
	}
	if got := DueAt(m); !got.Equal(due) {
		t.Fatalf("DueAt = %v, want %v", got, due)
	}
	// A job written without the header (before it existed): from the JSON.
	m.Headers = nil
	if got := DueAt(m); !got.Equal(due) {
		t.Fatalf("DueAt without the header = %v, want %v", got, due)
	}
	if got := DueAt(Job(schemas.TopicDeliveries, job(10))); !got.IsZero() {
		t.Fatalf("a job due at once: DueAt = %v", got)
	}
}

// TestAJobPutOffForRoomIsMarked: a job put off for room at its endpoint
// carries HeaderForRoom (the sender may park it until there is room); a
// retry after a failure and a wait for a circuit do not (they wait for a
// time).
func TestAJobPutOffForRoomIsMarked(t *testing.T) {
	due := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for reason, want := range map[string]bool{
		schemas.RetryEndpointBusy: true, schemas.RetryAfterFailure: false, schemas.RetryCircuitOpen: false,
	} {
		j := job(10)
		j.Reason = reason
		m := DelayedJob(schemas.TopicOverflow, j, due)
		if got := ForRoom(m); got != want {
			t.Errorf("%s: ForRoom %v, want %v", reason, got, want)
		}
		if got := DueAt(m); !got.Equal(due) {
			t.Errorf("%s: DueAt %v, want %v", reason, got, due)
		}
	}
}

func TestDecodeJobReadsWhatUnmarshalReads(t *testing.T) {
	v, err := Marshal(benchJob())
	if err != nil {
		t.Fatal(err)
	}
	var got, want schemas.Job
	if err := DecodeJob(v, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(v, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeJob = %+v\nwant %+v", got, want)
	}
	// The payload is the record's own bytes, not a copy.
	if i := bytes.Index(v, got.Payload); i < 0 || &v[i] != &got.Payload[0] {
		t.Fatal("payload was copied out of the record")
	}
	for _, bad := range []string{`{"delivery_id":"d"} x`, `{"delivery_id":`, `[1]`, `{"payload":{]}`} {
		var j schemas.Job
		if err := DecodeJob([]byte(bad), &j); err == nil {
			t.Errorf("DecodeJob(%s) = nil error, want one", bad)
		}
	}
	var j schemas.Job
	if err := DecodeJob([]byte("{\"delivery_id\":\"d\"}\n "), &j); err != nil || j.DeliveryID != "d" {
		t.Errorf("trailing space: %v %+v", err, j)
	}
}
