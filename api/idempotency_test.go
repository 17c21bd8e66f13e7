package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
)

// post sends a POST with an Idempotency-Key; token "" sends none.
func (h *harness) post(path, token, key, body string) *httptest.ResponseRecorder {
	h.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Host = "127.0.0.1:8080"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	return rec
}

// wantFirstAnswer checks that a retry was answered with the first answer,
// marked replayed.
func wantFirstAnswer(t *testing.T, again, first *httptest.ResponseRecorder) {
	t.Helper()
	if again.Body.String() != first.Body.String() || again.Header().Get("Location") != first.Header().Get("Location") ||
		again.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the retry was answered %s (%v), want the first answer %s, replayed", again.Body, again.Header(), first.Body)
	}
}

// TestAnIdempotencyKeyGetsTheFirstAnswer: a POST sent again with the same
// Idempotency-Key (a client's retry after a timeout) gets the first
// answer and does nothing again: one webhook, one publish. The same key
// with another body is a 422; another tenant's key is its own; a failure
// (5xx) is not kept, so the retry is done. (Before, the header was
// ignored: two webhooks.)
func TestAnIdempotencyKeyGetsTheFirstAnswer(t *testing.T) {
	h := newHarness(t, twoTenants, nil)
	first := h.post("/v1/webhooks", "tok-acme", "k-1", validWebhook)
	mustStatus(t, first, http.StatusCreated)
	again := h.post("/v1/webhooks", "tok-acme", "k-1", validWebhook)
	mustStatus(t, again, http.StatusCreated)
	wantFirstAnswer(t, again, first)
	if n := len(h.hooks.events()); n != 1 {
		t.Fatalf("%d webhooks written for one key, want 1", n)
	}
	wantError(t, h.post("/v1/webhooks", "tok-acme", "k-1", strings.Replace(validWebhook, "crm", "other", 1)),
		http.StatusUnprocessableEntity, codeIdempotencyKeyReused, "")
	mustStatus(t, h.post("/v1/webhooks", "tok-globex", "k-1", validWebhook), http.StatusCreated)
	if n := len(h.hooks.events()); n != 2 {
		t.Fatalf("%d webhooks after another tenant's request with the same key, want 2", n)
	}

	event := `{"resource":"ticket","trigger":"create","resource_id":"T-1"}`
	h.events.err = errors.New("broker down")
	mustStatus(t, h.post("/v1/events", "tok-acme", "e-1", event), http.StatusServiceUnavailable)
	h.events.err = nil
	published := h.post("/v1/events", "tok-acme", "e-1", event)
	mustStatus(t, published, http.StatusAccepted)
	mustStatus(t, h.post("/v1/events", "tok-acme", "e-1", event), http.StatusAccepted)
	if n := len(h.events.published); n != 1 {
		t.Fatalf("%d events published for one key, want 1", n)
	}
	if long := strings.Repeat("k", 256); h.post("/v1/events", "tok-acme", long, event).Code != http.StatusBadRequest {
		t.Fatal("a key of 256 characters was taken")
	}
}

// TestTheSameEventIDIsPublishedOnce: an event published again with the
// same id by the same tenant (a producer's retry without a key) is not
// published again, so it is not delivered a second time under new
// delivery ids; the answer names it among the duplicates. Another
// tenant's event with that id is its own.
func TestTheSameEventIDIsPublishedOnce(t *testing.T) {
	h := newHarness(t, twoTenants, nil)
	event := `{"id":"ev-42","resource":"ticket","trigger":"create","resource_id":"T-1"}`
	mustStatus(t, h.do(http.MethodPost, "/v1/events", "tok-acme", event), http.StatusAccepted)
	rec := h.do(http.MethodPost, "/v1/events", "tok-acme", `[`+event+`,{"id":"ev-43","resource":"ticket","trigger":"create","resource_id":"T-1"}]`)
	mustStatus(t, rec, http.StatusAccepted)
	body := decodeBody[publishedBody](t, rec)
	if len(body.IDs) != 2 || len(body.Duplicates) != 1 || body.Duplicates[0] != "ev-42" {
		t.Fatalf("answer %+v, want both ids and ev-42 a duplicate", body)
	}
	mustStatus(t, h.do(http.MethodPost, "/v1/events", "tok-globex", event), http.StatusAccepted)
	var ids []string
	for _, ev := range h.events.published {
		ids = append(ids, ev.Tenant+"/"+ev.ID)
	}
	if want := "acme/ev-42,acme/ev-43,globex/ev-42"; strings.Join(ids, ",") != want {
		t.Fatalf("published %v, want %s", ids, want)
	}
}

