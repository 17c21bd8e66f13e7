package embedded_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/projections/embedded"
	"github.com/hookline/hookline/schemas"
)

// realisticAttempt is a first attempt as the sender records it for the
// bench's 1 KiB ticket: the signed envelope as the request body, the
// headers Hookline sends and a short response.
func realisticAttempt(seq int, at time.Time) schemas.Attempt {
	data := fmt.Sprintf(`{"seq":%d,"ticket_id":"T-%d","subject":"Printer on fire in building %d","status":"open","priority":"High",`+
		`"type":"incident","channel":"email","assignee":null,"group":{"id":42,"name":"Level 2 support"},`+
		`"requester":{"id":%d,"name":"Ada Lovelace","email":"ada@example.com","organization":{"id":311,"name":"Example Corp","tier":"enterprise"}},`+
		`"tags":["printer","hardware","urgent"],"custom_fields":{"asset_tag":"PRN-00417","floor":4,"cost_center":"CC-1200","impact":2.5},`+
		`"sla":{"policy":"enterprise-4h","breach_in_minutes":213,"paused":false},"satisfaction":null,"description":"%s"}`,
		seq, seq%1000, seq%9+1, 90000+seq%1000, strings.Repeat("The printer on the fourth floor smells of smoke again. ", 8))
	id := fmt.Sprintf("019%05x-%04x-7000-8000-%012d", seq/4096, seq%4096, seq)
	body := `{"id":"` + id + `","event_type":"ticket.updated","created_at":"` + at.Format(time.RFC3339Nano) +
		`","data":` + data + `,"changes":{"status":["new","open"]}}`
	return schemas.Attempt{
		DeliveryID: id, WebhookID: "wh_0123456789abcdef", Tenant: "default", EventIDs: []string{fmt.Sprint("ev-", seq)},
		EventType: "ticket.updated", N: 1, State: schemas.StateSucceeded,
		At: at, DeliveryCreatedAt: at, StatusCode: 204, DurationMS: 2, URL: "http://127.0.0.1:8090/hooks/tickets",
		RequestHeaders: map[string]string{
			"Content-Type": "application/json", "User-Agent": "Hookline/1.0", "Webhook-Id": id,
			"Webhook-Timestamp": fmt.Sprint(at.Unix()), "Webhook-Signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
			"X-Hookline-Attempt": "1", "X-Hookline-Event": "ticket.updated",
		},
		RequestBody:     body,
		ResponseHeaders: map[string]string{"Date": at.Format(time.RFC1123)},
	}
}

// BenchmarkInsertRecords1KiB writes attempts of 1 KiB ticket data the way
// the projector gives them to the embedded store (with their records'
// JSON), 100 to 2,000 a transaction, and reports the file's bytes per
// attempt.
func BenchmarkInsertRecords1KiB(b *testing.B) {
	for _, batch := range []int{100, 500, 2000} {
		b.Run(fmt.Sprint("batch-", batch), func(b *testing.B) { benchInsertRecords(b, batch) })
	}
}

func benchInsertRecords(b *testing.B, batch int) {
	path := filepath.Join(b.TempDir(), "attempts.db")
	s, err := embedded.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	at := time.Now().UTC()
	recs := make([]projections.Record, 0, batch)
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		b.StopTimer()
		recs = recs[:0]
		for j := i; j < min(i+batch, b.N); j++ {
			a := realisticAttempt(j, at)
			recs = append(recs, projections.Record{Attempt: a, JSON: records.Attempt(a).Value})
		}
		b.StartTimer()
		if err := s.InsertRecords(b.Context(), recs); err != nil {
			b.Fatal(err)
		}
	}
	if fi, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(fi.Size())/float64(b.N), "file-B/attempt")
	}
}
