package storetest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"time"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// counts is the part of Stats a case states exactly; the rest of the
// states and classes must be zero.
type counts struct {
	deliveries map[string]int64
	attempts   map[string]int64
	rate       float64
}

func checkStats(h *harness, label string, got projections.Stats, want counts) {
	h.t.Helper()
	full := projections.EmptyStats()
	for k, v := range want.deliveries {
		full.Deliveries[k] = v
	}
	for k, v := range want.attempts {
		full.Attempts[k] = v
	}
	if !reflect.DeepEqual(got.Deliveries, full.Deliveries) {
		h.t.Errorf("%s: deliveries by state = %v; want %v", label, got.Deliveries, full.Deliveries)
	}
	if !reflect.DeepEqual(got.Attempts, full.Attempts) {
		h.t.Errorf("%s: attempts by class = %v; want %v", label, got.Attempts, full.Attempts)
	}
	if math.Abs(got.SuccessRate-want.rate) > 1e-9 {
		h.t.Errorf("%s: success rate = %v; want %v", label, got.SuccessRate, want.rate)
	}
}

func statsOf(d delivery) projections.StatsQuery {
	return projections.StatsQuery{Tenant: d.Tenant, WebhookID: d.WebhookID}
}

func testStatsCounts(h *harness) {
	ds := newDeliveries("tenant-a", "wh-1", 6)
	retry := func(status int) outcome { return outcome{schemas.StateRetrying, status} }
	insertOutcomes(h, ds[0], retry(503), outcome{schemas.StateSucceeded, 200})
	insertOutcomes(h, ds[1], retry(500), retry(0), outcome{schemas.StateFailed, 500})
	insertOutcomes(h, ds[2], outcome{schemas.StateFailed, 404})
	insertOutcomes(h, ds[3], retry(0))
	insertOutcomes(h, ds[4], retry(301))
	insertOutcomes(h, ds[5], outcome{schemas.StateSucceeded, 204})
	// Replays, within a batch and across batches, count once.
	h.insert(ds[1].attempt(1, schemas.StateRetrying, 500), ds[1].attempt(1, schemas.StateRetrying, 500), ds[5].attempt(1, schemas.StateSucceeded, 204))
	// Neighbours must not count.
	h.insert(newDelivery("tenant-a", "wh-10", base).failed(), newDelivery("tenant-b", "wh-1", base).failed())
	want := counts{
		deliveries: map[string]int64{schemas.StateSucceeded: 2, schemas.StateFailed: 2, schemas.StateRetrying: 2},
		attempts:   map[string]int64{"2xx": 2, "3xx": 1, "4xx": 1, "5xx": 3, "error": 2},
		rate:       0.5,
	}
	checkStats(h, "wh-1", h.stats(statsOf(ds[0])), want)
	h.reopen()
	checkStats(h, "wh-1 after reopen", h.stats(statsOf(ds[0])), want)
	for _, q := range []projections.StatsQuery{
		{Tenant: "tenant-a", WebhookID: "wh-"}, {Tenant: "tenant-c", WebhookID: "wh-1"},
		{Tenant: "tenant-a", WebhookID: "wh-1\x00"}, {Tenant: "' OR '1'='1", WebhookID: "?"},
	} {
		got := h.stats(q)
		checkStats(h, fmt.Sprintf("%q/%q", q.Tenant, q.WebhookID), got, counts{})
		if got.LatencyMS != (projections.Percentiles{}) {
			h.t.Errorf("%q/%q: latency %+v with no attempts; want zeros", q.Tenant, q.WebhookID, got.LatencyMS)
		}
	}
}

// testStatsFollowState moves one delivery through its states across
// batches, replays and a reopen.
func testStatsFollowState(h *harness) {
	d := newDelivery("tenant-a", "wh-1", base)
	a1, a2, a3 := d.attempt(1, schemas.StateRetrying, 503), d.attempt(2, schemas.StateRetrying, 0), d.attempt(3, schemas.StateSucceeded, 200)
	steps := []struct {
		name   string
		insert []schemas.Attempt
		want   counts
	}{
		{"first attempt", []schemas.Attempt{a1}, counts{map[string]int64{"retrying": 1}, map[string]int64{"5xx": 1}, 0}},
		{"third before second", []schemas.Attempt{a3}, counts{map[string]int64{"succeeded": 1}, map[string]int64{"5xx": 1, "2xx": 1}, 1}},
		{"second late", []schemas.Attempt{a2}, counts{map[string]int64{"succeeded": 1}, map[string]int64{"5xx": 1, "2xx": 1, "error": 1}, 1}},
		{"all replayed", []schemas.Attempt{a3, a2, a1, a1}, counts{map[string]int64{"succeeded": 1}, map[string]int64{"5xx": 1, "2xx": 1, "error": 1}, 1}},
	}
	for _, step := range steps {
		h.insert(step.insert...)
		checkStats(h, step.name, h.stats(statsOf(d)), step.want)
		h.reopen()
	}
}

