package table

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
)

// ErrConflict: a change was made from a version that is no longer the
// row's current one. Read the row again and make the change again.
var ErrConflict = errors.New("the row changed meanwhile")

// ErrNotFound: no row has that key.
var ErrNotFound = errors.New("no such row")

// Codec says what a table's messages hold.
type Codec[T any] interface {
	Decode(value []byte) (T, error)
	Encode(v T) ([]byte, error)
	Key(v T) string
	Version(v T) int64
	// Deleted reports whether the message deletes its row (the row's
	// version is then remembered, so that an older change cannot bring it
	// back).
	Deleted(v T) bool
}

// Table is the folded state of one compacted topic.
type Table[T any] struct {
	codec  Codec[T]
	w      *broker.Writer
	follow *broker.Follower
	log    *slog.Logger
	// onApply, if set, is called (under the table's lock, so it must not
	// call back into the table) each time a message changes a row: with
	// the row before (ok false: none) and after (ok false: deleted).
	onApply func(key string, before T, had bool, after T, has bool)

	// writeMu makes this process's changes one at a time.
	writeMu sync.Mutex

	mu      sync.RWMutex
	rows    map[string]T
	deleted map[string]int64 // key → version at deletion
	waiting *write           // this process's change in flight, if any
	// bad is the keys whose latest message could not be read, and why:
	// their row, if there is one, is older than what was written.
	bad map[string]string
}

// write is a change published and waited for: the first change of its key
// and version that the fold applies decides whether it was kept (the same
// bytes) or another writer's came first.
type write struct {
	key     string
	version int64
	sum     [sha256.Size]byte
	decided bool
	kept    bool
}

// New returns the table of topic; Run fills it.
func New[T any](b *broker.Broker, topic string, codec Codec[T], onApply func(key string, before T, had bool, after T, has bool), log *slog.Logger) *Table[T] {
	t := &Table[T]{codec: codec, w: b.Writer(topic, nil), log: log, onApply: onApply,
		rows: map[string]T{}, deleted: map[string]int64{}, bad: map[string]string{}}
	t.follow = b.Follow(topic, t.apply)
	return t
}

// Run reads every partition of the topic from its first offset and folds
// each message, until ctx is cancelled (nil) or a read fails.
func (t *Table[T]) Run(ctx context.Context) error {
	defer t.w.Close()
	return t.follow.Run(ctx)
}

// Sync waits until the table has folded every message the topic held when
// Sync was called: read-your-writes for whoever calls it after a write.
func (t *Table[T]) Sync(ctx context.Context) error { return t.follow.Sync(ctx) }

// Get returns a row.
func (t *Table[T]) Get(key string) (T, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	v, ok := t.rows[key]
	return v, ok
}

// Unreadable reports why the latest message of key could not be read
// (its row, if any, is older than what was written); false when it was.
func (t *Table[T]) Unreadable(key string) (string, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	why, bad := t.bad[key]
	return why, bad
}

// UnreadableKeys is every key whose latest message could not be read, and
// why.
func (t *Table[T]) UnreadableKeys() map[string]string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return maps.Clone(t.bad)
}

// Len is the number of rows.
func (t *Table[T]) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.rows)
}

// Each calls f for every row, under the table's read lock.
func (t *Table[T]) Each(f func(key string, v T)) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for k, v := range t.rows {
		f(k, v)
	}
}

