package subscriptions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
	"github.com/hookline/hookline/sealing"
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

// testBox is the sealing box of the registry tests: one key for the
// package, so that a registry started again on a topic opens its secrets.
var testBox = func() *sealing.Box {
	box, err := sealing.ParseKeys(sealing.NewKey())
	if err != nil {
		panic(err)
	}
	return box
}()

func runRegistry(t *testing.T, b *broker.Broker) (*Registry, func()) {
	t.Helper()
	return runRegistryWith(t, b, testBox)
}

func runRegistryWith(t *testing.T, b *broker.Broker, box *sealing.Box) (*Registry, func()) {
	t.Helper()
	r := New(b, box, slog.New(slog.NewTextHandler(io.Discard, nil)))
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

// TestRegistryIgnoresStaleVersions: the fold keeps the newest version
// whatever order the topic holds them in (as another process, or an old
// producer, may have written them).
func TestRegistryIgnoresStaleVersions(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	r, stop := runRegistry(t, b)
	defer stop()
	raw := func(op schemas.WebhookOp, w schemas.Webhook) {
		t.Helper()
		v, _ := json.Marshal(schemas.WebhookEvent{Op: op, At: time.Now(), Webhook: w})
		wr := b.Writer(schemas.TopicSubscriptions, nil)
		defer wr.Close()
		if err := wr.Write(context.Background(), []kafka.Message{{Key: []byte(w.ID), Value: v}}); err != nil {
			t.Fatal(err)
		}
		if err := r.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	raw(schemas.OpCreated, schemas.Webhook{ID: "a", Tenant: "t", Name: "new", Version: 3})
	raw(schemas.OpUpdated, schemas.Webhook{ID: "a", Tenant: "t", Name: "old", Version: 2})
	if w, _ := r.Webhook("t", "a"); w.Name != "new" {
		t.Fatalf("stale update applied: %+v", w)
	}
	raw(schemas.OpDeleted, schemas.Webhook{ID: "a", Tenant: "t", Version: 4})
	raw(schemas.OpUpdated, schemas.Webhook{ID: "a", Tenant: "t", Name: "zombie", Version: 4})
	if _, ok := r.Webhook("t", "a"); ok {
		t.Fatal("an update older than the delete brought the webhook back")
	}
	// PublishWebhook refuses to write a version that is not the next one.
	err := r.PublishWebhook(context.Background(), schemas.WebhookEvent{Op: schemas.OpUpdated,
		Webhook: schemas.Webhook{ID: "a", Tenant: "t", Name: "again", Version: 4}})
	if !errors.Is(err, schemas.ErrVersionConflict) {
		t.Fatalf("publishing version 4 after 4: %v, want a version conflict", err)
	}
}

// TestConcurrentChangesAreNeverLost: PATCH-like changes (ChangeWebhook, as
// the API makes them) from two registries (two processes) and a
// 410-disable, all at once: every one of them is in the final state.
func TestConcurrentChangesAreNeverLost(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	r1, stop1 := runRegistry(t, b)
	defer stop1()
	r2, stop2 := runRegistry(t, b)
	defer stop2()
	publish(t, r1, schemas.OpCreated, schemas.Webhook{ID: "a", Tenant: "t", Name: "a", Version: 1, Enabled: true,
		Headers: map[string]string{}})
	if err := r2.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	const writers = 8
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := r1
			if i%2 == 1 {
				r = r2
			}
			_, err := r.ChangeWebhook(context.Background(), "t", "a", func(ev *schemas.WebhookEvent) error {
				h := maps.Clone(ev.Webhook.Headers)
				if h == nil {
					h = map[string]string{}
				}
				h[fmt.Sprint("X-Writer-", i)] = "yes"
				ev.Op, ev.At = schemas.OpUpdated, time.Now()
				ev.Webhook.Headers, ev.Webhook.UpdatedAt = h, ev.At
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if changed, err := r2.DisableWebhook(context.Background(), "a", "endpoint answered 410 Gone"); err != nil || !changed {
			t.Error(changed, err)
		}
	}()
	wg.Wait()
	for _, r := range []*Registry{r1, r2} {
		if err := r.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		w, _ := r.Webhook("t", "a")
		if len(w.Headers) != writers || w.Enabled || w.Version != 1+writers+1 {
			t.Fatalf("final state: %d of %d headers, enabled %v, version %d; want every change kept",
				len(w.Headers), writers, w.Enabled, w.Version)
		}
	}
}

func TestDisableWebhookPublishesTheChange(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	r, stop := runRegistry(t, b)
	defer stop()
	publish(t, r, schemas.OpCreated, schemas.Webhook{ID: "a", Tenant: "t", Name: "a", Version: 1, Enabled: true})
	if changed, err := r.DisableWebhook(context.Background(), "a", "endpoint answered 410 Gone"); err != nil || !changed {
		t.Fatal(changed, err)
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
	if changed, err := r.DisableWebhook(context.Background(), "a", "again"); err != nil || changed {
		t.Fatalf("disabling a disabled webhook: changed %v, %v", changed, err)
	}
	if w, _ := r.Webhook("t", "a"); w.DisabledReason != "endpoint answered 410 Gone" {
		t.Fatalf("a second disable replaced the reason: %q", w.DisabledReason)
	}
	if changed, err := r.DisableWebhook(context.Background(), "missing", "x"); err != nil || changed {
		t.Fatalf("disabling a deleted webhook: changed %v, %v", changed, err)
	}
}

func TestDisablingAWebhookRecordsWhenAndEnablingKeepsIt(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	r, stop := runRegistry(t, b)
	defer stop()
	publish(t, r, schemas.OpCreated, schemas.Webhook{ID: "a", Tenant: "t", Name: "a", Version: 1, Enabled: true})
	if w, _ := r.Webhook("t", "a"); w.DisabledAt != nil {
		t.Fatalf("a webhook never disabled has disabled_at %v", w.DisabledAt)
	}
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	set := func(enabled bool, when time.Time) schemas.Webhook {
		t.Helper()
		w, err := r.ChangeWebhook(context.Background(), "t", "a", func(ev *schemas.WebhookEvent) error {
			ev.Op, ev.At = schemas.OpUpdated, when
			ev.Webhook.Enabled = enabled
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	if w := set(false, at); w.DisabledAt == nil || !w.DisabledAt.Equal(at) {
		t.Fatalf("disabled at %v: disabled_at %v", at, w.DisabledAt)
	}
	if w := set(true, at.Add(time.Minute)); w.DisabledAt == nil || !w.DisabledAt.Equal(at) {
		t.Fatalf("enabled again: disabled_at %v, want %v kept", w.DisabledAt, at)
	}
	if w := set(true, at.Add(2*time.Minute)); w.DisabledAt == nil || !w.DisabledAt.Equal(at) {
		t.Fatalf("a change that leaves it enabled moved disabled_at to %v", w.DisabledAt)
	}
	if _, err := r.DisableWebhook(context.Background(), "a", "endpoint answered 410 Gone"); err != nil {
		t.Fatal(err)
	}
	if w, _ := r.Webhook("t", "a"); w.DisabledAt == nil || !w.DisabledAt.After(at) {
		t.Fatalf("the sender's disable left disabled_at at %v", w.DisabledAt)
	}
}

func TestChangeWebhookIsTheTenantsOnly(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	r, stop := runRegistry(t, b)
	defer stop()
	publish(t, r, schemas.OpCreated, schemas.Webhook{ID: "a", Tenant: "t", Name: "a", Version: 1, Enabled: true})
	rename := func(ev *schemas.WebhookEvent) error { ev.Op, ev.Webhook.Name = schemas.OpUpdated, "b"; return nil }
	for _, c := range []struct{ tenant, id string }{{"other", "a"}, {"t", "missing"}} {
		if _, err := r.ChangeWebhook(context.Background(), c.tenant, c.id, rename); !errors.Is(err, schemas.ErrWebhookNotFound) {
			t.Errorf("change of %s as %s: %v, want ErrWebhookNotFound", c.id, c.tenant, err)
		}
	}
	w, err := r.ChangeWebhook(context.Background(), "t", "a", func(*schemas.WebhookEvent) error { return schemas.ErrUnchanged })
	if err != nil || w.Version != 1 {
		t.Fatalf("an unchanged change: %+v %v; want the webhook as it is", w, err)
	}
	if w, err = r.ChangeWebhook(context.Background(), "t", "a", rename); err != nil || w.Name != "b" || w.Version != 2 {
		t.Fatalf("a rename: %+v %v", w, err)
	}
}

// TestTheTopicHoldsNoSecretInPlainText: a webhook's signing secrets and
// endpoint credentials are sealed on hookline.subscriptions (read back raw
// here, as any Kafka client could), and the registry gives them back in
// the clear; a registry with another key does not make them up.
func TestTheTopicHoldsNoSecretInPlainText(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	r, stop := runRegistry(t, b)
	secrets := []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "previous-secret-value", "basic-password-value", "oauth-client-secret-value"}
	w := schemas.Webhook{ID: "w1", Tenant: "t", Name: "n", URL: "https://example.com", Enabled: true, Version: 1,
		Secret:          secrets[0],
		PreviousSecrets: []schemas.PreviousSecret{{Secret: secrets[1], Until: time.Now().Add(time.Hour)}},
		Auth:            &schemas.Auth{Type: schemas.AuthBasic, Username: "user", Password: secrets[2], ClientSecret: secrets[3]}}
	publish(t, r, schemas.OpCreated, w)
	got, _ := r.ByID("w1")
	if got.Secret != secrets[0] || got.PreviousSecrets[0].Secret != secrets[1] || got.Auth.Password != secrets[2] || got.Auth.ClientSecret != secrets[3] {
		t.Fatalf("the registry gives back %+v, want the secrets in the clear", got)
	}
	stop()

	raw, err := b.PartitionsReader(schemas.TopicSubscriptions, map[int]int64{0: kafka.FirstOffset, 1: kafka.FirstOffset, 2: kafka.FirstOffset})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := raw.FetchMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if strings.Contains(string(m.Value), s) {
			t.Errorf("the topic holds %q in plain text: %s", s, m.Value)
		}
	}
	if !strings.Contains(string(m.Value), sealing.PrefixBound) || !strings.Contains(string(m.Value), `"username":"user"`) {
		t.Errorf("the message %s has no sealed value, or sealed what is not secret", m.Value)
	}

	other, _ := sealing.ParseKeys(sealing.NewKey())
	r2, stop2 := runRegistryWith(t, b, other)
	defer stop2()
	if got, ok := r2.ByID("w1"); ok && got.Secret == secrets[0] {
		t.Fatal("a registry with another key read the secret")
	}
}

// TestAWebhookAnotherKeySealedIsUnreadableNotGone: a registry whose key
// does not open a webhook's secrets says so (Unreadable, with the reason)
// instead of acting as if the webhook did not exist, until a change it
// can read comes; a registry without a key (the matcher's) reads it with
// its secrets sealed, and cannot write a plain secret.
func TestAWebhookAnotherKeySealedIsUnreadableNotGone(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	r, stop := runRegistry(t, b)
	defer stop()
	w := schemas.Webhook{ID: "w1", Tenant: "t", Name: "n", URL: "https://example.com", Enabled: true, Version: 1, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
	publish(t, r, schemas.OpCreated, w)

	other, _ := sealing.ParseKeys(sealing.NewKey())
	r2, stop2 := runRegistryWith(t, b, other)
	defer stop2()
	why, bad := r2.Unreadable("w1")
	if !bad || !strings.Contains(why, "--secrets-key") {
		t.Fatalf("Unreadable = %q, %v; want the webhook unreadable because of the key", why, bad)
	}
	if got := r2.UnreadableWebhooks(); len(got) != 1 || got["w1"] == "" {
		t.Fatalf("UnreadableWebhooks = %v", got)
	}
	if _, bad := r.Unreadable("w1"); bad {
		t.Fatal("the registry with the right key cannot read the webhook")
	}

	keyless, stop3 := runRegistryWith(t, b, nil)
	defer stop3()
	got, ok := keyless.ByID("w1")
	if !ok || !sealing.IsSealed(got.Secret) {
		t.Fatalf("a registry without a key: %+v, %v; want the webhook, its secret sealed", got, ok)
	}
	if _, bad := keyless.Unreadable("w1"); bad {
		t.Fatal("a registry without a key finds the webhook unreadable")
	}
	plain := w
	plain.Version, plain.Secret = 2, "a-new-plain-secret"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := keyless.PublishWebhook(ctx, schemas.WebhookEvent{Op: schemas.OpUpdated, At: time.Now(), Webhook: plain}); err == nil {
		t.Fatal("a registry without a key wrote a plain secret")
	}

	// A change the second registry can read (no secret) ends it.
	w.Version, w.Secret = 2, ""
	publish(t, r, schemas.OpUpdated, w)
	syncCtx, syncCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer syncCancel()
	if err := r2.Sync(syncCtx); err != nil {
		t.Fatal(err)
	}
	if _, bad := r2.Unreadable("w1"); bad {
		t.Fatal("still unreadable after a change it can read")
	}
}

// TestASecretCopiedToAnotherWebhookDoesNotOpen: secrets are sealed for
// their webhook and field; someone who can write the topic and copies a
// webhook's sealed secret into another webhook's record gets a webhook
// that cannot be read, not one that signs with the other's secret.
func TestASecretCopiedToAnotherWebhookDoesNotOpen(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	r, stop := runRegistry(t, b)
	defer stop()
	publish(t, r, schemas.OpCreated, schemas.Webhook{ID: "w1", Tenant: "t", Name: "n", URL: "https://example.com", Enabled: true, Version: 1, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	raw, err := b.PartitionsReader(schemas.TopicSubscriptions, map[int]int64{0: kafka.FirstOffset, 1: kafka.FirstOffset, 2: kafka.FirstOffset})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := raw.FetchMessage(ctx)
	raw.Close()
	if err != nil {
		t.Fatal(err)
	}
	copied := strings.Replace(string(m.Value), `"id":"w1"`, `"id":"w2"`, 1)
	w := b.Writer(schemas.TopicSubscriptions, nil)
	defer w.Close()
	if err := w.Write(ctx, []kafka.Message{{Key: []byte("w2"), Value: []byte(copied)}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if why, bad := r.Unreadable("w2"); !bad {
		t.Fatalf("a webhook holding another's sealed secret reads: %q", why)
	}
	if got, ok := r.ByID("w1"); !ok || got.Secret != "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" {
		t.Fatalf("w1 itself: %+v, %v", got, ok)
	}
}

// TestRacingDeletesPatchesAndDisablesFoldTheSameAfterCompaction: an API
// DELETE, a PATCH from another API process and a sender's disable race on
// each webhook. Whichever wins, the log the broker compacts to its last
// record per key folds to what the whole log folded to: a deleted
// webhook never comes back after a restart, and no change is undone.
func TestRacingDeletesPatchesAndDisablesFoldTheSameAfterCompaction(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	api1, stop1 := runRegistry(t, b)
	api2, stop2 := runRegistry(t, b)
	sender, stop3 := runRegistry(t, b)
	const hooks = 30
	for i := range hooks {
		publish(t, api1, schemas.OpCreated, schemas.Webhook{ID: fmt.Sprint("w", i), Tenant: "t", Name: "n", Version: 1, Enabled: true})
	}
	ctx := context.Background()
	for _, r := range []*Registry{api2, sender} {
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := range hooks {
		id := fmt.Sprint("w", i)
		var wg sync.WaitGroup
		wg.Add(3)
		go func() {
			defer wg.Done()
			api1.ChangeWebhook(ctx, "t", id, func(ev *schemas.WebhookEvent) error {
				ev.Op, ev.At = schemas.OpDeleted, time.Now()
				return nil
			})
		}()
		go func() {
			defer wg.Done()
			api2.ChangeWebhook(ctx, "t", id, func(ev *schemas.WebhookEvent) error {
				ev.Op, ev.At = schemas.OpUpdated, time.Now()
				ev.Webhook.Name = "patched"
				return nil
			})
		}()
		go func() {
			defer wg.Done()
			sender.DisableWebhook(ctx, id, "endpoint answered 410 Gone")
		}()
		wg.Wait()
	}
	if err := api1.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]schemas.Webhook{}
	for _, w := range api1.Webhooks("t") {
		want[w.ID] = w
	}
	stop1()
	stop2()
	stop3()

	b.Compact()
	folded, stop := runRegistry(t, b)
	defer stop()
	got := map[string]schemas.Webhook{}
	for _, w := range folded.Webhooks("t") {
		got[w.ID] = w
	}
	for i := range hooks {
		id := fmt.Sprint("w", i)
		w, had := want[id]
		g, has := got[id]
		if had != has || had && (w.Version != g.Version || w.Name != g.Name || w.Enabled != g.Enabled) {
			t.Errorf("%s: the whole log folds to %+v (%v), the compacted log to %+v (%v)", id, w, had, g, has)
		}
	}
	// A DELETE that loses a race is made again on the new version, so
	// every webhook ends deleted: what the compacted log must not undo.
	if len(want) != 0 {
		t.Fatalf("%d webhooks outlived their DELETE", len(want))
	}
}

// TestOnDisabledHearsEveryDisable: a listener hears a webhook turn from
// enabled to disabled, once, whoever disabled it, and not other changes.
func TestOnDisabledHearsEveryDisable(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	r, stop := runRegistry(t, b)
	defer stop()
	var mu sync.Mutex
	var heard []schemas.Webhook
	r.OnDisabled(func(w schemas.Webhook) {
		mu.Lock()
		defer mu.Unlock()
		heard = append(heard, w)
	})
	publish(t, r, schemas.OpCreated, schemas.Webhook{ID: "a", Tenant: "t", Name: "a", Version: 1, Enabled: true})
	ctx := context.Background()
	if _, err := r.ChangeWebhook(ctx, "t", "a", func(ev *schemas.WebhookEvent) error {
		ev.Op, ev.At, ev.Webhook.Name = schemas.OpUpdated, time.Now(), "renamed"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if changed, err := r.DisableWebhook(ctx, "a", "endpoint answered 410 Gone"); err != nil || !changed {
		t.Fatal(changed, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(heard) != 1 || heard[0].ID != "a" || heard[0].Enabled || heard[0].DisabledReason != "endpoint answered 410 Gone" || heard[0].DisabledAt == nil {
		t.Fatalf("heard %+v, want webhook a once, disabled with the sender's reason", heard)
	}
}
