package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/client"
	"github.com/hookline/hookline/schemas"
)

// freeAddr is a loopback address no one listens on (a moment ago).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	fatalIf(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startBroker runs `hookline broker` on dir at addr until the test ends
// or stop is called (SIGTERM, a clean exit required).
func startBroker(t *testing.T, dir, addr string) (stop func()) {
	t.Helper()
	cmd := exec.Command(binary, "broker", "--data-dir", dir, "--addr", addr, "--partitions", "2")
	stdout, err := cmd.StdoutPipe()
	fatalIf(t, err)
	logs := &lockedWriter{w: &bytes.Buffer{}}
	cmd.Stderr = logs
	fatalIf(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := regexp.MustCompile(`hookline broker ready: (\S+)`).FindStringSubmatch(sc.Text()); m != nil {
				ready <- m[1]
			}
		}
	}()
	select {
	case got := <-ready:
		if got != addr {
			t.Fatalf("broker ready at %s, want %s", got, addr)
		}
	case err := <-done:
		t.Fatalf("hookline broker exited before ready: %v", err)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("hookline broker not ready in 30s")
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("hookline broker exited with %v after SIGTERM", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Error("hookline broker did not stop within 30s of SIGTERM")
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestServeOnAStandaloneBrokerSurvivesItsRestart: `hookline broker` runs
// the embedded broker alone at a fixed address; a serve process uses it
// through --kafka-brokers, and goes on delivering after the broker is
// stopped and started again at that address, with its topics and webhooks.
func TestServeOnAStandaloneBrokerSurvivesItsRestart(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	stopBroker := startBroker(t, dir, addr)
	recv := newReceiver(t, "scale-secret")
	p := startServe(t, "--data-dir", t.TempDir(), "--kafka-brokers", addr, "--secrets-key", testKey)
	hook := createHook(t, p, schemas.WebhookInput{Name: client.Ptr("s"), URL: client.Ptr(recv.URL),
		Secret: client.Ptr("scale-secret"), Events: client.Ptr([]string{"ticket.*"})})
	publish := func(id string) {
		t.Helper()
		_, err := p.api().PublishEvents(context.Background(), schemas.Event{ID: id, Resource: "ticket", Trigger: "create", ResourceID: id})
		fatalIf(t, err)
	}
	received := func(n int) func() bool {
		return func() bool { _, count, _ := recv.snapshot(); return count >= n }
	}
	publish("before")
	waitFor(t, "the delivery before the broker's restart", 30*time.Second, received(1))

	stopBroker()
	startBroker(t, dir, addr)
	// serve reconnects on its own; events published once it has are
	// delivered, and the webhook made before the restart is still there.
	waitFor(t, "a publish after the broker's restart", 60*time.Second, func() bool {
		_, err := p.api().PublishEvents(context.Background(), schemas.Event{ID: "after", Resource: "ticket", Trigger: "create", ResourceID: "after"})
		return err == nil
	})
	waitFor(t, "the delivery after the broker's restart", 60*time.Second, received(2))
	if _, _, failures := recv.snapshot(); len(failures) > 0 {
		t.Fatalf("the receiver refused deliveries: %v", failures)
	}
	waitFor(t, "both deliveries in the history", 30*time.Second, func() bool {
		return len(deliveriesOf(t, p, hook.ID, client.DeliveryQuery{State: "succeeded"}).Data) == 2
	})
}

// TestKafkaAddrIsTheEmbeddedBrokersOnly: --kafka-addr goes with the
// embedded broker, never with --kafka-brokers.
func TestKafkaAddrIsTheEmbeddedBrokersOnly(t *testing.T) {
	out, err := exec.Command(binary, "serve", "--data-dir", t.TempDir(), "--kafka-addr", "127.0.0.1:1", "--kafka-brokers", "127.0.0.1:2").CombinedOutput()
	if err == nil || !regexp.MustCompile(`--kafka-addr .*--kafka-brokers`).Match(out) {
		t.Fatalf("serve with both: %v\n%s", err, out)
	}
}

// testKey is a --secrets-key for processes that share a broker.
var testKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))