// apply folds one message: a change newer than the row (and than its
// deletion) replaces it; older ones, replays and duplicates are ignored;
// an empty value (a tombstone) removes the row.
func (t *Table[T]) apply(m kafka.Message) {
	key := string(m.Key)
	var v T
	var bad error
	if len(m.Value) > 0 {
		v, bad = t.codec.Decode(m.Value)
		if bad == nil && t.codec.Key(v) != key {
			bad = errors.New("key does not match the row's")
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if bad == nil {
		delete(t.bad, key) // a later message of the key is read
	}
	before, had := t.rows[key]
	switch {
	case bad != nil:
		if _, known := t.bad[key]; !known { // once a key, not once a read of the log
			t.log.Error("cannot read the latest message of a row: what depends on it waits", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "key", key, "err", bad)
		}
		t.bad[key] = bad.Error()
		return
	case len(m.Value) == 0:
		if !had {
			return
		}
		delete(t.rows, key)
	default:
		version := t.codec.Version(v)
		if (had && t.codec.Version(before) >= version) || t.deleted[key] >= version {
			return
		}
		if t.codec.Deleted(v) {
			delete(t.rows, key)
			t.deleted[key] = version
		} else {
			t.rows[key] = v
		}
		if w := t.waiting; w != nil && !w.decided && w.key == key && w.version == version {
			w.decided, w.kept = true, sha256.Sum256(m.Value) == w.sum
		}
	}
	if t.onApply != nil {
		after, has := t.rows[key]
		t.onApply(key, before, had, after, has)
	}
}

// version is the row's current version, or the version of its deletion,
// or 0 for a key never seen.
func (t *Table[T]) version(key string) int64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if v, ok := t.rows[key]; ok {
		return t.codec.Version(v)
	}
	return t.deleted[key]
}

// Publish writes a change and returns once this table has folded it. It is
// a compare-and-set: v must carry the version after the row's current one
// (1 for a new row), and it must be the change that the fold kept for that
// version. Otherwise nothing changes and the error wraps ErrConflict. So a
// change is never lost, also when another process writes the same row at
// the same time. (Two writes of the very same bytes are one change: rows
// carry the time of their change, so two writers' differ.)
func (t *Table[T]) Publish(ctx context.Context, v T) error {
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	return t.publish(ctx, v)
}

// publishTimeout bounds one change, its write and its read-back: a broker
// that is down fails the change instead of holding its caller.
const publishTimeout = 10 * time.Second

func (t *Table[T]) publish(ctx context.Context, v T) error {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	key, version := t.codec.Key(v), t.codec.Version(v)
	if base := t.version(key); version != base+1 {
		return fmt.Errorf("%s version %d after %d: %w", key, version, base, ErrConflict)
	}
	value, err := t.codec.Encode(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	w := &write{key: key, version: version, sum: sha256.Sum256(value)}
	t.mu.Lock()
	t.waiting = w
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.waiting = nil
		t.mu.Unlock()
	}()
	if err := t.w.Write(ctx, []kafka.Message{{Key: []byte(key), Value: value}}); err != nil {
		return fmt.Errorf("publish %s: %w", key, err)
	}
	if err := t.Sync(ctx); err != nil {
		return err
	}
	t.mu.RLock()
	kept := w.decided && w.kept
	t.mu.RUnlock()
	if !kept {
		return fmt.Errorf("%s version %d was written by another change first: %w", key, version, ErrConflict)
	}
	return nil
}

// Put writes rows in one write, without comparing versions and without
// waiting for the fold: for a table whose rows each have one writer at a
// time (the sender that owns an endpoint). Each row must carry a version
// above the one it replaces, or the fold ignores it.
func (t *Table[T]) Put(ctx context.Context, rows []T) error {
	msgs := make([]kafka.Message, 0, len(rows))
	for _, v := range rows {
		value, err := t.codec.Encode(v)
		if err != nil {
			return fmt.Errorf("encode %s: %w", t.codec.Key(v), err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(t.codec.Key(v)), Value: value})
	}
	if len(msgs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	return t.w.Write(ctx, msgs)
}

// Remove writes a tombstone for each key, without comparing versions and
// without waiting for the fold: for rows that end by age (a kept answer
// past its window), where writing the same tombstone twice is harmless. A
// key removed can be written again from version 1.
func (t *Table[T]) Remove(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(keys))
	for i, k := range keys {
		msgs[i] = kafka.Message{Key: []byte(k)}
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	return t.w.Write(ctx, msgs)
}

// settle writes the key's row as the fold has it after a change of this
// process lost and none of its own came after (Update), then returns err.
func (t *Table[T]) settle(ctx context.Context, key string, lost bool, err error) error {
	if !lost {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	// Until what it wrote is the latest version of the key: another
	// change that lands first is written again after it.
	for range 3 {
		if serr := t.Sync(ctx); serr != nil {
			return errors.Join(err, fmt.Errorf("settle %s after a lost change: %w", key, serr))
		}
		version := t.version(key)
		msg := kafka.Message{Key: []byte(key)} // a tombstone when the row is gone
		if v, ok := t.Get(key); ok {
			value, eerr := t.codec.Encode(v)
			if eerr != nil {
				return errors.Join(err, fmt.Errorf("settle %s: %w", key, eerr))
			}
			msg.Value = value
		}
		if werr := t.w.Write(ctx, []kafka.Message{msg}); werr != nil {
			t.log.Warn("could not write a row again after a lost change: a compacted log may fold to the lost change", "key", key, "err", werr)
			return err
		}
		if serr := t.Sync(ctx); serr != nil || t.version(key) == version {
			return err
		}
	}
	return err
}

// maxConflicts bounds how often Update makes a change again.
const maxConflicts = 20

// Update changes a row: it reads the row as it is, lets change modify it
// (change sets the next version; an error from it writes nothing and is
// returned) and publishes the result; when another change came first, it
// reads the row again and makes the change again, up to twenty times,
// after a short random pause that lets a busy writer elsewhere finish.
//
// A change that lost to another at its version is on the topic after the
// winner's: the fold keeps the first of a version, but compaction keeps
// the last record of a key. So when Update ends without a change of its
// own written after the loss (the row is gone, the change no longer
// applies, too many conflicts), it writes the row as the fold has it
// again (a tombstone if it is gone), so that the last record of the key
// is never the lost change: a log compacted to its last records folds to
// what the whole log folds to.
func (t *Table[T]) Update(ctx context.Context, key string, change func(*T) error) (T, error) {
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	lost := false
	for try := 0; ; try++ {
		v, ok := t.Get(key)
		if !ok {
			return v, t.settle(ctx, key, lost, fmt.Errorf("%s: %w", key, ErrNotFound))
		}
		if err := change(&v); err != nil {
			return v, t.settle(ctx, key, lost, err)
		}
		err := t.publish(ctx, v)
		if errors.Is(err, ErrConflict) {
			lost = true
		}
		if err == nil || !errors.Is(err, ErrConflict) || try == maxConflicts {
			return v, t.settle(ctx, key, lost && err != nil, err)
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(time.Duration(rand.Int64N(int64(time.Millisecond) * int64(try+1)))):
		}
	}
}
