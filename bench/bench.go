package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/client"
	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/schemas"
)

// benchConfig holds the flags of `hookline bench`.
type benchConfig struct {
	version string
	exe     func() (string, error)
	// serveArgs are extra flags for every serve child, e.g.
	// "--debug-addr 127.0.0.1:6060" to profile it while it runs.
	serveArgs string
	// events is, for a closed-loop scenario, how many deliveries its
	// saturation phase aims at (it publishes events/webhooks events), and
	// for a burst scenario how many events it publishes. 0 (the default)
	// is the scenario's own default: 120,000 deliveries closed loop,
	// burst's and burst-50ms's own counts open loop.
	events int
	// rate is, for a closed-loop scenario, how many deliveries per second
	// its fixed-rate phase offers, and for a paced scenario how many
	// events per second it publishes. Default 1,000.
	rate int
	// duration is the length of the fixed-rate phase and of the paced
	// scenarios' publishing. Default 10 s.
	duration time.Duration
	// dataBytes is the size of the data object of the open-loop
	// scenarios' events. Default 1,024.
	dataBytes int
	// scenarios is "all", "closed", "open", "every" or a comma-separated
	// list of scenario names.
	scenarios string
	// timeout bounds the whole run. Default 15 min.
	timeout time.Duration
}

const (
	benchSat   = 0 // phase index: saturation (closed loop)
	benchFixed = 1 // phase index: fixed rate (closed loop)
	benchOpen  = 2 // phase index: the one phase of an open-loop scenario
	// benchPhases is how many phase indexes there are.
	benchPhases = 3
	// benchWait bounds every wait for deliveries: the flow-control waits of
	// the saturation phase and the wait for stragglers after a phase. An
	// open-loop scenario waits for its deliveries as long as they keep
	// coming, and gives up after benchWait without one.
	benchWait = 60 * time.Second
	// benchSlow is how long the slow endpoint takes to answer.
	benchSlow = 5 * time.Second
	// benchLate is how long a late healthy endpoint (burst-50ms) takes to
	// answer.
	benchLate = 50 * time.Millisecond
	// benchJobsPerEndpoint bounds the saturation phase's outstanding jobs
	// per healthy endpoint, below serve's --endpoint-queue (256), so that
	// the phase measures delivery, not put-offs to the 10 s retry tier.
	benchJobsPerEndpoint = 200
	benchBatchItems      = 100
	benchSecret          = "whsec_YmVuY2htYXJrLXNlY3JldC1rZXktMzItYnl0ZXM="
	// benchClosedEvents is the closed-loop scenarios' default --events.
	benchClosedEvents = 120000
)

// benchLoop is how a scenario offers its load.
type benchLoop int

const (
	// benchClosed: a saturation phase that keeps at most
	// benchJobsPerEndpoint jobs outstanding per endpoint, then a
	// fixed-rate phase; events go straight to Kafka.
	benchClosed benchLoop = iota
	// benchBurst (open loop): --events events through POST /v1/events as
	// fast as the API accepts them, never waiting for deliveries.
	benchBurst
	// benchPaced (open loop): --rate events/s for --duration through
	// POST /v1/events, never waiting for deliveries.
	benchPaced
	// benchBare: no Hookline at all, the floor (bare.go).
	benchBare
)

func (l benchLoop) String() string {
	switch l {
	case benchClosed:
		return "closed"
	case benchBare:
		return "bare"
	}
	return "open"
}

// benchScenario is one load shape, run on a fresh serve and data dir.
type benchScenario struct {
	name    string
	loop    benchLoop
	healthy int  // webhooks whose endpoint answers 204 at once (after benchLate when late)
	late    bool // the healthy endpoints answer after benchLate
	bad     bool // adds an endpoint that answers after 5 s and one on a closed port
	// alone names the scenario of the same healthy endpoints without the
	// bad two: selecting this one runs that one first, and their p99 make
	// the isolation ratio.
	alone string
	// floor names the scenario whose row its ratios are taken against
	// (bare-http, for the bursts): selecting this one runs that one first.
	floor    string
	batching bool // the healthy webhooks batch: mode any, 1 s, 100 items
	// events is the burst's default --events.
	events int
	// extra scenarios are left out of "all" to keep it under ~10 minutes
	// on 2 cores; "every" runs them too.
	extra bool
}

// webhooks is how many webhooks every event matches.
func (s benchScenario) webhooks() int {
	if s.bad {
		return s.healthy + 2
	}
	return s.healthy
}

// perJob is how many deliveries (envelopes) one request carries at most.
func (s benchScenario) perJob() int {
	if s.batching {
		return benchBatchItems
	}
	return 1
}

func benchScenarios() []benchScenario {
	return []benchScenario{
		{name: "1-webhook", healthy: 1},
		{name: "fan-out-50", healthy: 50},
		// slow-dead's 10 healthy webhooks alone: its isolation ratio's
		// denominator.
		{name: "10-webhooks", healthy: 10},
		{name: "slow-dead", healthy: 10, bad: true, alone: "10-webhooks"},
		{name: "batching", healthy: 1, batching: true},
		// The floor the bursts are compared with, in the same run.
		{name: "bare-http", loop: benchBare},
		{name: "burst", loop: benchBurst, healthy: 1, events: 50000, floor: "bare-http"},
		// The same 50,000 deliveries fanned out: every event to 50
		// webhooks (--events 50000 is 2.5 million deliveries, minutes).
		{name: "burst-50", loop: benchBurst, healthy: 50, events: 1000, floor: "bare-http"},
		// About 40 s at the ~600 deliveries/s of the adaptive sender, 5
		// minutes at the ~70/s of the fixed 4 lanes before it: not in "all",
		// whose length should not depend on the sender's concurrency.
		{name: "burst-50ms", loop: benchBurst, healthy: 1, late: true, events: 20000, extra: true},
		{name: "paced", loop: benchPaced, healthy: 1},
		{name: "paced-healthy", loop: benchPaced, healthy: 10},
		{name: "paced-slow-dead", loop: benchPaced, healthy: 10, bad: true, alone: "paced-healthy"},
	}
}

