package embedded

import (
	"bytes"
	"context"
	"fmt"
	"time"

	fastjson "github.com/segmentio/encoding/json"

	bolt "go.etcd.io/bbolt"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// lockTimeout bounds how long Open waits for another process to release
// the file.
const lockTimeout = 5 * time.Second

// Store is a projections.Store in one bbolt file. It is safe for
// concurrent use.
type Store struct {
	db *bolt.DB
}

var _ projections.Store = (*Store)(nil)

// Open opens or creates the store at path. A file of an older layout is
// brought up to date first (see rebuild), which reads every attempt once.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", path, err)
	}
	if err := upgrade(db, rebuildChunk); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("embedded: prepare %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// InsertAttempts writes the batch in one transaction, synced to disk before
// it returns, with the index and stats it changes. A repeated attempt
// (same delivery and n) is kept once.
func (s *Store) InsertAttempts(ctx context.Context, attempts []schemas.Attempt) error {
	records := make([]projections.Record, len(attempts))
	for i, a := range attempts {
		// segmentio/encoding: the same JSON as encoding/json, in about
		// half the time (BenchmarkInsertAttempts).
		v, err := fastjson.Append(nil, normalize(a), fastjson.SortMapKeys)
		if err != nil {
			return fmt.Errorf("embedded: encode attempt %d of %s: %w", a.N, a.DeliveryID, err)
		}
		records[i] = projections.Record{Attempt: a, JSON: v}
	}
	return s.InsertRecords(ctx, records)
}

var _ projections.RecordStore = (*Store)(nil)

// InsertRecords is InsertAttempts for attempts given with their JSON,
// which is stored as it is (decode normalizes its times when it is read).
func (s *Store) InsertRecords(ctx context.Context, records []projections.Record) error {
	if len(records) == 0 {
		return nil
	}
	rows := make([]schemas.Attempt, len(records))
	for i, r := range records {
		if err := checkKeys(r.Attempt); err != nil {
			return err
		}
		rows[i] = normalize(r.Attempt)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		l := newLedger(tx)
		for i, a := range rows {
			if err := l.put(a, attemptKey(a), records[i].JSON); err != nil {
				return err
			}
		}
		return l.flush()
	})
}

// normalize keeps times to the millisecond in UTC, the precision every
// store answers with.
func normalize(a schemas.Attempt) schemas.Attempt {
	a.At = a.At.UTC().Truncate(time.Millisecond)
	a.DeliveryCreatedAt = a.DeliveryCreatedAt.UTC().Truncate(time.Millisecond)
	if a.NextAttemptAt != nil {
		next := a.NextAttemptAt.UTC().Truncate(time.Millisecond)
		a.NextAttemptAt = &next
	}
	return a
}

// GetDelivery reads every attempt of one delivery.
func (s *Store) GetDelivery(ctx context.Context, tenant, id string) (projections.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return projections.Delivery{}, err
	}
	if !keyable(tenant, id) {
		return projections.Delivery{}, projections.ErrNotFound
	}
	var attempts []schemas.Attempt
	err := s.db.View(func(tx *bolt.Tx) error {
		rec, found := parseRecord(tx.Bucket(bucketIndex).Get(indexKey(tenant, id)))
		if !found {
			return nil
		}
		prefix := deliveryPrefix(tenant, rec.webhook, id)
		c := tx.Bucket(bucketAttempts).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			a, err := decode(v)
			if err != nil {
				return err
			}
			attempts = append(attempts, a)
		}
		return nil
	})
	if err != nil {
		return projections.Delivery{}, err
	}
	d, ok := projections.Derive(attempts, true)
	if !ok {
		return projections.Delivery{}, projections.ErrNotFound
	}
	return d, nil
}

func decode(v []byte) (schemas.Attempt, error) {
	var a schemas.Attempt
	json, err := unpackValue(v)
	if err != nil {
		return a, err
	}
	if err := fastjson.Unmarshal(json, &a); err != nil {
		return a, fmt.Errorf("embedded: decode attempt: %w", err)
	}
	return normalize(a), nil
}

// Ping fails once the store is closed.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(*bolt.Tx) error { return nil })
}

// Close releases the file. Calling it again is harmless.
func (s *Store) Close() error {
	return s.db.Close()
}
