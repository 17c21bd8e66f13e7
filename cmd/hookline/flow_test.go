package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/client"
	"github.com/hookline/hookline/schemas"
)

// orderRecorder is an endpoint that records, per resource, the sequence
// numbers of the first attempts it receives, after answering in delay.
type orderRecorder struct {
	*httptest.Server
	mu      sync.Mutex
	seqs    map[string][]int
	retried int
}

func newOrderRecorder(t *testing.T, delay time.Duration) *orderRecorder {
	o := &orderRecorder{seqs: map[string][]int{}}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ResourceID string `json:"resource_id"`
			Data       struct {
				Seq int `json:"seq"`
			} `json:"data"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		time.Sleep(delay)
		o.mu.Lock()
		defer o.mu.Unlock()
		if r.Header.Get("X-Hookline-Attempt") != "1" {
			o.retried++
			return
		}
		o.seqs[body.ResourceID] = append(o.seqs[body.ResourceID], body.Data.Seq)
	}))
	t.Cleanup(o.Close)
	return o
}

// received counts the first attempts and the ones that came after a later
// event of their resource.
func (o *orderRecorder) received() (n, swaps, retried int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, seqs := range o.seqs {
		n += len(seqs)
		for i := 1; i < len(seqs); i++ {
			if seqs[i] < seqs[i-1] {
				swaps++
			}
		}
	}
	return n, swaps, o.retried
}

// TestServeKeepsEachResourcesOrderUnderFlowControl: a burst through the
// public API to an endpoint that answers at once, one that answers in
// 100 ms (held to a 1 s queue wait, so its jobs are put off and come back)
// and a dead one: both live endpoints get every event, and no event of a
// resource arrives after a later event of the same resource.
func TestServeKeepsEachResourcesOrderUnderFlowControl(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	fast := newOrderRecorder(t, 0)
	slow := newOrderRecorder(t, 100*time.Millisecond)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	fatalIf(t, err)
	dead := "http://" + l.Addr().String()
	l.Close()
	p := startServe(t, "--data-dir", t.TempDir(), "--max-queue-wait", "1s")
	defer p.stop(t)
	ctx := context.Background()
	api := p.api()
	for name, url := range map[string]string{"fast": fast.URL, "slow": slow.URL, "dead": dead} {
		in := schemas.WebhookInput{Name: client.Ptr(name), URL: client.Ptr(url), Secret: nil}
		if name == "slow" {
			in.MaxConcurrency = client.Ptr(8)
		}
		createHook(t, p, in)
	}
	const events, resources = 400, 40
	blob := strings.Repeat("x", 1024)
	for k := 0; k < events; k += 200 {
		var evs []schemas.Event
		for i := k; i < k+200; i++ {
			data, _ := json.Marshal(map[string]any{"seq": i / resources, "blob": blob})
			evs = append(evs, schemas.Event{Resource: "ticket", Trigger: "update",
				ResourceID: fmt.Sprint("t", i%resources), Data: data})
		}
		_, err := api.PublishEvents(ctx, evs...)
		fatalIf(t, err)
	}
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		f, _, _ := fast.received()
		s, _, _ := slow.received()
		if f == events && s == events {
			break
		}
		if time.Now().After(deadline) {
			m, _ := api.Metrics(ctx)
			t.Fatalf("after 90 s, %d events at the fast endpoint and %d at the slow one, want %d each\n%s", f, s, events,
				grepLines(m, "hookline_sender_"))
		}
	}
	m, err := api.Metrics(ctx)
	fatalIf(t, err)
	for name, o := range map[string]*orderRecorder{"fast": fast, "slow": slow} {
		if n, swaps, retried := o.received(); swaps != 0 {
			o.mu.Lock()
			t.Errorf("%s endpoint: %d of %d events arrived after a later event of their resource (%d retries seen): %v\n%s",
				name, swaps, n, retried, o.seqs, grepLines(m, "hookline_sender_deferred_total"))
			o.mu.Unlock()
		}
	}
	if !strings.Contains(m, `hookline_sender_deferred_total{reason="endpoint_busy"}`) {
		t.Errorf("no endpoint_busy put-off: the slow endpoint was never behind, the test proves less than it says")
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
