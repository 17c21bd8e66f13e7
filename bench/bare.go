package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The floor every delivery is measured against: a bare net/http client and
// server in this process, keep-alive, benchBareInFlight requests in flight,
// each POSTing a JSON body of about --data-bytes (a delivery's size), for
// benchBareFor. Its requests/s and CPU per request (client and server
// together) are what a delivery would cost if Hookline added nothing; the
// burst scenarios are printed as ratios to it (issue 23's targets: at least
// half its rate, at most 2.5 times its CPU).
const benchBareInFlight = 16

// benchBareFor is how long the floor is measured (shorter in tests).
var benchBareFor = 5 * time.Second

// Targets of the ratios to bare HTTP.
const (
	bareRateTarget = 0.5
	bareCPUTarget  = 2.5
)

// runBare measures the floor and returns its row.
func runBare(ctx context.Context, c *benchConfig) (benchRow, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return benchRow{}, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: benchBareInFlight, MaxConnsPerHost: benchBareInFlight}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	url := "http://" + ln.Addr().String() + "/"
	body := append(append([]byte(`{"id":"01930000-0000-7000-8000-000000000000","event_type":"ticket.updated","data":`),
		benchTicket(1, 1, c.dataBytes)...), '}')

	var n atomic.Int64
	var failed atomic.Pointer[error]
	fail := func(err error) { failed.CompareAndSwap(nil, &err) }
	ctx, cancel := context.WithTimeout(ctx, benchBareFor)
	defer cancel()
	cpu0, _ := procCPU("self")
	start := time.Now()
	var wg sync.WaitGroup
	for range benchBareInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				if err != nil {
					fail(err)
					return
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						fail(err)
					}
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					fail(fmt.Errorf("bare server answered %s", resp.Status))
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, _ := procCPU("self")
	if err := failed.Load(); err != nil {
		return benchRow{}, fmt.Errorf("bare http: %w", *err)
	}
	done := int(n.Load())
	if done == 0 {
		return benchRow{}, fmt.Errorf("bare http: no request finished in %v", benchBareFor)
	}
	return benchRow{
		name: "bare-http", loop: benchBare, events: done, deliveries: done,
		perSec:   float64(done) / elapsed.Seconds(),
		cpuPer1k: (cpu1 - cpu0).Seconds() * 1000 / float64(done),
		lost:     -1, via: "-",
	}, nil
}

// bareRatio is a burst scenario against the floor of the same run.
type bareRatio struct {
	scenario   string
	rate, cost float64
}

// bareRatios compares every burst row with the bare-http row, if both ran.
func bareRatios(rows []benchRow) []bareRatio {
	var bare *benchRow
	for i := range rows {
		if rows[i].loop == benchBare {
			bare = &rows[i]
		}
	}
	if bare == nil || bare.perSec <= 0 || bare.cpuPer1k <= 0 {
		return nil
	}
	var out []bareRatio
	for _, r := range rows {
		if r.loop == benchBurst && r.perSec > 0 && !strings.Contains(r.name, "/") && !benchScenarioNamed(r.name).late {
			out = append(out, bareRatio{scenario: r.name, rate: r.perSec / bare.perSec, cost: r.cpuPer1k / bare.cpuPer1k})
		}
	}
	return out
}

func printBareRatios(w io.Writer, rows []benchRow) {
	for _, b := range bareRatios(rows) {
		fmt.Fprintf(w, "\nbare HTTP: %s deliveries/s / bare-http requests/s = %.2f (target >= %.2f); serve's CPU per delivery / bare CPU per request = %.2f (target <= %.2f)",
			b.scenario, b.rate, bareRateTarget, b.cost, bareCPUTarget)
	}
}
