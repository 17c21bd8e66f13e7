package schemas

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func applyJSON(t *testing.T, w *Webhook, body string, create bool) error {
	t.Helper()
	var in WebhookInput
	if err := json.Unmarshal([]byte(body), &in); err != nil {
		t.Fatalf("bad test body: %v", err)
	}
	return in.Apply(w, create)
}

func TestWebhookCreateDefaults(t *testing.T) {
	var w Webhook
	if err := applyJSON(t, &w, `{"name":"n","url":"https://example.com/hook"}`, true); err != nil {
		t.Fatal(err)
	}
	if !w.Enabled || w.ContentType != ContentTypeJSON || len(w.Events) != 1 || w.Events[0] != "*" ||
		w.Retries != DefaultRetries || w.TimeoutMS != DefaultTimeoutMS {
		t.Fatalf("defaults not applied: %+v", w)
	}
}

func TestWebhookValidation(t *testing.T) {
	tests := []struct {
		name, body, field string
	}{
		{"name required", `{"url":"https://example.com"}`, "name"},
		{"url required", `{"name":"n"}`, "url"},
		{"ftp url", `{"name":"n","url":"ftp://example.com"}`, "url"},
		{"relative url", `{"name":"n","url":"/hook"}`, "url"},
		{"url with credentials", `{"name":"n","url":"https://u:p@example.com"}`, "url"},
		{"blank name", `{"name":"  ","url":"https://example.com"}`, "name"},
		{"bad content type", `{"name":"n","url":"https://example.com","content_type":"text/xml"}`, "content_type"},
		{"empty events", `{"name":"n","url":"https://example.com","events":[]}`, "events"},
		{"bad pattern", `{"name":"n","url":"https://example.com","events":["ticket"]}`, "events[0]"},
		{"wildcard in the middle", `{"name":"n","url":"https://example.com","events":["*.created"]}`, "events[0]"},
		{"whsec secret that is not base64", `{"name":"n","url":"https://example.com","secret":"whsec_!!!"}`, "secret"},
		{"negative retries", `{"name":"n","url":"https://example.com","retries":-1}`, "retries"},
		{"zero timeout", `{"name":"n","url":"https://example.com","timeout_ms":0}`, "timeout_ms"},
		{"reserved header", `{"name":"n","url":"https://example.com","headers":{"webhook-id":"x"}}`, "headers"},
		{"header with newline", `{"name":"n","url":"https://example.com","headers":{"X-A":"a\nb"}}`, "headers"},
		{"condition that does not parse", `{"name":"n","url":"https://example.com","condition":"data.x == "}`, "condition"},
		{"condition that is not boolean", `{"name":"n","url":"https://example.com","condition":"data.x"}`, "condition"},
		{"unknown batching mode", `{"name":"n","url":"https://example.com","batching":{"mode":"daily"}}`, "batching.mode"},
		{"batching wait too long", `{"name":"n","url":"https://example.com","batching":{"mode":"any","wait_seconds":100000}}`, "batching.wait_seconds"},
		{"batching too many items", `{"name":"n","url":"https://example.com","batching":{"mode":"any","max_items":5000}}`, "batching.max_items"},
		{"auth none with a password", `{"name":"n","url":"https://example.com","auth":{"type":"none","password":"x"}}`, "auth.password"},
		{"basic without password", `{"name":"n","url":"https://example.com","auth":{"type":"basic","username":"u"}}`, "auth.password"},
		{"basic with a token", `{"name":"n","url":"https://example.com","auth":{"type":"basic","username":"u","password":"p","token":"t"}}`, "auth.token"},
		{"bearer without token", `{"name":"n","url":"https://example.com","auth":{"type":"bearer"}}`, "auth.token"},
		{"api key in a reserved header", `{"name":"n","url":"https://example.com","auth":{"type":"api_key","header":"webhook-id","value":"v"}}`, "auth.header"},
		{"oauth2 without secret", `{"name":"n","url":"https://example.com","auth":{"type":"oauth2_client_credentials","token_url":"https://a/t","client_id":"c"}}`, "auth.client_secret"},
		{"oauth2 bad token url", `{"name":"n","url":"https://example.com","auth":{"type":"oauth2_client_credentials","token_url":"ftp://a","client_id":"c","client_secret":"s"}}`, "auth.token_url"},
		{"unknown auth type", `{"name":"n","url":"https://example.com","auth":{"type":"digest"}}`, "auth.type"},
		{"negative rate limit", `{"name":"n","url":"https://example.com","rate_limit":-1}`, "rate_limit"},
		{"huge rate limit", `{"name":"n","url":"https://example.com","rate_limit":1e9}`, "rate_limit"},
		{"tiny rate limit", `{"name":"n","url":"https://example.com","rate_limit":1e-300}`, "rate_limit"},
		{"zero max concurrency", `{"name":"n","url":"https://example.com","max_concurrency":0}`, "max_concurrency"},
		{"huge max concurrency", `{"name":"n","url":"https://example.com","max_concurrency":1001}`, "max_concurrency"},
		{"empty field path", `{"name":"n","url":"https://example.com","fields":["customer..email"]}`, "fields[0]"},
		{"field listed twice", `{"name":"n","url":"https://example.com","fields":["a","a"]}`, "fields[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w Webhook
			err := applyJSON(t, &w, tt.body, true)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("err = %v, want a FieldError on %s", err, tt.field)
			}
		})
	}
}

