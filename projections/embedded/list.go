package embedded

import (
	"bytes"
	"context"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// Page sizes (projections.DeliveryQuery.Limit).
const (
	defaultLimit = 50
	maxLimit     = 500
)

func pageSize(limit int) int {
	switch {
	case limit < 1:
		return defaultLimit
	case limit > maxLimit:
		return maxLimit
	}
	return limit
}

// ListDeliveries walks the webhook's key range backwards from just below
// the cursor, one delivery at a time. It decodes at most two records of a
// delivery (the highest, for its state, and the lowest, for its creation
// time and, when it is a pending mark, its next attempt) and stops at the
// first match past the page, which proves there is a next page.
func (s *Store) ListDeliveries(ctx context.Context, q projections.DeliveryQuery) (projections.DeliveryPage, error) {
	limit := pageSize(q.Limit)
	var page projections.DeliveryPage
	f, ok := newFilter(q)
	if !ok || !keyable(q.Tenant, q.WebhookID) {
		return page, nil
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		w := walker{c: tx.Bucket(bucketAttempts).Cursor(), prefix: webhookPrefix(q.Tenant, q.WebhookID)}
		w.start(q.Cursor)
		for visited := 0; w.more(); visited++ {
			if visited%256 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			d, ok, err := w.next(f)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if len(page.Deliveries) == limit {
				page.NextCursor = page.Deliveries[limit-1].ID
				return nil
			}
			page.Deliveries = append(page.Deliveries, d)
		}
		return nil
	})
	if err != nil {
		return projections.DeliveryPage{}, err
	}
	return page, nil
}

// walker moves backwards over the attempt keys of one webhook. Its keys and
// values are valid only within the transaction.
type walker struct {
	c      *bolt.Cursor
	prefix []byte
	k, v   []byte
}

// start places the walker on the last key of the first delivery below
// cursor, or of the newest delivery when cursor is empty.
func (w *walker) start(cursor string) {
	// The prefix ends in sep; the same bytes ending in sep+1 sort just
	// after every key of the webhook.
	bound := append(bytes.Clone(w.prefix[:len(w.prefix)-1]), sep+1)
	switch i := strings.IndexByte(cursor, sep); {
	case i >= 0:
		// Ids hold no NUL, so every id below "x\x00…" is at most "x":
		// start just after the keys of delivery x.
		bound = append(append(bytes.Clone(w.prefix), cursor[:i]...), sep+1)
	case cursor != "":
		bound = append(append(bytes.Clone(w.prefix), cursor...), sep) // the cursor's first key
	}
	if k, _ := w.c.Seek(bound); k == nil {
		w.k, w.v = w.c.Last()
	} else {
		w.k, w.v = w.c.Prev()
	}
}

func (w *walker) more() bool { return w.k != nil && bytes.HasPrefix(w.k, w.prefix) }

// filter is a DeliveryQuery's conditions, parsed once per page.
type filter struct {
	state, eventType   string
	status             bool
	statusLo, statusHi int // the status range when status is set
	since, until       time.Time
}

// newFilter reports false for a query no delivery can match.
func newFilter(q projections.DeliveryQuery) (filter, bool) {
	f := filter{state: q.State, eventType: q.EventType, since: q.Since, until: q.Until}
	if q.Status != "" {
		var ok bool
		if f.statusLo, f.statusHi, ok = projections.StatusRange(q.Status); !ok {
			return f, false
		}
		f.status = true
	}
	return f, true
}

// keepsLast checks the conditions on the delivery's highest record. The
// status is its last attempt's: a pending mark alone, no attempt, has none.
func (f filter) keepsLast(a schemas.Attempt) bool {
	return (f.state == "" || a.State == f.state) &&
		(f.eventType == "" || a.EventType == f.eventType) &&
		(!f.status || a.N > 0 && a.StatusCode >= f.statusLo && a.StatusCode < f.statusHi)
}

// next reads the delivery the walker is on, moves past all its records and
// reports whether the delivery passes the filter. Its lowest record is its
// pending mark when it has one (n 0 sorts first), which Derive needs with
// the highest: the two are all it decodes.
func (w *walker) next(f filter) (projections.Delivery, bool, error) {
	delivery := deliveryOf(w.k)
	last, err := decode(w.v) // keys of a delivery end in n: the first seen is the highest
	if err != nil {
		return projections.Delivery{}, false, err
	}
	count, firstKey, firstValue := 0, w.k, w.v
	for w.k != nil && len(w.k) == len(delivery)+4 && bytes.HasPrefix(w.k, delivery) {
		count, firstKey, firstValue = count+1, w.k, w.v
		w.k, w.v = w.c.Prev()
	}
	if !f.keepsLast(last) {
		return projections.Delivery{}, false, nil
	}
	var mark *schemas.Attempt
	if count > 1 {
		first, err := decode(firstValue)
		if err != nil {
			return projections.Delivery{}, false, err
		}
		last.DeliveryCreatedAt = first.DeliveryCreatedAt
		if isMark(firstKey) {
			mark = &first
		}
	}
	d, _ := projections.Derive([]schemas.Attempt{last}, false)
	d.AttemptCount = count
	if isMark(firstKey) {
		d.AttemptCount--
	}
	d.UpdatedAt, d.NextAttemptAt = projections.Latest(last, mark, d.State)
	return d, inRange(d.CreatedAt, f.since, f.until), nil
}

// inRange applies Since <= t < Until, a zero bound being open.
func inRange(t, since, until time.Time) bool {
	return (since.IsZero() || !t.Before(since)) && (until.IsZero() || t.Before(until))
}
