package subscriptions

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
)

func startBroker(t *testing.T, dir string) *broker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{DataDir: dir, Partitions: 3}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func runRegistry(t *testing.T, b *broker.Broker) (*Registry, func()) {
	t.Helper()
	r := New(b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	syncCtx, syncCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer syncCancel()
	if err := r.Sync(syncCtx); err != nil {
		t.Fatal(err)
	}
	return r, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("registry run: %v", err)
		}
	}
}

func publish(t *testing.T, r *Registry, op schemas.WebhookOp, w schemas.Webhook) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.PublishWebhook(ctx, schemas.WebhookEvent{Op: op, At: time.Now(), Webhook: w}); err != nil {
		t.Fatal(err)
	}
}

func TestRegistryRebuildsStateFromTheTopic(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir)
	r, stop := runRegistry(t, b)

	a := schemas.Webhook{ID: "a", Tenant: "t1", Name: "a", Version: 1, Enabled: true}
	publish(t, r, schemas.OpCreated, a)
	publish(t, r, schemas.OpCreated, schemas.Webhook{ID: "b", Tenant: "t1", Name: "b", Version: 1})
	publish(t, r, schemas.OpCreated, schemas.Webhook{ID: "c", Tenant: "t2", Name: "c", Version: 1})
	a.Name, a.Version = "a2", 2
	publish(t, r, schemas.OpUpdated, a)
	publish(t, r, schemas.OpDeleted, schemas.Webhook{ID: "b", Tenant: "t1", Version: 2})

	check := func(r *Registry) {
		t.Helper()
		if w, ok := r.Webhook("t1", "a"); !ok || w.Name != "a2" {
			t.Fatalf("a = %+v %v, want the update", w, ok)
		}
		if _, ok := r.Webhook("t1", "b"); ok {
			t.Fatal("deleted webhook b is still there")
		}
		if _, ok := r.Webhook("t1", "c"); ok {
			t.Fatal("webhook c of t2 visible to t1")
		}
		if got := r.Webhooks("t1"); len(got) != 1 || got[0].ID != "a" {
			t.Fatalf("t1 webhooks = %+v", got)
		}
		if got := r.Webhooks("t2"); len(got) != 1 || got[0].ID != "c" {
			t.Fatalf("t2 webhooks = %+v", got)
		}
	}
	check(r)
	stop()
	b.Close()

	// A restart on the same data dir rebuilds the same state.
	b = startBroker(t, dir)
	defer b.Close()
	r2, stop2 := runRegistry(t, b)
	defer stop2()
	check(r2)
}

func TestRegistryIgnoresStaleVersions(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	r, stop := runRegistry(t, b)
	defer stop()
	publish(t, r, schemas.OpCreated, schemas.Webhook{ID: "a", Tenant: "t", Name: "new", Version: 3})
	publish(t, r, schemas.OpUpdated, schemas.Webhook{ID: "a", Tenant: "t", Name: "old", Version: 2})
	if w, _ := r.Webhook("t", "a"); w.Name != "new" {
		t.Fatalf("stale update applied: %+v", w)
	}
	publish(t, r, schemas.OpDeleted, schemas.Webhook{ID: "a", Tenant: "t", Version: 4})
	publish(t, r, schemas.OpUpdated, schemas.Webhook{ID: "a", Tenant: "t", Name: "zombie", Version: 4})
	if _, ok := r.Webhook("t", "a"); ok {
		t.Fatal("an update older than the delete brought the webhook back")
	}
}

func TestDisableWebhookPublishesTheChange(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	r, stop := runRegistry(t, b)
	defer stop()
	publish(t, r, schemas.OpCreated, schemas.Webhook{ID: "a", Tenant: "t", Name: "a", Version: 1, Enabled: true})
	if err := r.DisableWebhook(context.Background(), "a", "endpoint answered 410 Gone"); err != nil {
		t.Fatal(err)
	}
	w, _ := r.Webhook("t", "a")
	if w.Enabled || w.Version != 2 || w.DisabledReason == "" {
		t.Fatalf("after DisableWebhook: %+v", w)
	}
	// A second registry reading the topic sees the same.
	r2, stop2 := runRegistry(t, b)
	defer stop2()
	if w2, _ := r2.Webhook("t", "a"); w2.Enabled || w2.Version != 2 {
		t.Fatalf("the change is not on the topic: %+v", w2)
	}
	if err := r.DisableWebhook(context.Background(), "missing", "x"); err != nil {
		t.Fatalf("disabling a deleted webhook: %v", err)
	}
}
