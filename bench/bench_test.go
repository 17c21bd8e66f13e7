package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/hookline/hookline/client"
)

func TestBenchStatistics(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, ms(i))
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, ms(50)}, {0.95, ms(95)}, {0.99, ms(99)}, {1, ms(100)}} {
		if got := quantile(lat, tt.q); got != tt.want {
			t.Errorf("quantile(1..100 ms, %v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if got := quantile(nil, 0.5); got != 0 {
		t.Errorf("quantile of nothing = %v", got)
	}
	// 101 receipts 10 ms apart, out of order: 100 per second.
	var times []int64
	for i := 100; i >= 0; i-- {
		times = append(times, int64(i)*int64(ms(10)))
	}
	if got := sustainedRate(times); got < 99.9 || got > 100.1 {
		t.Errorf("sustainedRate = %v, want 100", got)
	}
}

func TestBenchDecodesSingleAndBatchedBodies(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []benchEnvelope
	}{
		{"one envelope", `{"id":"d1","event_id":"bench-0-7","data":{"x":1}}`, []benchEnvelope{{"d1", "bench-0-7"}}},
		{"a batch", ` [{"id":"d1","event_id":"bench-1-0"},{"id":"d2","event_id":"bench-1-1"}]`,
			[]benchEnvelope{{"d1", "bench-1-0"}, {"d2", "bench-1-1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeBenchBody([]byte(tt.body))
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("decode = %v, %v", got, err)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("envelope %d = %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
	for id, want := range map[string]bool{"bench-0-12": true, "bench-1-0": true, "bench-2-1": false, "other-0-1": false, "bench-0-x": false} {
		if _, _, ok := parseBenchEventID(id); ok != want {
			t.Errorf("parseBenchEventID(%q) ok = %v, want %v", id, ok, want)
		}
	}
}

func TestBenchRecorderCountsDuplicatesAndSubsets(t *testing.T) {
	r := newBenchRecorder(2)
	r.setPhase(benchSat, 2)
	r.stamp(benchSat, 0, 2, time.Now())
	now := time.Now()
	r.record("d1", "bench-0-0", 0, now)
	r.record("d1", "bench-0-0", 0, now) // the same delivery again
	r.record("d2", "bench-0-1", -1, now)
	r.record("d3", "bench-0-9", 0, now) // an event never published
	r.record("d4", "bench-0-1", 2, now) // an endpoint that does not exist
	h, all := r.stats(benchSat, benchHealthy), r.stats(benchSat, benchAll)
	if h.distinct != 1 || h.dups != 1 || all.distinct != 2 || all.dups != 1 || r.undecodable() != 2 {
		t.Fatalf("healthy %+v, all %+v, undecodable %d", h, all, r.undecodable())
	}
	// Endpoint 1 has received nothing yet, so the slowest has 0.
	if got := r.slowest(benchSat); got != 0 {
		t.Fatalf("slowest = %d, want 0", got)
	}
	r.record("d5", "bench-0-1", 1, now)
	if got := r.slowest(benchSat); got != 1 {
		t.Fatalf("slowest = %d, want 1", got)
	}
}

// TestBenchAPIPublisherSplitsArrays covers the fallback used when serve's
// log does not name the broker: arrays of at most 1,000 events.
func TestBenchAPIPublisherSplitsArrays(t *testing.T) {
	var sizes []int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var evs []json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&evs); err != nil || r.URL.Path != "/v1/events" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		sizes = append(sizes, len(evs))
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	values := make([][]byte, 2500)
	for i := range values {
		values[i] = []byte(`{"resource":"ticket","trigger":"update","resource_id":"T-1"}`)
	}
	p := benchAPI{client: client.New(srv.URL, "", srv.Client())}
	if err := p.publish(context.Background(), nil, values); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sizes, []int{1000, 1000, 500}) {
		t.Fatalf("arrays of %v events, want [1000 1000 500]", sizes)
	}
}
