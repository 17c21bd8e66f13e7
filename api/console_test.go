package api

import (
	"net/http"
	"strings"
	"testing"
)

// TestConsoleIsServedWithoutATokenAndItsDataIsNot: the console's pages
// and files answer without a token (they hold no data), under a policy
// that allows nothing from elsewhere; the API they call still needs one.
func TestConsoleIsServedWithoutATokenAndItsDataIsNot(t *testing.T) {
	h := newHarness(t, twoTenants, nil)
	for _, path := range []string{"/", "/webhooks/new", "/webhooks/w1", "/webhooks/w1/edit", "/deliveries/d1", "/replays"} {
		rec := h.do(http.MethodGet, path, "", "")
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Header().Get("Content-Type"))
		}
		if !strings.Contains(rec.Body.String(), `<script src="/console/app.js" defer>`) {
			t.Fatalf("GET %s is not the console's shell:\n%s", path, rec.Body)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
			t.Fatalf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	for path, typ := range map[string]string{"/console/app.js": "javascript", "/console/app.css": "text/css", "/console/icon.svg": "image/svg+xml"} {
		rec := h.do(http.MethodGet, path, "", "")
		if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Content-Type"), typ) || rec.Body.Len() == 0 {
			t.Fatalf("GET %s: %d %q, %d bytes", path, rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
		}
	}
	if rec := h.do(http.MethodGet, "/console/missing.js", "", ""); rec.Code != http.StatusNotFound {
		t.Fatalf("GET /console/missing.js: %d, want 404", rec.Code)
	}
	for _, path := range []string{"/v1/webhooks", "/webhooks/w1/deliveries", "/console/"} {
		if rec := h.do(http.MethodGet, path, "", ""); rec.Code != http.StatusUnauthorized {
			t.Fatalf("GET %s without a token: %d, want 401", path, rec.Code)
		}
	}
	if rec := h.do(http.MethodPost, "/", "", ""); rec.Code == http.StatusOK {
		t.Fatalf("POST / answered 200")
	}
}
