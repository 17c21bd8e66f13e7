package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// Any attempts store serves the API's reads.
var _ Deliveries = projections.Store(nil)

var twoTenants = Config{Tokens: map[string]string{"tok-acme": "acme", "tok-globex": "globex"}}

func TestAuthentication(t *testing.T) {
	h := newHarness(t, twoTenants, nil)
	for _, tc := range []struct{ name, header string }{
		{"no header", ""},
		{"unknown token", "Bearer nope"},
		{"a prefix of a token", "Bearer tok-"},
		{"basic scheme", "Basic dG9rLWFjbWU6"},
		{"token without scheme", "tok-acme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/v1/webhooks", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			rec := httptest.NewRecorder()
			h.handler.ServeHTTP(rec, req)
			wantError(t, rec, http.StatusUnauthorized, codeUnauthorized, "")
			if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q", rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
	t.Run("unknown route still needs a token", func(t *testing.T) {
		wantError(t, h.do(http.MethodGet, "/v1/nothing", "", ""), http.StatusUnauthorized, codeUnauthorized, "")
	})
	t.Run("probes need no token", func(t *testing.T) {
		mustStatus(t, h.do(http.MethodGet, "/healthz", "", ""), http.StatusOK)
		mustStatus(t, h.do(http.MethodGet, "/readyz", "", ""), http.StatusOK)
	})
	t.Run("a valid token acts for its tenant", func(t *testing.T) {
		createWebhook(t, h, "tok-globex", validWebhook)
		if evs := h.hooks.events(); len(evs) != 1 || evs[0].Webhook.Tenant != "globex" {
			t.Errorf("published %+v", evs)
		}
	})
}

func TestWithoutTokensEveryRequestIsTheDefaultTenant(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	createWebhook(t, h, "", validWebhook)
	createWebhook(t, h, "whatever", validWebhook) // a header is not checked, and not needed
	for _, ev := range h.hooks.events() {
		if ev.Webhook.Tenant != schemas.DefaultTenant {
			t.Errorf("tenant %q, want %q", ev.Webhook.Tenant, schemas.DefaultTenant)
		}
	}
}

func TestTenantsSeeOnlyTheirOwnObjects(t *testing.T) {
	h := newHarness(t, twoTenants, nil)
	wh := createWebhook(t, h, "tok-acme", validWebhook)
	seedDelivery(h, "acme", "d1", wh.ID, schemas.StateSucceeded)

	for _, req := range []struct{ method, path, body string }{
		{http.MethodGet, "/v1/webhooks/" + wh.ID, ""},
		{http.MethodPatch, "/v1/webhooks/" + wh.ID, `{"enabled":false}`},
		{http.MethodDelete, "/v1/webhooks/" + wh.ID, ""},
		{http.MethodGet, "/v1/webhooks/" + wh.ID + "/deliveries", ""},
		{http.MethodGet, "/v1/deliveries/d1", ""},
	} {
		wantError(t, h.do(req.method, req.path, "tok-globex", req.body), http.StatusNotFound, codeNotFound, "")
	}
	rec := h.do(http.MethodGet, "/v1/webhooks", "tok-globex", "")
	mustStatus(t, rec, http.StatusOK)
	if l := decodeBody[list[schemas.PublicWebhook]](t, rec); len(l.Data) != 0 {
		t.Errorf("globex lists acme's webhooks: %+v", l.Data)
	}
	if evs := h.hooks.events(); len(evs) != 1 {
		t.Errorf("another tenant changed the webhook: %+v", evs)
	}

	// The owner still sees everything.
	mustStatus(t, h.do(http.MethodGet, "/v1/webhooks/"+wh.ID, "tok-acme", ""), http.StatusOK)
	mustStatus(t, h.do(http.MethodGet, "/v1/deliveries/d1", "tok-acme", ""), http.StatusOK)
	rec = h.do(http.MethodGet, "/v1/webhooks/"+wh.ID+"/deliveries", "tok-acme", "")
	mustStatus(t, rec, http.StatusOK)
	if l := decodeBody[list[struct{ ID string }]](t, rec); len(l.Data) != 1 {
		t.Errorf("acme's deliveries: %+v", l.Data)
	}
}

func TestOversizedBodyIs413(t *testing.T) {
	h := newHarness(t, Config{MaxBodyBytes: 100}, nil)
	big := `{"name":"` + strings.Repeat("x", 200) + `","url":"https://example.com"}`
	t.Run("declared length", func(t *testing.T) {
		wantError(t, h.do(http.MethodPost, "/v1/webhooks", "", big), http.StatusRequestEntityTooLarge, codeTooLarge, "")
	})
	t.Run("chunked body", func(t *testing.T) {
		for _, path := range []string{"/v1/webhooks", "/v1/events"} {
			req := httptest.NewRequest(http.MethodPost, path, io.MultiReader(strings.NewReader(big)))
			req.ContentLength = -1 // unknown: only reading finds out
			req.Host = "127.0.0.1:8080"
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.handler.ServeHTTP(rec, req)
			wantError(t, rec, http.StatusRequestEntityTooLarge, codeTooLarge, "")
		}
	})
	t.Run("over a real connection", func(t *testing.T) {
		srv := httptest.NewServer(h.handler)
		defer srv.Close()
		resp, err := http.Post(srv.URL+"/v1/events", "application/json", io.MultiReader(strings.NewReader(big)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413", resp.StatusCode)
		}
	})
	if len(h.hooks.events()) != 0 || len(h.events.all()) != 0 {
		t.Error("an oversized request was published")
	}
}

func TestRoutesSPECListsButThatAreNotBuiltAnswer501(t *testing.T) {
	h := newHarness(t, twoTenants, nil)
	for _, req := range []struct{ method, path string }{
		{http.MethodPost, "/v1/replays"},
		{http.MethodGet, "/v1/replays/r1"},
	} {
		t.Run(req.method+" "+req.path, func(t *testing.T) {
			wantError(t, h.do(req.method, req.path, "tok-acme", "{}"), http.StatusNotImplemented, codeNotImplemented, "")
		})
	}
	t.Run("metrics without a handler", func(t *testing.T) {
		wantError(t, h.do(http.MethodGet, "/metrics", "tok-acme", ""), http.StatusNotImplemented, codeNotImplemented, "")
	})
}

func TestUnknownRouteAndWrongMethodAnswerJSON(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	wantError(t, h.do(http.MethodGet, "/v1/nothing", "", ""), http.StatusNotFound, codeNotFound, "")
	wantError(t, h.do(http.MethodGet, "/v2/webhooks", "", ""), http.StatusNotFound, codeNotFound, "")

	rec := h.do(http.MethodPut, "/v1/webhooks/w1", "", "{}")
	wantError(t, rec, http.StatusMethodNotAllowed, codeMethodNotAllowed, "")
	if allow := rec.Header().Get("Allow"); allow != "GET, HEAD, PATCH, DELETE" {
		t.Errorf("Allow %q", allow)
	}
	rec = h.do(http.MethodDelete, "/v1/events", "", "")
	wantError(t, rec, http.StatusMethodNotAllowed, codeMethodNotAllowed, "")
	if allow := rec.Header().Get("Allow"); allow != "POST" {
		t.Errorf("Allow %q", allow)
	}
}

func TestHealthz(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	rec := h.do(http.MethodGet, "/healthz", "", "")
	mustStatus(t, rec, http.StatusOK)
	if body := decodeBody[map[string]string](t, rec); body["status"] != "ok" {
		t.Errorf("healthz %v", body)
	}
}

func TestReadyz(t *testing.T) {
	ok := func(context.Context) error { return nil }
	failing := func(context.Context) error { return errors.New("dial 10.9.9.9: password=hunter2 refused") }
	hanging := func(ctx context.Context) error { <-ctx.Done(); time.Sleep(10 * time.Millisecond); return nil }

	t.Run("no checks is ready", func(t *testing.T) {
		mustStatus(t, newHarness(t, Config{}, nil).do(http.MethodGet, "/readyz", "", ""), http.StatusOK)
	})
	t.Run("every check passes", func(t *testing.T) {
		h := newHarness(t, Config{}, map[string]Check{"broker": ok, "store": ok})
		rec := h.do(http.MethodGet, "/readyz", "", "")
		mustStatus(t, rec, http.StatusOK)
		if body := decodeBody[readyBody](t, rec); body.Checks["broker"] != "ok" || body.Checks["store"] != "ok" {
			t.Errorf("checks %v", body.Checks)
		}
	})
	t.Run("a check's shown error is in the answer", func(t *testing.T) {
		unreadable := func(context.Context) error {
			return Shown{Err: errors.New("webhook w-7: its secrets do not open with --secrets-key")}
		}
		h := newHarness(t, Config{}, map[string]Check{"store": failing, "webhooks": unreadable})
		e := wantError(t, h.do(http.MethodGet, "/readyz", "", ""), http.StatusServiceUnavailable, codeNotReady, "")
		if !strings.Contains(e.Message, "w-7") || !strings.Contains(e.Message, "--secrets-key") || strings.Contains(e.Message, "hunter2") {
			t.Errorf("message %q: want the webhooks' error, not the store's", e.Message)
		}
	})
	t.Run("a failing check is 503 and named", func(t *testing.T) {
		h := newHarness(t, Config{}, map[string]Check{"broker": ok, "store": failing})
		rec := h.do(http.MethodGet, "/readyz", "", "")
		e := wantError(t, rec, http.StatusServiceUnavailable, codeNotReady, "")
		if !strings.Contains(e.Message, "store") || strings.Contains(e.Message, "broker") {
			t.Errorf("message %q should name store only", e.Message)
		}
		if strings.Contains(rec.Body.String(), "hunter2") {
			t.Errorf("the check's error leaks: %s", rec.Body.String())
		}
		if body := decodeBody[readyBody](t, rec); body.Checks["store"] != "failing" || body.Checks["broker"] != "ok" {
			t.Errorf("checks %v", body.Checks)
		}
	})
	t.Run("a panicking check fails without taking the process down", func(t *testing.T) {
		h := newHarness(t, Config{}, map[string]Check{"store": func(context.Context) error { panic("boom") }})
		wantError(t, h.do(http.MethodGet, "/readyz", "", ""), http.StatusServiceUnavailable, codeNotReady, "")
	})
	t.Run("a check that does not answer in time fails", func(t *testing.T) {
		h := newHarness(t, Config{CheckTimeout: 20 * time.Millisecond}, map[string]Check{"broker": hanging, "store": ok})
		start := time.Now()
		rec := h.do(http.MethodGet, "/readyz", "", "")
		wantError(t, rec, http.StatusServiceUnavailable, codeNotReady, "")
		if body := decodeBody[readyBody](t, rec); body.Checks["broker"] != "timed_out" || body.Checks["store"] != "ok" {
			t.Errorf("checks %v", body.Checks)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("readyz took %v", d)
		}
	})
}

func TestPanicIsA500AndLogged(t *testing.T) {
	var logs bytes.Buffer
	dels := newFakeDeliveries()
	dels.panics = true
	hooks := newFakeWebhooks()
	hooks.byID["w1"] = schemas.Webhook{ID: "w1", Tenant: schemas.DefaultTenant}
	srv, err := New(Config{}, Deps{Webhooks: hooks, Events: &fakeEvents{}, Deliveries: dels, Jobs: &fakeJobs{}},
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/v1/webhooks/w1/deliveries", nil)
	req.Host = "127.0.0.1:8080"
	srv.Handler().ServeHTTP(rec, req)
	wantError(t, rec, http.StatusInternalServerError, codeInternal, "")
	if !strings.Contains(logs.String(), "panic") {
		t.Errorf("panic not logged: %q", logs.String())
	}
}

func TestLogsNeverShowSecretsOrTokens(t *testing.T) {
	var logs bytes.Buffer
	hooks := newFakeWebhooks()
	srv, err := New(twoTenants, Deps{Webhooks: hooks, Events: &fakeEvents{}, Deliveries: newFakeDeliveries(), Jobs: &fakeJobs{}},
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok-acme")
		srv.Handler().ServeHTTP(httptest.NewRecorder(), req)
	}
	do(http.MethodPost, "/v1/webhooks", validWebhook)
	hooks.setErr(errors.New("broker down"))
	do(http.MethodPost, "/v1/webhooks", validWebhook)
	if logs.Len() == 0 {
		t.Fatal("nothing logged; the test would prove nothing")
	}
	for _, secret := range []string{"s3cr3t-value", "tok-acme"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs show %q: %s", secret, logs.String())
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	deps := Deps{Webhooks: newFakeWebhooks(), Events: &fakeEvents{}, Deliveries: newFakeDeliveries(), Jobs: &fakeJobs{}}
	tests := []struct {
		name string
		cfg  Config
		deps Deps
	}{
		{"token without tenant", Config{Tokens: map[string]string{"t": ""}}, deps},
		{"empty token", Config{Tokens: map[string]string{"": "acme"}}, deps},
		{"negative body limit", Config{MaxBodyBytes: -1}, deps},
		{"no webhooks", Config{}, Deps{Events: deps.Events, Deliveries: deps.Deliveries, Jobs: deps.Jobs}},
		{"no events", Config{}, Deps{Webhooks: deps.Webhooks, Deliveries: deps.Deliveries, Jobs: deps.Jobs}},
		{"no deliveries", Config{}, Deps{Webhooks: deps.Webhooks, Events: deps.Events, Jobs: deps.Jobs}},
		{"no jobs", Config{}, Deps{Webhooks: deps.Webhooks, Events: deps.Events, Deliveries: deps.Deliveries}},
		{"unnamed check", Config{}, Deps{Webhooks: deps.Webhooks, Events: deps.Events, Deliveries: deps.Deliveries, Jobs: deps.Jobs,
			Checks: map[string]Check{"": func(context.Context) error { return nil }}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg, tc.deps, nil); err == nil {
				t.Error("New accepted it")
			}
		})
	}
	t.Run("token never in the error", func(t *testing.T) {
		_, err := New(Config{Tokens: map[string]string{"very secret": "acme"}}, deps, nil)
		if err == nil || strings.Contains(err.Error(), "very secret") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestHTTPServerHasTimeouts(t *testing.T) {
	srv, err := New(Config{}, Deps{Webhooks: newFakeWebhooks(), Events: &fakeEvents{}, Deliveries: newFakeDeliveries(), Jobs: &fakeJobs{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := srv.HTTPServer("127.0.0.1:0")
	if hs.ReadHeaderTimeout != DefaultReadHeaderTimeout || hs.ReadTimeout != DefaultReadTimeout ||
		hs.WriteTimeout != DefaultWriteTimeout || hs.IdleTimeout != DefaultIdleTimeout || hs.Handler == nil {
		t.Errorf("server %+v", hs)
	}
}

// TestMetricsNeedTheMetricsTokenWhenThereAreTokens: /metrics names every
// tenant's webhooks, so with tokens only the metrics token reads it: a
// tenant's token gets 403 (before, any tenant saw the others' webhook
// ids); with --metrics-addr it is served there and the API's path says so.
func TestMetricsNeedTheMetricsTokenWhenThereAreTokens(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("hookline_up 1\n")) })
	withMetrics := twoTenants
	withMetrics.MetricsToken = "tok-metrics"
	srv, err := New(withMetrics, Deps{Webhooks: newFakeWebhooks(), Events: &fakeEvents{}, Deliveries: newFakeDeliveries(), Jobs: &fakeJobs{}, Metrics: metrics}, nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func(s *Server, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec
	}
	if rec := get(srv, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("/metrics without a token: %d, want 401", rec.Code)
	}
	if rec := get(srv, "tok-acme"); rec.Code != http.StatusForbidden {
		t.Fatalf("/metrics with a tenant's token: %d %s, want 403", rec.Code, rec.Body)
	}
	if rec := get(srv, "tok-metrics"); rec.Code != http.StatusOK || rec.Body.String() != "hookline_up 1\n" {
		t.Fatalf("/metrics with the metrics token: %d %s", rec.Code, rec.Body)
	}
	noMetricsToken, err := New(twoTenants, Deps{Webhooks: newFakeWebhooks(), Events: &fakeEvents{}, Deliveries: newFakeDeliveries(), Jobs: &fakeJobs{}, Metrics: metrics}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec := get(noMetricsToken, "tok-acme"); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "--metrics-addr") {
		t.Fatalf("/metrics with a tenant's token and no metrics token: %d %s, want 403 naming --metrics-addr", rec.Code, rec.Body)
	}
	if err := (Config{Tokens: twoTenants.Tokens, MetricsToken: "tok-acme"}).Validate(); err == nil {
		t.Fatal("a metrics token that is a tenant's token validated")
	}
	cfg := twoTenants
	cfg.MetricsAddr = "127.0.0.1:9464"
	elsewhere, err := New(cfg, Deps{Webhooks: newFakeWebhooks(), Events: &fakeEvents{}, Deliveries: newFakeDeliveries(), Jobs: &fakeJobs{}, Metrics: metrics}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec := get(elsewhere, "tok-acme"); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "127.0.0.1:9464") {
		t.Fatalf("/metrics with --metrics-addr: %d %s, want a 404 naming the address", rec.Code, rec.Body)
	}
}
