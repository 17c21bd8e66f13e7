package storetest

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

func cases() []testCase {
	return append([]testCase{
		{"InsertThenGetDeliveryHasRequestAndAttemptsInOrder", testInsertAndGet},
		{"TimesRoundTripToTheMillisecondInUTC", testTimes},
		{"SameAttemptTwiceInOneBatchIsKeptOnce", testDuplicateInBatch},
		{"SameAttemptInTwoBatchesIsKeptOnce", testDuplicateAcrossBatches},
		{"StateComesFromTheHighestAttempt", testStateFromHighestN},
		{"ListAgreesWithDetail", testListAgreesWithDetail},
		{"ListIsNewestFirst", testListNewestFirst},
		{"UnknownDeliveryIsNotFound", testUnknownDelivery},
		{"OtherTenantSeesNothing", testTenantIsolation},
		{"ListShowsOnlyTheAskedWebhook", testWebhookIsolation},
		{"StateFilterKeepsOnlyThatState", testStateFilter},
		{"SinceAndUntilBoundCreationTime", testSinceUntil},
		{"CursorNeitherSkipsNorRepeatsWhileNewDeliveriesArrive", testPaginationWithInserts},
		{"LastFullPageHasNoCursor", testLastFullPage},
		{"CursorWorksWithFilters", testPaginationWithFilter},
		{"EventTypeFilterKeepsOnlyThatType", testEventTypeFilter},
		{"StatusFilterMatchesTheLastAttempt", testStatusFilter},
		{"AllFiltersCombineAndPagesHoldWhileDeliveriesArrive", testCombinedFilters},
		{"StatsCountDeliveriesByStateAndAttemptsByClassOnce", testStatsCounts},
		{"StatsFollowTheHighestAttemptAcrossBatches", testStatsFollowState},
		{"StatsLatencyPercentilesLeaveOutErrors", testStatsLatency},
		{"StatsSinceBoundsCreationTime", testStatsSince},
		{"DropBeforeRemovesWholeDaysOnly", testDropBefore},
		{"DropBeforeEverythingLeavesAWorkingStore", testDropEverything},
		{"DataSurvivesReopen", testReopen},
		{"EmptyBatchIsANoOp", testEmptyBatch},
		{"PingAnswers", testPing},
		{"QuotesAndPlaceholdersInIdsAreData", testHostileStrings},
		{"ConcurrentInsertsAndReads", testConcurrent},
	}, pendingCases()...)
}

func testInsertAndGet(h *harness) {
	d := newDelivery("tenant-a", "wh-1", base)
	a1 := d.attempt(1, schemas.StateRetrying, 503)
	a2 := d.attempt(2, schemas.StateSucceeded, 200)
	a2.RequestBody = "" // a retry's record does not repeat the body
	h.insert(a2, a1)    // the order of arrival must not matter

	got := h.get(d.Tenant, d.ID)
	checkDelivery(h.t, "GetDelivery", got, want([]schemas.Attempt{a1, a2}, true))
	if len(got.Attempts) != 2 || got.Attempts[0].N != 1 || got.Attempts[1].N != 2 {
		h.t.Fatalf("attempts = %+v; want n 1 then 2", got.Attempts)
	}
	if got.Attempts[0].StatusCode != 503 || got.Attempts[0].Error == "" || got.Attempts[0].ResponseHeaders["Retry-After"] != "10" {
		h.t.Errorf("attempt 1 = %+v; want 503 with its error and response headers", got.Attempts[0])
	}
	if got.Request == nil || got.Request.Body != a1.RequestBody || got.Request.Headers["X-Hookline-Attempt"] != "2" {
		h.t.Errorf("request = %+v; want the first attempt's body and the last one's headers", got.Request)
	}
	if got.URL != a2.URL || len(got.EventIDs) != 2 || got.EventType != "ticket.updated" {
		h.t.Errorf("delivery = %+v; want url, event ids and type of the attempts", got)
	}
}

func testTimes(h *harness) {
	zone := time.FixedZone("UTC+05:30", 5*3600+1800)
	created := time.Date(2026, 3, 4, 15, 30, 0, 123_456_789, zone)
	d := newDelivery("tenant-a", "wh-1", created)
	a := d.succeeded()
	a.At = created.Add(1500*time.Millisecond + 999_999) // sub-millisecond part must be cut
	h.insert(a)

	got := h.get(d.Tenant, d.ID)
	checkTime(h.t, "created_at", got.CreatedAt, time.Date(2026, 3, 4, 10, 0, 0, 123_000_000, time.UTC))
	checkTime(h.t, "updated_at", got.UpdatedAt, time.Date(2026, 3, 4, 10, 0, 1, 624_000_000, time.UTC))
	if len(got.Attempts) == 1 {
		checkTime(h.t, "attempt at", got.Attempts[0].At, time.Date(2026, 3, 4, 10, 0, 1, 624_000_000, time.UTC))
	}
	page := h.list(d.query(10))
	if len(page.Deliveries) != 1 {
		h.t.Fatalf("list = %d deliveries; want 1", len(page.Deliveries))
	}
	checkTime(h.t, "list created_at", page.Deliveries[0].CreatedAt, got.CreatedAt)
	checkTime(h.t, "list updated_at", page.Deliveries[0].UpdatedAt, got.UpdatedAt)
}

