package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// dropChunk bounds the attempts one retention transaction deletes, so that
// dropping a busy day neither holds the write lock long nor builds one huge
// transaction.
const dropChunk = 10_000

// DropBefore deletes the attempts of every UTC day that ends at or before
// t, found through the days bucket, with their index entries and their
// share of the stats. It works a chunk per transaction: a delivery whose
// attempts span chunks is settled again in each, so every commit is
// consistent.
func (s *Store) DropBefore(ctx context.Context, t time.Time) error {
	cutoff := dayOf(t) // days below it end at or before t
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var n int
		err := s.db.Update(func(tx *bolt.Tx) error {
			var err error
			n, err = dropOldest(tx, cutoff)
			return err
		})
		if err != nil || n < dropChunk {
			return err
		}
	}
}

// dropOldest deletes up to dropChunk attempts of days before cutoff and
// settles their deliveries.
func dropOldest(tx *bolt.Tx, cutoff uint32) (int, error) {
	l := newLedger(tx)
	type entry struct{ k, v []byte }
	var batch []entry
	c := l.days.Cursor()
	for k, v := c.First(); k != nil && len(batch) < dropChunk; k, v = c.Next() {
		if binary.BigEndian.Uint32(k) >= cutoff {
			break
		}
		// Deleting under a cursor makes it skip keys: collect first.
		batch = append(batch, entry{bytes.Clone(k), bytes.Clone(v)})
	}
	touched := map[[3]string]bool{} // tenant, webhook, delivery
	for _, e := range batch {
		d, err := l.drop(e.k, e.v)
		if err != nil {
			return 0, err
		}
		touched[d] = true
	}
	for d := range touched {
		if err := l.settle(d[0], d[1], d[2]); err != nil {
			return 0, err
		}
	}
	return len(batch), l.flush()
}