// TestServeOnABrokerOfItsOwnNeedsTheSharedKey: with --kafka-brokers, serve
// refuses to start without --secrets-key, naming it and how to make one:
// processes that each made a key of their own in their data directory
// could not open each other's webhook secrets (the shipped docker-compose
// delivered nothing that way, and said nothing).
func TestServeOnABrokerOfItsOwnNeedsTheSharedKey(t *testing.T) {
	cmd := exec.Command(binary, "serve", "--data-dir", t.TempDir(), "--http-addr", freeAddr(t), "--kafka-brokers", "127.0.0.1:1")
	cmd.Env = append(os.Environ(), "HOOKLINE_SECRETS_KEY=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--secrets-key") || !strings.Contains(string(out), "openssl rand -base64 32") {
		t.Fatalf("serve with --kafka-brokers and no key: %v\n%s", err, out)
	}
}

// TestEveryProcessServesProbesAndMetrics: a process without the api stage
// serves /healthz, /readyz (its own dependencies: the broker) and /metrics
// (its stage's series and its group's lag) on --http-addr, and answers the
// API's paths with a 404 that says why.
func TestEveryProcessServesProbesAndMetrics(t *testing.T) {
	addr := freeAddr(t)
	startBroker(t, t.TempDir(), addr)
	p := startServe(t, "--data-dir", t.TempDir(), "--kafka-brokers", addr, "--secrets-key", testKey, "--stages", "sender")
	if body := string(p.call(t, "GET", "/healthz", nil, 200)); !strings.Contains(body, `"ok"`) {
		t.Fatalf("/healthz: %s", body)
	}
	var ready struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	fatalIf(t, json.Unmarshal(p.call(t, "GET", "/readyz", nil, 200), &ready))
	if ready.Checks["broker"] != "ok" || ready.Checks["webhooks"] != "ok" || len(ready.Checks) != 2 {
		t.Fatalf("/readyz of a sender: %+v, want the broker's and the webhooks' checks", ready)
	}
	metrics := string(p.call(t, "GET", "/metrics", nil, 200))
	for _, want := range []string{"hookline_sender_webhooks_disabled_total", `hookline_consumer_lag{group="hookline-sender"`} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("/metrics of a sender lacks %s", want)
		}
	}
	if body := string(p.call(t, "GET", "/v1/webhooks", nil, 404)); !strings.Contains(body, "no api stage") {
		t.Fatalf("/v1/webhooks on a sender: %s", body)
	}
}

