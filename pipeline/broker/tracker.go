package broker

import (
	"sort"
	"sync"
	"sync/atomic"
)

// Tracker follows the messages of one partition that are in flight and
// says how far the partition may be committed: up to the last message of
// the longest prefix whose outcomes are all durably recorded. Jobs finish
// out of order (a slow endpoint next to fast ones); the commit never passes
// one that has not finished.
type Tracker struct {
	mu      sync.Mutex
	entries []trackEntry // fetch order; entries[head:] are live
	head    int
	// committable is the offset of the last message of the done prefix,
	// -1 when there is none yet.
	committable int64
	committed   int64
	// revoked is set when a rebalance takes the partition away: what was
	// fetched of it is stale, no longer the consumer's to work on.
	revoked atomic.Bool
}

// Revoked reports whether a rebalance took the partition away.
func (t *Tracker) Revoked() bool { return t.revoked.Load() }

type trackEntry struct {
	offset int64
	done   bool
}

func NewTracker() *Tracker { return &Tracker{committable: -1, committed: -1} }

// Accepts reports whether offset comes after every offset added so far.
func (t *Tracker) Accepts(offset int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := len(t.entries); n > 0 {
		return offset > t.entries[n-1].offset
	}
	return offset > t.committable
}

// Add records a fetched message; offsets must grow.
func (t *Tracker) Add(offset int64) {
	t.mu.Lock()
	t.entries = append(t.entries, trackEntry{offset: offset})
	t.mu.Unlock()
}

// Done marks a message finished and advances the done prefix.
func (t *Tracker) Done(offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	live := t.entries[t.head:]
	if i := sort.Search(len(live), func(i int) bool { return live[i].offset >= offset }); i < len(live) && live[i].offset == offset {
		live[i].done = true
	}
	for t.head < len(t.entries) && t.entries[t.head].done {
		t.committable = t.entries[t.head].offset
		t.head++
	}
	// Reclaim the finished prefix once it is most of the slice.
	if t.head > 1024 && t.head*2 > len(t.entries) {
		t.entries = append(t.entries[:0], t.entries[t.head:]...)
		t.head = 0
	}
}

// Pending is the number of messages fetched and not yet committable.
func (t *Tracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries) - t.head
}

// ToCommit returns the offset to commit, if it moved since the last call.
func (t *Tracker) ToCommit() (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.committable <= t.committed {
		return 0, false
	}
	return t.committable, true
}

// CommittedUpTo records a successful commit.
func (t *Tracker) CommittedUpTo(offset int64) {
	t.mu.Lock()
	if offset > t.committed {
		t.committed = offset
	}
	t.mu.Unlock()
}
