package embedded

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

func pendingMark(id string, at, next time.Time) schemas.Attempt {
	return schemas.Attempt{DeliveryID: id, WebhookID: "wh-1", Tenant: "t", EventIDs: []string{"e"}, EventType: "ticket.created",
		N: 0, State: schemas.StatePending, At: at, DeliveryCreatedAt: at, NextAttemptAt: &next,
		Error: "waiting for room at the endpoint", RequestBody: `{"id":"` + id + `"}`}
}

// TestOlderMarkReadLateKeepsTheNewer: of two marks of a delivery the later
// by At stays, whichever comes last (ClickHouse keeps the last inserted
// once it merges, so the conformance suite cannot ask this of every store).
func TestOlderMarkReadLateKeepsTheNewer(t *testing.T) {
	at := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	older := pendingMark("d1", at, at.Add(time.Minute))
	newer := pendingMark("d1", at.Add(24*time.Hour), at.Add(25*time.Hour)) // another day
	for _, batches := range [][][]schemas.Attempt{
		{{newer, older}},
		{{newer}, {older}},
		{{older}, {newer}, {older}},
	} {
		s, err := Open(filepath.Join(t.TempDir(), "attempts.db"))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range batches {
			if err := s.InsertAttempts(t.Context(), b); err != nil {
				t.Fatal(err)
			}
		}
		d, err := s.GetDelivery(t.Context(), "t", "d1")
		if err != nil || d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(*newer.NextAttemptAt) || !d.UpdatedAt.Equal(newer.At) {
			t.Errorf("%d batches: GetDelivery = %+v, %v; want the newer mark's next attempt %s", len(batches), d, err, newer.NextAttemptAt)
		}
		// The older mark's day holds nothing: dropping it keeps the
		// delivery, which waits as it did.
		if err := s.DropBefore(t.Context(), at.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if d, err := s.GetDelivery(t.Context(), "t", "d1"); err != nil || d.State != schemas.StatePending {
			t.Errorf("%d batches: after dropping the older mark's day: %+v, %v; want it pending", len(batches), d, err)
		}
		st, err := s.Stats(t.Context(), projections.StatsQuery{Tenant: "t", WebhookID: "wh-1"})
		if err != nil || st.Deliveries[schemas.StatePending] != 1 || st.Attempts[projections.ClassError] != 0 {
			t.Errorf("%d batches: stats = %+v, %v; want one pending delivery, no attempt", len(batches), st, err)
		}
		s.Close()
	}
}

// TestRebuildCountsMarksAsStatesOnly: rebuilding the derived buckets from
// the records (an older layout) counts a mark in its delivery's state and
// nowhere else.
func TestRebuildCountsMarksAsStatesOnly(t *testing.T) {
	at := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	retry := schemas.Attempt{DeliveryID: "d2", WebhookID: "wh-1", Tenant: "t", N: 1, State: schemas.StateRetrying,
		StatusCode: 503, DurationMS: 40, At: at.Add(time.Second), DeliveryCreatedAt: at}
	path := filepath.Join(t.TempDir(), "attempts.db")
	writeLayout1(t, path, []schemas.Attempt{
		pendingMark("d1", at, at.Add(time.Minute)),
		pendingMark("d2", at.Add(time.Minute), at.Add(time.Hour)), retry,
	})
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := upgrade(db, 1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Stats(t.Context(), projections.StatsQuery{Tenant: "t", WebhookID: "wh-1"})
	if err != nil || st.Deliveries[schemas.StatePending] != 1 || st.Deliveries[schemas.StateRetrying] != 1 ||
		st.Attempts["5xx"] != 1 || st.Attempts[projections.ClassError] != 0 || st.LatencyMS.P50 != 40 {
		t.Errorf("stats after rebuild = %+v, %v; want d1 pending, d2 retrying, one 5xx attempt of 40 ms", st, err)
	}
}
