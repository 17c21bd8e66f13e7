package subscriptions

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/table"
	"github.com/hookline/hookline/schemas"
	"github.com/hookline/hookline/sealing"
)

// Registry holds every webhook: the table folded from
// hookline.subscriptions, and an index by tenant.
type Registry struct {
	t   *table.Table[schemas.WebhookEvent]
	log *slog.Logger

	// mu guards byTenant. It is taken inside the table's lock (by the
	// fold's hook), never the other way round.
	mu         sync.RWMutex
	byTenant   map[string][]schemas.Webhook
	onDisabled []func(schemas.Webhook)
}

// New returns a registry; Run fills it. box seals the webhooks' secrets on
// the topic (package sealing): nothing on hookline.subscriptions, nor in
// the broker's files, shows a secret or a credential in plain text. A nil
// box opens nothing: the secrets stay sealed in the registry (the matcher
// and the projector need none), so no key can make a webhook unreadable
// to it, and it writes only webhooks whose secrets are sealed already.
func New(b *broker.Broker, box *sealing.Box, log *slog.Logger) *Registry {
	r := &Registry{log: log, byTenant: map[string][]schemas.Webhook{}}
	r.t = table.New(b, schemas.TopicSubscriptions, codec{box: box}, r.index, log)
	return r
}

// codec: a message of hookline.subscriptions is a WebhookEvent keyed by
// the webhook id, its secrets sealed; its version is the webhook's.
type codec struct{ box *sealing.Box }

func (c codec) Decode(value []byte) (schemas.WebhookEvent, error) {
	var ev schemas.WebhookEvent
	if err := json.Unmarshal(value, &ev); err != nil {
		return ev, err
	}
	if c.box == nil {
		return ev, nil
	}
	id := ev.Webhook.ID
	w, err := ev.Webhook.MapSecretsNamed(func(field, v string) (string, error) { return c.box.OpenFor(v, id+"/"+field) })
	if err != nil {
		return ev, fmt.Errorf("webhook %s: its secrets do not open with --secrets-key: %w", ev.Webhook.ID, err)
	}
	ev.Webhook = w
	return ev, nil
}

func (c codec) Encode(ev schemas.WebhookEvent) ([]byte, error) {
	// Each value is sealed for its webhook and field: moved elsewhere on
	// the topic, it does not open.
	id := ev.Webhook.ID
	seal := func(field, s string) (string, error) {
		if c.box == nil && !sealing.IsSealed(s) {
			return "", errors.New("subscriptions: a process without the secrets key cannot seal a new secret")
		}
		if c.box == nil {
			return s, nil
		}
		return c.box.SealFor(s, id+"/"+field), nil
	}
	w, err := ev.Webhook.MapSecretsNamed(seal)
	if err != nil {
		return nil, err
	}
	ev.Webhook = w
	return json.Marshal(ev)
}
func (codec) Key(ev schemas.WebhookEvent) string    { return ev.Webhook.ID }
func (codec) Version(ev schemas.WebhookEvent) int64 { return ev.Webhook.Version }
func (codec) Deleted(ev schemas.WebhookEvent) bool  { return ev.Op == schemas.OpDeleted }

// Run reads every partition of the topic from its first offset and applies
// each change, until ctx is cancelled.
func (r *Registry) Run(ctx context.Context) error {
	if err := r.t.Run(ctx); err != nil {
		return fmt.Errorf("subscriptions: %w", err)
	}
	return nil
}

// index keeps the tenant index in step with the table, and tells the
// OnDisabled listeners.
func (r *Registry) index(id string, before schemas.WebhookEvent, had bool, after schemas.WebhookEvent, has bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if had && (!has || before.Webhook.Tenant != after.Webhook.Tenant) {
		r.reindex(before.Webhook.Tenant, id, nil)
	}
	if has {
		r.reindex(after.Webhook.Tenant, id, &after.Webhook)
	}
	if had && has && before.Webhook.Enabled && !after.Webhook.Enabled {
		for _, f := range r.onDisabled {
			f(after.Webhook)
		}
	}
}

