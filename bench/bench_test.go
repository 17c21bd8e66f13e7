package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	type env struct {
		id, event, resource string
		seq                 int64 // -1: none
	}
	tests := []struct {
		name string
		body string
		want []env
	}{
		{"one envelope", `{"id":"d1","event_id":"bench-0-7","resource_id":"T-7","data":{"x":1,"seq":7}}`, []env{{"d1", "bench-0-7", "T-7", 7}}},
		{"a batch", ` [{"id":"d1","event_id":"bench-1-0"},{"id":"d2","event_id":"bench-1-1","data":{"seq":0,"o":{"seq":9}}}]`,
			[]env{{"d1", "bench-1-0", "", -1}, {"d2", "bench-1-1", "", 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeBenchBody([]byte(tt.body))
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("decode = %v, %v", got, err)
			}
			for i, g := range got {
				seq := int64(-1)
				if g.Data.Seq != nil {
					seq = *g.Data.Seq
				}
				if e := (env{g.ID, g.EventID, g.ResourceID, seq}); e != tt.want[i] {
					t.Fatalf("envelope %d = %+v, want %+v", i, e, tt.want[i])
				}
			}
		})
	}
	for id, want := range map[string]bool{"bench-0-12": true, "bench-1-0": true, "bench-2-1": true, "bench-3-1": false,
		"other-0-1": false, "bench-0-x": false, "bench-/-1": false} {
		if _, _, ok := parseBenchEventID(id); ok != want {
			t.Errorf("parseBenchEventID(%q) ok = %v, want %v", id, ok, want)
		}
	}
}

// benchEnv is a delivery envelope for the recorder's tests.
func benchEnv(id, eventID, resource string, seq int64) benchEnvelope {
	e := benchEnvelope{ID: id, EventID: eventID, ResourceID: resource}
	if seq >= 0 {
		e.Data.Seq = &seq
	}
	return e
}

func TestBenchRecorderCountsDuplicatesAndSubsets(t *testing.T) {
	r := newBenchRecorder(2)
	r.setPhase(benchSat, 2)
	r.stamp(benchSat, 0, 2, time.Now())
	now := time.Now()
	r.record(benchEnv("d1", "bench-0-0", "T-0", 0), 1, 0, now)
	r.record(benchEnv("d1", "bench-0-0", "T-0", 0), 1, 0, now) // the same delivery again
	r.record(benchEnv("d2", "bench-0-1", "T-1", 1), 1, -1, now)
	r.record(benchEnv("d3", "bench-0-9", "T-9", 9), 1, 0, now) // an event never published
	r.record(benchEnv("d4", "bench-0-1", "T-1", 1), 1, 2, now) // an endpoint that does not exist
	h, all, bad := r.stats(benchSat, benchHealthy), r.stats(benchSat, benchAll), r.stats(benchSat, benchBad)
	if h.distinct != 1 || h.dups != 1 || all.distinct != 2 || all.dups != 1 || bad.distinct != 1 || bad.dups != 0 || r.undecodable() != 2 {
		t.Fatalf("healthy %+v, all %+v, bad %+v, undecodable %d", h, all, bad, r.undecodable())
	}
	// Endpoint 1 has received nothing yet, so the slowest has 0.
	if got := r.slowest(benchSat); got != 0 {
		t.Fatalf("slowest = %d, want 0", got)
	}
	r.record(benchEnv("d5", "bench-0-1", "T-1", 1), 1, 1, now)
	if got := r.slowest(benchSat); got != 1 {
		t.Fatalf("slowest = %d, want 1", got)
	}
}