// TestTheAPIShowsTheBreakerASenderElsewhereOpened: the api process shows
// the breaker state and the concurrency limit that a sender in another
// process published on hookline.endpoints.
func TestTheAPIShowsTheBreakerASenderElsewhereOpened(t *testing.T) {
	addr := freeAddr(t)
	startBroker(t, t.TempDir(), addr)
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)) // every process seals alike
	front := startServe(t, "--data-dir", t.TempDir(), "--kafka-brokers", addr, "--secrets-key", key, "--stages", "api,matcher,projector")
	back := startServe(t, "--data-dir", t.TempDir(), "--kafka-brokers", addr, "--secrets-key", key, "--stages", "sender",
		"--breaker-failures", "2", "--breaker-cooldown", "1m")
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	t.Cleanup(dead.Close)
	hook := createHook(t, front, schemas.WebhookInput{Name: client.Ptr("dead"), URL: client.Ptr(dead.URL),
		Events: client.Ptr([]string{"ticket.*"}), Retries: client.Ptr(0)})
	for i := range 3 {
		_, err := front.api().PublishEvents(context.Background(), schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: fmt.Sprint("T-", i)})
		fatalIf(t, err)
	}
	var last schemas.PublicWebhook
	deadline := time.Now().Add(60 * time.Second)
	for {
		w, err := front.api().Webhook(context.Background(), hook.ID)
		if err == nil && w.BreakerState == "open" && w.ConcurrencyLimit >= 1 {
			break
		}
		last = w
		if time.Now().After(deadline) {
			d := deliveriesOf(t, front, hook.ID, client.DeliveryQuery{})
			t.Fatalf("the api process shows breaker %q, concurrency limit %d; deliveries %+v\nsender's log:\n%s",
				last.BreakerState, last.ConcurrencyLimit, d.Data, back.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAReplayRunsOnceAcrossAPIProcesses: two API processes share the
// replays; the one that holds a replay's partition of hookline.replays
// runs it, so each replayed event reaches the endpoint once, and both
// show the replay done.
func TestAReplayRunsOnceAcrossAPIProcesses(t *testing.T) {
	addr := freeAddr(t)
	startBroker(t, t.TempDir(), addr)
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	one := startServe(t, "--data-dir", t.TempDir(), "--kafka-brokers", addr, "--secrets-key", key)
	two := startServe(t, "--data-dir", t.TempDir(), "--kafka-brokers", addr, "--secrets-key", key, "--stages", "api")
	ctx := context.Background()
	const n = 20
	for i := range n {
		_, err := one.api().PublishEvents(ctx, schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: fmt.Sprint("T-", i)})
		fatalIf(t, err)
	}
	recv := newReceiver(t, "replay-twice-secret")
	hook := createHook(t, one, schemas.WebhookInput{Name: client.Ptr("late"), URL: client.Ptr(recv.URL),
		Secret: client.Ptr("replay-twice-secret"), Events: client.Ptr([]string{"ticket.*"})})
	var r schemas.PublicReplay
	waitFor(t, "the second API process to know the webhook and take the replay", 30*time.Second, func() bool {
		var err error
		r, err = two.api().CreateReplay(ctx, schemas.ReplayRequest{WebhookIDs: []string{hook.ID},
			From: &schemas.ReplayPosition{Time: client.Ptr(time.Now().Add(-time.Hour))}})
		return err == nil
	})
	for _, p := range []*process{one, two} {
		waitFor(t, "the replay done in both API processes", 60*time.Second, func() bool {
			got, err := p.api().Replay(ctx, r.ID)
			return err == nil && got.State == schemas.ReplayDone && got.Enqueued == n
		})
	}
	waitFor(t, "every replayed event delivered", 60*time.Second, func() bool { _, count, _ := recv.snapshot(); return count >= n })
	time.Sleep(2 * time.Second) // a second runner's deliveries would come now
	bodies, count, failures := recv.snapshot()
	if count != n || len(bodies) != n || len(failures) > 0 {
		t.Fatalf("the endpoint got %d requests of %d distinct deliveries (failures %v), want %d once each", count, len(bodies), failures, n)
	}
}

// TestAReplayResumesElsewhereWhenItsRunnerDies: the API process running a
// replay is killed (SIGKILL) in the middle of it; the other API process
// takes its partition of hookline.replays over after the session timeout
// and finishes it from its checkpoint, with exact counts.
func TestAReplayResumesElsewhereWhenItsRunnerDies(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	addr := freeAddr(t)
	startBroker(t, t.TempDir(), addr)
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32))
	one := startServe(t, "--data-dir", t.TempDir(), "--kafka-brokers", addr, "--secrets-key", key, "--stages", "api")
	two := startServe(t, "--data-dir", t.TempDir(), "--kafka-brokers", addr, "--secrets-key", key, "--stages", "api")
	ctx := context.Background()
	const n = 40000
	for i := 0; i < n; i += 500 {
		evs := make([]schemas.Event, 500)
		for j := range evs {
			evs[j] = schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: fmt.Sprint("T-", i+j)}
		}
		_, err := one.api().PublishEvents(ctx, evs...)
		fatalIf(t, err)
	}
	hook := createHook(t, one, schemas.WebhookInput{Name: client.Ptr("late"), URL: client.Ptr("http://127.0.0.1:9/x"),
		Events: client.Ptr([]string{"ticket.*"})})
	var r schemas.PublicReplay
	waitFor(t, "the replay created", 30*time.Second, func() bool {
		var err error
		r, err = one.api().CreateReplay(ctx, schemas.ReplayRequest{WebhookIDs: []string{hook.ID},
			From: &schemas.ReplayPosition{Time: client.Ptr(time.Now().Add(-time.Hour))}, DryRun: true})
		return err == nil
	})
	runs := regexp.MustCompile(`msg="replay running".* replay_id=` + r.ID)
	var owner, other *process
	waitFor(t, "an API process to run the replay", 30*time.Second, func() bool {
		for _, p := range []*process{one, two} {
			if runs.MatchString(p.logs()) {
				owner = p
			}
		}
		return owner != nil
	})
	other = one
	if owner == one {
		other = two
	}
	owner.cmd.Process.Kill()
	<-owner.done
	if got, err := other.api().Replay(ctx, r.ID); err != nil || got.State != schemas.ReplayRunning {
		t.Fatalf("the replay was over before its runner was killed (%+v, %v): make it longer", got, err)
	}
	waitFor(t, "the other API process to finish the replay", 90*time.Second, func() bool {
		got, err := other.api().Replay(ctx, r.ID)
		return err == nil && got.State == schemas.ReplayDone
	})
	got, err := other.api().Replay(ctx, r.ID)
	fatalIf(t, err)
	if !runs.MatchString(other.logs()) || got.Scanned != n || got.Matched != n {
		t.Fatalf("after the handover: %+v, want %d scanned and matched, run by the survivor", got, n)
	}
}

