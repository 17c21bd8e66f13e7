package sender_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/sender"
	"github.com/hookline/hookline/schemas"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestStageAttemptRecordsStayUnderTheLimit: a retry's record does not
// repeat the request body, and an attempt that would pass the size limit
// (a large body and a large answer) is written without its request body,
// saying so, instead of wedging the outbox; the jobs after it go on.
func TestStageAttemptRecordsStayUnderTheLimit(t *testing.T) {
	const limit = 32 << 10
	answer := strings.Repeat("a", 20<<10)
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/flaky" && calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(answer))
	}))
	defer srv.Close()
	cfg := testStageConfig()
	cfg.HTTP.MaxResponseBody = 64 << 10
	e := newStageEnv(t, cfg, func(c *broker.Config) { c.MaxMessageBytes = limit })
	e.hooks.add("big", srv.URL+"/big")
	e.hooks.add("flaky", srv.URL+"/flaky")

	w := e.b.Writer(schemas.TopicDeliveries, nil)
	defer w.Close()
	payload := json.RawMessage(fmt.Sprintf(`{"blob":%q}`, strings.Repeat("x", 20<<10)))
	big := e.publishPayload(w, "big", 1, payload)[0]
	after := e.publishWith(w, "big", 1)[0]
	flaky := e.publishWith(w, "flaky", 1)[0]

	a := e.waitState(big, schemas.StateSucceeded, 20*time.Second)
	if a.RequestBody != "" || !strings.Contains(a.Error, "request body of") || len(a.ResponseBody) != len(answer) {
		t.Fatalf("big attempt: body %d bytes, error %q, answer %d bytes; want the request body left out, said, and the answer kept",
			len(a.RequestBody), a.Error, len(a.ResponseBody))
	}
	e.waitState(after, schemas.StateSucceeded, 20*time.Second)

	e.waitState(flaky, schemas.StateSucceeded, 20*time.Second)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, att := range e.attempts[flaky] {
		if hasBody := att.RequestBody != ""; hasBody != (att.N == 1) {
			t.Errorf("attempt %d carries a body: %v; want only the first to", att.N, hasBody)
		}
	}
}

// TestASecondSenderTakesOverWhenOneStopsAbruptly: two sender stages share
// the consumer groups; one is stopped with no time to drain (its jobs in
// flight are abandoned, uncommitted); the other takes its partitions and
// every delivery succeeds.
func TestASecondSenderTakesOverWhenOneStopsAbruptly(t *testing.T) {
	var served atomic.Int64
	var slow atomic.Bool // while set, a request takes 200 ms: work is left at the stop
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if slow.Load() {
			time.Sleep(200 * time.Millisecond)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}))
	defer srv.Close()
	cfg := testStageConfig()
	e := newStageEnv(t, cfg) // the first sender
	abrupt := cfg
	abrupt.DrainTimeout = time.Nanosecond
	reg := prometheus.NewRegistry()
	abrupt.Registerer = reg
	second, err := sender.NewStage(e.b, e.hooks, abrupt, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stopSecond := context.WithCancel(context.Background())
	secondDone := make(chan error, 1)
	go func() { secondDone <- second.Run(ctx) }()

	var ids []string
	for i := range 6 {
		id := fmt.Sprint("w", i)
		e.hooks.add(id, srv.URL)
		ids = append(ids, e.publish(id, 100)...)
	}
	// Both have work: the second has made attempts (it may join the group
	// after the first sent the first jobs: keep publishing until it has),
	// and jobs are left.
	attempts := func() float64 {
		mfs, _ := reg.Gather()
		sum := 0.0
		for _, mf := range mfs {
			if mf.GetName() == "hookline_sender_attempts_total" {
				for _, m := range mf.GetMetric() {
					sum += m.GetCounter().GetValue()
				}
			}
		}
		return sum
	}
	for deadline := time.Now().Add(20 * time.Second); attempts() < 10; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second sender made no attempts: it got no partition")
		}
		for i := range 6 {
			ids = append(ids, e.publish(fmt.Sprint("w", i), 5)...)
		}
	}
	// More work for both, and stop while it is under way: the endpoint
	// slows down so that the stop finds jobs in hand however fast the
	// machine sent the first ones.
	slow.Store(true)
	for i := range 6 {
		ids = append(ids, e.publish(fmt.Sprint("w", i), 100)...)
	}
	time.Sleep(50 * time.Millisecond)
	if served.Load() >= int64(len(ids)) {
		t.Fatal("every job was sent before the stop: the test proves nothing")
	}
	stopSecond() // abruptly: what it holds is abandoned
	if err := <-secondDone; err != nil {
		t.Fatal(err)
	}
	slow.Store(false)
	for _, id := range ids {
		e.waitState(id, schemas.StateSucceeded, 60*time.Second)
	}
	t.Logf("%d deliveries, %d requests", len(ids), served.Load())
}

// TestOneSenderOwnsAnEndpointsFirstAttemptsAndRetries: with two sender
// replicas, every request to one endpoint, first attempts and retries
// alike, comes from one of them: its breaker, limit and rate limiter see
// all of the endpoint's traffic.
func TestOneSenderOwnsAnEndpointsFirstAttemptsAndRetries(t *testing.T) {
	var mu sync.Mutex
	agents := map[string]map[string]bool{} // webhook → user agents
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hook := strings.TrimPrefix(r.URL.Path, "/")
		mu.Lock()
		if agents[hook] == nil {
			agents[hook] = map[string]bool{}
		}
		agents[hook][r.UserAgent()] = true
		mu.Unlock()
		requests.Add(1)
		if r.Header.Get("X-Hookline-Attempt") == "1" { // every first attempt fails: retries
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	cfg := testStageConfig()
	cfg.HTTP.UserAgentVersion = "first"
	e := newStageEnv(t, cfg)
	second := cfg
	second.HTTP.UserAgentVersion = "second"
	stage2, err := sender.NewStage(e.b, e.hooks, second, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stage2.Run(ctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	time.Sleep(2 * time.Second) // both in the group

	var ids []string
	for i := range 12 {
		id := fmt.Sprint("w", i)
		e.hooks.add(id, srv.URL+"/"+id)
		ids = append(ids, e.publish(id, 20)...)
	}
	for _, id := range ids {
		e.waitState(id, schemas.StateSucceeded, 60*time.Second)
	}
	mu.Lock()
	defer mu.Unlock()
	used := map[string]bool{}
	for hook, as := range agents {
		if len(as) != 1 {
			t.Errorf("webhook %s got requests from %d senders (%v), want one", hook, len(as), as)
		}
		for a := range as {
			used[a] = true
		}
	}
	if len(used) != 2 {
		t.Errorf("requests came from %v: both senders should have had endpoints, or the test proves nothing", used)
	}
}
