package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/schemas"
	"github.com/hookline/hookline/signing"
)

// TestCreateGeneratesASecretShownOnce: a webhook created without a secret
// gets a whsec_ secret, in the create answer only; "secret": null creates
// an unsigned webhook; a given secret is not echoed.
func TestCreateGeneratesASecretShownOnce(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	created := createWebhook(t, h, "", `{"name":"n","url":"https://example.com/h"}`)
	if !strings.HasPrefix(created.Secret, signing.SecretPrefix) || !created.HasSecret {
		t.Fatalf("create answer: secret %q, has_secret %v; want a generated whsec_ secret", created.Secret, created.HasSecret)
	}
	if key, err := signing.Key(created.Secret); err != nil || len(key) != 32 {
		t.Fatalf("generated secret decodes to %d bytes (%v), want 32", len(key), err)
	}
	stored, _ := h.hooks.Webhook(schemas.DefaultTenant, created.ID)
	if stored.Secret != created.Secret {
		t.Fatal("the secret shown is not the one stored")
	}
	got := decodeBody[schemas.PublicWebhook](t, h.do(http.MethodGet, "/v1/webhooks/"+created.ID, "", ""))
	if got.Secret != "" || !got.HasSecret {
		t.Fatalf("GET shows secret %q, has_secret %v; want it hidden", got.Secret, got.HasSecret)
	}

	unsigned := createWebhook(t, h, "", `{"name":"n","url":"https://example.com/h","secret":null}`)
	if unsigned.HasSecret || unsigned.Secret != "" {
		t.Fatalf(`"secret": null: has_secret %v, secret %q; want an unsigned webhook`, unsigned.HasSecret, unsigned.Secret)
	}
	given := createWebhook(t, h, "", validWebhook)
	if given.Secret != "" || !given.HasSecret {
		t.Fatalf("given secret: answer shows %q, has_secret %v; want it not echoed", given.Secret, given.HasSecret)
	}
	patched := decodeBody[schemas.PublicWebhook](t, h.do(http.MethodPatch, "/v1/webhooks/"+given.ID, "", `{"secret":null}`))
	if patched.HasSecret {
		t.Fatal(`PATCH "secret": null left the webhook signed`)
	}
}

// TestRotateSecretKeepsTheOldOneSigningForTheOverlap: rotate-secret sets a
// new secret (generated and shown once, or given); the old one keeps
// signing until the overlap ends, then only the new one does.
func TestRotateSecretKeepsTheOldOneSigningForTheOverlap(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	created := createWebhook(t, h, "", validWebhook)
	rec := h.do(http.MethodPost, "/v1/webhooks/"+created.ID+"/rotate-secret", "", `{"overlap_seconds":3600}`)
	mustStatus(t, rec, http.StatusOK)
	rotated := decodeBody[schemas.PublicWebhook](t, rec)
	if !strings.HasPrefix(rotated.Secret, signing.SecretPrefix) || rotated.PreviousSecretExpiresAt == nil {
		t.Fatalf("rotate answer: secret %q, previous until %v; want a generated secret and the overlap's end", rotated.Secret, rotated.PreviousSecretExpiresAt)
	}
	stored, _ := h.hooks.Webhook(schemas.DefaultTenant, created.ID)
	now := t0.Add(time.Minute) // the harness's clock
	if got := stored.SigningSecrets(now); len(got) != 2 || got[0] != rotated.Secret || got[1] != "s3cr3t-value" {
		t.Fatalf("signing secrets during the overlap: %d, want the new then the old", len(got))
	}
	if got := stored.SigningSecrets(now.Add(2 * time.Hour)); len(got) != 1 || got[0] != rotated.Secret {
		t.Fatalf("signing secrets after the overlap: %d, want the new one only", len(got))
	}

	rec = h.do(http.MethodPost, "/v1/webhooks/"+created.ID+"/rotate-secret", "", `{"secret":"chosen-secret","overlap_seconds":0}`)
	mustStatus(t, rec, http.StatusOK)
	if shown := decodeBody[schemas.PublicWebhook](t, rec).Secret; shown != "" {
		t.Fatalf("a given secret was echoed: %q", shown)
	}
	stored, _ = h.hooks.Webhook(schemas.DefaultTenant, created.ID)
	if got := stored.SigningSecrets(now); len(got) != 2 || got[0] != "chosen-secret" {
		t.Fatalf("after a rotation without overlap: %v secrets, want the chosen one and the first rotation's still overlapping", len(got))
	}

	mustStatus(t, h.do(http.MethodPost, "/v1/webhooks/"+created.ID+"/rotate-secret", "", ""), http.StatusOK)
	for _, bad := range []string{`{"overlap_seconds":-1}`, `{"overlap_seconds":2592001}`, `{"secret":"  "}`,
		`{"secret":"whsec_!!"}`, `{"rotate":true}`, `[]`} {
		if rec := h.do(http.MethodPost, "/v1/webhooks/"+created.ID+"/rotate-secret", "", bad); rec.Code != http.StatusBadRequest {
			t.Errorf("rotate with %s: %d %s, want 400", bad, rec.Code, rec.Body)
		}
	}
	if rec := h.do(http.MethodPost, "/v1/webhooks/nope/rotate-secret", "", ""); rec.Code != http.StatusNotFound {
		t.Errorf("rotate of an unknown webhook: %d, want 404", rec.Code)
	}
}
