package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookline/hookline/client"
	"github.com/hookline/hookline/projections/storetest"
	"github.com/hookline/hookline/schemas"
	"github.com/hookline/hookline/signing"
)

// binary is built once per test run by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hookline-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "hookline")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building hookline:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is a running `hookline serve`.
type process struct {
	cmd    *exec.Cmd
	base   string
	stderr *bytes.Buffer
	log    *lockedWriter // guards stderr
	done   chan error
}

// logs returns what serve has written to stderr so far.
func (p *process) logs() string {
	p.log.mu.Lock()
	defer p.log.mu.Unlock()
	return p.stderr.String()
}

var readyLine = regexp.MustCompile(`hookline ready: (http://\S+)`)

func startServe(t *testing.T, args ...string) *process {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--http-addr", "127.0.0.1:0", "--partitions", "2", "--allow-private-targets"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	p.log = &lockedWriter{w: p.stderr}
	cmd.Stderr = p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m[1]
			}
		}
	}()
	go func() { p.done <- cmd.Wait() }()
	select {
	case p.base = <-ready:
	case err := <-p.done:
		t.Fatalf("hookline serve exited before ready: %v\n%s", err, p.stderr)
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("hookline serve not ready in 90s\n%s", p.stderr)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// stop sends SIGTERM and requires a clean exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("hookline serve exited with %v after SIGTERM\n%s", err, p.stderr)
		}
	case <-time.After(60 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("hookline serve did not stop within 60s of SIGTERM\n%s", p.stderr)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// api is a typed client of the process's API (package client): the flows
// of these tests go through it; call checks the raw contract (statuses).
func (p *process) api() *client.Client { return client.New(p.base, "", nil) }

// fatalIf fails the test on err.
func fatalIf(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (p *process) call(t *testing.T, method, path string, body any, want int) []byte {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d, want %d: %s", method, path, resp.StatusCode, want, out)
	}
	return out
}

// receiver is a customer endpoint that verifies every delivery.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   map[string][]byte // by webhook-id (delivery id)
	count    int
	failures []string
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{bodies: map[string][]byte{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := signing.VerifyRequest(secret, req, time.Minute)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.count++
		if err != nil {
			r.failures = append(r.failures, err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if req.Header.Get("X-Hookline-Event") == "" || req.Header.Get("X-Hookline-Attempt") != "1" ||
			!strings.HasPrefix(req.Header.Get("User-Agent"), "hookline/") {
			r.failures = append(r.failures, fmt.Sprintf("missing headers: %v", req.Header))
		}
		r.bodies[req.Header.Get("webhook-id")] = body
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) snapshot() (map[string][]byte, int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]byte, len(r.bodies))
	for k, v := range r.bodies {
		out[k] = v
	}
	return out, r.count, append([]string(nil), r.failures...)
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// deliveriesOf reads one page of a webhook's deliveries.
func deliveriesOf(t *testing.T, p *process, webhookID string, q client.DeliveryQuery) client.DeliveryPage {
	t.Helper()
	page, err := p.api().Deliveries(context.Background(), webhookID, q)
	fatalIf(t, err)
	return page
}

// createHook creates a webhook.
func createHook(t *testing.T, p *process, in schemas.WebhookInput) schemas.PublicWebhook {
	t.Helper()
	w, err := p.api().CreateWebhook(context.Background(), in)
	fatalIf(t, err)
	return w
}

func TestServeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Run("embedded store", func(t *testing.T) { endToEnd(t) })
	t.Run("clickhouse store", func(t *testing.T) {
		endToEnd(t, "--clickhouse-dsn", storetest.ClickHouseDatabase(t))
	})
}

// endToEnd registers a webhook, publishes events, checks the signed
// deliveries and the history, restarts and checks nothing was lost or sent
// twice.
func endToEnd(t *testing.T, args ...string) {
	dataDir := t.TempDir()
	args = append([]string{"--data-dir", dataDir}, args...)
	const secret = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM="
	recv := newReceiver(t, secret)
	p := startServe(t, args...)

	p.call(t, "GET", "/healthz", nil, 200)
	p.call(t, "GET", "/readyz", nil, 200)

	var hook struct {
		ID        string `json:"id"`
		HasSecret bool   `json:"has_secret"`
		Secret    string `json:"secret"`
	}
	out := p.call(t, "POST", "/v1/webhooks", map[string]any{
		"name": "tickets", "url": recv.URL, "secret": secret, "events": []string{"ticket.*"},
	}, 201)
	json.Unmarshal(out, &hook)
	if hook.ID == "" || !hook.HasSecret || hook.Secret != "" {
		t.Fatalf("create answered %s", out)
	}
	// A webhook that must not fire, and a refused field.
	p.call(t, "POST", "/v1/webhooks", map[string]any{"name": "orders", "url": recv.URL, "events": []string{"order.*"}}, 201)
	p.call(t, "POST", "/v1/webhooks", map[string]any{"name": "x", "url": recv.URL, "condition": "data.a =="}, 400)
	p.call(t, "POST", "/v1/events", map[string]any{"resource": "ticket"}, 400)

	const n = 20
	var events []map[string]any
	for i := 0; i < n; i++ {
		events = append(events, map[string]any{
			"resource": "ticket", "trigger": "update", "resource_id": fmt.Sprintf("T-%d", i%3),
			"data": map[string]any{"seq": i}, "context": map[string]any{"actor": "admin@example.com"},
		})
	}
	events = append(events, map[string]any{"resource": "shop", "trigger": "paid", "resource_id": "S-1"})
	var published struct {
		IDs []string `json:"ids"`
	}
	json.Unmarshal(p.call(t, "POST", "/v1/events", events, 202), &published)
	if len(published.IDs) != n+1 {
		t.Fatalf("published ids = %v", published.IDs)
	}

	waitFor(t, "20 signed deliveries", 60*time.Second, func() bool {
		bodies, _, _ := recv.snapshot()
		return len(bodies) >= n
	})
	bodies, count, failures := recv.snapshot()
	if len(failures) > 0 {
		t.Fatalf("receiver refused deliveries: %v", failures)
	}
	if count != n || len(bodies) != n {
		t.Fatalf("receiver got %d requests for %d deliveries, want %d", count, len(bodies), n)
	}
	seqByResource := map[string][]float64{}
	for id, body := range bodies {
		var env struct {
			ID             string             `json:"id"`
			EventID        string             `json:"event_id"`
			EventType      string             `json:"event_type"`
			ResourceID     string             `json:"resource_id"`
			WebhookID      string             `json:"webhook_id"`
			Data           map[string]float64 `json:"data"`
			CurrentContext map[string]string  `json:"current_context"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			t.Fatal(err)
		}
		if env.ID != id || env.EventType != "ticket.updated" || env.WebhookID != hook.ID || env.CurrentContext["actor"] != "admin@example.com" {
			t.Fatalf("delivery %s has body %s", id, body)
		}
		seqByResource[env.ResourceID] = append(seqByResource[env.ResourceID], env.Data["seq"])
	}
	if len(seqByResource) != 3 {
		t.Fatalf("deliveries per resource = %v", seqByResource)
	}

	// History: every delivery, newest first, paginated.
	var ids []string
	cursor := ""
	waitFor(t, "history of 20 deliveries", 30*time.Second, func() bool {
		ids, cursor = nil, ""
		for page := 0; page < 10; page++ {
			list, err := p.api().Deliveries(context.Background(), hook.ID, client.DeliveryQuery{Limit: 7, Cursor: cursor})
			fatalIf(t, err)
			for _, d := range list.Data {
				if d.State != "succeeded" || d.LastStatusCode != 200 || d.AttemptCount != 1 {
					return false
				}
				ids = append(ids, d.ID)
			}
			if cursor = list.NextCursor; cursor == "" {
				break
			}
		}
		return len(ids) == n
	})
	for i := 1; i < len(ids); i++ {
		if ids[i] >= ids[i-1] {
			t.Fatalf("history not newest first: %v", ids)
		}
	}
	detail, err := p.api().Delivery(context.Background(), ids[0])
	fatalIf(t, err)
	if detail.ID != ids[0] || len(detail.Attempts) != 1 || detail.Attempts[0].StatusCode != 200 || detail.Request == nil ||
		detail.Request.Body != string(bodies[ids[0]]) {
		t.Fatalf("delivery detail = %+v", detail)
	}
	// The history keeps the signatures as sent (a receiver's failed check
	// can be compared with them): they verify the stored body.
	stored := http.Header{}
	for k, v := range detail.Request.Headers {
		stored.Set(k, v)
	}
	if err := signing.Verify(secret, stored, []byte(detail.Request.Body), time.Now(), time.Hour); err != nil ||
		!strings.HasPrefix(stored.Get("X-Hookline-Signature-256"), "sha256=") {
		t.Fatalf("the stored request's signatures do not verify its body (%v): %v", err, detail.Request.Headers)
	}

	metrics := string(p.call(t, "GET", "/metrics", nil, 200))
	for _, want := range []string{
		`hookline_matcher_events_total 21`, `hookline_matcher_dead_lettered_total 0`,
		`hookline_sender_attempts_total{class="2xx",state="succeeded"} 20`,
		`hookline_projector_inserted_total`, `hookline_consumer_lag{group="hookline-matcher",partition="0",topic="hookline.events"}`,
		`hookline_retries_waiting 0`, `hookline_sender_attempt_duration_seconds_bucket`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	p.stop(t)

	// Restart on the same data dir: webhooks and history are still there,
	// and nothing is delivered a second time.
	p = startServe(t, args...)
	out = p.call(t, "GET", "/v1/webhooks/"+hook.ID, nil, 200)
	if !strings.Contains(string(out), `"tickets"`) {
		t.Fatalf("webhook after restart: %s", out)
	}
	list, err := p.api().Deliveries(context.Background(), hook.ID, client.DeliveryQuery{Limit: 100})
	fatalIf(t, err)
	if len(list.Data) != n {
		t.Fatalf("history after restart has %d deliveries, want %d", len(list.Data), n)
	}
	p.call(t, "POST", "/v1/events", map[string]any{"resource": "ticket", "trigger": "create", "resource_id": "T-new"}, 202)
	waitFor(t, "a delivery after restart", 60*time.Second, func() bool {
		b, _, _ := recv.snapshot()
		return len(b) == n+1
	})
	_, count, _ = recv.snapshot()
	if count != n+1 {
		t.Fatalf("receiver got %d requests after restart, want %d (a delivery was repeated)", count, n+1)
	}
	p.stop(t)
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	out, err := exec.Command(binary, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	for _, flag := range []string{"-data-dir", "-http-addr", "-kafka-brokers", "-clickhouse-dsn", "-api-tokens", "-partitions", "-retention-days", "-stages", "-drain-timeout", "HOOKLINE_"} {
		if !strings.Contains(string(out), flag) {
			t.Errorf("--help does not mention %s", flag)
		}
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"public address without tokens", []string{"--http-addr", "0.0.0.0:0"}, nil, "loopback"},
		{"bad tokens", []string{"--api-tokens", "nocolon"}, nil, "token:tenant"},
		{"unknown stage", []string{"--stages", "api,frobber"}, nil, "unknown stage"},
		{"bad env value", nil, []string{"HOOKLINE_PARTITIONS=many"}, "HOOKLINE_PARTITIONS"},
		{"unknown flag", []string{"--frob"}, nil, "frob"},
		{"negative response cap", []string{"--max-response-body", "-1"}, nil, "MaxResponseBody"},
		{"bad retry schedule", []string{"--retry-schedule", "1m,10s"}, nil, "retry-schedule"},
		{"public debug address", []string{"--debug-addr", "0.0.0.0:6060"}, nil, "loopback"},
		{"memory limit under the queue", []string{"--memory-limit", "100000000"}, nil, "--memory-limit 100000000 is not over --max-queue-bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binary, append([]string{"serve", "--data-dir", t.TempDir()}, tt.args...)...)
			cmd.Env = append(os.Environ(), tt.env...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("serve accepted bad config: %s", out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("error does not say %q: %s", tt.want, out)
			}
		})
	}
}

// TestServeDrainsInFlightDeliveriesOnSIGTERM: a delivery in flight when
// SIGTERM arrives is finished and recorded before the process exits, and is
// not sent again after a restart.
func TestServeDrainsInFlightDeliveriesOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	var mu sync.Mutex
	requests := 0
	inFlight := make(chan struct{}, 10)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		mu.Unlock()
		inFlight <- struct{}{}
		time.Sleep(1500 * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer slow.Close()

	dataDir := t.TempDir()
	p := startServe(t, "--data-dir", dataDir)
	hook := createHook(t, p, schemas.WebhookInput{Name: client.Ptr("slow"), URL: client.Ptr(slow.URL)})
	p.call(t, "POST", "/v1/events", map[string]any{"resource": "ticket", "trigger": "create", "resource_id": "T-1"}, 202)
	select {
	case <-inFlight:
	case <-time.After(60 * time.Second):
		t.Fatal("the delivery never reached the receiver")
	}
	p.stop(t) // returns only after a clean exit

	p = startServe(t, "--data-dir", dataDir)
	defer p.stop(t)
	var list client.DeliveryPage
	waitFor(t, "the drained delivery in the history", 30*time.Second, func() bool {
		list = deliveriesOf(t, p, hook.ID, client.DeliveryQuery{})
		return len(list.Data) == 1
	})
	if d := list.Data[0]; d.State != "succeeded" || d.LastStatusCode != 204 {
		t.Fatalf("drained delivery = %+v, want succeeded with 204", d)
	}
	time.Sleep(2 * time.Second) // time for a wrongful resend to arrive
	mu.Lock()
	defer mu.Unlock()
	if requests != 1 {
		t.Fatalf("receiver got %d requests, want 1: the in-flight delivery was sent again", requests)
	}
}

// TestServeSurvivesKill: after SIGKILL (no chance to save anything) a
// restart still has every webhook and every delivery, and events published
// after the restart are delivered.
func TestServeSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	recv := newReceiver(t, "kill-test-secret")
	dataDir := t.TempDir()
	p := startServe(t, "--data-dir", dataDir)
	hook := createHook(t, p, schemas.WebhookInput{Name: client.Ptr("k"), URL: client.Ptr(recv.URL), Secret: client.Ptr("kill-test-secret")})
	for i := 0; i < 5; i++ {
		p.call(t, "POST", "/v1/events", map[string]any{"resource": "ticket", "trigger": "create", "resource_id": fmt.Sprint("T-", i)}, 202)
	}
	var list client.DeliveryPage
	waitFor(t, "5 deliveries in the history", 60*time.Second, func() bool {
		list = deliveriesOf(t, p, hook.ID, client.DeliveryQuery{})
		return len(list.Data) == 5
	})
	p.cmd.Process.Kill()
	<-p.done

	p = startServe(t, "--data-dir", dataDir)
	defer p.stop(t)
	p.call(t, "GET", "/v1/webhooks/"+hook.ID, nil, 200)
	list = deliveriesOf(t, p, hook.ID, client.DeliveryQuery{})
	if len(list.Data) != 5 {
		t.Fatalf("history after SIGKILL has %d deliveries, want 5", len(list.Data))
	}
	p.call(t, "POST", "/v1/events", map[string]any{"resource": "ticket", "trigger": "create", "resource_id": "T-after"}, 202)
	waitFor(t, "6 distinct deliveries at the receiver", 60*time.Second, func() bool {
		b, _, _ := recv.snapshot()
		return len(b) == 6
	})
	if _, _, failures := recv.snapshot(); len(failures) > 0 {
		t.Fatalf("receiver refused deliveries: %v", failures)
	}
}

// TestServeCompletesPendingRetriesAfterKill: deliveries whose first
// attempts failed wait on a retry topic; the process is killed (SIGKILL)
// while they wait; after a restart every one of them is delivered, and the
// history shows the failed attempts and the success.
func TestServeCompletesPendingRetriesAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	var mu sync.Mutex
	seen := map[string]int{}
	succeeded := map[string]bool{}
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		id := r.Header.Get("webhook-id")
		seen[id]++
		if seen[id] == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		succeeded[id] = true
	}))
	defer flaky.Close()
	count := func() (attempted, done int) {
		mu.Lock()
		defer mu.Unlock()
		return len(seen), len(succeeded)
	}

	dataDir := t.TempDir()
	args := []string{"--data-dir", dataDir, "--retry-schedule", "3s,6s", "--breaker-failures", "1000"}
	p := startServe(t, args...)
	hook := createHook(t, p, schemas.WebhookInput{Name: client.Ptr("flaky"), URL: client.Ptr(flaky.URL)})
	const n = 10
	for i := 0; i < n; i++ {
		p.call(t, "POST", "/v1/events", map[string]any{"resource": "ticket", "trigger": "create", "resource_id": fmt.Sprint("T-", i)}, 202)
	}
	waitFor(t, "every first attempt", 30*time.Second, func() bool { a, _ := count(); return a == n })
	// Let the sender commit the jobs that now wait on the retry topic
	// (commits run every 200 ms; the retries are due after 2.4 to 3 s).
	time.Sleep(time.Second)
	if _, done := count(); done != 0 {
		t.Fatalf("%d deliveries succeeded before their retry was due", done)
	}
	p.cmd.Process.Kill()
	<-p.done

	p = startServe(t, args...)
	defer p.stop(t)
	waitFor(t, "every delivery after the restart", 60*time.Second, func() bool { _, done := count(); return done == n })
	var list client.DeliveryPage
	waitFor(t, "the history of the retried deliveries", 30*time.Second, func() bool {
		list = deliveriesOf(t, p, hook.ID, client.DeliveryQuery{State: "succeeded"})
		return len(list.Data) == n
	})
	for _, d := range list.Data {
		if d.AttemptCount != 2 {
			t.Fatalf("delivery %s has %d attempts, want 2 (503, then 200)", d.ID, d.AttemptCount)
		}
	}
}

// TestServeRefusesPrivateTargetsByDefault: without --allow-private-targets a
// webhook pointing at 127.0.0.1 gets no request; its delivery fails at once
// with an error that says why.
func TestServeRefusesPrivateTargetsByDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	hits := 0
	var mu sync.Mutex
	local := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	defer local.Close()
	p := startServe(t, "--data-dir", t.TempDir(), "--allow-private-targets=false")
	defer p.stop(t)
	var hook struct {
		ID string `json:"id"`
	}
	url := strings.Replace(local.URL, "127.0.0.1", "localhost", 1) // a name that resolves to loopback
	json.Unmarshal(p.call(t, "POST", "/v1/webhooks", map[string]any{"name": "local", "url": url}, 201), &hook)
	p.call(t, "POST", "/v1/events", map[string]any{"resource": "ticket", "trigger": "create", "resource_id": "T-1"}, 202)
	var list client.DeliveryPage
	waitFor(t, "the refused delivery in the history", 30*time.Second, func() bool {
		list = deliveriesOf(t, p, hook.ID, client.DeliveryQuery{})
		return len(list.Data) == 1
	})
	if list.Data[0].State != "failed" || list.Data[0].AttemptCount != 1 {
		t.Fatalf("delivery to a private address = %+v, want failed after one attempt", list.Data[0])
	}
	out := p.call(t, "GET", "/v1/deliveries/"+list.Data[0].ID, nil, 200)
	if !strings.Contains(string(out), "loopback") || !strings.Contains(string(out), "allow-private-targets") {
		t.Fatalf("the attempt's error does not say why: %s", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 {
		t.Fatalf("the private endpoint got %d requests", hits)
	}
}

// TestServeRebuildsOpenBatchesAfterKill: events wait in an open batch when
// the process is killed; after the restart the batch is rebuilt from the
// topic and every event is delivered, in JSON-array bodies that keep each
// event's id.
func TestServeRebuildsOpenBatchesAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	var mu sync.Mutex
	got := map[string]int{} // event id → times received
	bodies := 0
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch []struct {
			EventID string `json:"event_id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		bodies++
		for _, e := range batch {
			got[e.EventID]++
		}
	}))
	defer recv.Close()

	dataDir := t.TempDir()
	p := startServe(t, "--data-dir", dataDir)
	p.call(t, "POST", "/v1/webhooks", map[string]any{"name": "batched", "url": recv.URL,
		"batching": map[string]any{"mode": "any", "wait_seconds": 3, "max_items": 100}}, 201)
	var ids []string
	for i := 0; i < 5; i++ {
		var out struct {
			IDs []string `json:"ids"`
		}
		json.Unmarshal(p.call(t, "POST", "/v1/events", map[string]any{"resource": "ticket", "trigger": "update", "resource_id": fmt.Sprint("T-", i)}, 202), &out)
		ids = append(ids, out.IDs...)
	}
	time.Sleep(500 * time.Millisecond) // matched, batch open, not due
	mu.Lock()
	early := bodies
	mu.Unlock()
	if early != 0 {
		t.Fatalf("a batch was sent %d time(s) before wait_seconds", early)
	}
	p.cmd.Process.Kill()
	<-p.done

	p = startServe(t, "--data-dir", dataDir)
	defer p.stop(t)
	waitFor(t, "every batched event after the restart", 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if got[id] == 0 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	if bodies > 2 {
		t.Fatalf("5 events came in %d bodies, want one batch", bodies)
	}
}

// TestServeRedelivery: deliveries fail while the endpoint is down; one is
// redelivered by id, the process restarts, and redeliver-failed sends the
// rest once each, never one that already succeeded.
func TestServeRedelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	var mu sync.Mutex
	down := true
	got := map[string]string{} // webhook-id → body
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			w.WriteHeader(http.StatusBadRequest) // fails at once, no retry
			return
		}
		b, _ := io.ReadAll(r.Body)
		got[r.Header.Get("webhook-id")] = string(b)
	}))
	defer recv.Close()
	dataDir := t.TempDir()
	p := startServe(t, "--data-dir", dataDir)
	ctx := context.Background()
	hook, err := p.api().CreateWebhook(ctx, schemas.WebhookInput{Name: client.Ptr("r"), URL: client.Ptr(recv.URL)})
	fatalIf(t, err)
	for i := 0; i < 3; i++ {
		_, err := p.api().PublishEvents(ctx, schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: fmt.Sprint("T-", i)})
		fatalIf(t, err)
	}
	var list client.DeliveryPage
	waitFor(t, "3 failed deliveries", 30*time.Second, func() bool {
		list, err = p.api().Deliveries(ctx, hook.ID, client.DeliveryQuery{State: "failed"})
		fatalIf(t, err)
		return len(list.Data) == 3
	})
	first := list.Data[0].ID
	mu.Lock()
	down = false
	mu.Unlock()

	redelivery, err := p.api().Redeliver(ctx, first, false)
	fatalIf(t, err)
	if redelivery.RedeliveryOf != first || redelivery.ID == first {
		t.Fatalf("redelivery = %+v", redelivery)
	}
	waitFor(t, "the redelivery to succeed", 30*time.Second, func() bool {
		d, err := p.api().Delivery(ctx, redelivery.ID)
		return err == nil && d.State == "succeeded"
	})
	p.stop(t)

	p = startServe(t, "--data-dir", dataDir)
	defer p.stop(t)
	result, err := p.api().RedeliverFailed(ctx, hook.ID, time.Time{}, time.Time{})
	fatalIf(t, err)
	if result.Count != 2 {
		t.Fatalf("redeliver-failed redelivered %d, want the 2 not yet redelivered", result.Count)
	}
	waitFor(t, "3 deliveries at the receiver", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 3
	})
	// Once the redeliveries are in the history, nothing is left to
	// redeliver: every failed delivery has a later one.
	waitFor(t, "the redeliveries in the history", 30*time.Second, func() bool {
		list, err = p.api().Deliveries(ctx, hook.ID, client.DeliveryQuery{State: "succeeded"})
		fatalIf(t, err)
		return len(list.Data) == 3
	})
	result, err = p.api().RedeliverFailed(ctx, hook.ID, time.Time{}, time.Time{})
	fatalIf(t, err)
	if result.Count != 0 {
		t.Fatalf("a second redeliver-failed redelivered %d, want 0", result.Count)
	}
}

