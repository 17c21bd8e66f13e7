package replay

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/hookline/hookline/schemas"
)

// wake asks the scheduler to look for replays to start now.
func (m *Manager) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// dispatch starts the running replays, oldest first, while fewer than
// MaxRunning run here, until ctx ends; then it waits for them to stop.
func (m *Manager) dispatch(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// Start nothing before the whole topic is read: a replay's latest
	// state may follow the one read first.
	for m.Sync(ctx) != nil || m.countPartitions(ctx) != nil {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	for {
		changed := m.owner.Changed()
		for _, r := range m.startable() {
			runCtx, cancel := context.WithCancel(ctx)
			run := &running{cancel: cancel, done: make(chan struct{})}
			m.mu.Lock()
			m.active[r.ID] = run
			m.mu.Unlock()
			wg.Go(func() {
				defer cancel()
				m.runOnce(runCtx, r.ID)
				m.mu.Lock()
				delete(m.active, r.ID)
				m.mu.Unlock()
				close(run.done)
				m.wake()
			})
		}
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		case <-changed:
		case <-tick.C:
		}
	}
}

// countPartitions reads hookline.replays' partition count, which says
// which partition holds a replay.
func (m *Manager) countPartitions(ctx context.Context) error {
	n, err := m.b.Partitions(ctx, schemas.TopicReplays)
	if err != nil {
		return err
	}
	m.partitions.Store(int32(n))
	return nil
}

// startable lists the running replays that do not run here yet and may
// start now (their partition is this process's), oldest first, as many as
// there are free slots.
func (m *Manager) startable() []schemas.Replay {
	now := time.Now()
	var running []schemas.Replay
	m.t.Each(func(_ string, r schemas.Replay) {
		if !r.Finished() {
			running = append(running, r)
		}
	})
	m.mu.RLock()
	defer m.mu.RUnlock()
	free := m.cfg.MaxRunning - len(m.active)
	if free <= 0 {
		return nil
	}
	var out []schemas.Replay
	for _, r := range running {
		if m.active[r.ID] == nil && !now.Before(m.retryAt[r.ID]) && m.owner.Holds(m.partitionOf(r.ID)) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b schemas.Replay) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out[:min(free, len(out))]
}