func testDuplicateInBatch(h *harness) {
	d := newDelivery("tenant-a", "wh-1", base)
	a1, a2 := d.attempt(1, schemas.StateRetrying, 500), d.attempt(2, schemas.StateRetrying, 502)
	h.insert(a1, a1, a2, a1, a2)
	checkOnce(h, d, []schemas.Attempt{a1, a2})
}

func testDuplicateAcrossBatches(h *harness) {
	d := newDelivery("tenant-a", "wh-1", base)
	a1, a2 := d.attempt(1, schemas.StateRetrying, 500), d.attempt(2, schemas.StateFailed, 404)
	h.insert(a1)
	h.insert(a1)
	h.insert(a2, a1)
	h.insert(a2)
	checkOnce(h, d, []schemas.Attempt{a1, a2})
}

// checkOnce checks that d shows each of its attempts once, in its detail and
// in the list.
func checkOnce(h *harness, d delivery, attempts []schemas.Attempt) {
	h.t.Helper()
	got := h.get(d.Tenant, d.ID)
	if got.AttemptCount != len(attempts) || len(got.Attempts) != len(attempts) {
		h.t.Errorf("attempt_count %d with %d attempts; want %d of each", got.AttemptCount, len(got.Attempts), len(attempts))
	}
	checkDelivery(h.t, "GetDelivery", got, want(attempts, true))
	page := h.list(d.query(10))
	checkIDs(h.t, "list", page.Deliveries, []string{d.ID})
	if len(page.Deliveries) == 1 {
		checkDelivery(h.t, "list", page.Deliveries[0], want(attempts, false))
	}
}

func testStateFromHighestN(h *harness) {
	type outcome struct {
		state  string
		status int
	}
	scenarios := []struct {
		name     string
		outcomes []outcome
	}{
		{"retry then success", []outcome{{schemas.StateRetrying, 503}, {schemas.StateSucceeded, 200}}},
		{"retries exhausted", []outcome{{schemas.StateRetrying, 500}, {schemas.StateRetrying, 429}, {schemas.StateFailed, 500}}},
		{"gone at once", []outcome{{schemas.StateFailed, 410}}},
		{"connection refused", []outcome{{schemas.StateRetrying, 0}}},
	}
	for i, sc := range scenarios {
		d := newDelivery("tenant-a", fmt.Sprintf("wh-%d", i), base)
		var attempts []schemas.Attempt
		for n, o := range sc.outcomes {
			attempts = append(attempts, d.attempt(n+1, o.state, o.status))
		}
		for j := len(attempts) - 1; j >= 0; j-- { // highest first: arrival order must not matter
			h.insert(attempts[j])
		}
		last := sc.outcomes[len(sc.outcomes)-1]
		got := h.get(d.Tenant, d.ID)
		if got.State != last.state || got.AttemptCount != len(sc.outcomes) || got.LastStatusCode != last.status {
			h.t.Errorf("%s: state %q, attempt_count %d, last_status_code %d; want %q, %d, %d", sc.name,
				got.State, got.AttemptCount, got.LastStatusCode, last.state, len(sc.outcomes), last.status)
		}
		page := h.list(d.query(10))
		if len(page.Deliveries) != 1 {
			h.t.Fatalf("%s: list has %d deliveries; want 1", sc.name, len(page.Deliveries))
		}
		checkDelivery(h.t, sc.name+": list", page.Deliveries[0], want(attempts, false))
	}
}

