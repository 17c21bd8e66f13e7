package replay

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/matcher"
	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/pipeline/table"
	"github.com/hookline/hookline/schemas"
)

// Webhooks is the webhook state replays read (subscriptions.Registry).
type Webhooks interface {
	// Webhook returns the tenant's webhook with that id.
	Webhook(tenant, id string) (schemas.Webhook, bool)
	matcher.Webhooks
}

// Config configures the Manager.
type Config struct {
	// MaxRunning is how many replays run at once in this process; the
	// others wait their turn, oldest first. Default 4.
	MaxRunning int
	// CheckpointEvery is how many events a replay reads between two
	// checkpoints. Default 1000.
	CheckpointEvery int
	// CheckpointInterval is the longest time between two checkpoints of a
	// replay that is reading. Default 1 s.
	CheckpointInterval time.Duration
	// ReadTimeout bounds one read of hookline.events. Default 10 s.
	ReadTimeout time.Duration
	// Attempts is how often a replay is started before an error that stops
	// it (a missing topic, an unreachable broker) fails it. Default 5.
	Attempts int
	// RetryDelay is the wait before the first restart of a replay that
	// stopped on an error; it doubles with each attempt. Default 1 s.
	RetryDelay time.Duration
	// WriteTimeout bounds the write that ends a replay. Default 30 s.
	WriteTimeout time.Duration
	// DrainTimeout bounds, at shutdown or cancel, how long a replay's jobs
	// in flight may take to be written (the stage runner's hard stop); its
	// last checkpoint follows. Default 10 s.
	DrainTimeout time.Duration
	// Now is the clock of created_at and updated_at; default time.Now.
	Now func() time.Time
	// NewID makes replay ids; default a UUIDv7 string.
	NewID func() string
}

// WithDefaults returns the config with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.MaxRunning == 0 {
		c.MaxRunning = 4
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = 1000
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = time.Second
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.Attempts == 0 {
		c.Attempts = 5
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewID == nil {
		c.NewID = schemas.NewID
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.MaxRunning < 1:
		return fmt.Errorf("replay: MaxRunning must be at least 1, got %d", c.MaxRunning)
	case c.CheckpointEvery < 1:
		return fmt.Errorf("replay: CheckpointEvery must be at least 1, got %d", c.CheckpointEvery)
	case c.CheckpointInterval <= 0 || c.ReadTimeout <= 0 || c.RetryDelay <= 0 || c.WriteTimeout <= 0 || c.DrainTimeout <= 0:
		return errors.New("replay: durations must be positive")
	case c.Attempts < 1:
		return fmt.Errorf("replay: Attempts must be at least 1, got %d", c.Attempts)
	}
	return nil
}

// Manager holds every replay, read from hookline.replays, serves the API
// and runs the replays that are running.
type Manager struct {
	cfg   Config
	b     *broker.Broker
	hooks Webhooks
	jobs  *broker.Writer // hookline.deliveries
	log   *slog.Logger
	// t is every replay, folded from hookline.replays; changes are a
	// compare-and-set on the replay's version (table.Update).
	t *table.Table[schemas.Replay]

	// mu guards what runs here. It is taken inside the table's lock (by
	// the fold's hook), so nothing reads the table while holding it.
	mu       sync.RWMutex
	active   map[string]context.CancelFunc
	failures map[string]int       // replay → failed starts in a row
	retryAt  map[string]time.Time // replay → not restarted before
	kick     chan struct{}

	// beforeEvent, when set (by tests), is called before each event a
	// replay reads.
	beforeEvent func(ctx context.Context, replayID string)
}

// New returns a manager; Run reads the topic and runs the replays.
func New(b *broker.Broker, webhooks Webhooks, cfg Config, log *slog.Logger) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	m := &Manager{
		cfg: cfg, b: b, hooks: webhooks, log: log.With("component", "replay"),
		jobs:   b.Writer(schemas.TopicDeliveries, records.Oversize),
		active: map[string]context.CancelFunc{}, failures: map[string]int{}, retryAt: map[string]time.Time{},
		kick: make(chan struct{}, 1),
	}
	m.t = table.New(b, schemas.TopicReplays, codec{}, m.applied, m.log)
	return m, nil
}

// codec: a message of hookline.replays is the whole replay, keyed by its
// id.
type codec struct{}

func (codec) Decode(value []byte) (schemas.Replay, error) {
	var r schemas.Replay
	err := json.Unmarshal(value, &r)
	return r, err
}
func (codec) Encode(r schemas.Replay) ([]byte, error) { return json.Marshal(r) }
func (codec) Key(r schemas.Replay) string             { return r.ID }
func (codec) Version(r schemas.Replay) int64          { return r.Version }
func (codec) Deleted(schemas.Replay) bool             { return false }

