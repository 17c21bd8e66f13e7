package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hookline/hookline/schemas"
)

// TestRequestsAndAnswers: the client sends what the API expects (path,
// query, token, JSON body) and reads what it answers, error answers as
// *Error.
func TestRequestsAndAnswers(t *testing.T) {
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, body = r, nil
		body, _ = io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/v1/webhooks/w%2F1", "/v1/webhooks/w/1":
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":{"code":"not_found","message":"no such webhook"}}`))
		case "/v1/events":
			w.WriteHeader(http.StatusAccepted)
			w.Write([]byte(`{"ids":["e1"]}`))
		case "/v1/webhooks/w1/deliveries":
			w.Write([]byte(`{"data":[{"id":"d1","state":"failed","attempt_count":2}],"next_cursor":"c2"}`))
		default:
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("upstream down"))
		}
	}))
	defer srv.Close()
	c := New(srv.URL+"/", "tok", nil)
	ctx := context.Background()

	ids, err := c.PublishEvents(ctx, schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: "T-1"})
	if err != nil || len(ids) != 1 || ids[0] != "e1" {
		t.Fatalf("PublishEvents = %v, %v", ids, err)
	}
	var sent []schemas.Event
	if json.Unmarshal(body, &sent) != nil || len(sent) != 1 || sent[0].ResourceID != "T-1" ||
		got.Header.Get("Authorization") != "Bearer tok" || got.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("sent %s with headers %v", body, got.Header)
	}

	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.FixedZone("x", 3600))
	page, err := c.Deliveries(ctx, "w1", DeliveryQuery{State: "failed", Status: "5xx", Since: since, Limit: 20})
	if err != nil || len(page.Data) != 1 || page.Data[0].AttemptCount != 2 || page.NextCursor != "c2" {
		t.Fatalf("Deliveries = %+v, %v", page, err)
	}
	q := got.URL.Query()
	if q.Get("state") != "failed" || q.Get("status") != "5xx" || q.Get("since") != "2026-12-01T09:00:00Z" || q.Get("limit") != "20" || q.Has("cursor") {
		t.Fatalf("query %v", q)
	}

	_, err = c.Webhook(ctx, "w/1")
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || ae.Code != "not_found" || ae.Message != "no such webhook" {
		t.Fatalf("Webhook of a missing id: %v", err)
	}
	if got.URL.EscapedPath() != "/v1/webhooks/w%2F1" {
		t.Errorf("path %q: the id is not escaped", got.URL.EscapedPath())
	}
	_, err = c.Replay(ctx, "r1")
	if !errors.As(err, &ae) || ae.Status != http.StatusBadGateway || ae.Message != "upstream down" {
		t.Fatalf("a non-JSON error answer: %v", err)
	}
}
