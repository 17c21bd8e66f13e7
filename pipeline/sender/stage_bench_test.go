package sender_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/pipeline/sender"
	"github.com/hookline/hookline/schemas"
)

// BenchmarkIsolation measures the publish→receipt latency of deliveries to
// nine healthy endpoints, alone and beside one endpoint that takes 5 s per
// answer and one that refuses connections. Jobs are published one per
// healthy endpoint every millisecond; run with -benchtime=Nx.
func BenchmarkIsolation(b *testing.B) {
	for _, bad := range []bool{false, true} {
		name := "alone"
		if bad {
			name = "beside_slow_and_dead"
		}
		b.Run(name, func(b *testing.B) { benchIsolation(b, bad) })
	}
}

func benchIsolation(b *testing.B, bad bool) {
	cfg := testStageConfig()
	cfg.Breaker = sender.BreakerConfig{Failures: 5, Cooldown: 5 * time.Second}
	e := newStageEnv(b, cfg)
	var mu sync.Mutex
	received := map[string]time.Time{}
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		received[r.Header.Get("webhook-id")] = time.Now()
		mu.Unlock()
	}))
	defer ok.Close()
	for i := 0; i < 9; i++ {
		e.hooks.add(fmt.Sprint("healthy", i), ok.URL)
	}
	w := e.b.Writer(schemas.TopicDeliveries, nil)
	defer w.Close()
	if bad {
		release := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(5 * time.Second):
			case <-release:
			}
		}))
		defer slow.Close()
		defer close(release)
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		dead := "http://" + ln.Addr().String()
		ln.Close() // nothing listens: connections are refused
		e.hooks.add("slow", slow.URL)
		e.hooks.add("dead", dead)
	}
	published := map[string]time.Time{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if bad {
			e.publishWith(w, "slow", 1)
			e.publishWith(w, "dead", 1)
		}
		for h := 0; h < 9; h++ {
			at := time.Now()
			for _, id := range e.publishWith(w, fmt.Sprint("healthy", h), 1) {
				published[id] = at
			}
		}
		time.Sleep(time.Millisecond)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := 0
		for id := range published {
			if _, ok := received[id]; ok {
				n++
			}
		}
		mu.Unlock()
		if n == len(published) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d healthy deliveries arrived", n, len(published))
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	var lat []float64
	mu.Lock()
	for id, at := range published {
		lat = append(lat, float64(received[id].Sub(at).Microseconds())/1000)
	}
	mu.Unlock()
	sort.Float64s(lat)
	b.ReportMetric(lat[len(lat)/2], "p50-ms")
	b.ReportMetric(lat[len(lat)*99/100], "p99-ms")
	b.ReportMetric(0, "ns/op")
}
