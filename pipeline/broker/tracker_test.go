package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
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
		done, _ := src.Track(kafka.Message{Partition: 0, Offset: off})
		marks = append(marks, done)
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

// commits records what an Offsets commits.
type commits struct {
	mu  sync.Mutex
	got map[string][]int64 // topic/partition → offsets committed, in order
}

func (c *commits) CommitMessages(_ context.Context, msgs ...kafka.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		k := fmt.Sprintf("%s/%d", m.Topic, m.Partition)
		c.got[k] = append(c.got[k], m.Offset)
	}
	return nil
}

// TestARevokedPartitionIsCommittedOnceAndNeverAgain: a partition a
// rebalance takes away is stale from the revoke, its done prefix is
// committed once (CommitRevoked) and, once forgotten, never again, even
// when work fetched before finishes after; fetched again from an older
// offset it starts afresh, and its commits never go back behind what was
// committed.
func TestARevokedPartitionIsCommittedOnceAndNeverAgain(t *testing.T) {
	c := &commits{got: map[string][]int64{}}
	o := NewOffsets(c, "t")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var marks []func()
	var trackers []*Tracker
	for off := int64(10); off < 14; off++ {
		done, tr := o.Track(kafka.Message{Topic: "t", Partition: 0, Offset: off})
		marks, trackers = append(marks, done), append(trackers, tr)
	}
	other, _ := o.Track(kafka.Message{Topic: "t", Partition: 1, Offset: 5})
	marks[0]()
	marks[1]()
	other()
	gone := map[string][]int32{"t": {0}}
	o.Revoke(gone)
	if !trackers[3].Revoked() {
		t.Fatal("a revoked partition's tracker does not say so")
	}
	o.Commit(context.Background(), log) // the periodic commit skips it
	o.CommitRevoked(context.Background(), log)
	o.Forget(gone)
	marks[2]() // work fetched before the revoke finishes after it
	marks[3]()
	o.Commit(context.Background(), log)
	o.CommitRevoked(context.Background(), log)
	if got := c.got["t/0"]; !slices.Equal(got, []int64{11}) {
		t.Fatalf("partition 0 committed %v, want 11 once (its done prefix at the revoke)", got)
	}
	if got := c.got["t/1"]; !slices.Equal(got, []int64{5}) {
		t.Fatalf("partition 1 committed %v, want 5", got)
	}
	// Assigned again, read from the committed offset (12): a new tracker.
	done, tr := o.Track(kafka.Message{Topic: "t", Partition: 0, Offset: 12})
	if tr.Revoked() || tr == trackers[0] {
		t.Fatal("the partition fetched again kept its revoked tracker")
	}
	done()
	o.Commit(context.Background(), log)
	if got := c.got["t/0"]; !slices.Equal(got, []int64{11, 12}) {
		t.Fatalf("partition 0 committed %v, want 11 then 12", got)
	}
}
