package delivery_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/schemas"
)

// BenchmarkDeliver measures one signed attempt against an in-process
// endpoint over a kept-alive connection: the sender's own cost plus
// loopback HTTP.
func BenchmarkDeliver(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	d, err := delivery.NewDeliverer(delivery.Config{AllowPrivateTargets: true}, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	job := testJob()
	job.Payload = json.RawMessage(`{"id":"dlv_01","event_type":"ticket.updated","data":{"description":"` + strings.Repeat("x", 1000) + `"}}`)

	for _, ct := range []string{schemas.ContentTypeJSON, schemas.ContentTypeForm} {
		wh := testWebhook(srv.URL)
		wh.ContentType = ct
		wh.Headers = map[string]string{"Authorization": "Bearer abc", "X-Tenant": "acme"}
		b.Run(ct, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(job.Payload)))
			for b.Loop() {
				if att := d.Deliver(context.Background(), wh, job); att.State != schemas.StateSucceeded {
					b.Fatalf("attempt failed: %s", att.Error)
				}
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		wh := testWebhook(srv.URL)
		b.ReportAllocs()
		b.SetBytes(int64(len(job.Payload)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if att := d.Deliver(context.Background(), wh, job); att.State != schemas.StateSucceeded {
					b.Errorf("attempt failed: %s", att.Error)
					return
				}
			}
		})
	})
}
