package projections_test

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/projections/clickhouse"
	"github.com/hookline/hookline/projections/embedded"
	"github.com/hookline/hookline/projections/storetest"
	"github.com/hookline/hookline/schemas"
)

// Shape of BenchmarkMillion's data set.
const (
	millionAttempts = 1_000_000
	millionWebhooks = 50
	millionSpan     = 7 * 24 * time.Hour // deliveries are created over a week
	millionBatch    = 5_000              // the projector's batch size
	queryRuns       = 50
)

// BenchmarkMillion loads a million attempts (50 webhooks, ~700k deliveries,
// a quarter retried, statuses mixed) into each store and then times the
// API's read paths on one webhook. It takes minutes, so it runs only when
// -bench names it:
//
//	HOOKLINE_TEST_CLICKHOUSE_DSN=clickhouse://127.0.0.1:19000/default \
//	go test ./projections -run '^$' -bench Million -benchtime 1x -timeout 60m
//
// Every run loads once, whatever b.N: the metrics are the insert rate and
// p50/p99 of queryRuns runs of each query.
func BenchmarkMillion(b *testing.B) {
	if f := flag.Lookup("test.bench"); f == nil || !strings.Contains(f.Value.String(), "Million") {
		b.Skip("loads a million attempts: run with -bench Million")
	}
	b.Run("embedded", func(b *testing.B) {
		s, err := embedded.Open(filepath.Join(b.TempDir(), "attempts.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchMillion(b, s, millionBatch)
	})
	// The projector's batch, then the largest PLATFORM.md suggests.
	for _, batch := range []int{millionBatch, 50_000} {
		b.Run(fmt.Sprintf("clickhouse/batch=%d", batch), func(b *testing.B) {
			s, err := clickhouse.Open(b.Context(), storetest.ClickHouseDatabase(b))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			benchMillion(b, s, batch)
		})
	}
}

func benchMillion(b *testing.B, s projections.Store, batch int) {
	start := time.Now().Add(-millionSpan).Truncate(time.Hour)
	var inserting time.Duration // making the data does not count
	loaded := 0
	for attempts := range millionData(start, batch) {
		began := time.Now()
		if err := s.InsertAttempts(b.Context(), attempts); err != nil {
			b.Fatal(err)
		}
		inserting += time.Since(began)
		loaded += len(attempts)
	}
	b.ReportMetric(float64(loaded)/inserting.Seconds(), "attempts/s")

	webhook := "wh-7"
	list := projections.DeliveryQuery{Tenant: "t", WebhookID: webhook, Limit: 50}
	filtered := list
	filtered.State, filtered.Status = schemas.StateFailed, "5xx"
	queries := []struct {
		name string
		run  func() (int, error)
	}{
		{"list", func() (int, error) { p, err := s.ListDeliveries(b.Context(), list); return len(p.Deliveries), err }},
		{"filtered", func() (int, error) { p, err := s.ListDeliveries(b.Context(), filtered); return len(p.Deliveries), err }},
		{"stats", func() (int, error) {
			st, err := s.Stats(b.Context(), projections.StatsQuery{Tenant: "t", WebhookID: webhook})
			return int(st.Deliveries[schemas.StateSucceeded]), err
		}},
		{"stats24h", func() (int, error) {
			st, err := s.Stats(b.Context(), projections.StatsQuery{Tenant: "t", WebhookID: webhook, Since: time.Now().Add(-24 * time.Hour)})
			return int(st.Deliveries[schemas.StateSucceeded]), err
		}},
	}
	for _, q := range queries {
		p50, p99, n := timeQuery(b, q.run)
		b.Logf("%s: %d results, p50 %.1f ms, p99 %.1f ms", q.name, n, p50, p99)
		b.ReportMetric(p50, q.name+"-p50-ms")
		b.ReportMetric(p99, q.name+"-p99-ms")
	}
}

// timeQuery runs a query queryRuns times and answers the p50 and p99 in
// milliseconds, and what the last run counted (a check that it found data).
func timeQuery(b *testing.B, run func() (int, error)) (p50, p99 float64, n int) {
	b.Helper()
	ms := make([]float64, queryRuns)
	for i := range ms {
		began := time.Now()
		var err error
		if n, err = run(); err != nil {
			b.Fatal(err)
		}
		ms[i] = float64(time.Since(began).Microseconds()) / 1000
	}
	if n == 0 {
		b.Fatal("the query found nothing: the data set is wrong")
	}
	sort.Float64s(ms)
	at := func(p float64) float64 { return ms[int(math.Ceil(p*float64(len(ms))))-1] }
	return at(0.5), at(0.99), n
}

// millionData yields the data set in batches, in order of attempt time
// within windows of 10,000 deliveries, so that retries arrive after the
// first attempts of later deliveries, as they do live.
func millionData(start time.Time, batch int) func(yield func([]schemas.Attempt) bool) {
	return func(yield func([]schemas.Attempt) bool) {
		r := rand.New(rand.NewPCG(2026, 11))
		step := millionSpan / (millionAttempts * 10 / 14) // ~1.43 attempts per delivery
		var window, out []schemas.Attempt
		total := 0
		for i := 0; total < millionAttempts; i++ {
			made := millionDelivery(r, i, start.Add(time.Duration(i)*step))
			made = made[:min(len(made), millionAttempts-total)]
			window, total = append(window, made...), total+len(made)
			if i%10_000 != 9_999 && total < millionAttempts {
				continue
			}
			slices.SortStableFunc(window, func(a, b schemas.Attempt) int { return a.At.Compare(b.At) })
			for _, a := range window {
				if out = append(out, a); len(out) == batch {
					if !yield(out) {
						return
					}
					out = nil
				}
			}
			window = window[:0]
		}
		if len(out) > 0 {
			yield(out)
		}
	}
}

// millionDelivery makes the attempts of delivery i: 75 % one attempt, the
// rest two to four, ending succeeded, failed or still retrying.
func millionDelivery(r *rand.Rand, i int, created time.Time) []schemas.Attempt {
	ms := created.UnixMilli()
	id := fmt.Sprintf("%08x-%04x-7000-8000-%012x", ms>>16, ms&0xffff, i)
	webhook := fmt.Sprintf("wh-%d", i%millionWebhooks)
	count := 1
	switch x := r.Float64(); {
	case x > 0.95:
		count = 4
	case x > 0.87:
		count = 3
	case x > 0.75:
		count = 2
	}
	last := lastOutcome(r, count)
	attempts := make([]schemas.Attempt, count)
	for n := 1; n <= count; n++ {
		state, status := schemas.StateRetrying, []int{500, 502, 503, 429, 0}[r.IntN(5)]
		if n == count {
			state, status = last.state, last.status
		}
		duration := int64(math.Exp(r.NormFloat64()*0.8 + 4)) // median ~55 ms
		if status == 0 {
			duration = 10_000
		}
		attempts[n-1] = schemas.Attempt{
			DeliveryID: id, WebhookID: webhook, Tenant: "t", EventIDs: []string{fmt.Sprint("evt-", i)},
			EventType: []string{"ticket.created", "ticket.updated", "ticket.deleted", "user.created"}[i%4],
			N:         n, State: state, StatusCode: status, DurationMS: duration,
			At:                created.Add(time.Duration(10<<n) * time.Second),
			DeliveryCreatedAt: created, URL: "https://receiver.example/hooks/" + webhook,
			RequestHeaders: map[string]string{"Content-Type": "application/json", "webhook-id": id, "webhook-signature": "v1,****"},
			RequestBody:    fmt.Sprintf(`{"id":"evt-%d","event_type":"ticket.updated","data":{"priority":"High","subject":"Printer on fire","n":%d}}`, i, n),
			ResponseBody:   "ok",
		}
	}
	return attempts
}

type benchOutcome struct {
	state  string
	status int
}

func lastOutcome(r *rand.Rand, count int) benchOutcome {
	x := r.Float64()
	switch {
	case count == 1 && x < 0.92, count > 1 && x < 0.6:
		return benchOutcome{schemas.StateSucceeded, []int{200, 204}[r.IntN(2)]}
	case count == 1 && x < 0.97:
		return benchOutcome{schemas.StateFailed, []int{400, 404, 410}[r.IntN(3)]}
	case count > 1 && x < 0.9:
		return benchOutcome{schemas.StateFailed, []int{500, 503, 0}[r.IntN(3)]}
	}
	return benchOutcome{schemas.StateRetrying, []int{503, 0}[r.IntN(2)]}
}
