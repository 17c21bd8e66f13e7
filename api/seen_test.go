package api

import (
	"fmt"
	"testing"
	"time"
)

// TestSeenIDsRememberForTheWindowWithinTheBound: an id is seen for its
// tenant only, for at least the window, through a generation change; past
// the window it is not; and the count bound drops the oldest ids.
func TestSeenIDsRememberForTheWindowWithinTheBound(t *testing.T) {
	clock := t0
	s := newSeenIDs(100, time.Minute, func() time.Time { return clock })
	s.add("acme", "e1")
	if !s.seen("acme", "e1") || s.seen("globex", "e1") || s.seen("acme", "e2") {
		t.Fatal("an id is seen for its own tenant only")
	}
	clock = clock.Add(50 * time.Second)
	s.add("acme", "e2")
	clock = clock.Add(20 * time.Second) // a new generation starts at the next add
	s.add("acme", "e3")
	if s.seen("acme", "e1") {
		t.Fatal("an id 70 s old was seen with a window of a minute")
	}
	if !s.seen("acme", "e2") || !s.seen("acme", "e3") {
		t.Fatal("ids within the window were forgotten at a generation change")
	}
	for i := range 200 {
		s.add("acme", fmt.Sprint("bulk-", i))
	}
	if s.seen("acme", "bulk-0") || !s.seen("acme", "bulk-199") {
		t.Fatal("past the bound the oldest ids go, the latest stay")
	}
	if n := len(s.cur) + len(s.old); n > 100 {
		t.Fatalf("%d ids kept, over the bound of 100", n)
	}
}