// testListAgreesWithDetail gives attempts that disagree on everything but
// their ids: a list entry must still be the detail without request and
// attempts, both following Derive (creation time from the lowest n, the
// rest from the highest).
func testListAgreesWithDetail(h *harness) {
	d := newDelivery("tenant-a", "wh-1", base)
	a1 := d.attempt(1, schemas.StateRetrying, 503)
	a2 := d.attempt(2, schemas.StateRetrying, 502)
	a3 := d.attempt(3, schemas.StateFailed, 500)
	a2.DeliveryCreatedAt, a3.DeliveryCreatedAt = base.Add(time.Hour), base.Add(2*time.Hour)
	a3.EventIDs, a3.EventType, a3.URL = []string{"evt-last"}, "ticket.deleted", "https://receiver.example/moved"
	a3.RedeliveryOf, a3.ReplayID = "0190aaaa-0000-7000-8000-000000000000", "replay-1"
	h.insert(a3, a1, a2)

	detail := h.get(d.Tenant, d.ID)
	checkDelivery(h.t, "GetDelivery", detail, want([]schemas.Attempt{a1, a2, a3}, true))
	page := h.list(d.query(10))
	if len(page.Deliveries) != 1 {
		h.t.Fatalf("list has %d deliveries; want 1", len(page.Deliveries))
	}
	detail.Request, detail.Attempts = nil, nil
	checkDelivery(h.t, "list entry", page.Deliveries[0], detail)
}

func testListNewestFirst(h *harness) {
	ds := newDeliveries("tenant-a", "wh-1", 6)
	var attempts []schemas.Attempt
	for i, d := range ds {
		attempts = append(attempts, d.attempt(1, schemas.StateRetrying, 503))
		if i%2 == 0 {
			attempts = append(attempts, d.attempt(2, schemas.StateSucceeded, 204))
		}
	}
	rand.Shuffle(len(attempts), func(i, j int) { attempts[i], attempts[j] = attempts[j], attempts[i] })
	h.insert(attempts...)

	page := h.list(ds[0].query(10))
	checkIDs(h.t, "list", page.Deliveries, idsNewestFirst(ds))
	if page.NextCursor != "" {
		h.t.Errorf("next cursor %q on the only page; want none", page.NextCursor)
	}
	for i, got := range page.Deliveries {
		d := ds[len(ds)-1-i]
		var mine []schemas.Attempt
		for _, a := range attempts {
			if a.DeliveryID == d.ID {
				mine = append(mine, a)
			}
		}
		checkDelivery(h.t, "list entry "+d.ID, got, want(mine, false))
	}
}

func testUnknownDelivery(h *harness) {
	d := newDelivery("tenant-a", "wh-1", base)
	h.notFound(d.Tenant, d.ID)
	h.insert(d.succeeded())
	h.notFound(d.Tenant, newDelivery("tenant-a", "wh-1", base).ID)
	h.notFound(d.Tenant, "")
}

func testTenantIsolation(h *harness) {
	d := newDelivery("tenant", "wh-1", base)
	h.insert(d.succeeded())
	h.get(d.Tenant, d.ID)
	for _, other := range []string{"tenant-b", "tenan", "tenant1", ""} {
		h.notFound(other, d.ID)
		page := h.list(projections.DeliveryQuery{Tenant: other, WebhookID: d.WebhookID, Limit: 10})
		if len(page.Deliveries) != 0 || page.NextCursor != "" {
			h.t.Errorf("tenant %q lists %q of tenant %q", other, ids(page.Deliveries), d.Tenant)
		}
	}
}

func testWebhookIsolation(h *harness) {
	one := newDeliveries("tenant-a", "wh-1", 3)
	ten := newDeliveries("tenant-a", "wh-10", 2)
	other := newDelivery("tenant-b", "wh-1", base)
	for _, d := range append(append(one, ten...), other) {
		h.insert(d.succeeded())
	}
	checkIDs(h.t, "wh-1", h.list(one[0].query(10)).Deliveries, idsNewestFirst(one))
	checkIDs(h.t, "wh-10", h.list(ten[0].query(10)).Deliveries, idsNewestFirst(ten))
	checkIDs(h.t, "wh-", h.list(projections.DeliveryQuery{Tenant: "tenant-a", WebhookID: "wh-", Limit: 10}).Deliveries, nil)
	checkIDs(h.t, "no webhook", h.list(projections.DeliveryQuery{Tenant: "tenant-a", Limit: 10}).Deliveries, nil)
}

func testStateFilter(h *harness) {
	ds := newDeliveries("tenant-a", "wh-1", 7)
	byState := map[string][]string{}
	for i, d := range ds {
		var last schemas.Attempt
		switch i % 3 {
		case 0: // was retrying, then succeeded: must not count as retrying
			h.insert(d.attempt(1, schemas.StateRetrying, 503))
			last = d.attempt(2, schemas.StateSucceeded, 200)
		case 1:
			last = d.failed()
		default:
			last = d.retrying()
		}
		h.insert(last)
		byState[last.State] = append([]string{d.ID}, byState[last.State]...)
	}
	for _, state := range []string{schemas.StateSucceeded, schemas.StateFailed, schemas.StateRetrying, schemas.StatePending} {
		q := ds[0].query(10)
		q.State = state
		page := h.list(q)
		checkIDs(h.t, "state "+state, page.Deliveries, byState[state])
		for _, d := range page.Deliveries {
			if d.State != state {
				h.t.Errorf("state filter %q answered %s in state %q", state, d.ID, d.State)
			}
		}
	}
}

