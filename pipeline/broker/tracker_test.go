package broker

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestTrackerCommitsOnlyTheDonePrefix(t *testing.T) {
	tr := NewTracker()
	for off := int64(10); off < 15; off++ {
		tr.Add(off)
	}
	if _, ok := tr.ToCommit(); ok {
		t.Fatal("commit offered before anything finished")
	}
	tr.Done(12)
	tr.Done(11)
	if _, ok := tr.ToCommit(); ok {
		t.Fatal("commit offered while offset 10 is in flight")
	}
	tr.Done(10)
	if off, ok := tr.ToCommit(); !ok || off != 12 {
		t.Fatalf("toCommit = %d %v, want 12", off, ok)
	}
	tr.CommittedUpTo(12)
	if _, ok := tr.ToCommit(); ok {
		t.Fatal("the same offset offered twice")
	}
	if tr.Pending() != 2 {
		t.Fatalf("pending = %d, want 2", tr.Pending())
	}
	tr.Done(14)
	tr.Done(13)
	if off, _ := tr.ToCommit(); off != 14 {
		t.Fatalf("toCommit = %d, want 14", off)
	}
}

func TestTrackerReclaimsMemory(t *testing.T) {
	tr := NewTracker()
	for off := int64(0); off < 100000; off++ {
		tr.Add(off)
		tr.Done(off)
	}
	if len(tr.entries) > 4096 {
		t.Fatalf("tracker keeps %d entries for 0 pending", len(tr.entries))
	}
	if off, _ := tr.ToCommit(); off != 99999 {
		t.Fatalf("toCommit = %d", off)
	}
}

func TestTrackerGapsInOffsets(t *testing.T) {
	tr := NewTracker()
	tr.Add(5)
	tr.Add(9) // compaction or transaction markers leave gaps
	tr.Done(9)
	tr.Done(5)
	if off, _ := tr.ToCommit(); off != 9 {
		t.Fatalf("toCommit = %d, want 9", off)
	}
}

func TestOffsetsWaitForRoomBehindASlowJob(t *testing.T) {
	src := NewOffsets(nil, "topic")
	var marks []func()
	for off := int64(0); off < 3; off++ {
		marks = append(marks, src.Track(kafka.Message{Partition: 0, Offset: off}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if src.WaitForRoom(ctx, "", 0, 3) {
		t.Fatal("room given with 3 jobs pending and a limit of 3")
	}
	if !src.WaitForRoom(context.Background(), "", 1, 3) {
		t.Fatal("another partition was held")
	}
	if !src.WaitForRoom(context.Background(), "other", 0, 3) {
		t.Fatal("the same partition of another topic was held")
	}
	marks[2]()
	marks[1]()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	// Jobs done behind the oldest unfinished one still count: the commit
	// cannot pass it, so the tracker must keep them.
	if src.WaitForRoom(ctx2, "", 0, 3) {
		t.Fatal("room given while the oldest job is unfinished")
	}
	marks[0]()
	if !src.WaitForRoom(context.Background(), "", 0, 3) {
		t.Fatal("no room once every job finished")
	}
}