// TestServeReplay: events published before a webhook existed are replayed
// into it from a time; a dry run counts without delivering.
func TestServeReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	recv := newReceiver(t, "replay-secret")
	p := startServe(t, "--data-dir", t.TempDir())
	defer p.stop(t)
	from := time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano)
	for i := 0; i < 6; i++ {
		p.call(t, "POST", "/v1/events", map[string]any{"resource": "ticket", "trigger": "update", "resource_id": fmt.Sprint("T-", i)}, 202)
	}
	p.call(t, "POST", "/v1/events", map[string]any{"resource": "order", "trigger": "paid", "resource_id": "O-1"}, 202)
	// The matcher has seen the events (and matched nothing) before the
	// webhook exists: only the replay delivers them.
	waitFor(t, "the matcher to read the 7 events", 30*time.Second, func() bool {
		return strings.Contains(string(p.call(t, "GET", "/metrics", nil, 200)), "hookline_matcher_events_total 7")
	})
	ctx := context.Background()
	hook, err := p.api().CreateWebhook(ctx, schemas.WebhookInput{Name: client.Ptr("late"), URL: client.Ptr(recv.URL),
		Secret: client.Ptr("replay-secret"), Events: client.Ptr([]string{"ticket.*"})})
	fatalIf(t, err)
	fromTime, err := time.Parse(time.RFC3339Nano, from)
	fatalIf(t, err)
	run := func(dry bool) schemas.PublicReplay {
		r, err := p.api().CreateReplay(ctx, schemas.ReplayRequest{WebhookIDs: []string{hook.ID},
			From: &schemas.ReplayPosition{Time: &fromTime}, DryRun: dry})
		fatalIf(t, err)
		waitFor(t, "the replay to finish", 30*time.Second, func() bool {
			r, err = p.api().Replay(ctx, r.ID)
			fatalIf(t, err)
			return r.State == "done"
		})
		return r
	}
	dry := run(true)
	if dry.Scanned != 7 || dry.Matched != 6 || dry.Enqueued != 0 {
		t.Fatalf("dry run = %+v, want 7 scanned, 6 matched, 0 enqueued", dry)
	}
	real := run(false)
	if real.Matched != 6 || real.Enqueued != 6 {
		t.Fatalf("replay = %+v, want 6 matched and enqueued", real)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, n, failures := recv.snapshot()
		if len(b) == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver has %d deliveries of 6 (%d requests, failures %v); replay %+v\nserve log:\n%s", len(b), n, failures, real, p.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	var list client.DeliveryPage
	waitFor(t, "the replayed deliveries in the history", 30*time.Second, func() bool {
		list, err = p.api().Deliveries(ctx, hook.ID, client.DeliveryQuery{})
		fatalIf(t, err)
		return len(list.Data) == 6
	})
	for _, d := range list.Data {
		if d.ReplayID != real.ID {
			t.Fatalf("delivery does not name the replay: %+v", d)
		}
	}
}