func testSinceUntil(h *harness) {
	ds := newDeliveries("tenant-a", "wh-1", 5) // created base+0m … base+4m
	for _, d := range ds {
		a := d.attempt(1, schemas.StateRetrying, 503)
		b := d.attempt(2, schemas.StateSucceeded, 200)
		b.At = d.Created.Add(3 * time.Hour) // the last attempt's time must not count
		h.insert(a, b)
	}
	at := func(minutes int) time.Time { return base.Add(time.Duration(minutes) * time.Minute) }
	scenarios := []struct {
		name         string
		since, until time.Time
		want         []delivery
	}{
		{"since is inclusive, until exclusive", at(1), at(3), []delivery{ds[2], ds[1]}},
		{"since only", at(3), time.Time{}, []delivery{ds[4], ds[3]}},
		{"until only", time.Time{}, at(2), []delivery{ds[1], ds[0]}},
		{"to the millisecond", at(1).Add(time.Millisecond), at(3).Add(time.Millisecond), []delivery{ds[3], ds[2]}},
		{"below the millisecond", at(1).Add(time.Microsecond), at(3).Add(time.Microsecond), []delivery{ds[3], ds[2]}},
		{"empty range", at(2), at(2), nil},
	}
	for _, sc := range scenarios {
		q := ds[0].query(10)
		q.Since, q.Until = sc.since, sc.until
		var wantIDs []string
		for _, d := range sc.want {
			wantIDs = append(wantIDs, d.ID)
		}
		checkIDs(h.t, sc.name, h.list(q).Deliveries, wantIDs)
	}
}

func testPaginationWithInserts(h *harness) {
	ds := newDeliveries("tenant-a", "wh-1", 25)
	for _, d := range ds {
		h.insert(d.succeeded())
	}
	q := ds[0].query(10)
	first := h.list(q)
	checkIDs(h.t, "page 1", first.Deliveries, idsNewestFirst(ds)[:10])
	if first.NextCursor == "" {
		h.t.Fatal("page 1 of 3 has no next cursor")
	}

	newer := newDeliveries("tenant-a", "wh-1", 5) // higher ids than every page
	for _, d := range newer {
		h.insert(d.succeeded())
	}
	q.Cursor = first.NextCursor
	second := h.list(q)
	checkIDs(h.t, "page 2", second.Deliveries, idsNewestFirst(ds)[10:20])
	if second.NextCursor == "" {
		h.t.Fatal("page 2 of 3 has no next cursor")
	}
	q.Cursor = second.NextCursor
	third := h.list(q)
	checkIDs(h.t, "page 3", third.Deliveries, idsNewestFirst(ds)[20:])
	if third.NextCursor != "" {
		h.t.Errorf("page 3 of 3 has next cursor %q; want none", third.NextCursor)
	}
	all := h.listAll(ds[0].query(7))
	checkIDs(h.t, "everything by 7", all, idsNewestFirst(append(ds, newer...)))
}

func testLastFullPage(h *harness) {
	ds := newDeliveries("tenant-a", "wh-1", 20)
	for _, d := range ds {
		h.insert(d.succeeded())
	}
	q := ds[0].query(10)
	p1 := h.list(q)
	q.Cursor = p1.NextCursor
	p2 := h.list(q)
	checkIDs(h.t, "page 2", p2.Deliveries, idsNewestFirst(ds)[10:])
	if p2.NextCursor != "" {
		h.t.Errorf("the last page, full, has next cursor %q; want none", p2.NextCursor)
	}
	checkIDs(h.t, "one by one", h.listAll(ds[0].query(1)), idsNewestFirst(ds))
}

func testPaginationWithFilter(h *harness) {
	ds := newDeliveries("tenant-a", "wh-1", 15)
	var failed []delivery
	for i, d := range ds {
		if i%3 == 1 {
			h.insert(d.failed())
			failed = append(failed, d)
			continue
		}
		h.insert(d.succeeded())
	}
	q := ds[0].query(2)
	q.State = schemas.StateFailed
	q.Since = ds[2].Created // leaves out the oldest failed delivery
	checkIDs(h.t, "failed since, by 2", h.listAll(q), idsNewestFirst(failed[1:]))
	q.Limit = len(failed) - 1
	if p := h.list(q); p.NextCursor != "" {
		h.t.Errorf("a page holding every match has next cursor %q; want none", p.NextCursor)
	}
}

