package subscriptions

import (
	"context"
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

	mu       sync.RWMutex
	byID     map[string]schemas.Webhook
	deleted  map[string]int64 // id → version at deletion
	byTenant map[string][]schemas.Webhook
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
	switch {
	case bad != nil:
		r.log.Error("skipping bad subscription message", "partition", m.Partition, "offset", m.Offset, "err", bad)
	case len(m.Value) == 0: // tombstone
		r.remove(string(m.Key), r.byID[string(m.Key)].Version)
	case ev.Op == schemas.OpDeleted:
		r.remove(ev.Webhook.ID, ev.Webhook.Version)
	default:
		r.upsert(ev.Webhook)
	}
}

func (r *Registry) upsert(w schemas.Webhook) {
	if cur, ok := r.byID[w.ID]; ok && cur.Version >= w.Version {
		return
	}
	if v, ok := r.deleted[w.ID]; ok && v >= w.Version {
		return
	}
	if old, ok := r.byID[w.ID]; ok && old.Tenant != w.Tenant {
		r.reindex(old.Tenant, old.ID, nil)
	}
	r.byID[w.ID] = w
	r.reindex(w.Tenant, w.ID, &w)
}

func (r *Registry) remove(id string, version int64) {
	if cur, ok := r.byID[id]; ok {
		if cur.Version > version {
			return
		}
		delete(r.byID, id)
		r.reindex(cur.Tenant, id, nil)
	}
	if r.deleted[id] < version {
		r.deleted[id] = version
	}
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
// registry has read it back, so that a read that follows sees it.
func (r *Registry) PublishWebhook(ctx context.Context, ev schemas.WebhookEvent) error {
	value, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("subscriptions: encode: %w", err)
	}
	if err := r.w.Write(ctx, []kafka.Message{{Key: []byte(ev.Webhook.ID), Value: value}}); err != nil {
		return fmt.Errorf("subscriptions: publish %s: %w", ev.Webhook.ID, err)
	}
	return r.Sync(ctx)
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
// already disabled or deleted is left as it is.
func (r *Registry) DisableWebhook(ctx context.Context, id, reason string) error {
	w, ok := r.ByID(id)
	if !ok || !w.Enabled {
		return nil
	}
	w.Enabled = false
	w.Version++
	w.UpdatedAt = time.Now().UTC()
	w.DisabledReason = reason
	return r.PublishWebhook(ctx, schemas.WebhookEvent{Op: schemas.OpUpdated, At: w.UpdatedAt, Webhook: w})
}
