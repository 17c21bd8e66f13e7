package sender

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

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

func TestSourceWaitsForRoomBehindASlowJob(t *testing.T) {
	src := newSource(nil, "topic", false)
	var marks []func()
	for off := int64(0); off < 3; off++ {
		marks = append(marks, src.track(kafka.Message{Partition: 0, Offset: off}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if src.waitForRoom(ctx, 0, 3) {
		t.Fatal("room given with 3 jobs pending and a limit of 3")
	}
	if !src.waitForRoom(context.Background(), 1, 3) {
		t.Fatal("another partition was held")
	}
	marks[2]()
	marks[1]()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	// Jobs done behind the oldest unfinished one still count: the commit
	// cannot pass it, so the tracker must keep them.
	if src.waitForRoom(ctx2, 0, 3) {
		t.Fatal("room given while the oldest job is unfinished")
	}
	marks[0]()
	if !src.waitForRoom(context.Background(), 0, 3) {
		t.Fatal("no room once every job finished")
	}
}
