package matcher

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hookline/hookline/schemas"
)

// benchWebhooks spreads n webhooks over tenants; each tenant has a mix of
// patterns, identifiers and conditions, as a platform's customers would.
func benchWebhooks(n, tenants int) staticWebhooks {
	patterns := [][]string{{"ticket.*"}, {"order.paid"}, {"ticket.created", "ticket.deleted"}, {"*"}, {"event.updated"},
		{"product.*"}, {"shop.paid"}, {"order.scanned"}, {"scanner.scanned"}, {"ticket.updated"}}
	out := staticWebhooks{}
	for i := 0; i < n; i++ {
		tenant := fmt.Sprint("tenant-", i%tenants)
		w := schemas.Webhook{ID: fmt.Sprintf("wh-%07d", i), Tenant: tenant, Enabled: true, URL: "https://example.com",
			Events: patterns[i%len(patterns)]}
		switch i % 7 {
		case 1:
			w.Identifier = fmt.Sprint("T-", i%100)
		case 2:
			w.Condition = `data.priority == "High" && data.assignee == nil`
		}
		out[tenant] = append(out[tenant], w)
	}
	return out
}

// BenchmarkMatch matches one event against 10 to 100,000 webhooks, 20 per
// tenant (10,000 webhooks are 500 tenants), on one goroutine: the cost per
// event should follow the webhooks of the event's tenant, not the total.
func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10, 1000, 10000, 100000} {
		tenants := max(1, n/20)
		b.Run(fmt.Sprintf("webhooks=%d", n), func(b *testing.B) {
			m := New(benchWebhooks(n, tenants))
			events := make([]Input, 256)
			types := []struct{ res, trig string }{{"ticket", "update"}, {"ticket", "create"}, {"order", "paid"}, {"event", "update"}}
			for i := range events {
				tp := types[i%len(types)]
				events[i] = Input{Time: time.Now(), Event: schemas.Event{
					ID: fmt.Sprint("e", i), Tenant: fmt.Sprint("tenant-", (i*7)%tenants), Resource: tp.res, Trigger: tp.trig,
					Type: schemas.TypeFor(tp.res, tp.trig), ResourceID: fmt.Sprint("T-", i%100), OccurredAt: time.Now(),
					Data: json.RawMessage(`{"priority":"High","subject":"Printer on fire"}`),
				}}
			}
			for i := range events { // warm the per-tenant indexes
				m.Matches(events[i])
			}
			matches := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				matches += len(m.Matches(events[i%len(events)]))
			}
			b.ReportMetric(float64(matches)/float64(b.N), "matches/event")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