// OnDisabled calls f each time the fold sees a webhook turn from enabled
// to disabled, whoever wrote the change (this process, another, a
// sender), also while it reads the topic from its start: f sees the
// webhook after the change. f runs under the registry's lock: it must
// neither block nor call the registry.
func (r *Registry) OnDisabled(f func(schemas.Webhook)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onDisabled = append(r.onDisabled, f)
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

// Unreadable reports why the latest change of a webhook could not be read
// (its secrets do not open with this process's --secrets-key, or it does
// not decode): its work waits until it can be.
func (r *Registry) Unreadable(id string) (string, bool) { return r.t.Unreadable(id) }

// UnreadableWebhooks is every webhook whose latest change could not be
// read, and why.
func (r *Registry) UnreadableWebhooks() map[string]string { return r.t.UnreadableKeys() }

// Webhook returns one webhook of a tenant.
func (r *Registry) Webhook(tenant, id string) (schemas.Webhook, bool) {
	ev, ok := r.t.Get(id)
	if !ok || ev.Webhook.Tenant != tenant {
		return schemas.Webhook{}, false
	}
	return ev.Webhook, true
}

// ByID returns a webhook whatever its tenant; for stages, not the API.
func (r *Registry) ByID(id string) (schemas.Webhook, bool) {
	ev, ok := r.t.Get(id)
	return ev.Webhook, ok
}

// Webhooks returns a tenant's webhooks sorted by id. The slice is shared:
// callers must not modify it.
func (r *Registry) Webhooks(tenant string) []schemas.Webhook {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byTenant[tenant]
}

// Len is the number of webhooks.
func (r *Registry) Len() int { return r.t.Len() }

// EachID calls f with the id of every webhook, those whose latest change
// cannot be read too: every webhook that may have jobs.
func (r *Registry) EachID(f func(id string)) {
	r.t.Each(func(id string, _ schemas.WebhookEvent) { f(id) })
	for id := range r.t.UnreadableKeys() {
		if _, ok := r.t.Get(id); !ok {
			f(id)
		}
	}
}

// PublishWebhook writes a change to the topic and returns once this
// registry has read it back, so that a read that follows sees it. It is a
// compare-and-set (table.Publish): the change must carry the version after
// the current one (1 for a new webhook), or nothing changes and the error
// wraps schemas.ErrVersionConflict: read the webhook again and make the
// change again.
func (r *Registry) PublishWebhook(ctx context.Context, ev schemas.WebhookEvent) error {
	if err := r.t.Publish(ctx, ev); err != nil {
		if errors.Is(err, table.ErrConflict) {
			return fmt.Errorf("subscriptions: %w: %w", schemas.ErrVersionConflict, err)
		}
		return fmt.Errorf("subscriptions: %w", err)
	}
	return nil
}

// Sync waits until the registry has applied every message the topic held
// when Sync was called.
func (r *Registry) Sync(ctx context.Context) error {
	if err := r.t.Sync(ctx); err != nil {
		return fmt.Errorf("subscriptions: %w", err)
	}
	return nil
}

// ChangeWebhook makes change to the tenant's webhook as it is now (change
// sets the op, the times and the fields; the registry sets the next
// version) and publishes the result; when another change came first,
// meanwhile, here or in another process, change runs again on the new
// state (table.Update). change returning schemas.ErrUnchanged publishes
// nothing and answers the webhook as it is; another error of change is
// returned as it is. A webhook that is not the tenant's is
// schemas.ErrWebhookNotFound; too many conflicts in a row wrap
// schemas.ErrVersionConflict.
func (r *Registry) ChangeWebhook(ctx context.Context, tenant, id string, change func(*schemas.WebhookEvent) error) (schemas.Webhook, error) {
	return r.change(ctx, tenant, id, change)
}

// change is ChangeWebhook for a tenant, or, with tenant "", for the stages.
func (r *Registry) change(ctx context.Context, tenant, id string, change func(*schemas.WebhookEvent) error) (schemas.Webhook, error) {
	ev, err := r.t.Update(ctx, id, func(ev *schemas.WebhookEvent) error {
		if tenant != "" && ev.Webhook.Tenant != tenant {
			return schemas.ErrWebhookNotFound
		}
		was := ev.Webhook.Enabled
		if err := change(ev); err != nil {
			return err
		}
		if was && !ev.Webhook.Enabled {
			// Deliveries waiting since before now are failed when they
			// come back, even if the webhook is enabled again by then.
			at := cmp.Or(ev.At, time.Now()).UTC()
			ev.Webhook.DisabledAt = &at
		}
		ev.Webhook.Version++
		return nil
	})
	switch {
	case err == nil:
		return ev.Webhook, nil
	case errors.Is(err, table.ErrNotFound):
		return schemas.Webhook{}, schemas.ErrWebhookNotFound
	case errors.Is(err, schemas.ErrUnchanged):
		cur, _ := r.ByID(id)
		return cur, nil
	case errors.Is(err, table.ErrConflict):
		return schemas.Webhook{}, fmt.Errorf("subscriptions: %w: %w", schemas.ErrVersionConflict, err)
	}
	return schemas.Webhook{}, err
}

// DisableWebhook turns a webhook off, as a change on the topic, for a
// reason the stages found (an endpoint that answered 410 Gone, or failed
// for --disable-after), and reports whether this call turned it off. A
// webhook already disabled or deleted is left as it is. A change made
// meanwhile is kept: the webhook is read again and disabled again.
func (r *Registry) DisableWebhook(ctx context.Context, id, reason string) (bool, error) {
	changed := false
	_, err := r.change(ctx, "", id, func(ev *schemas.WebhookEvent) error {
		if !ev.Webhook.Enabled {
			changed = false
			return schemas.ErrUnchanged
		}
		now := time.Now().UTC()
		ev.Op, ev.At = schemas.OpUpdated, now
		ev.Webhook.Enabled = false
		ev.Webhook.UpdatedAt = now
		ev.Webhook.DisabledReason = reason
		changed = true
		return nil
	})
	if errors.Is(err, schemas.ErrWebhookNotFound) {
		return false, nil
	}
	return changed && err == nil, err
}
