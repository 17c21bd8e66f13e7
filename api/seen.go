package api

import (
	"hash/maphash"
	"sync"
	"time"
)

// seenIDs remembers the (tenant, event id) pairs published, each for at
// least its window, in at most max entries. Two generations of maps keyed
// by a 128-bit hash hold them: maps without pointers, which the garbage
// collector never scans (an LRU of a million string keys made every
// collection walk three million objects). The older generation is dropped
// once the newer one is a window old, or holds half of max.
type seenIDs struct {
	ttl  time.Duration
	max  int
	now  func() time.Time
	seed [2]maphash.Seed

	mu       sync.Mutex
	cur, old map[[2]uint64]int64 // hash → when first published, unix nanoseconds
	curSince time.Time
}

func newSeenIDs(max int, ttl time.Duration, now func() time.Time) *seenIDs {
	return &seenIDs{ttl: ttl, max: max, now: now, seed: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		cur: map[[2]uint64]int64{}, old: map[[2]uint64]int64{}, curSince: now()}
}

func (s *seenIDs) key(tenant, id string) [2]uint64 {
	var k [2]uint64
	for i, seed := range s.seed {
		var h maphash.Hash
		h.SetSeed(seed)
		h.WriteString(tenant)
		h.WriteByte(0)
		h.WriteString(id)
		k[i] = h.Sum64()
	}
	return k
}

// seen reports whether the tenant published id within the window.
func (s *seenIDs) seen(tenant, id string) bool {
	k := s.key(tenant, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.cur[k]
	if !ok {
		at, ok = s.old[k]
	}
	return ok && s.now().UnixNano()-at < int64(s.ttl)
}

// add remembers that the tenant published id now.
func (s *seenIDs) add(tenant, id string) {
	k := s.key(tenant, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if now.Sub(s.curSince) >= s.ttl || len(s.cur) >= s.max/2 {
		s.old, s.cur, s.curSince = s.cur, make(map[[2]uint64]int64, len(s.cur)), now
	}
	s.cur[k] = now.UnixNano()
}