func TestBenchOrderCountsSwaps(t *testing.T) {
	o := benchOrder{}
	k := benchOrderKey{phase: benchOpen, endpoint: 0, resource: "T-1"}
	var got []bool
	for _, seq := range []int64{0, 1, 3, 2, 4, 1, 5} {
		got = append(got, o.observe(k, seq))
	}
	// 2 after 3 and 1 after 4 are swaps; 4 and 5 are in order after them.
	if want := []bool{false, false, false, true, false, true, false}; !slices.Equal(got, want) {
		t.Fatalf("swaps %v, want %v", got, want)
	}
	// Another resource, endpoint or phase has its own order.
	for _, other := range []benchOrderKey{{benchOpen, 0, "T-2"}, {benchOpen, 1, "T-1"}, {benchSat, 0, "T-1"}} {
		if o.observe(other, 0) {
			t.Fatalf("%+v: seq 0 counted as a swap", other)
		}
	}

	r := newBenchRecorder(2)
	r.setPhase(benchOpen, 4)
	r.stamp(benchOpen, 0, 4, time.Now())
	now := time.Now()
	r.record(benchEnv("d1", "bench-2-1", "T-0", 1), 1, 0, now)
	r.record(benchEnv("d0", "bench-2-0", "T-0", 0), 1, 0, now) // overtaken: a swap
	r.record(benchEnv("d2", "bench-2-0", "T-0", 0), 1, 1, now) // another endpoint, in order
	r.record(benchEnv("d3", "bench-2-1", "T-0", 1), 1, 1, now)
	r.record(benchEnv("d3", "bench-2-1", "T-0", 1), 1, 1, now)  // a duplicate: not looked at
	r.record(benchEnv("d4", "bench-2-3", "T-2", 1), 1, -1, now) // the slow endpoint
	r.record(benchEnv("d5", "bench-2-2", "T-2", 0), 2, -1, now) // a retry: left out
	r.record(benchEnv("d6", "bench-2-2", "", -1), 1, 1, now)    // nothing to order by
	h, bad := r.stats(benchOpen, benchHealthy), r.stats(benchOpen, benchBad)
	if h.swaps != 1 || bad.swaps != 0 || r.stats(benchOpen, benchAll).swaps != 1 || r.retried() != 1 || r.unordered() != 1 {
		t.Fatalf("swaps: healthy %d, bad %d; retried %d, unordered %d", h.swaps, bad.swaps, r.retried(), r.unordered())
	}
}

func TestBenchTicketSize(t *testing.T) {
	for _, size := range []int{benchMinData, 100, 300, 1024, 4096, 64 << 10} {
		for _, seq := range []int{0, 7, 123456} {
			data := benchTicket(seq, 999, size)
			if len(data) != size {
				t.Fatalf("size %d, seq %d: %d bytes", size, seq, len(data))
			}
			var v struct {
				Seq       *int   `json:"seq"`
				TicketID  string `json:"ticket_id"`
				Requester *struct {
					Organization struct{ Name string } `json:"organization"`
				} `json:"requester"`
				Description string `json:"description"`
			}
			if err := json.Unmarshal(data, &v); err != nil {
				t.Fatalf("size %d: %v\n%s", size, err, data)
			}
			if v.Seq == nil || *v.Seq != seq || v.TicketID != "T-999" || v.Description == "" {
				t.Fatalf("size %d: %+v", size, v)
			}
			if size >= 1024 && (v.Requester == nil || v.Requester.Organization.Name == "") {
				t.Fatalf("size %d: no nested requester in %s", size, data)
			}
		}
	}
	// An event with 1 KiB of data, and a full array of them, fit the API's
	// limits (1 MiB a request).
	ev, err := benchOpenEvent(123456, 1024, time.Now())
	if err != nil || len(ev) > 1024+benchEventOverhead {
		t.Fatalf("event of %d bytes (%v), more than data + %d", len(ev), err, benchEventOverhead)
	}
	for dataBytes, want := range map[int]int{1024: 500, 4096: 204, benchMaxData: 1} {
		if got := benchArray(dataBytes); got != want || got*(dataBytes+benchEventOverhead) > 1<<20 {
			t.Errorf("benchArray(%d) = %d, want %d", dataBytes, got, want)
		}
	}
}

