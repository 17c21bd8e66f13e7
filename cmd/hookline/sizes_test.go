package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/client"
	"github.com/hookline/hookline/schemas"
)

// TestServeDeliversLargeAndBatchedEvents is issue 9's acceptance run,
// smaller: through the public API, events of 1 KiB in arrays of 500,
// events of 100 KiB, and 300 order events of 10 KiB to a batching webhook
// whose one batch would be 3 MB: every event is delivered once, the batch
// goes out as several deliveries under the broker's limit, and nothing in
// serve's log is retried or refused.
func TestServeDeliversLargeAndBatchedEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	const secret = "sizes-secret"
	recv := newReceiver(t, secret)
	p := startServe(t, "--data-dir", t.TempDir())
	defer p.stop(t)
	ctx := context.Background()
	api := p.api()
	create := func(name string, events []string, batching *schemas.Batching) string {
		t.Helper()
		w, err := api.CreateWebhook(ctx, schemas.WebhookInput{Name: client.Ptr(name), URL: client.Ptr(recv.URL),
			Secret: client.Ptr(secret), Events: client.Ptr(events), Batching: batching})
		fatalIf(t, err)
		return w.ID
	}
	plain := create("plain", []string{"ticket.*"}, nil)
	big := create("big", []string{"product.*"}, nil)
	batch := create("batch", []string{"order.paid"}, &schemas.Batching{Mode: schemas.BatchAny, WaitSeconds: 3, MaxItems: 1000})
	event := func(resource, trigger string, i, size int) schemas.Event {
		data, _ := json.Marshal(map[string]any{"blob": strings.Repeat("x", size), "n": i})
		return schemas.Event{Resource: resource, Trigger: trigger, ResourceID: fmt.Sprintf("%s-%d", resource, i), Data: data}
	}
	publish := func(evs []schemas.Event) {
		t.Helper()
		_, err := api.PublishEvents(ctx, evs...)
		fatalIf(t, err)
	}
	const small, large, orders = 1000, 20, 300
	for k := 0; k < small; k += 500 {
		var evs []schemas.Event
		for i := k; i < k+500; i++ {
			evs = append(evs, event("ticket", "create", i, 1024))
		}
		publish(evs)
	}
	for k := 0; k < large; k += 5 {
		var evs []schemas.Event
		for i := k; i < k+5; i++ {
			evs = append(evs, event("product", "create", i, 100<<10))
		}
		publish(evs)
	}
	for k := 0; k < orders; k += 100 {
		var evs []schemas.Event
		for i := k; i < k+100; i++ {
			evs = append(evs, event("order", "paid", i, 10<<10))
		}
		publish(evs)
	}

	// Every event once, per webhook, batches unpacked.
	count := func() (map[string]map[string]int, int) {
		bodies, _, failures := recv.snapshot()
		if len(failures) > 0 {
			t.Fatalf("receiver refused deliveries: %v", failures)
		}
		seen := map[string]map[string]int{}
		batches := 0
		for _, body := range bodies {
			var envs []schemas.Envelope
			if body[0] == '[' {
				batches++
				fatalIf(t, json.Unmarshal(body, &envs))
			} else {
				var env schemas.Envelope
				fatalIf(t, json.Unmarshal(body, &env))
				envs = []schemas.Envelope{env}
			}
			for _, env := range envs {
				if seen[env.WebhookID] == nil {
					seen[env.WebhookID] = map[string]int{}
				}
				seen[env.WebhookID][env.EventID]++
			}
		}
		return seen, batches
	}
	var seen map[string]map[string]int
	var batches int
	waitFor(t, "every event at the receiver", 120*time.Second, func() bool {
		seen, batches = count()
		return len(seen[plain]) == small && len(seen[big]) == large && len(seen[batch]) == orders
	})
	for hook, events := range seen {
		for id, n := range events {
			if n != 1 {
				t.Errorf("webhook %s got event %s %d times", hook, id, n)
			}
		}
	}
	if batches < 3 {
		t.Errorf("300 events of 10 KiB went out as %d batches; want them cut under the size limit", batches)
	}
	for _, bad := range []string{"retrying", "too_large", "level=ERROR"} {
		if strings.Contains(p.logs(), bad) {
			t.Errorf("serve's log has %q:\n%s", bad, p.logs())
		}
	}
}
