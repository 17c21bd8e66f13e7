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
// done. A partition fetched again from an older offset (after a rebalance)
// starts a new tracker; marks for the old one are ignored.
func (o *Offsets) Track(m kafka.Message) (done func()) {
	k := o.key(m.Topic, m.Partition)
	o.mu.Lock()
	t := o.trackers[k]
	if t == nil || !t.Accepts(m.Offset) {
		t = NewTracker()
		o.trackers[k] = t
	}
	o.mu.Unlock()
	t.Add(m.Offset)
	return func() { t.Done(m.Offset) }
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

// Commit commits every partition's done prefix.
func (o *Offsets) Commit(ctx context.Context, log *slog.Logger) {
	o.mu.Lock()
	var msgs []kafka.Message
	var trackers []*Tracker
	for k, t := range o.trackers {
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