// TestASenderWithAnotherKeyHoldsTheWorkAndSaysSo: a sender whose
// --secrets-key is not the one the webhooks were sealed with cannot read
// them: it holds their jobs (no request, nothing failed, nothing
// committed), and its /readyz answers 503 naming the webhook; a sender
// given the right key then delivers every one. (Before, it dropped them as
// jobs of an unknown webhook and committed them: 3,000 of 3,000 events
// lost, both processes ready.)
func TestASenderWithAnotherKeyHoldsTheWorkAndSaysSo(t *testing.T) {
	addr := freeAddr(t)
	startBroker(t, t.TempDir(), addr)
	front := startServe(t, "--data-dir", t.TempDir(), "--kafka-brokers", addr, "--secrets-key", testKey, "--stages", "api,matcher,projector")
	other := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	wrong := startServe(t, "--data-dir", t.TempDir(), "--kafka-brokers", addr, "--secrets-key", other, "--stages", "sender")
	recv := newReceiver(t, "mismatch-secret")
	hook := createHook(t, front, schemas.WebhookInput{Name: client.Ptr("m"), URL: client.Ptr(recv.URL),
		Secret: client.Ptr("mismatch-secret"), Events: client.Ptr([]string{"ticket.*"})})
	const n = 5
	for i := range n {
		_, err := front.api().PublishEvents(context.Background(), schemas.Event{ID: fmt.Sprint("m-", i), Resource: "ticket", Trigger: "create", ResourceID: fmt.Sprint("T-", i)})
		fatalIf(t, err)
	}
	for deadline, last := time.Now().Add(30*time.Second), ""; ; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s the wrong-key sender's /readyz does not name the webhook: %s", last)
		}
		resp, err := http.Get(wrong.base + "/readyz")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if last = fmt.Sprint(resp.StatusCode, " ", string(body)); resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), hook.ID) {
			break
		}
	}
	metrics := string(wrong.call(t, "GET", "/metrics", nil, 200))
	if !strings.Contains(metrics, "hookline_webhooks_unreadable 1") {
		t.Fatalf("/metrics of the wrong-key sender lacks hookline_webhooks_unreadable 1")
	}
	time.Sleep(2 * time.Second) // the jobs have been read by now
	if _, count, _ := recv.snapshot(); count != 0 {
		t.Fatalf("the wrong-key sender sent %d requests", count)
	}
	if failed := deliveriesOf(t, front, hook.ID, client.DeliveryQuery{State: "failed"}).Data; len(failed) != 0 {
		t.Fatalf("%d deliveries failed while the sender could not read their webhook", len(failed))
	}
	wrong.stop(t)
	startServe(t, "--data-dir", t.TempDir(), "--kafka-brokers", addr, "--secrets-key", testKey, "--stages", "sender")
	waitFor(t, "every event delivered by the sender with the right key", 60*time.Second, func() bool {
		got, _, _ := recv.snapshot()
		return len(got) >= n
	})
	if _, _, failures := recv.snapshot(); len(failures) > 0 {
		t.Fatalf("the receiver refused deliveries: %v", failures)
	}
}

