package matcher

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hookline/hookline/schemas"
)

func batchMatch(t *testing.T, w *schemas.Webhook, typ, resourceID, eventID string, at time.Time) Match {
	t.Helper()
	ev := schemas.Event{ID: eventID, Tenant: "t1", Type: typ, Resource: "ticket", Trigger: "update", ResourceID: resourceID, OccurredAt: at}
	m := newMatch(w, &ev, at)
	if m.Err != nil {
		t.Fatal(m.Err)
	}
	return m
}

func TestBatcherModes(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	type ev struct{ typ, res string }
	events := []ev{{"ticket.updated", "A"}, {"ticket.updated", "A"}, {"ticket.updated", "B"}, {"ticket.created", "A"}}
	tests := []struct {
		mode    string
		batches []int // sizes, in close order
	}{
		{schemas.BatchSameEvent, []int{2, 1, 1}}, // updated/A twice, updated/B, created/A
		{schemas.BatchSameType, []int{3, 1}},     // updated ×3, created
		{schemas.BatchAny, []int{4}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			w := hook("w", func(w *schemas.Webhook) {
				w.Batching = &schemas.Batching{Mode: tt.mode, WaitSeconds: 10, MaxItems: 100}
			})
			b := NewBatcher(0)
			for i, e := range events {
				if full := b.Add(batchMatch(t, &w, e.typ, e.res, string(rune('a'+i)), t0), i, t0); len(full) != 0 {
					t.Fatal("a batch closed before max_items or its deadline")
				}
			}
			if due := b.Due(t0.Add(9 * time.Second)); len(due) != 0 {
				t.Fatalf("%d batches closed before wait_seconds", len(due))
			}
			due := b.Due(t0.Add(10 * time.Second))
			if len(due) != len(tt.batches) {
				t.Fatalf("%d batches, want %d", len(due), len(tt.batches))
			}
			total := 0
			for _, bt := range due {
				var arr []schemas.Envelope
				if err := json.Unmarshal(bt.Job.Payload, &arr); err != nil {
					t.Fatalf("batch body is not a JSON array: %s", bt.Job.Payload)
				}
				if len(arr) != len(bt.Tokens) || len(arr) != len(bt.Job.EventIDs) {
					t.Fatalf("batch of %d envelopes, %d tokens, %d event ids", len(arr), len(bt.Tokens), len(bt.Job.EventIDs))
				}
				for i, env := range arr {
					if env.EventID != bt.Job.EventIDs[i] || env.ID == bt.Job.DeliveryID {
						t.Fatalf("envelope %d lost its own ids: %+v", i, env)
					}
				}
				total += len(arr)
			}
			if total != len(events) || b.Open() != 0 {
				t.Fatalf("%d events in batches, %d batches still open", total, b.Open())
			}
		})
	}
}

func TestBatcherMaxItemsClosesAtOnce(t *testing.T) {
	t0 := time.Now()
	w := hook("w", func(w *schemas.Webhook) {
		w.Batching = &schemas.Batching{Mode: schemas.BatchAny, WaitSeconds: 60, MaxItems: 3}
	})
	b := NewBatcher(0)
	var closed []*Batch
	for i := 0; i < 3; i++ {
		closed = b.Add(batchMatch(t, &w, "ticket.updated", "A", string(rune('a'+i)), t0), i, t0)
		if i < 2 && len(closed) != 0 {
			t.Fatalf("closed after %d items", i+1)
		}
	}
	if len(closed) != 1 || len(closed[0].Tokens) != 3 {
		t.Fatalf("batch not closed at max_items: %+v", closed)
	}
	if _, ok := b.Next(); ok {
		t.Fatal("a closed batch still has a deadline")
	}
}

func TestBatcherDeadlineFollowsTheFirstEvent(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	w := hook("w", func(w *schemas.Webhook) {
		w.Batching = &schemas.Batching{Mode: schemas.BatchAny, WaitSeconds: 5, MaxItems: 10}
	})
	b := NewBatcher(0)
	b.Add(batchMatch(t, &w, "ticket.updated", "A", "a", t0), 0, t0)
	b.Add(batchMatch(t, &w, "ticket.updated", "A", "b", t0.Add(4*time.Second)), 1, t0.Add(4*time.Second))
	if next, ok := b.Next(); !ok || !next.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("next deadline = %v, want first event + wait_seconds", next)
	}
	// A batch rebuilt after a restart, from events stored long ago, is due
	// at once.
	rebuild := func() *Batch {
		b := NewBatcher(0)
		b.Add(batchMatch(t, &w, "ticket.updated", "A", "a", t0), 0, t0)
		due := b.Due(t0.Add(time.Hour))
		if len(due) != 1 {
			t.Fatal("an old batch is not due")
		}
		return due[0]
	}
	// The same events give the same batch delivery id.
	if a, b := rebuild(), rebuild(); a.Job.DeliveryID != b.Job.DeliveryID {
		t.Fatalf("rebuilt batch ids differ: %s, %s", a.Job.DeliveryID, b.Job.DeliveryID)
	}
}
