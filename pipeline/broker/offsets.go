package broker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// Committer commits offsets: the part of a reader Offsets uses.
type Committer interface {
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Offsets tracks the messages of one topic a consumer has fetched and
// commits, per partition, only the prefix whose work is done. Work may
// finish in any order.
type Offsets struct {
	reader Committer
	topic  string

	mu       sync.Mutex
	trackers map[int]*Tracker
}

// NewOffsets tracks the messages r fetches from topic.
func NewOffsets(r Committer, topic string) *Offsets {
	return &Offsets{reader: r, topic: topic, trackers: map[int]*Tracker{}}
}

// Track registers a fetched message and returns the function that marks it
// done. A partition fetched again from an older offset (after a rebalance)
// starts a new tracker; marks for the old one are ignored.
func (o *Offsets) Track(m kafka.Message) (done func()) {
	o.mu.Lock()
	t := o.trackers[m.Partition]
	if t == nil || !t.Accepts(m.Offset) {
		t = NewTracker()
		o.trackers[m.Partition] = t
	}
	o.mu.Unlock()
	t.Add(m.Offset)
	return func() { t.Done(m.Offset) }
}

// WaitForRoom holds the caller while a partition has max messages tracked
// behind its oldest unfinished one. It returns false if ctx ends first.
func (o *Offsets) WaitForRoom(ctx context.Context, partition, max int) bool {
	for {
		o.mu.Lock()
		t := o.trackers[partition]
		o.mu.Unlock()
		if t == nil || t.Pending() < max {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Commit commits every partition's done prefix.
func (o *Offsets) Commit(ctx context.Context, log *slog.Logger) {
	o.mu.Lock()
	var msgs []kafka.Message
	var trackers []*Tracker
	for p, t := range o.trackers {
		if off, ok := t.ToCommit(); ok {
			msgs = append(msgs, kafka.Message{Topic: o.topic, Partition: p, Offset: off})
			trackers = append(trackers, t)
		}
	}
	o.mu.Unlock()
	if len(msgs) == 0 {
		return
	}
	if err := o.reader.CommitMessages(ctx, msgs...); err != nil {
		log.Warn("commit failed; the messages will be read again", "topic", o.topic, "err", err)
		return
	}
	for i, t := range trackers {
		t.CommittedUpTo(msgs[i].Offset)
	}
}
