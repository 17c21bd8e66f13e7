package storetest

import (
	"fmt"
	"time"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// Pending marks (schemas.Attempt with n 0): a delivery that waits without
// an attempt, or waits again after some, and until when. The cases state
// what they expect outright, not only through Derive, so that a mistake
// shared by Derive and a store still fails.

func pendingCases() []testCase {
	return []testCase{
		{"MarkAloneIsPendingWithNextAttemptAtAndNoAttempt", testMarkAlone},
		{"MarkAfterRetryingAttemptKeepsRetryingAndMovesNextAttempt", testMarkAfterRetrying},
		{"AttemptAfterMarkDecidesTheState", testAttemptAfterMark},
		{"SameMarkTwiceIsOneRowAndTheLatestWins", testMarkTwice},
		{"StateAndStatusFiltersTellMarksFromAttempts", testMarkFilters},
		{"StatsCountWaitingDeliveriesButNeverMarksAsAttempts", testMarkStats},
		{"DropBeforeDropsMarksLikeAttempts", testMarkDropBefore},
	}
}

// checkWaiting checks a delivery's summary fields and its next attempt.
func checkWaiting(h *harness, label string, got projections.Delivery, state string, attempts, status int, updated time.Time, next *time.Time) {
	h.t.Helper()
	if got.State != state || got.AttemptCount != attempts || got.LastStatusCode != status {
		h.t.Errorf("%s: state %q, attempt_count %d, last_status_code %d; want %q, %d, %d",
			label, got.State, got.AttemptCount, got.LastStatusCode, state, attempts, status)
	}
	checkTime(h.t, label+": updated_at", got.UpdatedAt, updated.Truncate(time.Millisecond))
	if next != nil {
		cut := next.Truncate(time.Millisecond)
		next = &cut
	}
	checkNext(h.t, label, got.NextAttemptAt, next)
}

// listOne lists d's webhook and returns d's entry, failing unless it is
// the only one.
func listOne(h *harness, d delivery) projections.Delivery {
	h.t.Helper()
	page := h.list(d.query(10))
	checkIDs(h.t, "list", page.Deliveries, []string{d.ID})
	if len(page.Deliveries) != 1 {
		h.t.FailNow()
	}
	return page.Deliveries[0]
}

func testMarkAlone(h *harness) {
	d := newDelivery("tenant-a", "wh-1", base)
	m := d.mark(2*time.Second, 90*time.Second)
	// Another zone and a sub-millisecond part: stores answer UTC, to the
	// millisecond.
	zoned := m.NextAttemptAt.In(time.FixedZone("UTC-3", -3*3600)).Add(999_999)
	m.NextAttemptAt = &zoned
	h.insert(m)

	got := h.get(d.Tenant, d.ID)
	checkWaiting(h, "GetDelivery", got, schemas.StatePending, 0, 0, m.At, m.NextAttemptAt)
	if len(got.Attempts) != 0 {
		h.t.Errorf("attempts = %+v; a mark is no attempt", got.Attempts)
	}
	if got.Request == nil || got.Request.Body != m.RequestBody {
		h.t.Errorf("request = %+v; want the mark's body, the payload that will be sent", got.Request)
	}
	checkTime(h.t, "created_at", got.CreatedAt, base)
	checkDelivery(h.t, "GetDelivery", got, want([]schemas.Attempt{m}, true))
	entry := listOne(h, d)
	checkWaiting(h, "list", entry, schemas.StatePending, 0, 0, m.At, m.NextAttemptAt)
	checkDelivery(h.t, "list", entry, want([]schemas.Attempt{m}, false))
	h.reopen()
	checkWaiting(h, "after reopen", h.get(d.Tenant, d.ID), schemas.StatePending, 0, 0, m.At, m.NextAttemptAt)
}

func testMarkAfterRetrying(h *harness) {
	d := newDelivery("tenant-a", "wh-1", base)
	a1 := d.attempt(1, schemas.StateRetrying, 503) // at base+10.25s, due a minute later
	h.insert(a1)
	checkWaiting(h, "retrying attempt alone", h.get(d.Tenant, d.ID), schemas.StateRetrying, 1, 503, a1.At, a1.NextAttemptAt)
	checkWaiting(h, "retrying attempt alone, listed", listOne(h, d), schemas.StateRetrying, 1, 503, a1.At, a1.NextAttemptAt)

	// Due, it finds the endpoint's circuit open: it waits longer.
	m := d.mark(75*time.Second, 10*time.Minute)
	m.Error, m.RequestBody = "waiting for the endpoint's circuit to close", ""
	h.insert(m)
	got := h.get(d.Tenant, d.ID)
	checkWaiting(h, "GetDelivery", got, schemas.StateRetrying, 1, 503, m.At, m.NextAttemptAt)
	if len(got.Attempts) != 1 || got.Attempts[0].N != 1 || got.Attempts[0].StatusCode != 503 {
		h.t.Errorf("attempts = %+v; want attempt 1 alone", got.Attempts)
	}
	if got.Request == nil || got.Request.Body != a1.RequestBody {
		h.t.Errorf("request = %+v; want attempt 1's body", got.Request)
	}
	checkDelivery(h.t, "GetDelivery", got, want([]schemas.Attempt{a1, m}, true))
	entry := listOne(h, d)
	checkWaiting(h, "list", entry, schemas.StateRetrying, 1, 503, m.At, m.NextAttemptAt)
	checkDelivery(h.t, "list", entry, want([]schemas.Attempt{a1, m}, false))

	// A mark older than the attempt (read late) neither moves the next
	// attempt back nor counts.
	other := newDelivery("tenant-a", "wh-2", base)
	b1 := other.attempt(1, schemas.StateRetrying, 0)
	stale := other.mark(5*time.Second, 8*time.Second)
	h.insert(b1, stale)
	checkWaiting(h, "stale mark", h.get(other.Tenant, other.ID), schemas.StateRetrying, 1, 0, b1.At, b1.NextAttemptAt)
	checkWaiting(h, "stale mark, listed", listOne(h, other), schemas.StateRetrying, 1, 0, b1.At, b1.NextAttemptAt)
}

func testAttemptAfterMark(h *harness) {
	scenarios := []struct {
		name    string
		state   string
		status  int
		body    bool // the attempt's record repeats the body
		waiting bool
	}{
		{"succeeded", schemas.StateSucceeded, 200, false, false},
		{"failed", schemas.StateFailed, 400, true, false},
		{"retrying", schemas.StateRetrying, 503, true, true},
	}
	for i, sc := range scenarios {
		d := newDelivery("tenant-a", fmt.Sprintf("wh-%d", i), base)
		m := d.mark(time.Second, 5*time.Second)
		a1 := d.attempt(1, sc.state, sc.status)
		if !sc.body {
			a1.RequestBody = ""
		}
		h.insert(a1, m) // arrival order must not matter
		var next *time.Time
		if sc.waiting {
			next = a1.NextAttemptAt
		}
		got := h.get(d.Tenant, d.ID)
		checkWaiting(h, sc.name, got, sc.state, 1, sc.status, a1.At, next)
		if len(got.Attempts) != 1 || got.Attempts[0].N != 1 {
			h.t.Errorf("%s: attempts = %+v; want attempt 1 alone", sc.name, got.Attempts)
		}
		if got.Request == nil || got.Request.Body != m.RequestBody {
			h.t.Errorf("%s: request = %+v; want the earliest record's body, the mark's", sc.name, got.Request)
		}
		checkDelivery(h.t, sc.name, got, want([]schemas.Attempt{m, a1}, true))
		entry := listOne(h, d)
		checkWaiting(h, sc.name+", listed", entry, sc.state, 1, sc.status, a1.At, next)
		checkDelivery(h.t, sc.name+", listed", entry, want([]schemas.Attempt{m, a1}, false))
	}

	// A mark written after the delivery succeeded (one sender's mark
	// racing another's attempt) leaves it succeeded with no next attempt,
	// though the mark is its latest record.
	d := newDelivery("tenant-a", "wh-race", base)
	a1, late := d.attempt(1, schemas.StateSucceeded, 200), d.mark(time.Minute, time.Hour)
	h.insert(a1, late)
	checkWaiting(h, "mark after success", h.get(d.Tenant, d.ID), schemas.StateSucceeded, 1, 200, late.At, nil)
	checkWaiting(h, "mark after success, listed", listOne(h, d), schemas.StateSucceeded, 1, 200, late.At, nil)

	// A mark and an attempt written in the same millisecond: the attempt
	// is the latest.
	d = newDelivery("tenant-a", "wh-tie", base)
	a1 = d.attempt(1, schemas.StateRetrying, 429)
	tie := d.mark(0, time.Hour)
	tie.At = a1.At
	h.insert(tie, a1)
	checkWaiting(h, "tie", h.get(d.Tenant, d.ID), schemas.StateRetrying, 1, 429, a1.At, a1.NextAttemptAt)
	checkWaiting(h, "tie, listed", listOne(h, d), schemas.StateRetrying, 1, 429, a1.At, a1.NextAttemptAt)
}

// testMarkTwice writes marks in the order a sender writes them, and
// replays them in that order: ClickHouse's merges keep the copy inserted
// last, so only a replay that ends with the newer mark has one answer in
// every store at every moment. (The embedded store keeps the later by At
// whatever the order: embedded's TestOlderMarkReadLateKeepsTheNewer.)
func testMarkTwice(h *harness) {
	d := newDelivery("tenant-a", "wh-1", base)
	older := d.mark(time.Second, time.Minute)
	newer := d.mark(61*time.Second, 3*time.Minute)
	newer.Error = "waiting for the endpoint's circuit to close"
	h.insert(older, older)
	h.insert(older)
	checkWaiting(h, "one mark written twice", listOne(h, d), schemas.StatePending, 0, 0, older.At, older.NextAttemptAt)
	checkWaiting(h, "one mark written twice, detail", h.get(d.Tenant, d.ID), schemas.StatePending, 0, 0, older.At, older.NextAttemptAt)
	h.insert(newer)
	got := h.get(d.Tenant, d.ID)
	checkWaiting(h, "newer mark", got, schemas.StatePending, 0, 0, newer.At, newer.NextAttemptAt)
	if len(got.Attempts) != 0 {
		h.t.Errorf("attempts = %+v; want none", got.Attempts)
	}
	checkWaiting(h, "newer mark, listed", listOne(h, d), schemas.StatePending, 0, 0, newer.At, newer.NextAttemptAt)
	checkStats(h, "stats", h.stats(statsOf(d)), counts{deliveries: map[string]int64{schemas.StatePending: 1}})
	h.insert(older, newer) // a replay of the topic
	checkWaiting(h, "after a replay", listOne(h, d), schemas.StatePending, 0, 0, newer.At, newer.NextAttemptAt)
	h.reopen()
	h.insert(older)
	h.insert(newer)
	checkWaiting(h, "after reopen and a replay", h.get(d.Tenant, d.ID), schemas.StatePending, 0, 0, newer.At, newer.NextAttemptAt)
	checkWaiting(h, "after reopen and a replay, listed", listOne(h, d), schemas.StatePending, 0, 0, newer.At, newer.NextAttemptAt)
	checkStats(h, "stats after reopen and a replay", h.stats(statsOf(d)), counts{deliveries: map[string]int64{schemas.StatePending: 1}})
}

// markFixture makes, on one webhook, a delivery of each kind the filters
// must tell apart, and returns them by kind.
func markFixture(h *harness) map[string]delivery {
	h.t.Helper()
	kinds := []string{"mark", "mark-other-type", "retrying", "retrying-then-mark", "error-then-mark", "mark-then-succeeded", "failed"}
	ds := newDeliveries("tenant-a", "wh-1", len(kinds))
	byKind := map[string]delivery{}
	for i, kind := range kinds {
		d := ds[i]
		byKind[kind] = d
		switch kind {
		case "mark":
			h.insert(d.mark(time.Second, time.Minute))
		case "mark-other-type":
			m := d.mark(time.Second, time.Minute)
			m.EventType = "ticket.created"
			h.insert(m)
		case "retrying":
			h.insert(d.attempt(1, schemas.StateRetrying, 503))
		case "retrying-then-mark":
			h.insert(d.attempt(1, schemas.StateRetrying, 502), d.mark(time.Minute, time.Hour))
		case "error-then-mark":
			h.insert(d.attempt(1, schemas.StateRetrying, 0), d.mark(time.Minute, time.Hour))
		case "mark-then-succeeded":
			h.insert(d.mark(time.Second, 5*time.Second), d.attempt(1, schemas.StateSucceeded, 200))
		case "failed":
			h.insert(d.attempt(1, schemas.StateRetrying, 503), d.attempt(2, schemas.StateFailed, 500))
		}
	}
	return byKind
}

func testMarkFilters(h *harness) {
	byKind := markFixture(h)
	q0 := byKind["mark"].query(10)
	idsOf := func(kinds ...string) []string { // newest first: the fixture makes them in order
		var out []string
		for i := len(kinds) - 1; i >= 0; i-- {
			out = append(out, byKind[kinds[i]].ID)
		}
		return out
	}
	scenarios := []struct {
		name   string
		adjust func(q *projections.DeliveryQuery)
		want   []string
	}{
		{"state pending", func(q *projections.DeliveryQuery) { q.State = schemas.StatePending }, idsOf("mark", "mark-other-type")},
		{"state retrying", func(q *projections.DeliveryQuery) { q.State = schemas.StateRetrying },
			idsOf("retrying", "retrying-then-mark", "error-then-mark")},
		{"state succeeded", func(q *projections.DeliveryQuery) { q.State = schemas.StateSucceeded }, idsOf("mark-then-succeeded")},
		{"state failed", func(q *projections.DeliveryQuery) { q.State = schemas.StateFailed }, idsOf("failed")},
		// A mark has status 0 but is no attempt: no response is not its.
		{"status error", func(q *projections.DeliveryQuery) { q.Status = "error" }, idsOf("error-then-mark")},
		{"status 5xx", func(q *projections.DeliveryQuery) { q.Status = "5xx" }, idsOf("retrying", "retrying-then-mark", "failed")},
		{"status 502", func(q *projections.DeliveryQuery) { q.Status = "502" }, idsOf("retrying-then-mark")},
		{"pending of a type", func(q *projections.DeliveryQuery) {
			q.State, q.EventType = schemas.StatePending, "ticket.created"
		}, idsOf("mark-other-type")},
		{"pending created since the second", func(q *projections.DeliveryQuery) {
			q.State, q.Since = schemas.StatePending, byKind["mark-other-type"].Created
		}, idsOf("mark-other-type")},
		{"pending with a status", func(q *projections.DeliveryQuery) { q.State, q.Status = schemas.StatePending, "error" }, nil},
	}
	for _, sc := range scenarios {
		q := q0
		sc.adjust(&q)
		checkIDs(h.t, sc.name, h.listAll(q), sc.want)
	}
	all := h.listAll(projections.DeliveryQuery{Tenant: q0.Tenant, WebhookID: q0.WebhookID, Limit: 2})
	if len(all) != len(byKind) {
		h.t.Errorf("listed %d deliveries by 2; want %d, each once", len(all), len(byKind))
	}
	for _, d := range all {
		detail := h.get(q0.Tenant, d.ID)
		detail.Request, detail.Attempts = nil, nil
		checkDelivery(h.t, "list entry "+d.ID, d, detail)
	}
}

func testMarkStats(h *harness) {
	byKind := markFixture(h)
	want := counts{
		deliveries: map[string]int64{
			schemas.StatePending: 2, schemas.StateRetrying: 3, schemas.StateSucceeded: 1, schemas.StateFailed: 1,
		},
		// Attempts only: 503, 502, 0, 200, 503 and 500; none of the marks.
		attempts: map[string]int64{"2xx": 1, "5xx": 4, "error": 1},
		rate:     0.5,
	}
	q := statsOf(byKind["mark"])
	checkStats(h, "stats", h.stats(q), want)
	h.reopen()
	checkStats(h, "stats after reopen", h.stats(q), want)
	// More marks of the same deliveries change nothing.
	h.insert(byKind["mark"].mark(2*time.Minute, 2*time.Hour), byKind["retrying"].mark(3*time.Minute, 3*time.Hour),
		byKind["mark-then-succeeded"].mark(time.Second, 5*time.Second))
	checkStats(h, "stats after more marks", h.stats(q), want)
	// A bucket holding one mark alone: a pending delivery, no attempt and
	// no latency.
	late := newDelivery("tenant-a", "wh-1", base.Add(5*time.Hour))
	h.insert(late.mark(time.Second, time.Minute))
	bucket := projections.StatsQuery{Tenant: late.Tenant, WebhookID: late.WebhookID, Since: base.Add(5 * time.Hour).Truncate(time.Hour), Until: base.Add(6 * time.Hour).Truncate(time.Hour)}
	got := h.stats(bucket)
	checkStats(h, "the mark's hour", got, counts{deliveries: map[string]int64{schemas.StatePending: 1}})
	if got.LatencyMS != (projections.Percentiles{}) {
		h.t.Errorf("the mark's hour: latency %+v; want zeros", got.LatencyMS)
	}
}

// testMarkDropBefore: retention drops a mark's day like an attempt's, and a
// delivery left with a mark alone is pending with no attempt.
func testMarkDropBefore(h *harness) {
	day := func(i int) time.Time { return time.Date(2026, 3, i, 12, 0, 0, 0, time.UTC) }
	at := func(a schemas.Attempt, t time.Time) schemas.Attempt {
		a.At = t
		return a
	}
	gone := newDelivery("tenant-a", "wh-1", day(1))  // a mark on day 1 alone
	waits := newDelivery("tenant-a", "wh-1", day(1)) // attempt 1 on day 1, a mark on day 3
	m := at(waits.mark(0, 0), day(3))
	next := day(3).Add(time.Hour)
	m.NextAttemptAt = &next
	h.insert(at(gone.mark(0, time.Hour), day(1)), at(waits.attempt(1, schemas.StateRetrying, 503), day(1)), m)
	checkStats(h, "before", h.stats(statsOf(waits)), counts{
		deliveries: map[string]int64{schemas.StatePending: 1, schemas.StateRetrying: 1}, attempts: map[string]int64{"5xx": 1},
	})
	h.dropBefore(day(3).Add(-time.Hour))
	h.notFound(gone.Tenant, gone.ID)
	got := h.get(waits.Tenant, waits.ID)
	checkWaiting(h, "left with its mark", got, schemas.StatePending, 0, 0, m.At, m.NextAttemptAt)
	checkIDs(h.t, "list", h.list(waits.query(10)).Deliveries, []string{waits.ID})
	want := counts{deliveries: map[string]int64{schemas.StatePending: 1}}
	checkStats(h, "after", h.stats(statsOf(waits)), want)
	h.reopen()
	checkStats(h, "after reopen", h.stats(statsOf(waits)), want)
}
