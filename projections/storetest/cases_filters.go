package storetest

import (
	"math/rand/v2"
	"time"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// outcome is how one attempt ended.
type outcome struct {
	state  string
	status int
}

// insertOutcomes inserts one attempt per outcome for d, n from 1, highest
// first so that arrival order cannot stand in for n, and returns the last.
func insertOutcomes(h *harness, d delivery, outcomes ...outcome) schemas.Attempt {
	h.t.Helper()
	attempts := make([]schemas.Attempt, len(outcomes))
	for i, o := range outcomes {
		attempts[i] = d.attempt(i+1, o.state, o.status)
	}
	for i := len(attempts) - 1; i >= 0; i-- {
		h.insert(attempts[i])
	}
	return attempts[len(attempts)-1]
}

func testEventTypeFilter(h *harness) {
	ds := newDeliveries("tenant-a", "wh-1", 6)
	byType := map[string][]string{}
	for i, d := range ds {
		a := d.succeeded()
		a.EventType = []string{"ticket.created", "ticket.updated", "ticket.created.v2"}[i%3]
		h.insert(a)
		byType[a.EventType] = append([]string{d.ID}, byType[a.EventType]...)
	}
	for _, eventType := range []string{"ticket.created", "ticket.updated", "ticket.created.v2"} {
		q := ds[0].query(10)
		q.EventType = eventType
		checkIDs(h.t, "event type "+eventType, h.list(q).Deliveries, byType[eventType])
	}
	for _, eventType := range []string{"ticket", "ticket.*", "Ticket.created", "ticket.created "} {
		q := ds[0].query(10)
		q.EventType = eventType
		checkIDs(h.t, "event type "+eventType, h.list(q).Deliveries, nil)
	}
}

// testStatusFilter gives each delivery a last attempt that differs from
// its earlier ones, so that a store matching any attempt fails.
func testStatusFilter(h *harness) {
	ds := newDeliveries("tenant-a", "wh-1", 8)
	retry := func(status int) outcome { return outcome{schemas.StateRetrying, status} }
	insertOutcomes(h, ds[0], retry(503), outcome{schemas.StateSucceeded, 200})
	insertOutcomes(h, ds[1], retry(500), outcome{schemas.StateFailed, 503})
	insertOutcomes(h, ds[2], retry(404), retry(500))
	insertOutcomes(h, ds[3], retry(503), outcome{schemas.StateFailed, 404})
	insertOutcomes(h, ds[4], retry(200), retry(0)) // odd, but the last one decides
	insertOutcomes(h, ds[5], retry(503), retry(0))
	insertOutcomes(h, ds[6], outcome{schemas.StateFailed, 301})
	insertOutcomes(h, ds[7], retry(0), outcome{schemas.StateSucceeded, 204})
	id := func(i ...int) []string {
		var out []string
		for _, j := range i {
			out = append(out, ds[j].ID)
		}
		return out
	}
	scenarios := map[string][]string{
		"503": id(1), "500": id(2), "404": id(3), "200": id(0), "204": id(7), "502": nil,
		"5xx": id(2, 1), "4xx": id(3), "3xx": id(6), "2xx": id(7, 0), "error": id(5, 4),
		// Invalid values are the API's to refuse; a store matches nothing.
		"teapot": nil, "5xxx": nil, "6xx": nil, "600": nil, "99": nil, "0": nil, "-1": nil, "5XX": nil, " 503": nil,
	}
	for status, want := range scenarios {
		q := ds[0].query(10)
		q.Status = status
		page := h.list(q)
		checkIDs(h.t, "status "+status, page.Deliveries, want)
		if page.NextCursor != "" {
			h.t.Errorf("status %s: next cursor %q on the only page", status, page.NextCursor)
		}
	}
}

// filterModel is what a fixture delivery of testCombinedFilters shows.
type filterModel struct {
	delivery
	eventType, state string
	status           int
}

// attempts are m's two attempts: a retry, then the one that decides.
func (m filterModel) attempts() []schemas.Attempt {
	first, last := m.attempt(1, schemas.StateRetrying, 503), m.attempt(2, m.state, m.status)
	first.EventType, last.EventType = m.eventType, m.eventType
	return []schemas.Attempt{first, last}
}

func insertModels(h *harness, ms []filterModel) {
	h.t.Helper()
	var batch []schemas.Attempt
	for _, m := range ms {
		batch = append(batch, m.attempts()...)
	}
	h.insert(batch...)
}

// randomModels makes count deliveries of random type, state and status,
// created a minute apart from created.
func randomModels(r *rand.Rand, webhook string, created time.Time, count int) []filterModel {
	out := make([]filterModel, count)
	for i := range out {
		state := []string{schemas.StateFailed, schemas.StateSucceeded, schemas.StateRetrying}[r.IntN(3)]
		status := []int{500, 503, 404, 0, 200}[r.IntN(5)]
		eventType := []string{"ticket.created", "ticket.updated"}[r.IntN(2)]
		out[i] = filterModel{newDelivery("tenant-a", webhook, created.Add(time.Duration(i)*time.Minute)), eventType, state, status}
	}
	return out
}

// matching lists, newest first, the models a query with every filter set
// keeps. Models made later have higher ids.
func matching(ms []filterModel, q projections.DeliveryQuery) []string {
	lo, hi, _ := projections.StatusRange(q.Status)
	var out []string
	for i := len(ms) - 1; i >= 0; i-- {
		m := ms[i]
		if m.state == q.State && m.eventType == q.EventType && m.status >= lo && m.status < hi &&
			!m.Created.Before(q.Since) && m.Created.Before(q.Until) {
			out = append(out, m.ID)
		}
	}
	return out
}

func testCombinedFilters(h *harness) {
	r := rand.New(rand.NewPCG(7, 11))
	ms := randomModels(r, "wh-1", base, 240)
	insertModels(h, ms)
	q := ms[0].query(3)
	q.State, q.EventType, q.Status = schemas.StateFailed, "ticket.updated", "5xx"
	q.Since, q.Until = base.Add(10*time.Minute), base.Add(230*time.Minute)
	want := matching(ms, q)
	if len(want) < 5 {
		h.t.Fatalf("fixture has %d matches; want several pages", len(want))
	}
	first := h.list(q)
	// New deliveries, matching and not, arrive between pages: created inside
	// the range, but with higher ids than the cursor.
	late := randomModels(r, "wh-1", base.Add(20*time.Minute), 60)
	insertModels(h, late)
	ms = append(ms, late...)
	q.Cursor = first.NextCursor
	got := append(first.Deliveries, h.listAll(q)...)
	checkIDs(h.t, "pages while inserting", got, want)
	for _, d := range got {
		if d.State != q.State || d.EventType != q.EventType || d.LastStatusCode/100 != 5 || d.AttemptCount != 2 {
			h.t.Errorf("delivery %s: state %q, type %q, last status %d, %d attempts; want %s, %s, 5xx, 2",
				d.ID, d.State, d.EventType, d.LastStatusCode, d.AttemptCount, q.State, q.EventType)
		}
	}
	q.Cursor = "" // the late arrivals have the highest ids: they come first
	checkIDs(h.t, "from the start again", h.listAll(q), matching(ms, q))
}