// Run reads hookline.replays from its start and keeps reading it, and runs
// every running replay, at most MaxRunning at once, until ctx is cancelled.
// Then the replays stop, each writing its produced jobs' checkpoint within
// DrainTimeout, and only after them does reading stop.
func (m *Manager) Run(ctx context.Context) error {
	defer m.jobs.Close()
	readCtx, stopReading := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReading()
	readErr := make(chan error, 1)
	go func() { readErr <- m.read(readCtx) }()

	runCtx, stopRunning := context.WithCancel(ctx)
	dispatched := make(chan struct{})
	go func() { m.dispatch(runCtx); close(dispatched) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-readErr:
		readErr = nil
		if err == nil {
			err = errors.New("replay: reading hookline.replays stopped")
		}
	}
	stopRunning()
	<-dispatched
	stopReading()
	if readErr != nil {
		if rerr := <-readErr; err == nil {
			err = rerr
		}
	}
	return err
}

// read follows every partition of the topic from its first offset.
func (m *Manager) read(ctx context.Context) error {
	if err := m.t.Run(ctx); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	return nil
}

// applied is the fold's hook: a replay that the topic says is over stops
// at once if it runs here. That is how a cancel reaches it.
func (m *Manager) applied(id string, _ schemas.Replay, _ bool, after schemas.Replay, has bool) {
	if has && after.State != schemas.ReplayCancelled {
		return
	}
	m.mu.RLock()
	cancel := m.active[id]
	m.mu.RUnlock()
	if cancel != nil {
		cancel()
	}
}

// Sync waits until the manager has applied every message the topic held
// when Sync was called.
func (m *Manager) Sync(ctx context.Context) error {
	if err := m.t.Sync(ctx); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	return nil
}

// Replay returns one replay of a tenant.
func (m *Manager) Replay(tenant, id string) (schemas.Replay, bool) {
	r, ok := m.t.Get(id)
	if !ok || r.Tenant != tenant {
		return schemas.Replay{}, false
	}
	return r, true
}

// CreateReplay validates a request, fixes the stretch of every partition
// to read (a time becomes the offset of the first event stored at or after
// it; no `to` is the end of every partition now) and publishes the replay,
// running. It returns a *schemas.FieldError for a request that cannot be
// replayed, and when it returns nil the replay is readable with Replay.
func (m *Manager) CreateReplay(ctx context.Context, tenant string, req schemas.ReplayRequest) (schemas.Replay, error) {
	if err := req.Validate(); err != nil {
		return schemas.Replay{}, err
	}
	for i, id := range req.WebhookIDs {
		if _, ok := m.hooks.Webhook(tenant, id); !ok {
			return schemas.Replay{}, &schemas.FieldError{Field: fmt.Sprintf("webhook_ids[%d]", i), Message: "no such webhook"}
		}
	}
	parts, err := m.resolve(ctx, req)
	if err != nil {
		return schemas.Replay{}, err
	}
	now := m.cfg.Now().UTC()
	r := schemas.Replay{
		ID: m.cfg.NewID(), Tenant: tenant, WebhookIDs: slices.Clone(req.WebhookIDs),
		From: utcPosition(*req.From), DryRun: req.DryRun, State: schemas.ReplayRunning,
		Partitions: parts, CreatedAt: now, UpdatedAt: now, Version: 1,
	}
	if req.To != nil {
		to := utcPosition(*req.To)
		r.To = &to
	}
	if err := m.t.Publish(ctx, r); err != nil {
		return schemas.Replay{}, fmt.Errorf("replay: %w", err)
	}
	m.log.Info("replay created", "replay_id", r.ID, "tenant", tenant, "webhooks", len(r.WebhookIDs), "dry_run", r.DryRun)
	m.wake()
	return r, nil
}

// CancelReplay stops a running replay: schemas.ErrReplayNotFound for
// another tenant's, schemas.ErrReplayFinished for one that is over.
func (m *Manager) CancelReplay(ctx context.Context, tenant, id string) (schemas.Replay, error) {
	r, err := m.update(ctx, id, func(r *schemas.Replay) error {
		switch {
		case r.Tenant != tenant:
			return schemas.ErrReplayNotFound
		case r.Finished():
			return schemas.ErrReplayFinished
		}
		r.State = schemas.ReplayCancelled
		return nil
	})
	if err == nil {
		m.log.Info("replay cancelled", "replay_id", id, "tenant", tenant)
	}
	return r, err
}

