package broker

import (
	"context"
	"fmt"
	"sync"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"
)

// Follower reads every partition of a (compacted) topic from its first
// offset, outside any consumer group, and hands each message to apply, in
// order within a partition. It is how a process rebuilds state kept as
// events: webhooks, replays. Sync waits until everything the topic held
// when it was called has been applied, which gives readers of that state
// read-your-writes.
type Follower struct {
	b     *Broker
	topic string
	apply func(kafka.Message)

	mu       sync.Mutex
	consumed map[int]int64 // partition → next offset to apply
	advanced chan struct{} // closed and replaced whenever consumed moves
}

// Follow returns a follower of topic; Run starts it.
func (b *Broker) Follow(topic string, apply func(kafka.Message)) *Follower {
	return &Follower{b: b, topic: topic, apply: apply, consumed: map[int]int64{}, advanced: make(chan struct{})}
}

// Run follows the topic until ctx is cancelled (then it returns nil) or a
// read fails.
func (f *Follower) Run(ctx context.Context) error {
	n, err := f.b.Partitions(ctx, f.topic)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	for p := 0; p < n; p++ {
		reader, err := f.b.PartitionReader(f.topic, p, kafka.FirstOffset)
		if err != nil {
			return err
		}
		g.Go(func() error {
			defer reader.Close()
			for {
				m, err := reader.FetchMessage(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("read %s/%d: %w", f.topic, p, err)
				}
				f.apply(m)
				f.mu.Lock()
				f.consumed[m.Partition] = m.Offset + 1
				close(f.advanced)
				f.advanced = make(chan struct{})
				f.mu.Unlock()
			}
		})
	}
	return g.Wait()
}

// Sync waits until every message the topic held when Sync was called has
// been applied.
func (f *Follower) Sync(ctx context.Context) error {
	end, err := f.b.EndOffsets(ctx, f.topic)
	if err != nil {
		return err
	}
	for {
		f.mu.Lock()
		caught, advanced := true, f.advanced
		for p, off := range end {
			if f.consumed[p] < off {
				caught = false
			}
		}
		f.mu.Unlock()
		if caught {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", f.topic, ctx.Err())
		case <-advanced:
		}
	}
}