func TestWebhookUpdateKeepsUnsetFields(t *testing.T) {
	var w Webhook
	if err := applyJSON(t, &w, `{"name":"n","url":"https://example.com","secret":"s","events":["ticket.*"]}`, true); err != nil {
		t.Fatal(err)
	}
	if err := applyJSON(t, &w, `{"enabled":false}`, false); err != nil {
		t.Fatal(err)
	}
	if w.Enabled || w.Secret != "s" || w.Events[0] != "ticket.*" || w.Name != "n" {
		t.Fatalf("update changed more than asked: %+v", w)
	}
	if p := w.Public(); !p.HasSecret {
		t.Fatal("has_secret false for a webhook with a secret")
	}
	out, _ := json.Marshal(w.Public())
	if strings.Contains(string(out), `"secret"`) {
		t.Fatalf("public view leaks the secret: %s", out)
	}
}

func TestValidEventPattern(t *testing.T) {
	for p, want := range map[string]bool{
		"*": true, "ticket.*": true, "ticket.created": true, "order.scanned": true,
		"ticket": false, ".created": false, "ticket.": false, "*.created": false, "ticket.cre*": false, "a.b.c": false,
	} {
		if got := ValidEventPattern(p); got != want {
			t.Errorf("ValidEventPattern(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestWebhookAuth(t *testing.T) {
	var w Webhook
	body := `{"name":"n","url":"https://example.com","rate_limit":2.5,
		"auth":{"type":"oauth2_client_credentials","token_url":"https://idp/token","client_id":"c","client_secret":"s3cr3t","scopes":["a"]}}`
	if err := applyJSON(t, &w, body, true); err != nil {
		t.Fatal(err)
	}
	if w.RateLimit != 2.5 || w.Auth == nil || w.Auth.ClientSecret != "s3cr3t" {
		t.Fatalf("auth not kept: %+v", w)
	}
	out, _ := json.Marshal(w.Public())
	if strings.Contains(string(out), "s3cr3t") || !strings.Contains(string(out), `"has_credentials":true`) {
		t.Fatalf("public view: %s", out)
	}
	if err := applyJSON(t, &w, `{"auth":{"type":"none"}}`, false); err != nil || w.Auth != nil {
		t.Fatalf("auth none did not clear auth: %v %+v", err, w.Auth)
	}
}

func TestWebhookShapingOptions(t *testing.T) {
	var w Webhook
	body := `{"name":"n","url":"https://example.com","condition":"data.priority == \"High\" && data.assignee == nil",
		"fields":["priority","customer.email"],"include_all_fields":false,"include_related":true,
		"batching":{"mode":"same_type"}}`
	if err := applyJSON(t, &w, body, true); err != nil {
		t.Fatal(err)
	}
	if w.AllFields() || !w.IncludeRelated || len(w.Fields) != 2 || w.Condition == "" {
		t.Fatalf("options not kept: %+v", w)
	}
	if w.Batching == nil || w.Batching.WaitSeconds != DefaultBatchWait || w.Batching.MaxItems != DefaultBatchItems {
		t.Fatalf("batching defaults not applied: %+v", w.Batching)
	}
	if err := applyJSON(t, &w, `{"batching":{"mode":"none"},"include_all_fields":true}`, false); err != nil {
		t.Fatal(err)
	}
	if w.Batching != nil || !w.AllFields() {
		t.Fatalf("batching none / include_all_fields true not applied: %+v", w)
	}
	var bad Webhook
	err := applyJSON(t, &bad, `{"name":"n","url":"https://example.com","condition":"data.priority == \"High\" &&"}`, true)
	if err == nil || !strings.Contains(err.Error(), "line 1, column") {
		t.Fatalf("a bad condition's error does not name its position: %v", err)
	}
}
