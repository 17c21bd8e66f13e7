package projections_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/projections/clickhouse"
	"github.com/hookline/hookline/projections/embedded"
	"github.com/hookline/hookline/projections/storetest"
	"github.com/hookline/hookline/schemas"
)

// BenchmarkInsertAttempts measures the projector's batch insert: batches
// of 5,000 attempts (the projector's batch size) into each store. Reported
// per attempt.
func BenchmarkInsertAttempts(b *testing.B) {
	stores := map[string]func(b *testing.B) projections.Store{
		"embedded": func(b *testing.B) projections.Store {
			s, err := embedded.Open(filepath.Join(b.TempDir(), "attempts.db"))
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
		"clickhouse": func(b *testing.B) projections.Store {
			s, err := clickhouse.Open(b.Context(), storetest.ClickHouseDatabase(b))
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
	}
	for _, name := range []string{"embedded", "clickhouse"} {
		b.Run(name, func(b *testing.B) {
			store := stores[name](b)
			defer store.Close()
			const batch = 5000
			at := time.Now().UTC()
			seq := 0
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				attempts := make([]schemas.Attempt, 0, batch)
				for j := 0; j < batch; j++ {
					seq++
					attempts = append(attempts, schemas.Attempt{
						DeliveryID: fmt.Sprintf("01a2%04x-0000-7000-8000-%012d", seq%65536, seq), WebhookID: fmt.Sprint("w", seq%50),
						Tenant: "t", EventIDs: []string{fmt.Sprint("e", seq)}, EventType: "ticket.updated", N: 1,
						State: schemas.StateSucceeded, At: at, DeliveryCreatedAt: at, StatusCode: 200, DurationMS: 3,
						URL: "https://example.com/hook", RequestHeaders: map[string]string{"Content-Type": "application/json"},
						RequestBody: `{"id":"x","event_type":"ticket.updated","data":{"priority":"High"}}`,
					})
				}
				if err := store.InsertAttempts(b.Context(), attempts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "attempts/s")
		})
	}
}
