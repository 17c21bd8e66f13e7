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

// Offsets tracks the messages a consumer has fetched, of one topic or
// several, and commits, per partition, only the prefix whose work is done.
// Work may finish in any order.
type Offsets struct {
	reader Committer
	topic  string // names the consumer in logs, and the topic of messages that name none

	// commitMu is held through each commit, so that a partition forgotten
	// after a rebalance is never committed by a commit that started
	// before (it could move the new owner's offset back).
	commitMu sync.Mutex
	mu       sync.Mutex
	trackers map[trackedPartition]*Tracker
}

type trackedPartition struct {
	topic     string
	partition int
}

// NewOffsets tracks the messages r fetches: from topic, or from the topics
// the messages name.
func NewOffsets(r Committer, topic string) *Offsets {
	return &Offsets{reader: r, topic: topic, trackers: map[trackedPartition]*Tracker{}}
}

func (o *Offsets) key(topic string, partition int) trackedPartition {
	if topic == "" {
		topic = o.topic
	}
	return trackedPartition{topic, partition}
}

// Track registers a fetched message and returns the function that marks it
// done, and its partition's tracker (Revoked). A partition fetched again
// from an older offset starts a new tracker; marks for the old one are
// ignored.
func (o *Offsets) Track(m kafka.Message) (done func(), t *Tracker) {
	k := o.key(m.Topic, m.Partition)
	o.mu.Lock()
	t = o.trackers[k]
	if t == nil || !t.Accepts(m.Offset) {
		t = NewTracker()
		o.trackers[k] = t
	}
	o.mu.Unlock()
	off := m.Offset // not m: the closure would copy the whole message to the heap
	t.Add(off)
	return func() { t.Done(off) }, t
}

// Revoke marks the partitions a rebalance takes away: what was fetched of
// them is stale (Tracker.Revoked), and the periodic commits skip them.
func (o *Offsets) Revoke(partitions map[string][]int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for topic, ps := range partitions {
		for _, p := range ps {
			if t := o.trackers[o.key(topic, int(p))]; t != nil {
				t.revoked.Store(true)
			}
		}
	}
}

// Forget drops the trackers of partitions given up, after any commit
// in progress: nothing of them is committed from now on, and marks for
// them are ignored. A partition assigned again starts a new tracker at
// its committed offset.
func (o *Offsets) Forget(partitions map[string][]int32) {
	o.commitMu.Lock()
	defer o.commitMu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	for topic, ps := range partitions {
		for _, p := range ps {
			delete(o.trackers, o.key(topic, int(p)))
		}
	}
}

// WaitForRoom holds the caller while a partition has max messages tracked
// behind its oldest unfinished one. It returns false if ctx ends first.
func (o *Offsets) WaitForRoom(ctx context.Context, topic string, partition, max int) bool {
	k := o.key(topic, partition)
	for {
		o.mu.Lock()
		t := o.trackers[k]
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

// Commit commits every partition's done prefix, but those revoked.
func (o *Offsets) Commit(ctx context.Context, log *slog.Logger) {
	o.commit(ctx, log, func(t *Tracker) bool { return !t.Revoked() })
}

// CommitRevoked commits the done prefix of the partitions being given up,
// before they go (Revoke, then this, then Forget).
func (o *Offsets) CommitRevoked(ctx context.Context, log *slog.Logger) {
	o.commit(ctx, log, (*Tracker).Revoked)
}

func (o *Offsets) commit(ctx context.Context, log *slog.Logger, which func(*Tracker) bool) {
	o.commitMu.Lock()
	defer o.commitMu.Unlock()
	o.mu.Lock()
	var msgs []kafka.Message
	var trackers []*Tracker
	for k, t := range o.trackers {
		if !which(t) {
			continue
		}
		if off, ok := t.ToCommit(); ok {
			msgs = append(msgs, kafka.Message{Topic: k.topic, Partition: k.partition, Offset: off})
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