// Flags declares the flags of `hookline bench` on fs and returns the
// command: version names the binary in the table's heading, and exe is
// the hookline binary whose `serve` is started for each scenario.
func Flags(fs *flag.FlagSet, version string, exe func() (string, error)) func(ctx context.Context, stdout, stderr io.Writer) error {
	c := &benchConfig{version: version, exe: exe}
	var names, all, extra []string
	for _, s := range benchScenarios() {
		names = append(names, s.name)
		if s.extra {
			extra = append(extra, s.name)
		} else {
			all = append(all, s.name)
		}
	}
	fs.IntVar(&c.events, "events", 0, fmt.Sprintf("closed loop: deliveries each saturation phase aims at (events published = this / webhooks per event); "+
		"burst: events published; 0: %d closed loop, %s", benchClosedEvents, burstDefaults()))
	fs.IntVar(&c.rate, "rate", 1000, "closed loop: deliveries/s offered in each fixed-rate phase; paced: events/s published (each event is one delivery per webhook)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "length of each fixed-rate phase and of the paced scenarios' publishing")
	fs.IntVar(&c.dataBytes, "data-bytes", 1024, "size of each open-loop event's data object (a ticket), 64 to 524288")
	fs.StringVar(&c.scenarios, "scenarios", "all", "scenarios to run: all ("+strings.Join(all, ",")+
		"; 3 to 8 minutes on 2 cores), every (all and "+strings.Join(extra, ",")+"), closed (the closed-loop ones), "+
		"open (the open-loop ones), or a comma-separated list of these and of "+strings.Join(names, ","))
	fs.DurationVar(&c.timeout, "timeout", 15*time.Minute, "bound on the whole run; serve children are stopped when it passes")
	fs.StringVar(&c.serveArgs, "serve-args", "", "extra flags for each hookline serve child, space-separated (e.g. \"--debug-addr 127.0.0.1:6060\" to profile it)")
	return func(ctx context.Context, stdout, stderr io.Writer) error { return bench(ctx, c, stdout, stderr) }
}

func (c *benchConfig) validate() ([]benchScenario, error) {
	switch {
	case c.events < 0 || c.events > 10_000_000:
		return nil, fmt.Errorf("--events %d must be 0 (each scenario's default) or 1 to 10000000", c.events)
	case c.rate < 1 || c.rate > 1_000_000:
		return nil, fmt.Errorf("--rate %d must be 1 to 1000000", c.rate)
	case c.duration <= 0 || c.duration > time.Hour:
		return nil, fmt.Errorf("--duration %v must be positive and at most 1h", c.duration)
	case c.dataBytes < benchMinData || c.dataBytes > benchMaxData:
		return nil, fmt.Errorf("--data-bytes %d must be %d to %d", c.dataBytes, benchMinData, benchMaxData)
	case c.timeout <= 0:
		return nil, errors.New("--timeout must be positive")
	}
	all := benchScenarios()
	var out []benchScenario
	for _, name := range strings.Split(c.scenarios, ",") {
		name = strings.TrimSpace(name)
		var group func(benchScenario) bool
		switch name {
		case "all":
			group = func(s benchScenario) bool { return !s.extra }
		case "every":
			group = func(benchScenario) bool { return true }
		case "closed":
			group = func(s benchScenario) bool { return s.loop == benchClosed }
		case "open":
			group = func(s benchScenario) bool { return s.loop == benchBurst || s.loop == benchPaced || s.loop == benchBare }
		default:
			group = func(s benchScenario) bool { return s.name == name }
		}
		n := 0
		for _, s := range all {
			if group(s) {
				n++
				for _, s := range []benchScenario{benchScenarioNamed(s.floor), benchScenarioNamed(s.alone), s} {
					if s.name != "" && !slices.ContainsFunc(out, func(o benchScenario) bool { return o.name == s.name }) {
						out = append(out, s)
					}
				}
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("--scenarios: unknown scenario %q", name)
		}
	}
	return out, nil
}

// benchScenarioNamed is the scenario of that name; zero for none.
func benchScenarioNamed(name string) benchScenario {
	for _, s := range benchScenarios() {
		if s.name == name {
			return s
		}
	}
	return benchScenario{}
}

// closedEvents is the saturation phase's target in deliveries.
func (c *benchConfig) closedEvents() int { return cmp.Or(c.events, benchClosedEvents) }

// burstEvents is how many events a burst scenario publishes.
func (c *benchConfig) burstEvents(sc benchScenario) int { return cmp.Or(c.events, sc.events) }

// bench is `hookline bench`: an end-to-end load test. For each scenario it
// starts `hookline serve` (this executable) on a fresh data dir with the
// embedded broker and store, registers webhooks pointing at an in-process
// receiver, and publishes events: closed loop straight to hookline.events
// (a saturation phase with a window of outstanding jobs, then a fixed-rate
// phase), open loop through POST /v1/events without ever waiting for
// deliveries (a burst, or a fixed rate). It measures sustained
// deliveries/s, publish-to-receipt latency, the child's CPU and peak RSS,
// put-offs, lost deliveries, duplicates and per-resource order swaps. It
// prints one table and fails when a delivery was lost.
func bench(ctx context.Context, c *benchConfig, stdout, stderr io.Writer) error {
	scenarios, err := c.validate()
	if err != nil {
		return err
	}
	exe, err := c.exe()
	if err != nil {
		return fmt.Errorf("bench: finding the hookline binary: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rows []benchRow
	var failed []string
	for _, sc := range scenarios {
		if ctx.Err() != nil {
			failed = append(failed, sc.name+": not run: "+ctx.Err().Error())
			continue
		}
		log.Info("bench: scenario starting", "scenario", sc.name, "webhooks", sc.webhooks())
		var r []benchRow
		var err error
		if sc.loop == benchBare {
			var row benchRow
			row, err = runBare(ctx, c)
			r = []benchRow{row}
		} else {
			r, err = runBenchScenario(ctx, c, sc, exe, log)
		}
		if err != nil {
			log.Error("bench: scenario failed", "scenario", sc.name, "err", err)
			failed = append(failed, sc.name+": "+err.Error())
			continue
		}
		rows = append(rows, r...)
	}
	printBenchTable(stdout, c, rows)
	lost := 0
	for _, r := range rows {
		lost += max(r.lost, 0)
	}
	switch {
	case len(failed) > 0:
		return fmt.Errorf("bench: %s", strings.Join(failed, "; "))
	case lost > 0:
		return fmt.Errorf("bench: %d deliveries lost", lost)
	}
	return nil
}

// benchRun is one scenario in progress.
type benchRun struct {
	c     *benchConfig
	sc    benchScenario
	rec   *benchRecorder
	pub   benchPublisher
	child *benchChild
	log   *slog.Logger
}

// benchPhaseResult is what a phase published and how long it took.
type benchPhaseResult struct {
	events   int
	elapsed  time.Duration
	childCPU time.Duration
	others   float64 // share of the machine's CPU other processes used
	offered  float64 // deliveries/s offered (fixed-rate phase)
}

func runBenchScenario(ctx context.Context, c *benchConfig, sc benchScenario, exe string, log *slog.Logger) (_ []benchRow, err error) {
	dir, err := os.MkdirTemp("", "hookline-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	self0, _ := procCPU("self")
	rec := newBenchRecorder(sc.healthy)
	recv, err := startBenchReceiver(rec)
	if err != nil {
		return nil, err
	}
	defer recv.close()
	child, err := startBenchServe(ctx, exe, dir, strings.Fields(c.serveArgs), log)
	if err != nil {
		return nil, err
	}
	defer child.stop()
	defer func() {
		if err != nil {
			err = child.explain(err)
		}
	}()
	if err := registerBenchWebhooks(ctx, child.base, sc, recv); err != nil {
		return nil, err
	}
	run := &benchRun{c: c, sc: sc, rec: rec, child: child, log: log}
	var rows func(rssKB, putOff int64) []benchRow
	if sc.loop == benchClosed {
		pub, via := newBenchPublisher(child)
		defer pub.close()
		run.pub = pub
		log.Info("bench: publishing", "scenario", sc.name, "loop", sc.loop, "via", via, "kafka", child.kafka)
		sat, err := run.saturate(ctx)
		if err != nil {
			return nil, err
		}
		fixed, err := run.fixedRate(ctx)
		if err != nil {
			return nil, err
		}
		rows = func(rssKB, putOff int64) []benchRow { return run.rows(sat, fixed, rssKB, putOff, via) }
	} else {
		log.Info("bench: publishing", "scenario", sc.name, "loop", sc.loop, "via", benchViaAPI)
		res, err := run.openLoop(ctx)
		if err != nil {
			return nil, err
		}
		rows = func(rssKB, putOff int64) []benchRow { return run.openRows(res, rssKB, putOff) }
	}
	rss := child.peakRSS()
	putOff := child.putOffs(ctx)
	self1, _ := procCPU("self")
	stopStart := time.Now()
	if err := child.stop(); err != nil {
		log.Warn("bench: serve did not stop cleanly", "err", err, "stderr", child.tail.String())
	}
	log.Info("bench: serve stopped", "scenario", sc.name, "took", time.Since(stopStart).Round(time.Millisecond))
	log.Info("bench: scenario done", "scenario", sc.name, "bench_process_cpu", self1-self0, "undecodable_bodies", rec.undecodable(),
		"retried_deliveries", rec.retried(), "envelopes_without_seq", rec.unordered())
	return rows(rss, putOff), nil
}

// saturate publishes c.closedEvents() deliveries' worth of events as fast
// as the pipeline absorbs them: no healthy endpoint ever has more than
// benchJobsPerEndpoint jobs outstanding (published, not yet received).
func (r *benchRun) saturate(ctx context.Context) (benchPhaseResult, error) {
	n := max(1, r.c.closedEvents()/r.sc.webhooks())
	window := benchJobsPerEndpoint * r.sc.perJob() // deliveries per endpoint
	chunk := min(1000, max(1, window/2))
	r.rec.setPhase(benchSat, n)
	cpu0 := r.cpuNow()
	start := time.Now()
	sent := 0
	for sent < n {
		k := min(chunk, n-sent)
		ok, err := r.rec.waitFor(ctx, benchSat, sent+k-window, benchWait)
		if err != nil {
			return benchPhaseResult{}, err
		}
		if !ok {
			r.log.Warn("bench: no progress, saturation phase stops early", "scenario", r.sc.name, "published", sent)
			break
		}
		if err := r.publish(ctx, benchSat, sent, k); err != nil {
			return benchPhaseResult{}, err
		}
		sent += k
	}
	if err := r.waitForStragglers(ctx, benchSat, sent); err != nil {
		return benchPhaseResult{}, err
	}
	res := benchPhaseResult{events: sent, elapsed: time.Since(start)}
	cpu1 := r.cpuNow()
	res.childCPU = cpu1.child - cpu0.child
	other := (cpu1.busy - cpu0.busy) - res.childCPU - (cpu1.self - cpu0.self)
	res.others = max(0, other.Seconds()/(res.elapsed.Seconds()*float64(runtime.NumCPU())))
	r.log.Info("bench: saturation phase done", "scenario", r.sc.name, "events", sent, "elapsed", res.elapsed.Round(time.Millisecond),
		"deliveries_per_s_by_fifth", ratesByFifth(r.rec.stats(benchSat, benchHealthy).times))
	return res, nil
}

// benchCPU is CPU used so far by serve, by this process and by the whole
// machine (busy, all processes).
type benchCPU struct{ child, self, busy time.Duration }

func (r *benchRun) cpuNow() benchCPU {
	var c benchCPU
	c.child, _ = procCPU(strconv.Itoa(r.child.pid()))
	c.self, _ = procCPU("self")
	c.busy, _ = machineBusy()
	return c
}

// fixedRate offers c.rate deliveries/s for c.duration, publishing every
// 5 ms what is due, and then waits for stragglers.
func (r *benchRun) fixedRate(ctx context.Context) (benchPhaseResult, error) {
	perSec := float64(r.c.rate) / float64(r.sc.webhooks())
	n := max(1, int(perSec*r.c.duration.Seconds()))
	r.rec.setPhase(benchFixed, n)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	giveUp := start.Add(2*r.c.duration + 5*time.Second)
	sent := 0
	for sent < n {
		select {
		case <-ctx.Done():
			return benchPhaseResult{}, ctx.Err()
		case <-tick.C:
		}
		if time.Now().After(giveUp) {
			r.log.Warn("bench: publishing fell behind the rate, phase stops early", "scenario", r.sc.name, "published", sent)
			break
		}
		due := min(n, int(time.Since(start).Seconds()*perSec)+1)
		if due > sent {
			if err := r.publish(ctx, benchFixed, sent, due-sent); err != nil {
				return benchPhaseResult{}, err
			}
			sent = due
		}
	}
	res := benchPhaseResult{events: sent, elapsed: time.Since(start)}
	res.offered = float64(sent*r.sc.webhooks()) / max(res.elapsed.Seconds(), r.c.duration.Seconds())
	if err := r.waitForStragglers(ctx, benchFixed, sent); err != nil {
		return benchPhaseResult{}, err
	}
	r.log.Info("bench: fixed-rate phase done", "scenario", r.sc.name, "events", sent)
	return res, nil
}

// waitForStragglers waits, at most benchWait, until every healthy endpoint
// has a delivery of each of the phase's events; what is still missing then
// is counted as lost.
func (r *benchRun) waitForStragglers(ctx context.Context, phase, events int) error {
	ok, err := r.rec.waitFor(ctx, phase, events, benchWait)
	if err == nil && !ok {
		r.log.Warn("bench: deliveries still missing after the wait", "scenario", r.sc.name, "phase", phase, "wait", benchWait)
	}
	return err
}

// publish produces events from..from+k-1 of a phase in one call, stamping
// their publish time just before the produce.
func (r *benchRun) publish(ctx context.Context, phase, from, k int) error {
	keys := make([][]byte, k)
	values := make([][]byte, k)
	now := time.Now().UTC()
	for i := range k {
		seq := from + i
		ev := schemas.Event{
			ID: fmt.Sprintf("bench-%d-%d", phase, seq), Resource: "ticket", Trigger: "update",
			ResourceID: fmt.Sprintf("T-%d", seq%1024), OccurredAt: now,
			Data:    json.RawMessage(fmt.Sprintf(`{"subject":"Printer on fire","priority":"High","status":"open","assignee":null,"seq":%d}`, seq)),
			Changes: json.RawMessage(`{"priority":{"old":"Low","new":"High"}}`),
			Context: json.RawMessage(`{"actor":"bench@example.com"}`),
		}
		v, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		keys[i], values[i] = []byte(ev.ResourceID), v
	}
	r.rec.stamp(phase, from, k, time.Now())
	return r.pub.publish(ctx, keys, values)
}

// benchRow is one line of the table.
type benchRow struct {
	name              string
	loop              benchLoop
	webhooks, events  int
	deliveries        int
	perSec            float64
	offered           float64
	p50, p95, p99, mx time.Duration
	cpuPer1k          float64
	others            float64
	rssKB             int64
	putOff            int64
	lost              int // -1: not applicable
	dups              int
	swaps             int
	via               string
}

func (r *benchRun) rows(sat, fixed benchPhaseResult, rssKB, putOff int64, via string) []benchRow {
	healthy := r.sc.healthy
	row := func(name string, subset benchSubset) benchRow {
		s, f := r.rec.stats(benchSat, subset), r.rec.stats(benchFixed, subset)
		lat := slices.Clone(f.lat)
		slices.Sort(lat)
		return benchRow{
			name: name, webhooks: r.sc.webhooks(), events: sat.events + fixed.events,
			deliveries: s.distinct + f.distinct, perSec: sustainedRate(s.times), offered: fixed.offered,
			p50: quantile(lat, 0.50), p95: quantile(lat, 0.95), p99: quantile(lat, 0.99), mx: quantile(lat, 1),
			cpuPer1k: sat.childCPU.Seconds() * 1000 / float64(max(1, s.distinct)), others: sat.others,
			rssKB: rssKB, putOff: putOff, dups: s.dups + f.dups, swaps: s.swaps + f.swaps, via: via,
			lost: (sat.events*healthy - s.distinct) + (fixed.events*healthy - f.distinct),
		}
	}
	if !r.sc.bad {
		return []benchRow{row(r.sc.name, benchHealthy)}
	}
	all := row(r.sc.name, benchAll)
	all.lost = -1 // the dead endpoint never receives anything
	h := row(r.sc.name+"/healthy", benchHealthy)
	h.webhooks = healthy
	return []benchRow{all, h}
}

// sustainedRate is deliveries/s between the 10th and the 90th percentile
// of receipt times, leaving out the ramp-up and the tail.
func sustainedRate(times []int64) float64 {
	t := slices.Clone(times)
	slices.Sort(t)
	n := len(t)
	if n < 2 {
		return 0
	}
	lo, hi := n/10, n-1-n/10
	if hi <= lo {
		lo, hi = 0, n-1
	}
	dt := time.Duration(t[hi] - t[lo]).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(hi-lo) / dt
}

// ratesByFifth splits the receipts into five runs of equal count and gives
// each one's deliveries/s, to show whether throughput holds over a phase.
func ratesByFifth(times []int64) []int {
	t := slices.Clone(times)
	slices.Sort(t)
	var out []int
	for i := range 5 {
		lo, hi := i*len(t)/5, (i+1)*len(t)/5-1
		if hi <= lo || t[hi] <= t[lo] {
			continue
		}
		out = append(out, int(float64(hi-lo)/time.Duration(t[hi]-t[lo]).Seconds()))
	}
	return out
}

// quantile of sorted durations; 0 for none.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func printBenchTable(w io.Writer, c *benchConfig, rows []benchRow) {
	mem := "?"
	if kb, err := procField("/proc/meminfo", "MemTotal:"); err == nil {
		mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	var via []string
	closed, open := false, false
	for _, r := range rows {
		if r.loop != benchBare && !slices.Contains(via, r.via) {
			via = append(via, r.via)
		}
		closed = closed || r.loop == benchClosed
		open = open || r.loop == benchBurst || r.loop == benchPaced
	}
	fmt.Fprintf(w, "\nhookline bench %s  %s  %s/%s, %d cores, %s RAM, %s\n", c.version, time.Now().Format(time.RFC3339),
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), mem, runtime.Version())
	if closed {
		fmt.Fprintf(w, "closed loop: saturation ~%d deliveries per scenario, at most %d jobs outstanding per endpoint; fixed rate: %d deliveries/s for %v\n",
			c.closedEvents(), benchJobsPerEndpoint, c.rate, c.duration)
	}
	if open {
		fmt.Fprintf(w, "open loop: bursts of EVENTS events as fast as the API accepts them, paced %d events/s for %v; data %d bytes an event, %d resources; arrays of <=%d events, %d requests at once\n",
			c.rate, c.duration, c.dataBytes, benchResources, benchArray(c.dataBytes), benchPublishers)
	}
	fmt.Fprintf(w, "events published via %s\n\n", strings.Join(via, ", "))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tWEBHOOKS\tEVENTS\tDELIVERIES\tDELIVERIES/S\tLOOP\tCPU S/1K\tOTHERS\tPEAK RSS\tRATE/S\tP50\tP95\tP99\tMAX\tPUT OFF\tSWAPS\tLOST\tDUP")
	for _, r := range rows {
		lost := "-"
		if r.lost >= 0 {
			lost = strconv.Itoa(r.lost)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f\t%s\t%.3f\t%.0f%%\t%d MiB\t%.0f\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%d\n",
			r.name, r.webhooks, r.events, r.deliveries, r.perSec, r.loop, r.cpuPer1k, 100*r.others, r.rssKB/1024, r.offered,
			benchDur(r.p50), benchDur(r.p95), benchDur(r.p99), benchDur(r.mx), r.putOff, r.swaps, lost, r.dups)
	}
	tw.Flush()
	for _, iso := range isolationRatios(rows) {
		fmt.Fprintf(w, "\nisolation: healthy p99 beside the slow and dead endpoints / healthy p99 alone (%s / %s) = %.2f (target <= 1.20)",
			iso.beside, iso.alone, iso.ratio)
	}
	printBareRatios(w, rows)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "\nLOOP closed: DELIVERIES/S from the saturation phase (10th to 90th percentile of receipts), at most\n"+
		"200 jobs outstanding per endpoint; RATE/S and P50..MAX from the fixed-rate phase, publish to receipt.\n"+
		"LOOP open: events published without waiting for deliveries; DELIVERIES/S over the whole scenario (10th to\n"+
		"90th percentile of receipts); RATE/S deliveries/s offered while publishing; P50..MAX from the request's\n"+
		"start (burst) or the event's due time (paced) to receipt. CPU S/1K: serve's user+system CPU per 1,000\n"+
		"deliveries (saturation phase or whole scenario). OTHERS: share of all cores used then by other processes\n"+
		"(noise). PUT OFF: jobs the sender sent to a retry topic without a request (endpoint_busy, circuit_open).\n"+
		"SWAPS: first-attempt deliveries received after a later event of the same resource at the same endpoint.\n"+
		"LOOP bare: no Hookline: a net/http client and server in the bench process, keep-alive, 16 requests in\n"+
		"flight, for 5 s; DELIVERIES/S is its requests/s, CPU S/1K the bench process's CPU per 1,000 requests\n"+
		"(client and server together): the floor the burst ratios are taken against.")
}

func benchDur(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// benchSubset selects the deliveries a statistic is about.
type benchSubset int

const (
	benchHealthy benchSubset = iota // endpoints that answer at once (or after benchLate)
	benchAll                        // every endpoint, the slow one included
	benchBad                        // the slow endpoint (the dead one never receives)
	benchSubsets                    // how many subsets there are
)

// benchStats are one phase's receipts for one subset.
type benchStats struct {
	distinct int
	dups     int
	swaps    int             // first-attempt receipts after a later event of their resource
	lat      []time.Duration // publish to first receipt
	times    []int64         // first receipts, unix ns
}

// benchPhase is what the recorder knows of one phase.
type benchPhase struct {
	pub         []atomic.Int64 // publish time by event sequence, unix ns
	subsets     [benchSubsets]benchStats
	perEndpoint []int // distinct deliveries by healthy endpoint
}

// benchOrderKey is one resource's events at one endpoint in one phase.
type benchOrderKey struct {
	phase, endpoint int
	resource        string
}

// benchOrder finds swaps: for every resource at every endpoint it keeps
// the highest sequence number received so far.
type benchOrder map[benchOrderKey]int64

// observe records that seq arrived and says whether it is a swap: an event
// received after a later event of the same resource at the same endpoint.
// Each such late event counts once, however many later ones overtook it.
func (o benchOrder) observe(k benchOrderKey, seq int64) (swapped bool) {
	last, ok := o[k]
	if ok && seq < last {
		return true
	}
	o[k] = seq
	return false
}

// benchRecorder counts deliveries by their id, across the receiver's
// handlers.
type benchRecorder struct {
	endpoints int // healthy endpoints

	mu       sync.Mutex
	seen     map[string]struct{}
	phases   [benchPhases]*benchPhase
	order    benchOrder
	bad      int
	retries  int // receipts of attempts after the first, left out of the order check
	noSeq    int // first receipts without resource_id or data.seq, left out of the order check
	progress chan struct{}
}

func newBenchRecorder(endpoints int) *benchRecorder {
	return &benchRecorder{endpoints: endpoints, seen: map[string]struct{}{}, order: benchOrder{}, progress: make(chan struct{}, 1)}
}

func (r *benchRecorder) setPhase(phase, events int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.phases[phase] = &benchPhase{pub: make([]atomic.Int64, events), perEndpoint: make([]int, r.endpoints)}
}

func (r *benchRecorder) stamp(phase, from, k int, at time.Time) {
	r.mu.Lock()
	p := r.phases[phase]
	r.mu.Unlock()
	for i := from; i < from+k; i++ {
		p.pub[i].Store(at.UnixNano())
	}
}

// stampOne sets the publish time of one event of a phase.
func (r *benchRecorder) stampOne(phase, seq int, at time.Time) {
	r.mu.Lock()
	p := r.phases[phase]
	r.mu.Unlock()
	p.pub[seq].Store(at.UnixNano())
}

// record counts one delivery (one envelope of a batch) of attempt number
// attempt, received at at by a healthy endpoint (its index) or the slow
// one (-1).
func (r *benchRecorder) record(env benchEnvelope, attempt, endpoint int, at time.Time) {
	phase, seq, ok := parseBenchEventID(env.EventID)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !ok || r.phases[phase] == nil || seq >= len(r.phases[phase].pub) || endpoint >= r.endpoints {
		r.bad++
		return
	}
	p := r.phases[phase]
	_, dup := r.seen[env.ID]
	r.seen[env.ID] = struct{}{}
	healthy := endpoint >= 0
	if healthy && !dup {
		p.perEndpoint[endpoint]++
	}
	swapped := false
	switch {
	case dup:
	case attempt > 1:
		r.retries++
	case env.ResourceID == "" || env.Data.Seq == nil:
		r.noSeq++
	default:
		swapped = r.order.observe(benchOrderKey{phase: phase, endpoint: endpoint, resource: env.ResourceID}, *env.Data.Seq)
	}
	lat := time.Duration(at.UnixNano() - p.pub[seq].Load())
	subs := []benchSubset{benchAll, benchBad}
	if healthy {
		subs = []benchSubset{benchAll, benchHealthy}
	}
	for _, sub := range subs {
		s := &p.subsets[sub]
		if dup {
			s.dups++
			continue
		}
		if swapped {
			s.swaps++
		}
		s.distinct++
		s.lat = append(s.lat, lat)
		s.times = append(s.times, at.UnixNano())
	}
	select {
	case r.progress <- struct{}{}:
	default:
	}
}

// parseBenchEventID splits "bench-<phase>-<seq>".
func parseBenchEventID(id string) (phase, seq int, ok bool) {
	rest, ok := strings.CutPrefix(id, "bench-")
	if !ok || len(rest) < 3 || rest[1] != '-' || rest[0] < '0' || int(rest[0]-'0') >= benchPhases {
		return 0, 0, false
	}
	seq, err := strconv.Atoi(rest[2:])
	return int(rest[0] - '0'), seq, err == nil && seq >= 0
}

// slowest is the fewest deliveries of a phase any healthy endpoint got.
func (r *benchRecorder) slowest(phase int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Min(r.phases[phase].perEndpoint)
}

func (r *benchRecorder) undecodable() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad
}

// retried is how many receipts were of an attempt after the first.
func (r *benchRecorder) retried() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.retries
}

// unordered is how many first receipts the order check could not place.
func (r *benchRecorder) unordered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.noSeq
}

// stats copies one phase's statistics for a subset.
func (r *benchRecorder) stats(phase int, sub benchSubset) benchStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.phases[phase].subsets[sub]
	return benchStats{distinct: s.distinct, dups: s.dups, swaps: s.swaps, lat: slices.Clone(s.lat), times: slices.Clone(s.times)}
}