// TestTheSameEventTwiceIsDeliveredOnce: a producer that publishes an
// event again after a timeout (same id) makes one delivery, not a second
// one under a new webhook-id that its receiver could not de-duplicate.
// Through the API the repeat is not published; written straight to
// hookline.events (the API never saw it) it is delivered again under the
// same webhook-id. And an Idempotency-Key's answer outlives a restart.
func TestTheSameEventTwiceIsDeliveredOnce(t *testing.T) {
	kafkaAddr := freeAddr(t)
	args := []string{"--data-dir", t.TempDir(), "--kafka-addr", kafkaAddr}
	p := startServe(t, args...)
	recv := newReceiver(t, "once-secret")
	createHook(t, p, schemas.WebhookInput{Name: client.Ptr("once"), URL: client.Ptr(recv.URL),
		Secret: client.Ptr("once-secret"), Events: client.Ptr([]string{"ticket.*"})})
	ev := schemas.Event{ID: "retried-1", Resource: "ticket", Trigger: "create", ResourceID: "T-1",
		OccurredAt: time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)}
	for range 2 {
		_, err := p.api().PublishEvents(context.Background(), ev)
		fatalIf(t, err)
	}
	_, err := p.api().PublishEvents(context.Background(), schemas.Event{ID: "after-1", Resource: "ticket", Trigger: "create", ResourceID: "T-1"})
	fatalIf(t, err)
	waitFor(t, "the event after", 30*time.Second, func() bool { _, n, _ := recv.snapshot(); return n >= 2 })
	time.Sleep(time.Second)
	if got, n, failures := recv.snapshot(); n != 2 || len(got) != 2 || len(failures) > 0 {
		t.Fatalf("the receiver got %d requests (%d delivery ids, refused %v); want 2: the event once and the one after", n, len(got), failures)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.DefaultProduceTopic(schemas.TopicEvents))
	fatalIf(t, err)
	defer cl.Close()
	value, err := json.Marshal(ev)
	fatalIf(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fatalIf(t, cl.ProduceSync(ctx, &kgo.Record{Key: []byte(ev.ResourceID), Value: value}).FirstErr())
	waitFor(t, "the repeat written to the topic", 30*time.Second, func() bool { _, n, _ := recv.snapshot(); return n >= 3 })
	if got, n, _ := recv.snapshot(); len(got) != 2 {
		t.Fatalf("the repeat written to the topic came under a new webhook-id: %d requests, %d ids, want 2 ids", n, len(got))
	}

	create := func() (string, http.Header) {
		t.Helper()
		body := fmt.Sprintf(`{"name":"keyed","url":%q}`, recv.URL)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/v1/webhooks", strings.NewReader(body))
		fatalIf(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "create-keyed")
		resp, err := http.DefaultClient.Do(req)
		fatalIf(t, err)
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		fatalIf(t, err)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create with an Idempotency-Key: %d %s", resp.StatusCode, got)
		}
		return string(got), resp.Header
	}
	first, _ := create()
	p.stop(t)
	p = startServe(t, args...)
	again, header := create()
	if again != first || header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("after a restart the key's retry was answered %s (%v), want the first answer %s", again, header, first)
	}
	var hooks struct{ Data []schemas.PublicWebhook }
	fatalIf(t, p.api().Do(ctx, http.MethodGet, "/v1/webhooks", nil, &hooks))
	if len(hooks.Data) != 2 {
		t.Fatalf("%d webhooks after a keyed create retried across a restart, want 2", len(hooks.Data))
	}
}