// TestTheIdempotencyWindowEnds: past the windows (--dedupe-window, and the key window) an
// event id is published again, and a key is a new request.
func TestTheIdempotencyWindowEnds(t *testing.T) {
	h := newHarness(t, Config{DedupeWindow: time.Second, keyWindow: time.Second}, nil)
	event := `{"id":"ev-1","resource":"ticket","trigger":"create","resource_id":"T-1"}`
	mustStatus(t, h.post("/v1/events", "", "k", event), http.StatusAccepted)
	mustStatus(t, h.do(http.MethodPost, "/v1/events", "", event), http.StatusAccepted)
	if n := len(h.events.published); n != 1 {
		t.Fatalf("%d published within the window, want 1", n)
	}
	time.Sleep(1100 * time.Millisecond)
	mustStatus(t, h.post("/v1/events", "", "k", event), http.StatusAccepted)
	if n := len(h.events.published); n != 2 {
		t.Fatalf("%d published after the window, want 2", n)
	}
	if err := (Config{DedupeWindow: time.Millisecond}).Validate(); err == nil {
		t.Fatal("a window of 1 ms validated")
	}
}

// TestIdempotencyKeyAnswersOutliveTheProcess: an answer is kept on
// hookline.idempotency, so a retry that reaches another API process, or
// this one restarted (a new fold of the topic), gets the first answer and
// does nothing again; past the window the sweep removes it, and a fresh
// fold no longer has it. (Before, answers lived in one process's memory.)
func TestIdempotencyKeyAnswersOutliveTheProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, _ := startProducer(t, ctx, broker.Config{})
	var clock atomic.Int64
	clock.Store(t0.Add(time.Minute).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	process := func() *Answers {
		a := newAnswers(b, time.Hour, now, nil)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.Run(runCtx) }()
		t.Cleanup(func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("Answers.Run: %v", err)
			}
		})
		return a
	}

	first := newHarnessKeeping(t, twoTenants, nil, process())
	created := first.post("/v1/webhooks", "tok-acme", "k-1", validWebhook)
	mustStatus(t, created, http.StatusCreated)

	other := newHarnessKeeping(t, twoTenants, nil, process())
	again := other.post("/v1/webhooks", "tok-acme", "k-1", validWebhook)
	mustStatus(t, again, http.StatusCreated)
	wantFirstAnswer(t, again, created)
	if n := len(other.hooks.events()); n != 0 {
		t.Fatalf("another process created %d webhooks for a key answered already, want 0", n)
	}
	wantError(t, other.post("/v1/webhooks", "tok-acme", "k-1", strings.Replace(validWebhook, "crm", "other", 1)),
		http.StatusUnprocessableEntity, codeIdempotencyKeyReused, "")
	mustStatus(t, other.post("/v1/webhooks", "tok-globex", "k-1", validWebhook), http.StatusCreated)
	if n := len(other.hooks.events()); n != 1 {
		t.Fatalf("%d webhooks after another tenant's request with the key, want 1", n)
	}

	clock.Add(int64(2 * time.Hour))
	swept := process()
	if _, ok, err := swept.Answer(ctx, "acme\x00/v1/webhooks\x00k-1"); err != nil || ok {
		t.Fatalf("an answer past its window was given (%v, %v)", ok, err)
	}
	if err := swept.sweep(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := process()
	if err := fresh.t.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := fresh.t.Len(); n != 0 {
		t.Fatalf("a fold after the sweep holds %d answers, want 0", n)
	}
	mustStatus(t, other.post("/v1/webhooks", "tok-acme", "k-1", validWebhook), http.StatusCreated)
	if n := len(other.hooks.events()); n != 2 {
		t.Fatalf("%d webhooks after the key's window ended, want 2 (done again)", n)
	}
}

// TestTheKeptAnswersAreBoundedInBytes: past maxAnswerBytes of bodies the
// sweep removes the oldest answers first, and a fresh fold holds the rest.
func TestTheKeptAnswersAreBoundedInBytes(t *testing.T) {
	defer func(n int) { maxAnswerBytes = n }(maxAnswerBytes)
	maxAnswerBytes = 1000
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, _ := startProducer(t, ctx, broker.Config{})
	now := func() time.Time { return t0.Add(time.Hour) }
	run := func() *Answers {
		a := newAnswers(b, 24*time.Hour, now, nil)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.Run(runCtx) }()
		t.Cleanup(func() { stop(); <-done })
		if err := a.t.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := run()
	body := []byte(strings.Repeat("x", 300))
	for i := range 5 {
		err := a.Keep(ctx, schemas.Answer{Key: fmt.Sprint("k", i), Status: 201, Body: body, Request: make([]byte, 32),
			At: t0.Add(time.Duration(i) * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := a.t.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.sweep(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := run()
	var kept []string
	fresh.t.Each(func(key string, _ schemas.Answer) { kept = append(kept, key) })
	slices.Sort(kept)
	if want := []string{"k2", "k3", "k4"}; !slices.Equal(kept, want) {
		t.Fatalf("after the sweep the answers %v are kept, want the newest %v (900 of 1,000 bytes)", kept, want)
	}
}