// waitFor waits until every healthy endpoint has need distinct deliveries
// of a phase; false when timeout passed first.
func (r *benchRecorder) waitFor(ctx context.Context, phase, need int, timeout time.Duration) (bool, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for r.slowest(phase) < need {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-deadline.C:
			return false, nil
		case <-r.progress:
		case <-poll.C:
		}
	}
	return true, nil
}

// benchEnvelope is the part of a delivery body the recorder reads: the
// delivery id, the event, and for the order check the resource and the
// event's sequence number among that resource's events (data.seq).
type benchEnvelope struct {
	ID         string `json:"id"`
	EventID    string `json:"event_id"`
	ResourceID string `json:"resource_id"`
	Data       struct {
		Seq *int64 `json:"seq"`
	} `json:"data"`
}

func decodeBenchBody(body []byte) ([]benchEnvelope, error) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var envs []benchEnvelope
		err := json.Unmarshal(body, &envs)
		return envs, err
	}
	var env benchEnvelope
	err := json.Unmarshal(body, &env)
	return []benchEnvelope{env}, err
}

// receive records every envelope of one request and answers 204. The
// attempt number is the X-Hookline-Attempt header (SPEC §4), 1 when
// missing.
func (r *benchRecorder) receive(w http.ResponseWriter, req *http.Request, endpoint int, at time.Time) {
	attempt, err := strconv.Atoi(req.Header.Get(delivery.HeaderAttempt))
	if err != nil {
		attempt = 1
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 16<<20))
	var envs []benchEnvelope
	if err == nil {
		envs, err = decodeBenchBody(body)
	}
	if err != nil {
		r.mu.Lock()
		r.bad++
		r.mu.Unlock()
	}
	for _, env := range envs {
		r.record(env, attempt, endpoint, at)
	}
	w.WriteHeader(http.StatusNoContent)
}

