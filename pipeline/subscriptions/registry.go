package subscriptions

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
)

// Registry holds every webhook, read from hookline.subscriptions.
type Registry struct {
	b   *broker.Broker
	w   *broker.Writer
	log *slog.Logger

	follow *broker.Follower

	// writeMu makes this process's changes one at a time: each is made
	// from the version it replaces (compare-and-set), so that two never
	// overwrite one another.
	writeMu sync.Mutex

	mu       sync.RWMutex
	waiting  *write // this process's change in flight, if any
	byID     map[string]schemas.Webhook
	deleted  map[string]int64 // id → version at deletion
	byTenant map[string][]schemas.Webhook
}

// write is a change this process published and waits to see folded: the
// first change of its webhook and version that the fold applies decides
// whether it was kept (the same bytes) or another process's came first.
type write struct {
	id      string
	version int64
	sum     [sha256.Size]byte
	decided bool
	kept    bool
}

// New returns a registry; Run fills it.
func New(b *broker.Broker, log *slog.Logger) *Registry {
	r := &Registry{
		b: b, w: b.Writer(schemas.TopicSubscriptions, nil), log: log,
		byID: map[string]schemas.Webhook{}, deleted: map[string]int64{},
		byTenant: map[string][]schemas.Webhook{},
	}
	r.follow = b.Follow(schemas.TopicSubscriptions, r.apply)
	return r
}

// Run reads every partition of the topic from its first offset and applies
// each change, until ctx is cancelled.
func (r *Registry) Run(ctx context.Context) error {
	err := r.follow.Run(ctx)
	r.w.Close()
	if err != nil {
		return fmt.Errorf("subscriptions: %w", err)
	}
	return nil
}

// apply folds one message into the state.
func (r *Registry) apply(m kafka.Message) {
	var ev schemas.WebhookEvent
	var bad error
	if len(m.Value) > 0 {
		bad = json.Unmarshal(m.Value, &ev)
		if bad == nil && ev.Webhook.ID != string(m.Key) {
			bad = errors.New("key does not match webhook id")
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	applied := false
	switch {
	case bad != nil:
		r.log.Error("skipping bad subscription message", "partition", m.Partition, "offset", m.Offset, "err", bad)
	case len(m.Value) == 0: // tombstone
		r.remove(string(m.Key), r.byID[string(m.Key)].Version)
	case ev.Op == schemas.OpDeleted:
		applied = r.remove(ev.Webhook.ID, ev.Webhook.Version)
	default:
		applied = r.upsert(ev.Webhook)
	}
	if w := r.waiting; applied && w != nil && !w.decided && w.id == ev.Webhook.ID && w.version == ev.Webhook.Version {
		w.decided, w.kept = true, sha256.Sum256(m.Value) == w.sum
	}
}

func (r *Registry) upsert(w schemas.Webhook) bool {
	if cur, ok := r.byID[w.ID]; ok && cur.Version >= w.Version {
		return false
	}
	if v, ok := r.deleted[w.ID]; ok && v >= w.Version {
		return false
	}
	if old, ok := r.byID[w.ID]; ok && old.Tenant != w.Tenant {
		r.reindex(old.Tenant, old.ID, nil)
	}
	r.byID[w.ID] = w
	r.reindex(w.Tenant, w.ID, &w)
	return true
}

func (r *Registry) remove(id string, version int64) bool {
	applied := false
	if cur, ok := r.byID[id]; ok {
		if cur.Version > version {
			return false
		}
		delete(r.byID, id)
		r.reindex(cur.Tenant, id, nil)
		applied = true
	}
	if r.deleted[id] < version {
		r.deleted[id] = version
		applied = true
	}
	return applied
}

// reindex replaces (or, with w nil, removes) one webhook in its tenant's
// slice. Slices are copied, never changed in place, so readers may keep
// them without a lock.
func (r *Registry) reindex(tenant, id string, w *schemas.Webhook) {
	old := r.byTenant[tenant]
	next := make([]schemas.Webhook, 0, len(old)+1)
	for _, o := range old {
		if o.ID != id {
			next = append(next, o)
		}
	}
	if w != nil {
		i, _ := slices.BinarySearchFunc(next, w.ID, func(a schemas.Webhook, id string) int { return strings.Compare(a.ID, id) })
		next = slices.Insert(next, i, *w)
	}
	if len(next) == 0 {
		delete(r.byTenant, tenant)
		return
	}
	r.byTenant[tenant] = next
}

// Webhook returns one webhook of a tenant.
func (r *Registry) Webhook(tenant, id string) (schemas.Webhook, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	w, ok := r.byID[id]
	if !ok || w.Tenant != tenant {
		return schemas.Webhook{}, false
	}
	return w, true
}

// ByID returns a webhook whatever its tenant; for stages, not the API.
func (r *Registry) ByID(id string) (schemas.Webhook, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	w, ok := r.byID[id]
	return w, ok
}

// Webhooks returns a tenant's webhooks sorted by id. The slice is shared:
// callers must not modify it.
func (r *Registry) Webhooks(tenant string) []schemas.Webhook {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byTenant[tenant]
}

// Len is the number of webhooks.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.byID)
}

// PublishWebhook writes a change to the topic and returns once this
// registry has read it back, so that a read that follows sees it. It is a
// compare-and-set: the change must carry the version after the current one
// (1 for a new webhook), and it must be the change that the topic kept for
// that version. Otherwise nothing is changed and the error wraps
// schemas.ErrVersionConflict: read the webhook again and make the change
// again. So a change is never lost, also when another process writes the
// same webhook at the same time.
func (r *Registry) PublishWebhook(ctx context.Context, ev schemas.WebhookEvent) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	return r.publish(ctx, ev)
}