func testReopen(h *harness) {
	d := newDelivery("tenant-a", "wh-1", base)
	a1, a2 := d.attempt(1, schemas.StateRetrying, 503), d.attempt(2, schemas.StateSucceeded, 200)
	h.insert(a1, a2)
	h.reopen()
	checkDelivery(h.t, "after reopen", h.get(d.Tenant, d.ID), want([]schemas.Attempt{a1, a2}, true))
	h.insert(a2) // a replay after a restart is still kept once
	h.reopen()
	checkOnce(h, d, []schemas.Attempt{a1, a2})
}

func testEmptyBatch(h *harness) {
	if err := h.store.InsertAttempts(h.t.Context(), nil); err != nil {
		h.t.Fatalf("InsertAttempts(nil) = %v; want nil", err)
	}
	if err := h.store.InsertAttempts(h.t.Context(), []schemas.Attempt{}); err != nil {
		h.t.Fatalf("InsertAttempts(empty) = %v; want nil", err)
	}
	checkIDs(h.t, "list", h.list(projections.DeliveryQuery{Tenant: "tenant-a", WebhookID: "wh-1", Limit: 10}).Deliveries, nil)
}

func testPing(h *harness) {
	if err := h.store.Ping(h.t.Context()); err != nil {
		h.t.Fatalf("Ping = %v; want nil", err)
	}
}

func testHostileStrings(h *harness) {
	d := newDelivery(`o'brien\`, `wh' OR '1'='1 -- ?`, base)
	victim := newDelivery(`o'brien\`, "wh-1", base)
	a := d.succeeded()
	a.EventType = `ticket.updated'); DROP TABLE attempts; --`
	a.RequestBody = "{\"q\":\"?\",\"quote\":\"'\",\"nul\":\"\x00\",\"emoji\":\"\U0001F600\"}"
	a.ResponseBody = "line 1\nline 2\t\\ '?' \x00 end"
	a.RequestHeaders["X-Odd"] = `a'b"c\d?`
	h.insert(a, victim.succeeded())
	checkDelivery(h.t, "GetDelivery", h.get(d.Tenant, d.ID), want([]schemas.Attempt{a}, true))
	checkIDs(h.t, "list", h.list(d.query(10)).Deliveries, []string{d.ID})
	q := d.query(10)
	q.WebhookID, q.Cursor, q.State = "' OR '1'='1", "' OR '1'='1", "' OR '1'='1"
	checkIDs(h.t, "injection", h.list(q).Deliveries, nil)
	h.notFound(d.Tenant, "' OR '1'='1")
	h.notFound("?", "?")
	h.notFound(d.Tenant, d.ID+"\x00")
	q = victim.query(10)
	q.WebhookID = victim.WebhookID + "\x00" + victim.ID
	checkIDs(h.t, "NUL in the webhook id", h.list(q).Deliveries, nil)
	q = victim.query(10)
	q.Cursor = victim.ID + "\x00"
	checkIDs(h.t, "NUL in the cursor", h.list(q).Deliveries, []string{victim.ID})
}

func testConcurrent(h *harness) {
	const writers, batches, perBatch = 4, 5, 3
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches+2*10)
	for w := range writers {
		wg.Go(func() {
			for range batches {
				var batch []schemas.Attempt
				for range perBatch {
					d := newDelivery("tenant-a", "wh-1", base.Add(time.Duration(w)*time.Second))
					batch = append(batch, d.retrying(), d.attempt(2, schemas.StateSucceeded, 200))
				}
				errs <- h.store.InsertAttempts(h.t.Context(), batch)
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 10 {
				_, err := h.store.ListDeliveries(h.t.Context(), projections.DeliveryQuery{Tenant: "tenant-a", WebhookID: "wh-1", Limit: 5})
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			h.t.Fatalf("concurrent call: %v", err)
		}
	}
	all := h.listAll(projections.DeliveryQuery{Tenant: "tenant-a", WebhookID: "wh-1", Limit: 8})
	seen := map[string]bool{}
	for _, d := range all {
		if seen[d.ID] || d.AttemptCount != 2 || d.State != schemas.StateSucceeded {
			h.t.Errorf("delivery %s: seen before %v, attempt_count %d, state %q", d.ID, seen[d.ID], d.AttemptCount, d.State)
		}
		seen[d.ID] = true
	}
	if len(all) != writers*batches*perBatch {
		h.t.Errorf("listed %d deliveries; want %d", len(all), writers*batches*perBatch)
	}
}
