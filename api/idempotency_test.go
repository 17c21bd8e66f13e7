package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
	if again.Body.String() != first.Body.String() || again.Header().Get("Location") != first.Header().Get("Location") ||
		again.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the retry's answer %s (%v), want the first %s", again.Body, again.Header(), first.Body)
	}
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

// TestTheIdempotencyWindowEnds: past the window (--idempotency-window) an
// event id is published again, and a key is a new request.
func TestTheIdempotencyWindowEnds(t *testing.T) {
	h := newHarness(t, Config{IdempotencyWindow: time.Second}, nil)
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
	if err := (Config{IdempotencyWindow: time.Millisecond}).Validate(); err == nil {
		t.Fatal("a window of 1 ms validated")
	}
}