// testStatsLatency uses durations 1..100 ms, whose percentiles every
// method lands near, and long connection errors, which must not count.
func testStatsLatency(h *harness) {
	var attempts []schemas.Attempt
	for ms := 1; ms <= 100; ms++ {
		d := newDelivery("tenant-a", "wh-1", base)
		a := d.attempt(1, schemas.StateSucceeded, []int{200, 500, 404}[ms%3])
		a.DurationMS = int64(ms)
		attempts = append(attempts, a)
	}
	for range 20 {
		a := newDelivery("tenant-a", "wh-1", base).attempt(1, schemas.StateRetrying, 0)
		a.DurationMS = 30_000
		attempts = append(attempts, a)
	}
	attempts = append(attempts, attempts[98], attempts[99]) // replays of 99 and 100 ms
	rand.Shuffle(len(attempts), func(i, j int) { attempts[i], attempts[j] = attempts[j], attempts[i] })
	h.insert(attempts[:60]...)
	h.insert(attempts[60:]...)
	got := h.stats(projections.StatsQuery{Tenant: "tenant-a", WebhookID: "wh-1"}).LatencyMS
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"p50", got.P50, 50}, {"p95", got.P95, 95}, {"p99", got.P99, 99}} {
		if math.Abs(c.got-c.want) > 2 {
			h.t.Errorf("%s = %v ms; want %v ± 2 (all: %+v)", c.name, c.got, c.want, got)
		}
	}
}

// testStatsSince draws the line on an hour: stores may round Since down to
// the hour, so the case only asks for what both rules agree on.
func testStatsSince(h *harness) {
	hour := base.Truncate(time.Hour)
	before := []time.Time{hour.Add(-3 * time.Hour), hour.Add(-time.Millisecond)}
	after := []time.Time{hour, hour.Add(59 * time.Minute), hour.Add(26 * time.Hour)}
	for _, created := range before {
		d := newDelivery("tenant-a", "wh-1", created)
		a := d.attempt(1, schemas.StateFailed, 500)
		a.At = hour.Add(time.Hour) // attempted after Since: creation still decides
		h.insert(a)
	}
	for _, created := range after {
		h.insert(newDelivery("tenant-a", "wh-1", created).succeeded())
	}
	q := projections.StatsQuery{Tenant: "tenant-a", WebhookID: "wh-1", Since: hour}
	checkStats(h, "since the hour", h.stats(q), counts{
		deliveries: map[string]int64{schemas.StateSucceeded: 3}, attempts: map[string]int64{"2xx": 3}, rate: 1,
	})
	q.Since = time.Time{}
	checkStats(h, "all time", h.stats(q), counts{
		deliveries: map[string]int64{schemas.StateSucceeded: 3, schemas.StateFailed: 2},
		attempts:   map[string]int64{"2xx": 3, "5xx": 2}, rate: 0.6,
	})
	q.Since = hour.Add(27 * time.Hour)
	checkStats(h, "since after everything", h.stats(q), counts{})
	q.Since, q.Until = hour, hour.Add(time.Hour)
	checkStats(h, "the hour alone", h.stats(q), counts{
		deliveries: map[string]int64{schemas.StateSucceeded: 2}, attempts: map[string]int64{"2xx": 2}, rate: 1,
	})
	q.Since, q.Until = time.Time{}, hour
	checkStats(h, "until the hour", h.stats(q), counts{
		deliveries: map[string]int64{schemas.StateFailed: 2}, attempts: map[string]int64{"5xx": 2},
	})
}

