package embedded

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hookline/hookline/schemas"
)

// Attempts are stored compressed, and a delivery whose first attempt was
// stored plain (by a build before compression) reads back whole.
func TestAttemptsAreStoredCompressedAndPlainOnesStillRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Now().UTC().Truncate(time.Millisecond)
	body := `{"data":"` + strings.Repeat("the printer smells of smoke again. ", 40) + `"}`
	first := schemas.Attempt{DeliveryID: "019a0000-0000-7000-8000-000000000001", WebhookID: "w", Tenant: "t", N: 1,
		EventIDs: []string{"e"}, EventType: "ticket.updated", State: schemas.StateRetrying, At: at, DeliveryCreatedAt: at,
		StatusCode: 500, URL: "http://x", RequestBody: body, ResponseBody: "first " + body}
	second := first
	second.N, second.State, second.StatusCode, second.At = 2, schemas.StateSucceeded, 200, at.Add(time.Second)
	second.ResponseBody = "second " + body

	plain, err := json.Marshal(first)
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error { // as an older build wrote it
		l := newLedger(tx)
		if err := l.attempts.Put(attemptKey(first), plain); err != nil {
			return err
		}
		if err := l.account(first, attemptKey(first)); err != nil {
			return err
		}
		return l.flush()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.InsertAttempts(t.Context(), []schemas.Attempt{second}); err != nil {
		t.Fatal(err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketAttempts).Get(attemptKey(second))
		if len(v) == 0 || v[0] != valueS2 || len(v) >= len(plain)/2 {
			t.Errorf("second attempt stored as %d bytes starting %q, want S2 under half of %d", len(v), v[:min(len(v), 1)], len(plain))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.GetDelivery(t.Context(), "t", first.DeliveryID)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Attempts) != 2 || d.Attempts[0].ResponseBody != first.ResponseBody || d.Attempts[1].ResponseBody != second.ResponseBody ||
		d.Attempts[0].StatusCode != 500 || d.Attempts[1].StatusCode != 200 || d.State != schemas.StateSucceeded {
		t.Fatalf("delivery = %+v", d)
	}
}

func TestUnpackValueRefusesACorruptValue(t *testing.T) {
	if _, err := unpackValue([]byte{valueS2, 0xff, 0xff, 0xff}); err == nil {
		t.Fatal("unpackValue of garbage = nil error")
	}
	if _, err := decode([]byte{valueS2, 0xff}); err == nil {
		t.Fatal("decode of garbage = nil error")
	}
}
