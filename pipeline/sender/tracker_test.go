package sender

import "testing"

func TestTrackerCommitsOnlyTheDonePrefix(t *testing.T) {
	tr := newTracker()
	for off := int64(10); off < 15; off++ {
		tr.add(off)
	}
	if _, ok := tr.toCommit(); ok {
		t.Fatal("commit offered before anything finished")
	}
	tr.done(12)
	tr.done(11)
	if _, ok := tr.toCommit(); ok {
		t.Fatal("commit offered while offset 10 is in flight")
	}
	tr.done(10)
	if off, ok := tr.toCommit(); !ok || off != 12 {
		t.Fatalf("toCommit = %d %v, want 12", off, ok)
	}
	tr.committedUpTo(12)
	if _, ok := tr.toCommit(); ok {
		t.Fatal("the same offset offered twice")
	}
	if tr.pending() != 2 {
		t.Fatalf("pending = %d, want 2", tr.pending())
	}
	tr.done(14)
	tr.done(13)
	if off, _ := tr.toCommit(); off != 14 {
		t.Fatalf("toCommit = %d, want 14", off)
	}
}

func TestTrackerReclaimsMemory(t *testing.T) {
	tr := newTracker()
	for off := int64(0); off < 100000; off++ {
		tr.add(off)
		tr.done(off)
	}
	if len(tr.entries) > 4096 {
		t.Fatalf("tracker keeps %d entries for 0 pending", len(tr.entries))
	}
	if off, _ := tr.toCommit(); off != 99999 {
		t.Fatalf("toCommit = %d", off)
	}
}

func TestTrackerGapsInOffsets(t *testing.T) {
	tr := newTracker()
	tr.add(5)
	tr.add(9) // compaction or transaction markers leave gaps
	tr.done(9)
	tr.done(5)
	if off, _ := tr.toCommit(); off != 9 {
		t.Fatalf("toCommit = %d, want 9", off)
	}
}
