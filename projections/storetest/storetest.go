package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// Opener opens a store on one test's storage. The suite may call it again
// after closing the store it returned before, and the new store must see
// everything the closed one wrote.
type Opener func(t *testing.T) projections.Store

// NewStorage prepares fresh, empty storage for one test (a temporary file, a
// database of its own) and returns how to open stores on it. It registers its
// own clean-up with t. Tests run in parallel, so storages must not share data.
type NewStorage func(t *testing.T) Opener

// Run runs the whole suite against one implementation, one parallel subtest
// per behaviour, each on storage of its own.
func Run(t *testing.T, newStorage NewStorage) {
	t.Helper()
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := &harness{t: t, open: newStorage(t)}
			h.reopen()
			c.run(h)
		})
	}
}

type testCase struct {
	name string
	run  func(h *harness)
}

// harness holds the store under test and fails the test on any error that
// the case does not expect.
type harness struct {
	t     *testing.T
	open  Opener
	store projections.Store
}

// reopen closes the current store, if any, and opens a new one on the same
// storage.
func (h *harness) reopen() {
	h.t.Helper()
	if h.store != nil {
		if err := h.store.Close(); err != nil {
			h.t.Fatalf("Close: %v", err)
		}
	}
	s := h.open(h.t)
	if s == nil {
		h.t.Fatal("Opener returned a nil store")
	}
	h.store = s
	h.t.Cleanup(func() {
		if h.store == s {
			_ = s.Close()
		}
	})
}

func (h *harness) insert(attempts ...schemas.Attempt) {
	h.t.Helper()
	if err := h.store.InsertAttempts(h.t.Context(), attempts); err != nil {
		h.t.Fatalf("InsertAttempts(%d attempts): %v", len(attempts), err)
	}
}

func (h *harness) get(tenant, id string) projections.Delivery {
	h.t.Helper()
	d, err := h.store.GetDelivery(h.t.Context(), tenant, id)
	if err != nil {
		h.t.Fatalf("GetDelivery(%q, %q): %v", tenant, id, err)
	}
	return d
}

func (h *harness) notFound(tenant, id string) {
	h.t.Helper()
	d, err := h.store.GetDelivery(h.t.Context(), tenant, id)
	if !errors.Is(err, projections.ErrNotFound) {
		h.t.Fatalf("GetDelivery(%q, %q) = %+v, %v; want ErrNotFound", tenant, id, d, err)
	}
}

func (h *harness) list(q projections.DeliveryQuery) projections.DeliveryPage {
	h.t.Helper()
	p, err := h.store.ListDeliveries(h.t.Context(), q)
	if err != nil {
		h.t.Fatalf("ListDeliveries(%+v): %v", q, err)
	}
	if len(p.Deliveries) > q.Limit {
		h.t.Fatalf("ListDeliveries(%+v) answered %d deliveries, more than the limit", q, len(p.Deliveries))
	}
	for _, d := range p.Deliveries {
		if d.Request != nil || len(d.Attempts) != 0 {
			h.t.Errorf("ListDeliveries: delivery %s carries request or attempts; only GetDelivery sets them", d.ID)
		}
	}
	return p
}

// listAll follows cursors to the last page and returns every delivery.
func (h *harness) listAll(q projections.DeliveryQuery) []projections.Delivery {
	h.t.Helper()
	var all []projections.Delivery
	for pages := 0; ; pages++ {
		if pages > 1000 {
			h.t.Fatalf("ListDeliveries(%+v): still a next cursor after 1000 pages", q)
		}
		p := h.list(q)
		all = append(all, p.Deliveries...)
		if p.NextCursor == "" {
			return all
		}
		if p.NextCursor == q.Cursor {
			h.t.Fatalf("ListDeliveries(%+v): the next cursor repeats the cursor", q)
		}
		q.Cursor = p.NextCursor
	}
}

func (h *harness) stats(q projections.StatsQuery) projections.Stats {
	h.t.Helper()
	st, err := h.store.Stats(h.t.Context(), q)
	if err != nil {
		h.t.Fatalf("Stats(%+v): %v", q, err)
	}
	return st
}

func (h *harness) dropBefore(t time.Time) {
	h.t.Helper()
	if err := h.store.DropBefore(h.t.Context(), t); err != nil {
		h.t.Fatalf("DropBefore(%s): %v", t.Format(time.RFC3339), err)
	}
}