// update applies change to the replay's current state and publishes the
// result as the next version, again from the new state if another change
// came first; an error from change publishes nothing.
func (m *Manager) update(ctx context.Context, id string, change func(*schemas.Replay) error) (schemas.Replay, error) {
	r, err := m.t.Update(ctx, id, func(r *schemas.Replay) error {
		r.Partitions = slices.Clone(r.Partitions) // the table's copy is shared
		if err := change(r); err != nil {
			return err
		}
		r.Version++
		r.UpdatedAt = m.cfg.Now().UTC()
		return nil
	})
	if errors.Is(err, table.ErrNotFound) {
		return r, schemas.ErrReplayNotFound
	}
	if err != nil && !errors.Is(err, schemas.ErrReplayNotFound) && !errors.Is(err, schemas.ErrReplayFinished) && !errors.Is(err, errStopped) {
		err = fmt.Errorf("replay: %w", err)
	}
	return r, err
}

// resolve fixes the stretch [start, end) of every partition to read.
func (m *Manager) resolve(ctx context.Context, req schemas.ReplayRequest) ([]schemas.ReplayPartition, error) {
	n, err := m.b.Partitions(ctx, schemas.TopicEvents)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	end, err := m.b.EndOffsets(ctx, schemas.TopicEvents)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	// The first offset still held: older ones were dropped by retention.
	first, err := m.b.OffsetsAt(ctx, schemas.TopicEvents, time.Unix(0, 0))
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	start, err := m.position(ctx, *req.From, "from", n, end)
	if err != nil {
		return nil, err
	}
	stop := map[int]int64{}
	for p := range start {
		stop[p] = end[p]
	}
	if req.To != nil {
		to, err := m.position(ctx, *req.To, "to", n, end)
		if err != nil {
			return nil, err
		}
		for p := range start {
			if off, ok := to[p]; ok {
				stop[p] = off
			}
		}
	}
	parts := make([]schemas.ReplayPartition, 0, len(start))
	for p, s := range start {
		s = max(s, first[p])
		e := max(stop[p], s) // a time to before an offset from: nothing
		parts = append(parts, schemas.ReplayPartition{Partition: p, Start: s, End: e, Next: s})
	}
	slices.SortFunc(parts, func(a, b schemas.ReplayPartition) int { return cmp.Compare(a.Partition, b.Partition) })
	return parts, nil
}

// position turns a validated position into offsets by partition: every
// partition for a time, the named ones for offsets, which must exist and
// not lie past the end.
func (m *Manager) position(ctx context.Context, pos schemas.ReplayPosition, field string, n int, end map[int]int64) (map[int]int64, error) {
	if pos.Time != nil {
		out, err := m.b.OffsetsAt(ctx, schemas.TopicEvents, *pos.Time)
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		return out, nil
	}
	out := pos.PartitionOffsets()
	for p, off := range out {
		f := fmt.Sprintf("%s.offsets.%d", field, p)
		if p >= n {
			return nil, &schemas.FieldError{Field: f, Message: fmt.Sprintf("no such partition: %s has %d (0 to %d)", schemas.TopicEvents, n, n-1)}
		}
		if off > end[p] {
			return nil, &schemas.FieldError{Field: f, Message: fmt.Sprintf("is past the end of partition %d (%d)", p, end[p])}
		}
	}
	return out, nil
}

func utcPosition(p schemas.ReplayPosition) schemas.ReplayPosition {
	if p.Time != nil {
		t := p.Time.UTC()
		p.Time = &t
	}
	return p
}

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

// runOnce runs a replay until it finishes, is cancelled, or stops on an
// error; after Attempts errors in a row the replay fails with the last one.
func (m *Manager) runOnce(ctx context.Context, id string) {
	err := m.run(ctx, id)
	if err == nil || ctx.Err() != nil {
		m.mu.Lock()
		delete(m.failures, id)
		delete(m.retryAt, id)
		m.mu.Unlock()
		return
	}
	m.mu.Lock()
	m.failures[id]++
	n := m.failures[id]
	m.retryAt[id] = time.Now().Add(m.cfg.RetryDelay << min(n-1, 8))
	m.mu.Unlock()
	if n < m.cfg.Attempts {
		m.log.Warn("replay stopped on an error, will resume", "replay_id", id, "attempt", n, "err", err)
		return
	}
	m.log.Error("replay failed", "replay_id", id, "attempts", n, "err", err)
	_, ferr := m.update(ctx, id, func(r *schemas.Replay) error {
		if r.Finished() {
			return schemas.ErrReplayFinished
		}
		r.State, r.Error = schemas.ReplayFailed, err.Error()
		return nil
	})
	if ferr != nil && !errors.Is(ferr, schemas.ErrReplayFinished) {
		m.log.Error("recording a failed replay", "replay_id", id, "err", ferr)
	}
}
