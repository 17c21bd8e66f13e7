package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestTheTokenlessAPIRefusesWebPages: without tokens (the default local
// API), a page on another site cannot create a webhook (a text/plain or
// form post is sent without a preflight; its Origin is foreign), and a DNS
// name rebound to 127.0.0.1 cannot read anything (421); the console, on
// the API's own origin, and clients outside a browser go on working.
func TestTheTokenlessAPIRefusesWebPages(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	send := func(method, path, host, origin, contentType, body string) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Host = host
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		rec := httptest.NewRecorder()
		h.handler.ServeHTTP(rec, req)
		return rec
	}
	const local = "127.0.0.1:8080"
	for _, tc := range []struct {
		name, method, path, host, origin, contentType, body string
		status                                              int
		code                                                string
	}{
		{"a foreign page's text/plain post", http.MethodPost, "/v1/webhooks", local, "https://evil.example", "text/plain", validWebhook, http.StatusForbidden, codeForbiddenOrigin},
		{"a foreign page's JSON post", http.MethodPost, "/v1/webhooks", local, "https://evil.example", "application/json", validWebhook, http.StatusForbidden, codeForbiddenOrigin},
		{"a sandboxed page's post", http.MethodPost, "/v1/webhooks", local, "null", "application/json", validWebhook, http.StatusForbidden, codeForbiddenOrigin},
		{"a foreign page's bodiless post", http.MethodPost, "/v1/webhooks/w1/rotate-secret", local, "http://evil.example", "", "", http.StatusForbidden, codeForbiddenOrigin},
		{"a foreign page's delete", http.MethodDelete, "/v1/webhooks/w1", local, "https://evil.example", "", "", http.StatusForbidden, codeForbiddenOrigin},
		{"a text/plain post with no origin", http.MethodPost, "/v1/webhooks", local, "", "text/plain", validWebhook, http.StatusUnsupportedMediaType, codeUnsupportedMedia},
		{"a form post", http.MethodPost, "/v1/events", local, "", "application/x-www-form-urlencoded", "a=b", http.StatusUnsupportedMediaType, codeUnsupportedMedia},
		{"a body without a type", http.MethodPost, "/v1/webhooks", local, "", "", validWebhook, http.StatusUnsupportedMediaType, codeUnsupportedMedia},
		{"a read through a rebound name", http.MethodGet, "/v1/webhooks", "attacker.example:8080", "", "", "", http.StatusMisdirectedRequest, codeMisdirected},
		{"a probe through a rebound name", http.MethodGet, "/readyz", "attacker.example", "", "", "", http.StatusMisdirectedRequest, codeMisdirected},
		{"a post through a rebound name", http.MethodPost, "/v1/webhooks", "attacker.example:8080", "http://attacker.example:8080", "application/json", validWebhook, http.StatusMisdirectedRequest, codeMisdirected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, send(tc.method, tc.path, tc.host, tc.origin, tc.contentType, tc.body), tc.status, tc.code, "")
		})
	}
	if n := len(h.hooks.events()); n != 0 {
		t.Fatalf("%d webhooks made by refused requests", n)
	}
	for _, tc := range []struct{ name, host, origin, contentType string }{
		{"the console", local, "http://" + local, "application/json"},
		{"a client outside a browser", local, "", "application/json; charset=utf-8"},
		{"localhost", "localhost:8080", "http://localhost:8080", "application/json"},
		{"IPv6 loopback", "[::1]:8080", "", "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if rec := send(http.MethodPost, "/v1/webhooks", tc.host, tc.origin, tc.contentType, validWebhook); rec.Code != http.StatusCreated {
				t.Fatalf("create: %d %s", rec.Code, rec.Body)
			}
			if rec := send(http.MethodGet, "/v1/webhooks", tc.host, "", "", ""); rec.Code != http.StatusOK {
				t.Fatalf("list: %d %s", rec.Code, rec.Body)
			}
		})
	}
	// A bodiless post with no type from outside a browser is fine.
	if rec := send(http.MethodPost, "/v1/webhooks/nope/rotate-secret", local, "", "", ""); rec.Code != http.StatusNotFound {
		t.Fatalf("bodiless post: %d %s, want the route's own 404", rec.Code, rec.Body)
	}
}

// TestWithTokensTheBrowserChecksDoNotApply: a bearer token is never sent
// by a browser on its own, so an API with tokens answers any Host and
// Origin (behind a proxy, from a portal of another origin).
func TestWithTokensTheBrowserChecksDoNotApply(t *testing.T) {
	h := newHarness(t, twoTenants, nil)
	req := httptest.NewRequest(http.MethodPost, "/v1/webhooks", strings.NewReader(validWebhook))
	req.Host = "hooks.example.com"
	req.Header.Set("Origin", "https://portal.example.com")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer tok-acme")
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		t.Fatalf("create with a token from another origin: %d %s", rec.Code, rec.Body)
	}
}
