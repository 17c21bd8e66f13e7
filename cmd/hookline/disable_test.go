package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hookline/hookline/client"
	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/projections/storetest"
	"github.com/hookline/hookline/schemas"
)

// switchEndpoint answers every request with the status it is set to, and
// counts requests by delivery id (webhook-id) and the most in flight at
// once.
type switchEndpoint struct {
	*httptest.Server
	delay time.Duration // each 2xx answer takes this long

	mu       sync.Mutex
	status   int
	byID     map[string]int
	events   map[string]string // delivery id → event id of the body
	inflight int
	peak     int
}

func newSwitchEndpoint(t *testing.T, status int, delay time.Duration) *switchEndpoint {
	e := &switchEndpoint{status: status, delay: delay, byID: map[string]int{}, events: map[string]string{}}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct {
			EventID string `json:"event_id"`
		}
		json.NewDecoder(r.Body).Decode(&env)
		e.mu.Lock()
		id := r.Header.Get("webhook-id")
		e.byID[id]++
		e.events[id] = env.EventID
		status := e.status
		e.inflight++
		e.peak = max(e.peak, e.inflight)
		e.mu.Unlock()
		if status < 300 {
			time.Sleep(e.delay)
		}
		e.mu.Lock()
		e.inflight--
		e.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(e.Close)
	return e
}

// set makes the endpoint answer status from now on, and forgets the peak.
func (e *switchEndpoint) set(status int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.status, e.peak = status, e.inflight
}

// received returns the requests so far by delivery id, their total, and
// the peak in flight since the last set.
func (e *switchEndpoint) received() (map[string]int, int, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	total := 0
	for _, n := range e.byID {
		total += n
	}
	return maps.Clone(e.byID), total, e.peak
}

func (e *switchEndpoint) eventOf(deliveryID string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.events[deliveryID]
}

// allDeliveries pages through a webhook's deliveries in a state.
func allDeliveries(t *testing.T, p *process, webhookID, state string) []projections.Delivery {
	t.Helper()
	var out []projections.Delivery
	q := client.DeliveryQuery{State: state, Limit: 500}
	for {
		page := deliveriesOf(t, p, webhookID, q)
		out = append(out, page.Data...)
		if page.NextCursor == "" {
			return out
		}
		q.Cursor = page.NextCursor
	}
}

// TestServeDisablingAWebhookFailsItsWaitingDeliveriesAtOnce: deliveries of
// an endpoint that answers 503 wait a minute for their retry, and more
// wait for the circuit that those failures opened; disabling the webhook
// shows them all failed webhook_disabled within seconds, without another
// request. Once the endpoint answers and the webhook is enabled again,
// redeliver-failed sends each of them, as a redelivery, and none of the
// original jobs goes out.
func TestServeDisablingAWebhookFailsItsWaitingDeliveriesAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Run("embedded store", func(t *testing.T) { disablingFailsWaiting(t) })
	t.Run("clickhouse store", func(t *testing.T) {
		disablingFailsWaiting(t, "--clickhouse-dsn", storetest.ClickHouseDatabase(t))
	})
}

