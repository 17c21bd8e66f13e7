package broker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Membership is this process's place in a consumer group over one topic
// whose partitions are tokens of ownership rather than work to read: the
// member that holds partition p owns what is keyed to p (the replays of
// hookline.replays: one runner each across API processes). It reads
// nothing it keeps and commits nothing. When a member leaves or dies, the
// group gives its partitions to the others within the session timeout.
type Membership struct {
	topic string
	cl    *kgo.Client
	err   error
	// release is called, in the rebalance, with partitions taken away: the
	// rebalance waits for it, so that what it owned has stopped before
	// another member gets it.
	release func(partitions []int)

	mu      sync.Mutex
	held    map[int]bool
	changed chan struct{} // closed and replaced at every change
}

// Membership joins group over topic; Run keeps the membership.
func (b *Broker) Membership(group, topic string, release func(partitions []int)) *Membership {
	m := &Membership{topic: topic, release: release, held: map[int]bool{}, changed: make(chan struct{})}
	opts := append(b.readerOpts(),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(10*time.Second),
		kgo.RebalanceTimeout(30*time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, added map[string][]int32) {
			m.set(added[topic], true)
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, gone map[string][]int32) { m.drop(gone[topic]) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, gone map[string][]int32) { m.drop(gone[topic]) }),
	)
	m.cl, m.err = kgo.NewClient(opts...)
	if m.err != nil {
		m.err = fmt.Errorf("broker: membership of %s in %s: %w", topic, group, m.err)
	}
	return m
}

func (m *Membership) drop(partitions []int32) {
	if len(partitions) == 0 {
		return
	}
	m.set(partitions, false)
	if m.release != nil {
		ps := make([]int, len(partitions))
		for i, p := range partitions {
			ps[i] = int(p)
		}
		m.release(ps)
	}
}

func (m *Membership) set(partitions []int32, held bool) {
	if len(partitions) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range partitions {
		if held {
			m.held[int(p)] = true
		} else {
			delete(m.held, int(p))
		}
	}
	close(m.changed)
	m.changed = make(chan struct{})
}

// Holds reports whether this member holds the partition now.
func (m *Membership) Holds(partition int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held[partition]
}

// Changed is closed at the next change of what this member holds.
func (m *Membership) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// Run keeps the membership until ctx ends, then leaves the group (its
// partitions go to the others at once). The records it is given are
// dropped: the partitions are tokens.
func (m *Membership) Run(ctx context.Context) error {
	if m.err != nil {
		return m.err
	}
	defer m.cl.Close() // leaves the group, calling revoke first
	for {
		fetches := m.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if len(fetches.Errors()) > 0 {
			// A broker away: kgo retries on its own; do not spin.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}
