package records

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	fastjson "github.com/segmentio/encoding/json"

	"github.com/hookline/hookline/schemas"
)

// benchPayload is a delivery's body with a 1 KiB ticket, as the bench
// sends.
func benchPayload() json.RawMessage {
	data := `{"subject":"` + strings.Repeat("Printer on fire ", 60) + `","priority":"High","n":12345}`
	return json.RawMessage(`{"id":"01a24a0c-c2e7-7296-8dd1-29bb0155cd33","event_id":"01a24a0c-c2e6-7294-929a-fece20ca07a6",` +
		`"event_type":"ticket.created","event_time":"2026-12-06T06:31:20.038169601Z","resource":"ticket","resource_id":"T1",` +
		`"webhook_id":"01a24a0c-b726-7a97-b396-78cf6c6e3f0a","data":` + data + `}`)
}

func benchJob() schemas.Job {
	return schemas.Job{DeliveryID: "01a24a0c-c2e7-7296-8dd1-29bb0155cd33", WebhookID: "01a24a0c-b726-7a97-b396-78cf6c6e3f0a",
		Tenant: "default", EventIDs: []string{"01a24a0c-c2e6-7294-929a-fece20ca07a6"}, EventType: "ticket.created",
		ResourceID: "T1", CreatedAt: time.Now().UTC(), Payload: benchPayload()}
}

func benchAttempt() schemas.Attempt {
	j := benchJob()
	return schemas.Attempt{DeliveryID: j.DeliveryID, WebhookID: j.WebhookID, Tenant: j.Tenant, EventIDs: j.EventIDs,
		EventType: j.EventType, N: 1, State: schemas.StateSucceeded, At: time.Now().UTC(), DeliveryCreatedAt: j.CreatedAt,
		StatusCode: 204, DurationMS: 2, URL: "http://127.0.0.1:8090/hooks",
		RequestHeaders: map[string]string{"Content-Type": "application/json", "Webhook-Id": j.DeliveryID,
			"Webhook-Signature": "v1,uAMw0rLzqVAEW9bwqxxx9Lncs2CuVn1w4rZWiwCjuBM=", "Webhook-Timestamp": "1796538680"},
		RequestBody: string(j.Payload), ResponseHeaders: map[string]string{"Date": "Sun, 06 Dec 2026 06:31:20 GMT"}}
}

// stdMarshal is the encoder Marshal replaced: encoding/json without HTML
// escaping.
func stdMarshal(v any) []byte {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return []byte(b.String())
}

// BenchmarkMarshalJob: a job with a 1 KiB payload, as the matcher writes
// it (Marshal, segmentio/encoding) against encoding/json.
func BenchmarkMarshalJob(b *testing.B) {
	j := benchJob()
	b.Run("records.Marshal", func(b *testing.B) {
		for b.Loop() {
			Marshal(j)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			stdMarshal(j)
		}
	})
}

// BenchmarkDecodeJob: the same job as the sender reads it.
func BenchmarkDecodeJob(b *testing.B) {
	v, _ := Marshal(benchJob())
	b.Run("segmentio", func(b *testing.B) {
		for b.Loop() {
			var j schemas.Job
			fastjson.Unmarshal(v, &j)
		}
	})
	b.Run("DecodeJob", func(b *testing.B) {
		for b.Loop() {
			var j schemas.Job
			DecodeJob(v, &j)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			var j schemas.Job
			json.Unmarshal(v, &j)
		}
	})
}

// BenchmarkMarshalAttempt and BenchmarkDecodeAttempt: a first attempt's
// record (it carries the request body), as the sender writes it and the
// projector reads it.
func BenchmarkMarshalAttempt(b *testing.B) {
	a := benchAttempt()
	b.Run("records.Marshal", func(b *testing.B) {
		for b.Loop() {
			Marshal(a)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			stdMarshal(a)
		}
	})
}

func BenchmarkDecodeAttempt(b *testing.B) {
	v, _ := Marshal(benchAttempt())
	b.Run("segmentio", func(b *testing.B) {
		for b.Loop() {
			var a schemas.Attempt
			fastjson.Unmarshal(v, &a)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			var a schemas.Attempt
			json.Unmarshal(v, &a)
		}
	})
}

// TestMarshalWritesWhatEncodingJSONWrites: the faster encoder changes no
// byte of a job or an attempt (sorted map keys, no HTML escaping, the
// payload as it is).
func TestMarshalWritesWhatEncodingJSONWrites(t *testing.T) {
	j := benchJob()
	j.Payload = json.RawMessage(`{"html":"<b>&</b>","n":1}`)
	a := benchAttempt()
	a.ResponseBody = "<p>a & b</p>"
	for _, v := range []any{j, a} {
		got, err := Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimSuffix(string(stdMarshal(v)), "\n"); string(got) != want {
			t.Fatalf("Marshal(%T):\n%s\nencoding/json:\n%s", v, got, want)
		}
	}
}
