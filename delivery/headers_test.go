package delivery

import (
	"net/http"
	"testing"
)

func TestMaskHeader(t *testing.T) {
	tests := []struct {
		name   string
		header string
		masked bool
	}{
		{name: "authorization", header: "Authorization", masked: true},
		{name: "proxy authorization", header: "Proxy-Authorization", masked: true},
		{name: "standard webhooks signature, shown", header: "Webhook-Signature"},
		{name: "github style signature, shown", header: "X-Hookline-Signature-256"},
		{name: "another signature header", header: "X-Signature", masked: true},
		{name: "api key", header: "X-Api-Key", masked: true},
		{name: "apikey in one word", header: "Apikey", masked: true},
		{name: "token", header: "X-Access-Token", masked: true},
		{name: "secret", header: "X-Shared-Secret", masked: true},
		{name: "password", header: "X-Password", masked: true},
		{name: "cookie", header: "Cookie", masked: true},
		{name: "set-cookie", header: "Set-Cookie", masked: true},
		{name: "session", header: "X-Session-Id", masked: true},
		{name: "lower case name", header: "x-auth-token", masked: true},
		{name: "csrf", header: "X-Csrf", masked: true},
		{name: "content type", header: "Content-Type"},
		{name: "webhook id", header: "Webhook-Id"},
		{name: "webhook timestamp", header: "Webhook-Timestamp"},
		{name: "event", header: "X-Hookline-Event"},
		{name: "location", header: "Location"},
		{name: "keep-alive", header: "Keep-Alive"},
		{name: "custom tenant", header: "X-Tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := maskHeader(tt.header, "value-1234")
			if tt.masked && got != Masked {
				t.Errorf("maskHeader(%q) = %q, want %q", tt.header, got, Masked)
			}
			if !tt.masked && got != "value-1234" {
				t.Errorf("maskHeader(%q) = %q, want the value in clear", tt.header, got)
			}
		})
	}
}

func TestRecordHeadersJoinsAndMasks(t *testing.T) {
	h := http.Header{
		"Accept":        {"a", "b"},
		"Authorization": {"Bearer x", "Basic y"},
	}
	var m *masker // by name only
	got := m.record(h)
	if len(got) != 2 || got["Accept"] != "a, b" || got["Authorization"] != Masked {
		t.Errorf("record = %v", got)
	}
	if newMasker(nil).record(nil) != nil {
		t.Error("record(nil) is not nil")
	}
}

// TestCommonHeadersAgreeWithTheRule: the names decided once are decided as
// maskHeader decides any other name, and they are the canonical names the
// request and the answers use.
func TestCommonHeadersAgreeWithTheRule(t *testing.T) {
	for name, shown := range commonHeaders {
		if name != http.CanonicalHeaderKey(name) {
			t.Errorf("%q is not canonical: a lookup of a header's name would miss it", name)
		}
		if got := maskHeaderByName(name, "v") == "v"; got != shown {
			t.Errorf("%s: shown %v, the rule says %v", name, shown, got)
		}
	}
	if commonHeaders["Webhook-Signature"] != true || commonHeaders["Authorization"] != false {
		t.Errorf("Webhook-Signature must be shown and Authorization masked: %v", commonHeaders)
	}
}
