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
	for m.Sync(ctx) != nil {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	for {
		for _, r := range m.startable() {
			runCtx, cancel := context.WithCancel(ctx)
			m.mu.Lock()
			m.active[r.ID] = cancel
			m.mu.Unlock()
			wg.Go(func() {
				defer cancel()
				m.runOnce(runCtx, r.ID)
				m.mu.Lock()
				delete(m.active, r.ID)
				m.mu.Unlock()
				m.wake()
			})
		}
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		case <-tick.C:
		}
	}
}

// startable lists the running replays that do not run here yet and may
// start now, oldest first, as many as there are free slots.
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
		if m.active[r.ID] == nil && !now.Before(m.retryAt[r.ID]) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b schemas.Replay) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out[:min(free, len(out))]
}
