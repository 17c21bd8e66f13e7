package embedded

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/hookline/hookline/schemas"
)

// ledger writes attempts within one write transaction and keeps the index,
// days and stats buckets in step with them. The aggregates it touches stay
// decoded until flush, since a batch hits the same few many times.
type ledger struct {
	attempts, index, days, stats *bolt.Bucket
	aggs                         map[string]*aggregate
}

func newLedger(tx *bolt.Tx) *ledger {
	l := &ledger{
		attempts: tx.Bucket(bucketAttempts), index: tx.Bucket(bucketIndex),
		days: tx.Bucket(bucketDays), stats: tx.Bucket(bucketStats),
		aggs: map[string]*aggregate{},
	}
	// Keys of new attempts mostly come in order (delivery ids begin with
	// their time, days with the day), so a page bbolt splits is not
	// written again: fill it rather than leave half of it empty.
	for _, b := range []*bolt.Bucket{l.attempts, l.index, l.days} {
		b.FillPercent = fillPercent
	}
	return l
}

// fillPercent is how full bbolt fills a page it splits (bbolt's default is
// 0.5, for keys in random order).
const fillPercent = 1.0

// put stores an attempt, its record JSON value packed (value.go) under key.
// A repeated attempt replaces the stored one, whose contribution is taken
// out first, so that every (delivery, n) counts once, unless the stored one
// is later: of two pending marks the newer stays, in whatever order they
// come (a replay of the topic brings the older again).
func (l *ledger) put(a schemas.Attempt, key, value []byte) error {
	if old := l.attempts.Get(key); old != nil {
		prev, err := decode(old)
		if err != nil {
			return err
		}
		if prev.At.After(a.At) {
			return nil
		}
		if err := l.unaccount(prev, key); err != nil {
			return err
		}
	}
	if err := l.attempts.Put(key, packValue(value)); err != nil {
		return fmt.Errorf("embedded: write attempt: %w", err)
	}
	return l.account(a, key)
}

// account adds a stored attempt or mark to the index, days and stats.
func (l *ledger) account(a schemas.Attempt, key []byte) error {
	rec, found := parseRecord(l.index.Get(indexKey(a.Tenant, a.DeliveryID)))
	if !found || rec.webhook != a.WebhookID {
		rec, found = record{webhook: a.WebhookID, hour: hourOf(a.DeliveryCreatedAt)}, false
	}
	g, err := l.aggregate(a.Tenant, a.WebhookID, rec.hour)
	if err != nil {
		return err
	}
	if a.N > 0 { // a mark is no attempt
		g.addAttempt(a.StatusCode, a.DurationMS, 1)
	}
	if err := l.days.Put(dayKey(dayOf(a.At), key), dayValue(a.StatusCode, a.DurationMS)); err != nil {
		return fmt.Errorf("embedded: write day index: %w", err)
	}
	n := uint32(a.N)
	if found && (n < rec.n || n == rec.n && a.State == rec.state) {
		return nil // not the delivery's highest attempt, or no news
	}
	g.move(rec.state, a.State) // rec.state is "" for a new delivery
	rec.n, rec.state = n, a.State
	if err := l.index.Put(indexKey(a.Tenant, a.DeliveryID), rec.encode()); err != nil {
		return fmt.Errorf("embedded: write index: %w", err)
	}
	return nil
}

// unaccount takes a stored attempt's contribution out of days and stats
// before it is replaced. The delivery's state is left to account.
func (l *ledger) unaccount(a schemas.Attempt, key []byte) error {
	rec, found := parseRecord(l.index.Get(indexKey(a.Tenant, a.DeliveryID)))
	if !found {
		return nil
	}
	g, err := l.aggregate(a.Tenant, rec.webhook, rec.hour)
	if err != nil {
		return err
	}
	if a.N > 0 {
		g.addAttempt(a.StatusCode, a.DurationMS, -1)
	}
	return l.days.Delete(dayKey(dayOf(a.At), key))
}

// drop deletes the attempt a days entry names and takes it out of the
// stats. It returns the attempt's tenant, webhook and delivery, for which
// settle must then run.
func (l *ledger) drop(dayK, dayV []byte) ([3]string, error) {
	key := dayK[4:]
	tenant, webhook, delivery, ok := splitAttemptKey(key)
	if !ok {
		return [3]string{}, fmt.Errorf("embedded: corrupt day index key %q", dayK)
	}
	if rec, found := parseRecord(l.index.Get(indexKey(tenant, delivery))); found && !isMark(key) {
		g, err := l.aggregate(tenant, rec.webhook, rec.hour)
		if err != nil {
			return [3]string{}, err
		}
		status, duration := parseDayValue(dayV)
		g.addAttempt(status, duration, -1)
	}
	if err := l.attempts.Delete(key); err != nil {
		return [3]string{}, err
	}
	return [3]string{tenant, webhook, delivery}, l.days.Delete(dayK)
}

// settle brings a delivery's index entry and state count back in line with
// its remaining attempts, after drop: the highest one left decides, and a
// delivery with none left is gone.
func (l *ledger) settle(tenant, webhook, delivery string) error {
	ik := indexKey(tenant, delivery)
	rec, found := parseRecord(l.index.Get(ik))
	if !found {
		return nil
	}
	g, err := l.aggregate(tenant, rec.webhook, rec.hour)
	if err != nil {
		return err
	}
	k, v := lastAttempt(l.attempts.Cursor(), deliveryPrefix(tenant, webhook, delivery))
	if k == nil {
		g.move(rec.state, "")
		return l.index.Delete(ik)
	}
	n := binary.BigEndian.Uint32(k[len(k)-4:])
	if n == rec.n {
		return nil
	}
	a, err := decode(v)
	if err != nil {
		return err
	}
	g.move(rec.state, a.State)
	rec.n, rec.state = n, a.State
	return l.index.Put(ik, rec.encode())
}

// lastAttempt finds the delivery's attempt with the highest n, or nil. It
// walks forwards over the delivery's few attempts: in a write transaction
// that has emptied every page, bbolt 1.5's Cursor.Last never returns.
func lastAttempt(c *bolt.Cursor, prefix []byte) (k, v []byte) {
	for ck, cv := c.Seek(prefix); ck != nil && len(ck) == len(prefix)+4 && bytes.HasPrefix(ck, prefix); ck, cv = c.Next() {
		k, v = ck, cv
	}
	return k, v
}

// aggregate returns the decoded stats of a webhook's hour, read once per
// transaction.
func (l *ledger) aggregate(tenant, webhook string, hour uint32) (*aggregate, error) {
	k := statsKey(tenant, webhook, hour)
	if g, ok := l.aggs[string(k)]; ok {
		return g, nil
	}
	g := newAggregate()
	if v := l.stats.Get(k); v != nil {
		if err := decodeInto(g, v); err != nil {
			return nil, fmt.Errorf("%w %q", err, k)
		}
	}
	l.aggs[string(k)] = g
	return g, nil
}

// flush writes back the aggregates the transaction touched, deleting the
// ones retention emptied.
func (l *ledger) flush() error {
	for k, g := range l.aggs {
		var err error
		if g.empty() {
			err = l.stats.Delete([]byte(k))
		} else {
			err = l.stats.Put([]byte(k), g.encode())
		}
		if err != nil {
			return fmt.Errorf("embedded: write stats: %w", err)
		}
	}
	return nil
}