func (r *Registry) publish(ctx context.Context, ev schemas.WebhookEvent) error {
	id, version := ev.Webhook.ID, ev.Webhook.Version
	if base := r.version(id); version != base+1 {
		return fmt.Errorf("subscriptions: %s version %d after %d: %w", id, version, base, schemas.ErrVersionConflict)
	}
	value, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("subscriptions: encode: %w", err)
	}
	w := &write{id: id, version: version, sum: sha256.Sum256(value)}
	r.mu.Lock()
	r.waiting = w
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.waiting = nil
		r.mu.Unlock()
	}()
	if err := r.w.Write(ctx, []kafka.Message{{Key: []byte(id), Value: value}}); err != nil {
		return fmt.Errorf("subscriptions: publish %s: %w", id, err)
	}
	if err := r.Sync(ctx); err != nil {
		return err
	}
	// Another process may have written the same version first: the fold
	// kept the first, and ignored this one.
	r.mu.RLock()
	kept := w.decided && w.kept
	r.mu.RUnlock()
	if !kept {
		return fmt.Errorf("subscriptions: %s version %d was written by another change first: %w", id, version, schemas.ErrVersionConflict)
	}
	return nil
}

// version is the webhook's current version, or the version of its
// deletion, or 0 for an id never seen.
func (r *Registry) version(id string) int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if w, ok := r.byID[id]; ok {
		return w.Version
	}
	return r.deleted[id]
}

// Sync waits until the registry has applied every message the topic held
// when Sync was called.
func (r *Registry) Sync(ctx context.Context) error {
	if err := r.follow.Sync(ctx); err != nil {
		return fmt.Errorf("subscriptions: %w", err)
	}
	return nil
}

// DisableWebhook turns a webhook off, as a change on the topic, for a
// reason the stages found (an endpoint that answered 410 Gone). A webhook
// already disabled or deleted is left as it is. A change made meanwhile is
// kept: the webhook is read again and disabled again.
func (r *Registry) DisableWebhook(ctx context.Context, id, reason string) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	for try := 0; ; try++ {
		w, ok := r.ByID(id)
		if !ok || !w.Enabled {
			return nil
		}
		w.Enabled = false
		w.Version++
		w.UpdatedAt = time.Now().UTC()
		w.DisabledReason = reason
		err := r.publish(ctx, schemas.WebhookEvent{Op: schemas.OpUpdated, At: w.UpdatedAt, Webhook: w})
		if !errors.Is(err, schemas.ErrVersionConflict) || try == maxConflicts {
			return err
		}
	}
}

// maxConflicts bounds how often a change is made again after another
// change came first.
const maxConflicts = 10
