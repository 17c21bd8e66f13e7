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
	"sync/atomic"
	"time"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/matcher"
	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/pipeline/table"
	"github.com/hookline/hookline/schemas"
	"github.com/segmentio/kafka-go"
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
	c.MaxRunning = cmp.Or(c.MaxRunning, 4)
	c.CheckpointEvery = cmp.Or(c.CheckpointEvery, 1000)
	c.CheckpointInterval = cmp.Or(c.CheckpointInterval, time.Second)
	c.ReadTimeout = cmp.Or(c.ReadTimeout, 10*time.Second)
	c.Attempts = cmp.Or(c.Attempts, 5)
	c.RetryDelay = cmp.Or(c.RetryDelay, time.Second)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, 30*time.Second)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, 10*time.Second)
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
	active   map[string]*running
	failures map[string]int       // replay → failed starts in a row
	retryAt  map[string]time.Time // replay → not restarted before
	kick     chan struct{}

	// owner is this process's membership of the group hookline-replays
	// over hookline.replays: a replay runs only in the process that holds
	// its partition, so exactly one runs it, and another takes it over
	// (from its checkpoint) when that one stops or dies.
	owner *broker.Membership
	// owned is owner, for Owns, which other goroutines call.
	owned atomic.Pointer[broker.Membership]
	// partitions is hookline.replays' partition count (Run reads it).
	partitions atomic.Int32

	// beforeEvent, when set (by tests), is called before each event a
	// replay reads; beforeRun before a replay starts (or resumes) reading.
	beforeEvent func(ctx context.Context, replayID string)
	beforeRun   func(ctx context.Context, replayID string)
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
		active: map[string]*running{}, failures: map[string]int{}, retryAt: map[string]time.Time{},
		kick: make(chan struct{}, 1),
	}
	m.t = table.New(b, schemas.TopicReplays, codec{}, m.applied, m.log)
	return m, nil
}

// OwnerGroup is the consumer group whose partitions of hookline.replays
// say which API process runs which replay.
const OwnerGroup = "hookline-replays"

// running is a replay that runs here.
type running struct {
	cancel context.CancelFunc
	done   chan struct{} // closed once it has stopped (its checkpoint written)
}

// Owns reports whether this process holds, among the API processes, the
// partition of hookline.replays that key falls in: work keyed that way
// (a sweep after a sender's disable of a webhook) is done by one process.
// False until the membership has partitions, and between a rebalance's
// revoke and assign.
func (m *Manager) Owns(key string) bool {
	o := m.owned.Load()
	if o == nil {
		return false
	}
	p := m.partitionOf(key)
	return p >= 0 && o.Holds(p)
}

// partitionOf is the partition of hookline.replays that holds the replay:
// the writer's balancer (kafka.Hash) on its id.
func (m *Manager) partitionOf(id string) int {
	n := int(m.partitions.Load())
	if n <= 0 {
		return -1
	}
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	return (&kafka.Hash{}).Balance(kafka.Message{Key: []byte(id)}, parts...)
}

// release stops the replays of partitions this process no longer holds
// and waits for them to stop (for at most DrainTimeout and a little), so
// that the next owner never runs one beside it.
func (m *Manager) release(partitions []int) {
	var wait []chan struct{}
	m.mu.RLock()
	for id, r := range m.active {
		if slices.Contains(partitions, m.partitionOf(id)) {
			r.cancel()
			wait = append(wait, r.done)
		}
	}
	m.mu.RUnlock()
	deadline := time.After(m.cfg.DrainTimeout + 5*time.Second)
	for _, done := range wait {
		select {
		case <-done:
		case <-deadline:
			m.log.Warn("a replay did not stop in time for its partition's next owner")
			return
		}
	}
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
	// The membership outlives the replays: leaving the group revokes its
	// partitions, which waits for them to stop.
	m.owner = m.b.Membership(OwnerGroup, schemas.TopicReplays, m.release)
	m.owned.Store(m.owner)
	ownCtx, stopOwning := context.WithCancel(context.WithoutCancel(ctx))
	owned := make(chan error, 1)
	go func() { owned <- m.owner.Run(ownCtx) }()
	defer func() { stopOwning(); <-owned }()
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
	r := m.active[id]
	m.mu.RUnlock()
	if r != nil {
		r.cancel()
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

// Replays returns a tenant's replays, newest first.
func (m *Manager) Replays(tenant string) []schemas.Replay {
	var out []schemas.Replay
	m.t.Each(func(_ string, r schemas.Replay) {
		if r.Tenant == tenant {
			out = append(out, r)
		}
	})
	schemas.SortReplays(out)
	return out
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