func disablingFailsWaiting(t *testing.T, args ...string) {
	start := time.Now()
	ep := newSwitchEndpoint(t, http.StatusServiceUnavailable, 0)
	p := startServe(t, append([]string{"--data-dir", t.TempDir(), "--retry-schedule", "1m,5m",
		"--breaker-failures", "3", "--breaker-cooldown", "5s"}, args...)...)
	defer p.stop(t)
	ctx := context.Background()
	hook := createHook(t, p, schemas.WebhookInput{Name: client.Ptr("down"), URL: client.Ptr(ep.URL)})
	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			_, err := p.api().PublishEvents(ctx, schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: fmt.Sprint("T-", i)})
			fatalIf(t, err)
		}
	}
	// Three attempts answered 503 open the circuit (--breaker-failures 3);
	// each delivery waits on hookline.retry.1m. The circuit stays open 5 s:
	// long enough to see the next two wait for it, short enough for the
	// redeliveries below, of which one goes through it as its probe and
	// the others wait out the rest of the cooldown.
	publish(0, 3)
	waitFor(t, "3 retrying deliveries", 20*time.Second, func() bool {
		return len(allDeliveries(t, p, hook.ID, "retrying")) == 3
	})
	// The circuit is open: these wait for it without an attempt.
	publish(3, 5)
	waitFor(t, "2 pending deliveries", 20*time.Second, func() bool {
		return len(allDeliveries(t, p, hook.ID, "pending")) == 2
	})
	waiting := map[string]int{} // delivery id → attempts made
	for _, state := range []string{"retrying", "pending"} {
		for _, d := range allDeliveries(t, p, hook.ID, state) {
			if d.NextAttemptAt == nil {
				t.Errorf("waiting delivery %s (%s) without next_attempt_at", d.ID, d.State)
			}
			waiting[d.ID] = d.AttemptCount
		}
	}
	_, before, _ := ep.received()
	if before != 3 {
		t.Fatalf("the endpoint got %d requests before the disable, want the 3 first attempts", before)
	}

	disabledAt := time.Now()
	_, err := p.api().UpdateWebhook(ctx, hook.ID, schemas.WebhookInput{Enabled: client.Ptr(false)})
	fatalIf(t, err)
	waitFor(t, "the 5 waiting deliveries failed", 10*time.Second, func() bool {
		return len(allDeliveries(t, p, hook.ID, "failed")) == 5
	})
	t.Logf("waiting deliveries shown failed %v after the disable", time.Since(disabledAt).Round(time.Millisecond))
	for id, attempts := range waiting {
		d, err := p.api().Delivery(ctx, id)
		fatalIf(t, err)
		last := d.Attempts[len(d.Attempts)-1]
		if d.State != "failed" || d.AttemptCount != attempts+1 || last.N != attempts+1 || last.Error != "webhook_disabled" ||
			last.StatusCode != 0 || d.LastStatusCode != 0 || d.NextAttemptAt != nil {
			t.Errorf("delivery %s, %d attempt(s) before: %+v", id, attempts, d)
		}
		if d.Request == nil || d.Request.Body == "" {
			t.Errorf("delivery %s lost its request body", id)
		}
	}
	if _, n, _ := ep.received(); n != before {
		t.Fatalf("the endpoint got %d requests after the disable", n-before)
	}
	if !containsLine(p.logs(), "api: waiting deliveries failed", "failed=5") {
		t.Errorf("no log line says how many deliveries the disable failed:\n%s", p.logs())
	}

	ep.set(http.StatusOK)
	_, err = p.api().UpdateWebhook(ctx, hook.ID, schemas.WebhookInput{Enabled: client.Ptr(true)})
	fatalIf(t, err)
	result, err := p.api().RedeliverFailed(ctx, hook.ID, time.Time{}, time.Time{})
	fatalIf(t, err)
	if result.Count != 5 {
		t.Fatalf("redeliver-failed sent %d, want the 5 failed by the disable", result.Count)
	}
	waitFor(t, "the 5 redeliveries at the endpoint", 20*time.Second, func() bool {
		_, n, _ := ep.received()
		return n == before+5
	})
	got, _, _ := ep.received()
	for _, id := range result.DeliveryIDs {
		if got[id] != 1 {
			t.Errorf("redelivery %s received %d times", id, got[id])
		}
	}
	waitFor(t, "the redeliveries succeeded in the history", 20*time.Second, func() bool {
		return len(allDeliveries(t, p, hook.ID, "succeeded")) == 5
	})
	redelivered := map[string]bool{}
	for _, d := range allDeliveries(t, p, hook.ID, "succeeded") {
		redelivered[d.RedeliveryOf] = true
		if orig, err := p.api().Delivery(ctx, d.RedeliveryOf); err != nil || ep.eventOf(d.ID) != orig.EventIDs[0] {
			t.Errorf("redelivery %s of %s carried event %q, want the original's %v (%v)", d.ID, d.RedeliveryOf, ep.eventOf(d.ID), orig.EventIDs, err)
		}
	}
	for id := range waiting {
		if !redelivered[id] {
			t.Errorf("delivery %s was not redelivered", id)
		}
		if got[id] != waiting[id] {
			t.Errorf("delivery %s had %d request(s) before the disable and %d in all: its job went out after it", id, waiting[id], got[id])
		}
	}
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))
}

// containsLine reports whether one line of text contains every part.
func containsLine(text string, parts ...string) bool {
	for line := range strings.Lines(text) {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
			return true
		}
	}
	return false
}

// TestServeRedeliversAThousandFailedDeliveriesConcurrently: redeliver-failed
// of 1,000 failed deliveries to an endpoint that answers fast goes out
// with more than one request in flight: a redelivery has no resource, so
// nothing orders it behind another, and each takes a lane of its own.
func TestServeRedeliversAThousandFailedDeliveriesConcurrently(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	const n = 1000
	start := time.Now()
	// A 400 fails a delivery at once (one attempt, no retry, and the
	// circuit stays closed: the endpoint answered).
	ep := newSwitchEndpoint(t, http.StatusBadRequest, 2*time.Millisecond)
	p := startServe(t, "--data-dir", t.TempDir())
	defer p.stop(t)
	ctx := context.Background()
	hook := createHook(t, p, schemas.WebhookInput{Name: client.Ptr("fast"), URL: client.Ptr(ep.URL)})
	evs := make([]schemas.Event, n)
	for i := range evs {
		evs[i] = schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: fmt.Sprint("T-", i)}
	}
	_, err := p.api().PublishEvents(ctx, evs...)
	fatalIf(t, err)
	var stats struct {
		Deliveries map[string]int `json:"deliveries"`
	}
	waitFor(t, "1,000 failed deliveries", 40*time.Second, func() bool {
		fatalIf(t, json.Unmarshal(p.call(t, "GET", "/v1/webhooks/"+hook.ID+"/stats", nil, 200), &stats))
		return stats.Deliveries["failed"] == n
	})
	failedIn := time.Since(start)

	ep.set(http.StatusNoContent)
	asked := time.Now()
	result, err := p.api().RedeliverFailed(ctx, hook.ID, time.Time{}, time.Time{})
	fatalIf(t, err)
	answered := time.Since(asked)
	if result.Count != n || len(result.DeliveryIDs) != n {
		t.Fatalf("redeliver-failed sent %d, want %d", result.Count, n)
	}
	waitFor(t, "1,000 redeliveries at the endpoint", 40*time.Second, func() bool {
		_, total, _ := ep.received()
		return total == 2*n
	})
	sent := time.Since(asked)
	got, _, peak := ep.received()
	for _, id := range result.DeliveryIDs {
		if got[id] != 1 {
			t.Fatalf("redelivery %s received %d times", id, got[id])
		}
	}
	t.Logf("1,000 deliveries failed in %v; redeliver-failed answered in %v, all received %v after asking; peak %d requests in flight; test %v",
		failedIn.Round(time.Millisecond), answered.Round(time.Millisecond), sent.Round(time.Millisecond), peak, time.Since(start).Round(time.Millisecond))
	if peak < 2 {
		t.Fatalf("the redeliveries went out one at a time (peak %d in flight)", peak)
	}
}

