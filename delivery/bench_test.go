package delivery_test

import (
	"bytes"
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
	// bare-http: the same request (1 KiB JSON body, a 204 back) with a
	// plain net/http client and nothing else: the floor the sender's own
	// cost is measured against (issue 14), in the same run.
	b.Run("bare-http", func(b *testing.B) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		b.ReportAllocs()
		b.SetBytes(int64(len(job.Payload)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(job.Payload))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	})
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