// benchReceiver is the customers' endpoints, in process: /ok/<n> (healthy
// endpoint n) answers at once, /late/<n> (healthy endpoint n) after 50 ms,
// /slow/ after 5 s; dead is a URL on a port nobody listens on. A request
// counts as received when it arrives, and is recorded only when it is
// answered: one given up by the sender while waiting is not received.
type benchReceiver struct {
	srv  *http.Server
	base string
	dead string
}

func startBenchReceiver(rec *benchRecorder) (*benchReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln.Close()
		return nil, err
	}
	dead := "http://" + closed.Addr().String() + "/"
	closed.Close()
	mux := http.NewServeMux()
	later := func(w http.ResponseWriter, req *http.Request, endpoint int, at time.Time, after time.Duration) {
		t := time.NewTimer(after)
		defer t.Stop()
		select {
		case <-t.C:
			rec.receive(w, req, endpoint, at)
		case <-req.Context().Done():
		}
	}
	healthy := func(req *http.Request) int {
		n, err := strconv.Atoi(req.PathValue("n"))
		if err != nil || n < 0 {
			n = math.MaxInt // counted as undecodable
		}
		return n
	}
	mux.HandleFunc("/ok/{n}", func(w http.ResponseWriter, req *http.Request) {
		at := time.Now()
		rec.receive(w, req, healthy(req), at)
	})
	mux.HandleFunc("/late/{n}", func(w http.ResponseWriter, req *http.Request) {
		later(w, req, healthy(req), time.Now(), benchLate)
	})
	mux.HandleFunc("/slow/", func(w http.ResponseWriter, req *http.Request) {
		later(w, req, -1, time.Now(), benchSlow)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	go srv.Serve(ln)
	return &benchReceiver{srv: srv, base: "http://" + ln.Addr().String(), dead: dead}, nil
}

// close stops at once: the slow endpoint's requests are cut off.
func (r *benchReceiver) close() { r.srv.Close() }

func registerBenchWebhooks(ctx context.Context, base string, sc benchScenario, recv *benchReceiver) error {
	hook := func(name, url string) schemas.WebhookInput {
		return schemas.WebhookInput{Name: client.Ptr(name), URL: client.Ptr(url), Secret: client.Ptr(benchSecret),
			Events: client.Ptr([]string{"ticket.*"})}
	}
	var hooks []schemas.WebhookInput
	path := "ok"
	if sc.late {
		path = "late"
	}
	for i := range sc.healthy {
		h := hook(fmt.Sprintf("bench-%d", i), fmt.Sprintf("%s/%s/%d", recv.base, path, i))
		if sc.batching {
			h.Batching = &schemas.Batching{Mode: schemas.BatchAny, WaitSeconds: 1, MaxItems: benchBatchItems}
		}
		hooks = append(hooks, h)
	}
	if sc.bad {
		hooks = append(hooks, hook("bench-slow", recv.base+"/slow/"), hook("bench-dead", recv.dead))
	}
	cl := client.New(base, "", nil)
	for _, h := range hooks {
		if _, err := cl.CreateWebhook(ctx, h); err != nil {
			return fmt.Errorf("create webhook %s: %w", *h.Name, err)
		}
	}
	return nil
}

// benchPublisher produces events to hookline.events.
type benchPublisher interface {
	publish(ctx context.Context, keys, values [][]byte) error
	close() error
}

// benchKafka produces straight to the broker, like an external producer.
type benchKafka struct{ w *kafka.Writer }

func (p benchKafka) publish(ctx context.Context, keys, values [][]byte) error {
	msgs := make([]kafka.Message, len(keys))
	for i := range keys {
		msgs[i] = kafka.Message{Key: keys[i], Value: values[i]}
	}
	return p.w.WriteMessages(ctx, msgs...)
}

func (p benchKafka) close() error { return p.w.Close() }

// benchAPI publishes through POST /v1/events, when the broker's address
// is unknown.
type benchAPI struct {
	client *client.Client
}

func (p benchAPI) publish(ctx context.Context, _, values [][]byte) error {
	for len(values) > 0 {
		k := min(len(values), 1000)
		body := make([]json.RawMessage, k)
		for i, v := range values[:k] {
			body[i] = v
		}
		if err := p.client.Do(ctx, http.MethodPost, "/v1/events", body, nil); err != nil {
			return err
		}
		values = values[k:]
	}
	return nil
}

func (p benchAPI) close() error { return nil }

func newBenchPublisher(c *benchChild) (benchPublisher, string) {
	if len(c.kafka) == 0 {
		return benchAPI{client: client.New(c.base, "", nil)}, "POST /v1/events"
	}
	w := &kafka.Writer{
		Addr: kafka.TCP(c.kafka...), Topic: schemas.TopicEvents, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchSize: 1000, BatchBytes: 16 << 20,
		MaxAttempts: 10,
	}
	return benchKafka{w: w}, "kafka (straight to hookline.events)"
}

var (
	benchReadyLine = regexp.MustCompile(`hookline ready: (http://\S+)`)
	benchKafkaLine = regexp.MustCompile(`embedded kafka started.*addrs=\[([^\]]*)\]`)
)

// benchChild is a running `hookline serve`.
type benchChild struct {
	cmd   *exec.Cmd
	base  string   // http://host:port of the API
	kafka []string // embedded broker, from its log line
	tail  *benchLines
	done  chan struct{}
	err   error // Wait's result, set before done is closed

	stopOnce sync.Once
	stopErr  error
}

func startBenchServe(ctx context.Context, exe, dir string, extra []string, log *slog.Logger) (*benchChild, error) {
	ready := make(chan string, 1)
	brokers := make(chan []string, 1)
	c := &benchChild{done: make(chan struct{})}
	args := append([]string{"serve", "--data-dir", dir, "--http-addr", "127.0.0.1:0",
		"--allow-private-targets", "--drain-timeout", "10s"}, extra...)
	c.cmd = exec.Command(exe, args...)
	c.cmd.Env = benchChildEnv()
	c.cmd.Stdout = &benchLines{each: func(line string) {
		if m := benchReadyLine.FindStringSubmatch(line); m != nil {
			trySend(ready, m[1])
		}
	}}
	c.tail = &benchLines{keep: 40, each: func(line string) {
		if m := benchKafkaLine.FindStringSubmatch(line); m != nil {
			trySend(brokers, strings.Fields(m[1]))
		}
	}}
	c.cmd.Stderr = c.tail
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting serve: %w", err)
	}
	go func() { c.err = c.cmd.Wait(); close(c.done) }()
	wait := time.NewTimer(90 * time.Second)
	defer wait.Stop()
	select {
	case c.base = <-ready:
	case <-c.done:
		return nil, fmt.Errorf("serve exited before ready: %v\n%s", c.err, c.tail)
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	case <-wait.C:
		c.stop()
		return nil, fmt.Errorf("serve not ready in 90s\n%s", c.tail)
	}
	select {
	case c.kafka = <-brokers:
	case <-time.After(2 * time.Second):
		log.Warn("bench: embedded broker's address not in serve's log; publishing through the API")
	}
	log.Info("bench: serve ready", "pid", c.pid(), "api", c.base, "kafka", c.kafka)
	return c, nil
}