// TestServeWaitsForItsSweepsAtShutdown: serve, in this process, stopped
// just after a webhook with waiting deliveries was disabled, leaves no
// goroutine of the sweep that fails them behind.
func TestServeWaitsForItsSweepsAtShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ep := newSwitchEndpoint(t, http.StatusServiceUnavailable, 0)
	defer ep.Close()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	runServe := serveFlags(fs)
	fatalIf(t, fs.Parse([]string{"--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--partitions", "2",
		"--allow-private-targets", "--drain-timeout", "5s", "--retry-schedule", "1m"}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &lockedWriter{w: &bytes.Buffer{}}
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, stdout, io.Discard) }()
	var base string
	waitFor(t, "serve ready", 60*time.Second, func() bool {
		stdout.mu.Lock()
		defer stdout.mu.Unlock()
		if m := readyLine.FindStringSubmatch(stdout.w.(*bytes.Buffer).String()); m != nil {
			base = m[1]
		}
		return base != ""
	})
	p := &process{base: base}
	hook := createHook(t, p, schemas.WebhookInput{Name: client.Ptr("down"), URL: client.Ptr(ep.URL)})
	_, err := p.api().PublishEvents(ctx, schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: "T-1"})
	fatalIf(t, err)
	waitFor(t, "a retrying delivery", 20*time.Second, func() bool {
		return len(allDeliveries(t, p, hook.ID, "retrying")) == 1
	})
	_, err = p.api().UpdateWebhook(ctx, hook.ID, schemas.WebhookInput{Enabled: client.Ptr(false)})
	fatalIf(t, err)
	http.DefaultClient.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		fatalIf(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not stop")
	}
	ep.Close()
}

// TestASendersDisableFailsTheWaitingDeliveriesToo: deliveries of an
// endpoint that answers 503 wait a minute for their retry; the endpoint
// then answers 410 Gone to a new one, and the sender disables the webhook.
// The three waiting are shown failed webhook_disabled within seconds, as
// after the API's own disable, not a minute later as each comes back.
func TestASendersDisableFailsTheWaitingDeliveriesToo(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	ep := newSwitchEndpoint(t, http.StatusServiceUnavailable, 0)
	p := startServe(t, "--data-dir", t.TempDir(), "--retry-schedule", "1m,5m", "--breaker-failures", "1000")
	defer p.stop(t)
	ctx := context.Background()
	hook := createHook(t, p, schemas.WebhookInput{Name: client.Ptr("gone"), URL: client.Ptr(ep.URL)})
	for i := range 3 {
		_, err := p.api().PublishEvents(ctx, schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: fmt.Sprint("T-", i)})
		fatalIf(t, err)
	}
	waitFor(t, "3 retrying deliveries", 20*time.Second, func() bool {
		return len(allDeliveries(t, p, hook.ID, "retrying")) == 3
	})
	ep.set(http.StatusGone)
	goneAt := time.Now()
	_, err := p.api().PublishEvents(ctx, schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: "T-9"})
	fatalIf(t, err)
	waitFor(t, "the webhook disabled by the sender", 20*time.Second, func() bool {
		wh, err := p.api().Webhook(ctx, hook.ID)
		return err == nil && !wh.Enabled && wh.DisabledReason != ""
	})
	waitFor(t, "the 3 waiting deliveries failed", 20*time.Second, func() bool {
		failed := 0
		for _, d := range allDeliveries(t, p, hook.ID, "failed") {
			if dd, err := p.api().Delivery(ctx, d.ID); err == nil && dd.Attempts[len(dd.Attempts)-1].Error == "webhook_disabled" {
				failed++
			}
		}
		return failed == 3
	})
	if took := time.Since(goneAt); took > 45*time.Second {
		t.Fatalf("the waiting deliveries failed %v after the 410, want well before their retry a minute after their attempt", took)
	}
	t.Logf("waiting deliveries failed %v after the 410", time.Since(goneAt).Round(time.Millisecond))
	if _, n, _ := ep.received(); n != 4 {
		t.Fatalf("the endpoint got %d requests, want the 3 first attempts and the one answered 410", n)
	}
}