func TestBenchPacing(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	for _, tt := range []struct {
		elapsed time.Duration
		want    int
	}{{-ms(1), 0}, {0, 1}, {ms(9), 10}, {ms(10), 11}, {ms(999), 1000}, {ms(1000), 1000}, {time.Hour, 1000}} {
		if got := benchDue(tt.elapsed, 1000, 1000); got != tt.want {
			t.Errorf("benchDue(%v, 1000/s, 1000) = %d, want %d", tt.elapsed, got, tt.want)
		}
	}
	if got := benchPacedEvents(1000, 10*time.Second); got != 10000 {
		t.Errorf("benchPacedEvents(1000/s, 10s) = %d", got)
	}
	if got := benchPacedEvents(1, time.Millisecond); got != 1 {
		t.Errorf("benchPacedEvents(1/s, 1ms) = %d", got)
	}
	// Every resource's events go through one publisher, in seq order.
	pubOf := map[int]int{}
	for g := range 5 * benchResources {
		res, seq, pub := benchResourceOf(g)
		if seq != g/benchResources || pub < 0 || pub >= benchPublishers {
			t.Fatalf("event %d: resource %d, seq %d, publisher %d", g, res, seq, pub)
		}
		if p, ok := pubOf[res]; ok && p != pub {
			t.Fatalf("resource %d through publishers %d and %d", res, p, pub)
		}
		pubOf[res] = pub
	}
	if len(pubOf) != benchResources {
		t.Fatalf("%d resources, want %d", len(pubOf), benchResources)
	}
}

func TestBenchIsolationRatio(t *testing.T) {
	rows := []benchRow{{name: "paced-healthy", p99: 10 * time.Millisecond}, {name: "paced-slow-dead/bad", p99: time.Second},
		{name: "paced-slow-dead/healthy", p99: 11 * time.Millisecond}}
	got := isolationRatios(rows)
	if len(got) != 1 || got[0].beside != "paced-slow-dead/healthy" || got[0].alone != "paced-healthy" || got[0].ratio < 1.099 || got[0].ratio > 1.101 {
		t.Fatalf("isolationRatios = %+v; want paced-slow-dead/healthy / paced-healthy = 1.1", got)
	}
	if got := isolationRatios(rows[1:]); len(got) != 0 {
		t.Fatalf("a ratio without the healthy-alone row: %+v", got)
	}
	closed := []benchRow{{name: "slow-dead/healthy", p99: 6 * time.Millisecond}, {name: "10-webhooks", p99: 4 * time.Millisecond}}
	if got := isolationRatios(closed); len(got) != 1 || got[0].alone != "10-webhooks" || got[0].ratio != 1.5 {
		t.Fatalf("closed isolationRatios = %+v; want slow-dead/healthy / 10-webhooks = 1.5", got)
	}
}

