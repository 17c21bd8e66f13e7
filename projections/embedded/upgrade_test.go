package embedded

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// writeLayout1 writes attempts the way the first layout did: attempts and
// an index holding only the webhook id, no meta.
func writeLayout1(t *testing.T, path string, attempts []schemas.Attempt) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Sorted keys append to bbolt's pages instead of shifting them.
	sort.Slice(attempts, func(i, j int) bool { return bytes.Compare(attemptKey(attempts[i]), attemptKey(attempts[j])) < 0 })
	err = db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucket(bucketAttempts)
		idx, _ := tx.CreateBucket(bucketIndex)
		for _, a := range attempts {
			v, _ := json.Marshal(normalize(a))
			if err := b.Put(attemptKey(a), v); err != nil {
				return err
			}
			if err := idx.Put(indexKey(a.Tenant, a.DeliveryID), []byte(a.WebhookID)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenRebuildsAnOlderLayout(t *testing.T) {
	created := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	attempt := func(id string, n int, state string, status int) schemas.Attempt {
		return schemas.Attempt{DeliveryID: id, WebhookID: "wh-1", Tenant: "t", N: n, State: state, StatusCode: status,
			DurationMS: 10, At: created.Add(time.Duration(n) * time.Minute), DeliveryCreatedAt: created}
	}
	var attempts []schemas.Attempt
	for i := range 30 {
		attempts = append(attempts, attempt(fmt.Sprint("d", i), 1, schemas.StateSucceeded, 200))
	}
	attempts = append(attempts, attempt("z1", 1, schemas.StateRetrying, 503), attempt("z1", 2, schemas.StateFailed, 500))
	for _, rebuild := range []struct {
		name  string
		chunk int
	}{{"in one transaction", rebuildChunk}, {"in chunks", 7}} {
		t.Run(rebuild.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "attempts.db")
			writeLayout1(t, path, attempts)
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := upgrade(db, rebuild.chunk); err != nil {
				t.Fatal(err)
			}
			db.Close()
			checkRebuilt(t, path, created)
		})
	}
}

// checkRebuilt opens the upgraded file with Open, which must not need to
// rebuild again, and checks what the first layout could not answer.
func checkRebuilt(t *testing.T, path string, created time.Time) {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Stats(t.Context(), projections.StatsQuery{Tenant: "t", WebhookID: "wh-1"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Deliveries["succeeded"] != 30 || st.Deliveries["failed"] != 1 || st.Attempts["2xx"] != 30 || st.Attempts["5xx"] != 2 {
		t.Errorf("stats after rebuild = %+v", st)
	}
	d, err := s.GetDelivery(t.Context(), "t", "z1")
	if err != nil || d.AttemptCount != 2 || d.State != schemas.StateFailed {
		t.Errorf("GetDelivery after rebuild = %+v, %v", d, err)
	}
	if err := s.DropBefore(t.Context(), created.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Stats(t.Context(), projections.StatsQuery{Tenant: "t", WebhookID: "wh-1"}); st.Deliveries["succeeded"] != 0 || st.Attempts["5xx"] != 0 {
		t.Errorf("stats after dropping every rebuilt day = %+v", st)
	}
	if _, err := s.GetDelivery(t.Context(), "t", "z1"); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("GetDelivery after dropping its day = %v; want ErrNotFound", err)
	}
}