func trySend[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
}

// benchChildEnv is this environment without HOOKLINE_* variables, so that
// the child runs the embedded broker and store with default settings.
func benchChildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOOKLINE_") {
			env = append(env, kv)
		}
	}
	return env
}

func (c *benchChild) pid() int { return c.cmd.Process.Pid }

// explain adds to err, when serve has exited, how it exited and its last
// lines of log: an API call failing with EOF says little by itself.
func (c *benchChild) explain(err error) error {
	select {
	case <-c.done:
		return fmt.Errorf("%w; serve exited (%v), its last lines:\n%s", err, c.err, c.tail)
	default:
		return err
	}
}

// stop sends SIGTERM and waits for the exit, killing the child if it takes
// longer than 45 s. Safe to call more than once.
func (c *benchChild) stop() error {
	c.stopOnce.Do(func() {
		c.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(45 * time.Second)
		defer t.Stop()
		select {
		case <-c.done:
			c.stopErr = c.err
		case <-t.C:
			c.cmd.Process.Kill()
			<-c.done
			c.stopErr = errors.New("serve did not stop within 45s of SIGTERM: killed")
		}
	})
	return c.stopErr
}

// peakRSS is the child's VmHWM in kB, 0 when unknown.
func (c *benchChild) peakRSS() int64 {
	kb, _ := procField(fmt.Sprintf("/proc/%d/status", c.pid()), "VmHWM:")
	return kb
}

