package api

import (
	"net/http"
	"testing"

	"github.com/hookline/hookline/schemas"
)

// TestBulkWebhooks: one action on many webhooks, a result per id; an id
// that is unknown or another tenant's fails alone; bad bodies are a 400.
func TestBulkWebhooks(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	a := createWebhook(t, h, "", validWebhook)
	b := createWebhook(t, h, "", validWebhook)
	rec := h.do(http.MethodPost, "/v1/webhooks/bulk", "", `{"action":"disable","ids":["`+a.ID+`","nope","`+b.ID+`"]}`)
	mustStatus(t, rec, http.StatusOK)
	out := decodeBody[bulkOutput](t, rec)
	if out.Succeeded != 2 || out.Failed != 1 || len(out.Results) != 3 || out.Results[1].Status != http.StatusNotFound || out.Results[0].Status != http.StatusOK {
		t.Fatalf("bulk disable: %+v", out)
	}
	for _, id := range []string{a.ID, b.ID} {
		if w, _ := h.hooks.Webhook(schemas.DefaultTenant, id); w.Enabled {
			t.Fatalf("webhook %s still enabled", id)
		}
	}
	out = decodeBody[bulkOutput](t, h.do(http.MethodPost, "/v1/webhooks/bulk", "", `{"action":"enable","ids":["`+a.ID+`"]}`))
	if w, _ := h.hooks.Webhook(schemas.DefaultTenant, a.ID); !w.Enabled || out.Succeeded != 1 {
		t.Fatalf("bulk enable: %+v, webhook enabled %v", out, w.Enabled)
	}
	out = decodeBody[bulkOutput](t, h.do(http.MethodPost, "/v1/webhooks/bulk", "", `{"action":"delete","ids":["`+a.ID+`","`+b.ID+`"]}`))
	if out.Succeeded != 2 || out.Results[0].Status != http.StatusNoContent {
		t.Fatalf("bulk delete: %+v", out)
	}
	if _, ok := h.hooks.Webhook(schemas.DefaultTenant, a.ID); ok {
		t.Fatal("deleted webhook still there")
	}
	for _, bad := range []string{`{"action":"archive","ids":["x"]}`, `{"action":"delete","ids":[]}`, `{"action":"delete","ids":["x","x"]}`,
		`{"action":"delete"}`, `{"action":"delete","ids":["x"],"force":true}`, `[]`} {
		if rec := h.do(http.MethodPost, "/v1/webhooks/bulk", "", bad); rec.Code != http.StatusBadRequest {
			t.Errorf("bulk %s: %d, want 400", bad, rec.Code)
		}
	}
}