// TestBenchBareFloor: the bare-HTTP floor measures requests and CPU, and
// each burst (not burst-50ms, whose endpoint waits on purpose) is printed
// as ratios to it.
func TestBenchBareFloor(t *testing.T) {
	defer func(d time.Duration) { benchBareFor = d }(benchBareFor)
	benchBareFor = 300 * time.Millisecond
	bare, err := runBare(context.Background(), &benchConfig{dataBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if bare.perSec <= 0 || bare.deliveries == 0 || bare.cpuPer1k <= 0 || bare.loop != benchBare {
		t.Fatalf("bare row %+v: no rate or CPU", bare)
	}
	rows := []benchRow{
		{name: "bare-http", loop: benchBare, perSec: 20000, cpuPer1k: 0.040},
		{name: "burst", loop: benchBurst, perSec: 8000, cpuPer1k: 0.120},
		{name: "burst-50ms", loop: benchBurst, perSec: 600, cpuPer1k: 0.5},
		{name: "paced", loop: benchPaced, perSec: 1000, cpuPer1k: 0.2},
	}
	got := bareRatios(rows)
	if len(got) != 1 || got[0].scenario != "burst" || got[0].rate != 0.4 || got[0].cost < 2.999 || got[0].cost > 3.001 {
		t.Fatalf("bareRatios = %+v, want burst at 0.40 of the rate and 3.0 times the CPU", got)
	}
	if got := bareRatios(rows[1:]); got != nil {
		t.Fatalf("ratios without a bare-http row: %+v", got)
	}
	var out strings.Builder
	printBareRatios(&out, rows)
	if !strings.Contains(out.String(), "burst deliveries/s / bare-http requests/s = 0.40 (target >= 0.50)") {
		t.Fatalf("printed %q", out.String())
	}
}

func TestBenchScenarioSelection(t *testing.T) {
	names := func(spec string) []string {
		c := &benchConfig{events: 0, rate: 1000, duration: time.Second, dataBytes: 1024, timeout: time.Minute, scenarios: spec}
		sc, err := c.validate()
		if err != nil {
			t.Fatalf("%q: %v", spec, err)
		}
		var out []string
		for _, s := range sc {
			out = append(out, s.name)
		}
		return out
	}
	if got := names("burst, paced,burst"); !slices.Equal(got, []string{"bare-http", "burst", "paced"}) {
		t.Errorf("burst,paced = %v, want the bare-HTTP floor first", got)
	}
	if got := names("slow-dead"); !slices.Equal(got, []string{"10-webhooks", "slow-dead"}) {
		t.Errorf("slow-dead = %v, want its alone scenario first", got)
	}
	if got := names("paced-slow-dead,paced-healthy"); !slices.Equal(got, []string{"paced-healthy", "paced-slow-dead"}) {
		t.Errorf("paced-slow-dead,paced-healthy = %v", got)
	}
	if got := names("closed"); !slices.Equal(got, []string{"1-webhook", "fan-out-50", "10-webhooks", "slow-dead", "batching"}) {
		t.Errorf("closed = %v", got)
	}
	if got := names("open"); !slices.Equal(got, []string{"bare-http", "burst", "burst-50", "burst-50ms", "paced", "paced-healthy", "paced-slow-dead"}) {
		t.Errorf("open = %v", got)
	}
	all, every := names("all"), names("every")
	if len(every) != len(benchScenarios()) || slices.Contains(all, "burst-50ms") || len(all) != len(every)-1 {
		t.Errorf("all = %v, every = %v", all, every)
	}
	c := &benchConfig{rate: 1000, duration: time.Second, dataBytes: 10, timeout: time.Minute, scenarios: "burst"}
	if _, err := c.validate(); err == nil {
		t.Error("--data-bytes 10 accepted")
	}
	c = &benchConfig{rate: 1000, duration: time.Second, dataBytes: 1024, timeout: time.Minute, scenarios: "nope"}
	if _, err := c.validate(); err == nil {
		t.Error("an unknown scenario accepted")
	}
}

// TestBenchOpenPublisher publishes a burst through a fake API: every event
// once, arrays of at most benchArray, at most benchPublishers requests at
// once, each resource's events in order, and a request the API refuses
// with 503 sent again.
func TestBenchOpenPublisher(t *testing.T) {
	const n = 3000
	var mu sync.Mutex
	var inFlight, maxInFlight, refused int
	seen := map[string]int{}
	lastSeq := map[string]int{}
	swaps := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		refuse := refused == 0
		if refuse {
			refused++
		}
		mu.Unlock()
		defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		time.Sleep(time.Millisecond)
		if refuse {
			http.Error(w, `{"code":"unavailable","message":"try again"}`, http.StatusServiceUnavailable)
			return
		}
		var evs []struct {
			ID         string `json:"id"`
			ResourceID string `json:"resource_id"`
			Data       struct {
				Seq int `json:"seq"`
			} `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&evs); err != nil || len(evs) > benchArray(256) {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, ev := range evs {
			seen[ev.ID]++
			if last, ok := lastSeq[ev.ResourceID]; ok && ev.Data.Seq <= last {
				swaps++
			}
			lastSeq[ev.ResourceID] = ev.Data.Seq
		}
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	var stamped atomic.Int64
	p := newBenchOpenPublisher(srv.URL, srv.Client(), 256, func(int, time.Time) { stamped.Add(1) })
	done := p.start(context.Background())
	p.put(0, n, time.Time{})
	p.close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != n || p.published.Load() != n || maxInFlight > benchPublishers || swaps != 0 || p.retries.Load() != 1 {
		t.Fatalf("%d distinct events, %d published, %d requests at once, %d swaps, %d retries",
			len(seen), p.published.Load(), maxInFlight, swaps, p.retries.Load())
	}
	if stamped.Load() < n {
		t.Fatalf("%d events stamped, want at least %d", stamped.Load(), n)
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
