package api

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hookline/hookline/projections"
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

// TestStatsSeriesBucketsByHour: the series counts each delivery in the
// bucket of its creation hour, oldest bucket first, up to now; bad steps
// and spans are a 400.
func TestStatsSeriesBucketsByHour(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	wh := createWebhook(t, h, "", validWebhook)
	for i, at := range []time.Time{t0.Add(-150 * time.Minute), t0.Add(-90 * time.Minute), t0.Add(-80 * time.Minute), t0.Add(-10 * time.Minute)} {
		h.dels.add(schemas.DefaultTenant, projections.Delivery{ID: fmt.Sprint("d", i), WebhookID: wh.ID, State: schemas.StateSucceeded, CreatedAt: at})
	}
	rec := h.do(http.MethodGet, "/v1/webhooks/"+wh.ID+"/stats/series?since="+t0.Add(-3*time.Hour).Format(time.RFC3339)+"&step=1h", "", "")
	mustStatus(t, rec, http.StatusOK)
	out := decodeBody[seriesView](t, rec)
	var got []int64
	for _, b := range out.Buckets {
		got = append(got, b.Deliveries[schemas.StateSucceeded])
	}
	// now is just past t0: the last bucket, t0's hour, has begun and is empty.
	if fmt.Sprint(got) != "[1 2 1 0]" || out.Step != "1h0m0s" || !out.Buckets[0].Start.Equal(t0.Add(-3*time.Hour)) {
		t.Fatalf("buckets %v from %v, step %s; want [1 2 1 0] from three hours before", got, out.Buckets[0].Start, out.Step)
	}
	for _, bad := range []string{"step=30m", "step=90m", "step=x", "since=" + t0.Add(-30*24*time.Hour).Format(time.RFC3339), "since=" + t0.Add(time.Hour).Format(time.RFC3339), "from=1"} {
		if rec := h.do(http.MethodGet, "/v1/webhooks/"+wh.ID+"/stats/series?"+bad, "", ""); rec.Code != http.StatusBadRequest {
			t.Errorf("?%s: %d, want 400", bad, rec.Code)
		}
	}
}