// testDropBefore spreads attempts over three days at noon UTC. The cut is
// at 11:00 on the third day rather than midnight: a store may cut days in
// its server's time zone, and so every zone within ±11 h agrees on which
// whole days lie before it.
func testDropBefore(h *harness) {
	day := func(i int, hour int) time.Time { return time.Date(2026, 3, i, hour, 0, 0, 0, time.UTC) }
	at := func(d delivery, n int, state string, status int, t time.Time) schemas.Attempt {
		a := d.attempt(n, state, status)
		a.At = t
		return a
	}
	gone1 := newDelivery("tenant-a", "wh-1", day(1, 12))
	gone2 := newDelivery("tenant-a", "wh-1", day(2, 12))
	spans := newDelivery("tenant-a", "wh-1", day(2, 12)) // attempt 1 on day 2, attempt 2 on day 3
	kept := newDelivery("tenant-a", "wh-1", day(3, 12))
	h.insert(at(gone1, 1, schemas.StateSucceeded, 200, day(1, 12)),
		at(gone2, 1, schemas.StateRetrying, 503, day(2, 12)), at(gone2, 2, schemas.StateFailed, 500, day(2, 13)),
		at(spans, 1, schemas.StateRetrying, 0, day(2, 12)), at(spans, 2, schemas.StateSucceeded, 204, day(3, 12)),
		at(kept, 1, schemas.StateFailed, 410, day(3, 12)))
	checkStats(h, "before", h.stats(statsOf(kept)), counts{
		deliveries: map[string]int64{"succeeded": 2, "failed": 2}, attempts: map[string]int64{"2xx": 2, "4xx": 1, "5xx": 2, "error": 1}, rate: 0.5,
	})

	h.dropBefore(day(3, 11))
	h.dropBefore(day(3, 11)) // again: nothing left to do
	h.dropBefore(time.Time{})
	checkIDs(h.t, "list", h.list(kept.query(10)).Deliveries, []string{kept.ID, spans.ID})
	h.notFound(gone1.Tenant, gone1.ID)
	h.notFound(gone2.Tenant, gone2.ID)
	if got := h.get(spans.Tenant, spans.ID); got.AttemptCount != 1 || len(got.Attempts) != 1 || got.Attempts[0].N != 2 || got.State != schemas.StateSucceeded {
		h.t.Errorf("delivery spanning the cut: %d attempts %+v, state %q; want attempt 2 alone, succeeded", got.AttemptCount, got.Attempts, got.State)
	}
	h.get(kept.Tenant, kept.ID)
	want := counts{deliveries: map[string]int64{"succeeded": 1, "failed": 1}, attempts: map[string]int64{"2xx": 1, "4xx": 1}, rate: 0.5}
	checkStats(h, "after", h.stats(statsOf(kept)), want)
	h.reopen()
	checkStats(h, "after reopen", h.stats(statsOf(kept)), want)

	h.insert(at(gone1, 1, schemas.StateSucceeded, 200, day(1, 12))) // a replay of a dropped day comes back
	want.deliveries["succeeded"], want.attempts["2xx"], want.rate = 2, 2, 2.0/3
	checkStats(h, "replayed", h.stats(statsOf(kept)), want)
	if d, err := h.store.GetDelivery(h.t.Context(), gone2.Tenant, gone2.ID); !errors.Is(err, projections.ErrNotFound) {
		h.t.Errorf("dropped delivery after a replay of another: %+v, %v", d, err)
	}
}

func testDropEverything(h *harness) {
	ds := newDeliveries("tenant-a", "wh-1", 30)
	var attempts []schemas.Attempt
	for _, d := range ds {
		attempts = append(attempts, d.attempt(1, schemas.StateRetrying, 503), d.attempt(2, schemas.StateFailed, 500))
	}
	h.insert(attempts...)
	h.dropBefore(base.Add(72 * time.Hour))
	checkIDs(h.t, "list after dropping everything", h.list(ds[0].query(10)).Deliveries, nil)
	checkStats(h, "stats after dropping everything", h.stats(statsOf(ds[0])), counts{})
	h.notFound(ds[0].Tenant, ds[0].ID)
	h.insert(ds[0].succeeded()) // the store still takes writes
	checkIDs(h.t, "list after a new insert", h.list(ds[0].query(10)).Deliveries, []string{ds[0].ID})
	checkStats(h, "stats after a new insert", h.stats(statsOf(ds[0])), counts{
		deliveries: map[string]int64{schemas.StateSucceeded: 1}, attempts: map[string]int64{"2xx": 1}, rate: 1,
	})
}