// putOffs sums hookline_sender_deferred_total from serve's /metrics.
func (c *benchChild) putOffs(ctx context.Context) int64 {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/metrics", nil)
	if err != nil {
		return -1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if name, rest, ok := strings.Cut(line, " "); ok && strings.HasPrefix(name, "hookline_sender_deferred_total") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			sum += v
		}
	}
	return int64(sum)
}

// procCPU is the user+system CPU of a process ("self" or a pid) from
// /proc/<p>/stat, in clock ticks of 10 ms (CLK_TCK 100 on Linux).
func procCPU(p string) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + p + "/stat")
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which may hold spaces: state is
	// field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("/proc/%s/stat: unexpected format", p)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(u+s) * 10 * time.Millisecond, nil
}

// machineBusy is the CPU time all processes used, from the first line of
// /proc/stat (user nice system idle iowait irq softirq steal, in 10 ms
// ticks): everything but idle and iowait.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, errors.New("/proc/stat: unexpected format")
	}
	var busy int64
	for i, v := range f[1:8] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return time.Duration(busy) * 10 * time.Millisecond, nil
}

// procField reads a "Name: <n> kB" line of a /proc file.
func procField(path, name string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, name)
}

// benchLines is an io.Writer that calls each for every complete line and
// keeps the last keep lines for error messages.
type benchLines struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	keep    int
	each    func(line string)
}

func (l *benchLines) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		l.each(line)
		if l.keep > 0 {
			l.lines = append(l.lines, line)
			if len(l.lines) > l.keep {
				l.lines = l.lines[1:]
			}
		}
	}
	if len(l.partial) > 64<<10 { // a line too long to be a log line: drop it
		l.partial = nil
	}
	return len(b), nil
}

func (l *benchLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
