// The Vegas concurrency limit (platinummonkey/go-concurrency-limits) draws
// its probe jitter from math/rand's global source, the one source of
// randomness of the sender's scheduling that is not the core's own: the
// simulation seeds it per run, which Seed does only with this setting.
//go:debug randseednop=0

package sender

import (
	"container/heap"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"hash"
	"hash/fnv"
	"io"
	"log/slog"
	rand1 "math/rand"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/schemas"
)

// The sender's deterministic simulation (STYLE.md, "Deterministic
// simulation"). Each seed builds a world: endpoints that are healthy,
// fast, slow, dead, hanging, flapping, rate-limiting with 429s, pausing,
// recovering, flaky or gone; steady traffic, bursts, replays of old
// events, redeliveries and tests; webhooks disabled, enabled and deleted
// mid-flight; rebalances and crashes. It runs the sender's real core
// (every scheduling decision), its real breakers (gobreaker), the real
// job decoder and the runner's real offset trackers (broker.Offsets), on
// a faithful model of the rest: partitioned topics, a reader that hands
// records out in offset order and holds a delay topic's partition on a
// head that is not due, an outbox that writes emissions in order, a
// committer, a consumer group that fences and reassigns, and a process
// that dies. Everything runs on one goroutine in a synctest bubble, so
// virtual time is the only time (gobreaker's time.Now included) and a
// seed replays exactly:
//
//	go test -run 'TestSim/seed=17$' ./pipeline/sender/   (or -seed 17)
//	go test -run TestSim -sim.seeds=100000 ./pipeline/sender/   (a soak)
//
// Invariants, checked as the run goes and at its end (simInvariants):
// nothing is lost, nothing fails without a request but for a disabled or
// deleted webhook, a healthy endpoint's delivery goes out within its
// latency plus a second of becoming eligible, an endpoint that answers is
// never left idle for a second while its jobs wait, a resource's jobs go
// out in order within the order hold, every record of the core is
// released at the end, memory stays in its bound, delay topics stay in
// due order, committed offsets never move back, nothing is sent from a
// revoked partition, the breaker never closes without a successful
// request, and a crash sends again only recent work.
var (
	simSeed    = flag.Uint64("seed", 0, "run the simulation of this one seed (TestSim)")
	simSeeds   = flag.Int("sim.seeds", 200, "how many seeded simulations TestSim runs (50 with -short, 20 with the race detector unless set)")
	simVerbose = flag.Bool("sim.trace", false, "print every simulation's trace, not only a failing one's")
	simGrep    = flag.String("sim.grep", "", "print, whole, the trace lines that contain this text (a delivery id, an endpoint)")
	simDigest  = flag.Bool("sim.digest", false, "print a digest of each simulation's trace (two runs of a seed must print the same)")
	simStop    = flag.Bool("sim.stop", false, "stop a simulation at its first violation (its trace then ends there)")
)

func TestSim(t *testing.T) {
	if *simSeed != 0 {
		runSim(t, *simSeed)
		return
	}
	n := *simSeeds
	if testing.Short() {
		n = min(n, 50)
	}
	if raceDetector && !flagSet("sim.seeds") {
		n = min(n, 20)
	}
	for seed := uint64(1); seed <= uint64(n); seed++ {
		runSim(t, seed)
	}
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// runSim runs one seed as a subtest, in its own synctest bubble.
func runSim(t *testing.T, seed uint64) {
	t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			newSimWorld(t, seed).play(fmt.Sprintf("go test -run 'TestSim/seed=%d$' ./pipeline/sender/", seed))
		})
	})
}

// play runs the world to its end, checks the invariants and reports what
// broke them, with the trace's tail and how to replay it. Call it in a
// synctest bubble.
func (w *simWorld) play(replay string) {
	t := w.t
	//lint:ignore SA1019 the Vegas limit draws from the global source: it must replay from the seed
	rand1.Seed(int64(w.seed))
	w.run()
	w.checkEnd()
	if len(w.violations) > 0 || *simVerbose {
		for _, line := range w.trace.lines() {
			t.Log(line)
		}
	}
	for i, v := range w.violations {
		if i == 10 {
			t.Errorf("... and %d more", len(w.violations)-10)
			break
		}
		t.Error(v)
	}
	if *simDigest {
		t.Logf("digest %x", w.digest.Sum64())
	}
	if len(w.violations) > 0 {
		t.Logf("%s; replay with: %s", w.describe(), replay)
	}
}

// The world's settings: short retry schedules and cooldowns so that a run
// resolves every delivery in minutes of virtual time.
const (
	simParts        = 3
	simQueueWait    = 5 * time.Second
	simCooldown     = 2 * time.Second
	simTraffic      = 40 * time.Second // steady traffic and events happen before this
	simHealAt       = 50 * time.Second // then every endpoint answers (the drawn worlds)
	simMaxRun       = 30 * time.Minute
	simCommitEvery  = 200 * time.Millisecond
	simRevokeCut    = 5 * time.Second
	simHealthyBound = time.Second // SPEC: a healthy delivery within its latency plus this
	simMaxTimeout   = 10 * time.Second
	simTenant       = "t"
	simMaxEvents    = 3_000_000
)

var simSchedule = MustSchedule("1s,3s,10s")

type simKind int

const (
	kindHealthy    simKind = iota // answers 200 in 5-50 ms, under its capacity: the strict latency check
	kindFast                      // answers 200 in 1-20 ms, gets the bursts and replays
	kindSlow                      // answers 200 in about 5 s
	kindDead                      // refuses connections
	kindHanging                   // never answers: every request times out
	kindFlapping                  // up and down by turns of 2-15 s
	kindLimited                   // 429 with Retry-After 1-3 s on a third of its requests
	kindPausing                   // healthy, but silent for 1.5 s every 10 s
	kindRecovering                // dead, then healthy from a time on
	kindFlaky                     // 500 on a third of its requests
	kindGone                      // 410: its webhook is disabled
)

var kindNames = []string{"healthy", "fast", "slow", "dead", "hanging", "flapping", "limited", "pausing", "recovering", "flaky", "gone"}

func (k simKind) String() string { return kindNames[k] }

// answers reports whether the kind answers like a live endpoint all along
// (the work-conserving check applies).
func (k simKind) answers() bool { return k == kindHealthy || k == kindFast || k == kindPausing }

type simEndpoint struct {
	id        string
	kind      simKind
	latency   time.Duration
	timeout   time.Duration
	toggles   []time.Duration // flapping: up, down, up, ... from the start
	recoverAt time.Duration
	pauseAt   time.Duration // pausing: the offset of its silences in each 10 s
	healed    bool
	inflight  int       // requests at the endpoint
	peak      int       // the most at once
	active    time.Time // when it last had a request in flight
}

// simRecord is one record of a job topic's partition.
type simRecord struct {
	offset   int64
	key      string
	value    []byte
	due      time.Time // the reader holds it until then (delay topics)
	forRoom  bool      // put off for room: parked until its endpoint has some
	written  time.Time
	readable time.Time // a fetch sees it from then
}

type simTopic struct {
	name  string
	delay bool          // a delay topic: held on its head until due
	wait  time.Duration // its delay
	parts [][]*simRecord
}

// simJob is what the world knows of a delivery it produced.
type simJob struct {
	id        string
	webhook   string
	resource  string
	produced  time.Time
	stream    bool // part of its resource's ordered live stream
	streamSeq int
}

type simRequest struct {
	n       int
	at      time.Time
	session int
}

// simInput is one record handed to the core: the runner's input.
type simInput struct {
	id       string
	webhook  string
	fetched  time.Time
	src      srcPart
	offset   int64
	done     func()
	tracker  *broker.Tracker
	p        *simProc
	finished bool
}

// simProc is one run of the sender process.
type simProc struct {
	session    int
	core       *core
	breakers   *Breakers
	offsets    *broker.Offsets
	inflight   int       // inputs fetched and not finished
	gated      bool      // fetching waits for room (Stage.WaitForRoom)
	outboxAt   time.Time // the outbox's write in progress ends then
	outboxNext time.Time // and the one gathering emissions after it
	tickAt     time.Time
	assigned   bool
	revoking   *simRevoke
	cut        map[*item]bool
	healthy    map[string]time.Time // endpoint → last time a request of it succeeded
	reg        *prometheus.Registry
}

type simRevoke struct {
	parts    map[string][]int32
	flying   []*item
	flushing bool
}

type simHooks struct {
	m   map[string]schemas.Webhook
	bad map[string]string // webhooks whose latest change cannot be read
}

func (h *simHooks) ByID(id string) (schemas.Webhook, bool) {
	wh, ok := h.m[id]
	return wh, ok
}

func (h *simHooks) Unreadable(id string) (string, bool) {
	why, bad := h.bad[id]
	return why, bad
}

type simHealth struct{ since map[string]time.Time }

func (h *simHealth) note(id string, ok bool, at time.Time) time.Time {
	switch s := h.since[id]; {
	case ok:
		delete(h.since, id)
	case s.IsZero():
		h.since[id] = at
	}
	return h.since[id]
}
func (h *simHealth) setLimit(string, int)             {}
func (h *simHealth) failingSince(id string) time.Time { return h.since[id] }

type simWorld struct {
	t      *testing.T
	seed   uint64
	rnd    *rand.Rand
	start  time.Time
	now    time.Time
	evq    simEvents
	evSeq  uint64
	trace  simTrace
	digest hash.Hash64 // of every trace line: two runs of a seed must agree
	stop   bool

	// The sender's settings in this world.
	maxBytes    int64
	queueWait   time.Duration
	schedule    Schedule
	healAt      time.Duration // every endpoint answers from then; the end is checked after
	topics      map[string]*simTopic
	topicNames  []string
	committed   map[srcPart]int64
	pos         map[srcPart]int64
	fetches     map[time.Time]bool // when the reader looks again
	unfinished  map[srcPart][]*simInput
	pins        map[srcPart]*simPin
	firstRead   map[string]time.Time
	session     int
	proc        *simProc
	hooks       *simHooks
	health      *simHealth
	eps         map[string]*simEndpoint
	epIDs       []string
	disabledAt  map[string][]time.Time
	deletedAt   map[string]time.Time
	jobs        map[string]*simJob
	jobOrder    []string
	streams     map[string]int // webhook/resource → jobs produced in its stream
	received    map[string][]simRequest
	records     map[string]map[int]schemas.Attempt
	resumes     []time.Time // a partition owner (re)started reading
	disruptions []time.Time // a crash or a rebalance's cut
	maxItem     int64
	overMemory  bool
	pinned      map[srcPart]bool
	// memorySpilled are the jobs put off for the sender's memory bound:
	// they wait for memory, not for their endpoint.
	memorySpilled map[string]bool
	unsent        map[string]bool // failed without a request at some point
	// memorySpillAt is, per webhook, when a job of it was last put off for
	// the memory bound: its lane's later jobs wait behind it.
	memorySpillAt map[string]time.Time
	violations    []string
}

func newSimWorld(t *testing.T, seed uint64) *simWorld {
	w := newEmptyWorld(t, seed)
	w.maxBytes = []int64{1 << 20, 4 << 20, 16 << 20}[w.rnd.IntN(3)]
	w.build()
	return w
}

// newEmptyWorld is a world with the default settings and nothing in it:
// the drawn worlds fill it, and the scripted tests (sim_cases_test.go).
func newEmptyWorld(t *testing.T, seed uint64) *simWorld {
	w := &simWorld{
		maxBytes: 16 << 20, queueWait: simQueueWait, schedule: simSchedule, healAt: simHealAt,
		t: t, seed: seed, rnd: rand.New(rand.NewPCG(seed, 0x5eed)), start: time.Now(), now: time.Now(), digest: fnv.New64a(),
		topics: map[string]*simTopic{}, committed: map[srcPart]int64{}, pos: map[srcPart]int64{}, fetches: map[time.Time]bool{},
		unfinished: map[srcPart][]*simInput{}, pins: map[srcPart]*simPin{}, firstRead: map[string]time.Time{}, pinned: map[srcPart]bool{}, memorySpilled: map[string]bool{}, unsent: map[string]bool{}, memorySpillAt: map[string]time.Time{},
		hooks: &simHooks{m: map[string]schemas.Webhook{}}, health: &simHealth{since: map[string]time.Time{}},
		eps: map[string]*simEndpoint{}, disabledAt: map[string][]time.Time{}, deletedAt: map[string]time.Time{},
		jobs: map[string]*simJob{}, streams: map[string]int{}, received: map[string][]simRequest{},
		records: map[string]map[int]schemas.Attempt{},
	}
	return w
}

// addTopics makes the topics of the world's settings.
func (w *simWorld) addTopics() {
	for _, r := range newLadder(w.schedule, w.queueWait/2) {
		w.addTopic(r.topic, true, r.delay)
	}
	w.addTopic(schemas.TopicDeliveries, false, 0)
}

func (w *simWorld) addTopic(name string, delay bool, wait time.Duration) {
	w.topics[name] = &simTopic{name: name, delay: delay, wait: wait, parts: make([][]*simRecord, simParts)}
	w.topicNames = append(w.topicNames, name)
	slices.Sort(w.topicNames)
}

func (w *simWorld) describe() string {
	var kinds []string
	for _, id := range w.epIDs {
		kinds = append(kinds, id+":"+w.eps[id].kind.String())
	}
	return fmt.Sprintf("seed %d, %d deliveries, memory bound %d, endpoints %s", w.seed, len(w.jobs), w.maxBytes, strings.Join(kinds, " "))
}

// at is the virtual time since the start, for traces.
func (w *simWorld) at(t time.Time) string { return t.Sub(w.start).String() }

func (w *simWorld) logf(format string, args ...any) {
	line := fmt.Sprintf("%10s %s", w.at(w.now), fmt.Sprintf(format, args...))
	if *simGrep != "" && strings.Contains(line, *simGrep) {
		w.t.Log(line)
	}
	w.digest.Write([]byte(line))
	w.trace.add(line)
}

func (w *simWorld) violate(format string, args ...any) {
	v := fmt.Sprintf("at %s: %s", w.at(w.now), fmt.Sprintf(format, args...))
	if len(w.violations) < 5 {
		w.logf("VIOLATION %s", v)
	}
	if *simStop {
		w.stop = true
	}
	w.violations = append(w.violations, v)
}

// build draws the world: endpoints, webhooks, traffic and events.
func (w *simWorld) build() {
	w.addTopics()
	kinds := []simKind{kindHealthy, kindHealthy}
	for n := 2 + w.rnd.IntN(7); n > 0; n-- {
		kinds = append(kinds, simKind(1+w.rnd.IntN(len(kindNames)-1)))
	}
	for i, k := range kinds {
		id := fmt.Sprintf("w%d", i)
		ep := &simEndpoint{id: id, kind: k, timeout: 2 * time.Second}
		switch k {
		case kindHealthy:
			ep.latency = time.Duration(5+w.rnd.IntN(45)) * time.Millisecond
		case kindFast, kindPausing, kindLimited, kindFlaky, kindRecovering, kindFlapping:
			ep.latency = time.Duration(1+w.rnd.IntN(20)) * time.Millisecond
		case kindSlow:
			ep.latency, ep.timeout = 5*time.Second, simMaxTimeout
		}
		for at := time.Duration(0); at < w.healAt; {
			at += time.Duration(2+w.rnd.IntN(14)) * time.Second
			ep.toggles = append(ep.toggles, at)
		}
		ep.recoverAt = time.Duration(5+w.rnd.IntN(30)) * time.Second
		ep.pauseAt = time.Duration(w.rnd.IntN(8500)) * time.Millisecond
		w.eps[id], w.epIDs = ep, append(w.epIDs, id)
		wh := schemas.Webhook{ID: id, Tenant: simTenant, Name: id, URL: "http://" + id + ".example/hook", Enabled: true,
			ContentType: schemas.ContentTypeJSON, Retries: 2 + w.rnd.IntN(4), TimeoutMS: int(ep.timeout / time.Millisecond),
			MaxConcurrency: []int{1, 4, 8, 32}[w.rnd.IntN(4)]}
		if k == kindHealthy {
			wh.MaxConcurrency = 32
		}
		if k == kindSlow && w.rnd.IntN(2) == 0 {
			wh.RateLimit = 3
		}
		w.hooks.m[id] = wh
		w.traffic(ep)
	}
	for n := w.rnd.IntN(3); n > 0; n-- {
		w.after(w.randTime(simTraffic), "rebalance", w.rebalance)
	}
	for n := w.rnd.IntN(3); n > 0; n-- {
		w.after(w.randTime(simTraffic), "crash", w.crash)
	}
	w.after(w.healAt, "heal", func() {
		for _, ep := range w.eps {
			ep.healed = true
		}
	})
	w.after(0, "start", w.startProc)
	w.after(simTraffic+time.Second, "check quiet", w.checkQuiet)
	w.after(0, "check idle", w.checkIdle)
}

// script sets a world up to be played with endpoints and traffic of a
// test's own: the process starts at once; every endpoint answers from
// healAt, and the end is checked from then.
func (w *simWorld) script() {
	w.addTopics()
	w.after(w.healAt, "heal", func() {
		for _, ep := range w.eps {
			ep.healed = true
		}
	})
	w.after(0, "start", w.startProc)
	w.after(w.healAt, "check quiet", w.checkQuiet)
	w.after(0, "check idle", w.checkIdle)
}

// endpoint adds an endpoint of a kind and its webhook (max_concurrency 32,
// 5 retries), changed by tweak.
func (w *simWorld) endpoint(id string, kind simKind, latency time.Duration, tweak func(*schemas.Webhook)) *simEndpoint {
	ep := &simEndpoint{id: id, kind: kind, latency: latency, timeout: 2 * time.Second}
	if kind == kindSlow {
		ep.timeout = simMaxTimeout
	}
	wh := schemas.Webhook{ID: id, Tenant: simTenant, Name: id, URL: "http://" + id + ".example/hook", Enabled: true,
		ContentType: schemas.ContentTypeJSON, Retries: 5, TimeoutMS: int(ep.timeout / time.Millisecond), MaxConcurrency: 32}
	if tweak != nil {
		tweak(&wh)
	}
	w.eps[id], w.epIDs, w.hooks.m[id] = ep, append(w.epIDs, id), wh
	return ep
}

// steady produces rate events per second for a webhook over resources
// resources, from from until until.
func (w *simWorld) steady(id string, from, until time.Duration, rate float64, resources int) {
	n := 0
	for at := from; at < until; at += time.Duration(float64(time.Second) / rate) {
		res := fmt.Sprintf("r%d", n%resources)
		n++
		w.after(at, "", func() { w.produce(id, res, true, false, "", time.Time{}) })
	}
}

// requestsTo lists when an endpoint got each first attempt, by delivery.
func (w *simWorld) firstRequests(id string) map[string]time.Time {
	out := map[string]time.Time{}
	for _, jid := range w.jobOrder {
		if j := w.jobs[jid]; j.webhook == id && len(w.received[jid]) > 0 {
			out[jid] = w.received[jid][0].at
		}
	}
	return out
}

func (w *simWorld) randTime(within time.Duration) time.Duration {
	return time.Duration(w.rnd.Int64N(int64(within)))
}

// traffic draws what is produced for an endpoint's webhook, and what
// happens to the webhook.
func (w *simWorld) traffic(ep *simEndpoint) {
	id := ep.id
	resources := 3 + w.rnd.IntN(30)
	rate := 1 + w.rnd.Float64()*14 // events per second
	if ep.kind == kindHealthy {
		resources = 20 + w.rnd.IntN(30) // each resource under what its latency sends
	}
	for at := time.Duration(0); ; {
		at += time.Duration(w.rnd.ExpFloat64() / rate * float64(time.Second))
		if at >= simTraffic {
			break
		}
		res := fmt.Sprintf("r%d", w.rnd.IntN(resources))
		w.after(at, "produce", func() { w.produce(id, res, true, false, "", time.Time{}) })
	}
	if ep.kind != kindHealthy && w.rnd.IntN(3) == 0 { // a burst
		n := 100 + w.rnd.IntN(900)
		w.after(w.randTime(simTraffic), "burst", func() {
			for i := range n {
				w.produce(id, fmt.Sprintf("b%d", i%50), false, false, "", time.Time{})
			}
		})
	}
	if ep.kind != kindHealthy && w.rnd.IntN(3) == 0 { // a replay of old events
		n := 50 + w.rnd.IntN(300)
		w.after(w.randTime(simTraffic), "replay", func() {
			for i := range n {
				w.produce(id, fmt.Sprintf("old%d", i), false, false, "", w.now.Add(-72*time.Hour))
			}
		})
	}
	if w.rnd.IntN(3) == 0 { // redeliveries a person asked for, and a test
		n := 5 + w.rnd.IntN(50)
		w.after(w.randTime(simTraffic), "redeliver", func() {
			for range n {
				w.produce(id, "", false, false, "d-earlier", time.Time{})
			}
			w.produce(id, "", false, true, "", time.Time{})
		})
	}
	if ep.kind != kindHealthy {
		switch w.rnd.IntN(6) {
		case 0:
			w.after(w.randTime(simTraffic), "disable "+id, func() { w.setEnabled(id, false) })
		case 1:
			off := w.randTime(simTraffic - 5*time.Second)
			w.after(off, "disable "+id, func() { w.setEnabled(id, false) })
			w.after(off+time.Duration(1+w.rnd.IntN(5))*time.Second, "enable "+id, func() { w.setEnabled(id, true) })
		case 2:
			w.after(w.randTime(simTraffic), "delete "+id, func() {
				delete(w.hooks.m, id)
				w.deletedAt[id] = w.now
			})
		}
	}
}

func (w *simWorld) setEnabled(id string, on bool) {
	wh, ok := w.hooks.m[id]
	if !ok || wh.Enabled == on {
		return
	}
	wh.Enabled = on
	if !on {
		at := w.now
		wh.DisabledAt = &at
		w.disabledAt[id] = append(w.disabledAt[id], at)
	}
	w.hooks.m[id] = wh
}

// produce writes a job to hookline.deliveries, as the matcher or the API
// would.
func (w *simWorld) produce(webhook, resource string, stream, test bool, redelivery string, created time.Time) {
	id := fmt.Sprintf("d%06d", len(w.jobOrder)+1)
	if created.IsZero() {
		created = w.now
	}
	job := schemas.Job{DeliveryID: id, WebhookID: webhook, Tenant: simTenant, EventIDs: []string{"e" + id},
		EventType: "ticket.updated", ResourceID: resource, CreatedAt: created.UTC(), Test: test, RedeliveryOf: redelivery,
		Payload: []byte(`{"id":"` + id + `","data":{"subject":"` + strings.Repeat("x", 200) + `"}}`)}
	if test {
		job.EventType = schemas.PingEventType
	}
	sj := &simJob{id: id, webhook: webhook, resource: resource, produced: w.now, stream: stream}
	if stream {
		k := webhook + "/" + resource
		w.streams[k]++
		sj.streamSeq = w.streams[k]
	}
	w.jobs[id], w.jobOrder = sj, append(w.jobOrder, id)
	w.append(records.Job(schemas.TopicDeliveries, job))
}

// append writes a message to its topic: a job to its partition, an
// attempt to the ledger.
func (w *simWorld) append(m kafka.Message) {
	switch {
	case m.Topic == schemas.TopicAttempts:
		var a schemas.Attempt
		if err := json.Unmarshal(m.Value, &a); err != nil {
			w.violate("an attempt record does not decode: %v", err)
			return
		}
		if w.records[a.DeliveryID] == nil {
			w.records[a.DeliveryID] = map[int]schemas.Attempt{}
		}
		w.records[a.DeliveryID][a.N] = a
		if a.N == 0 && strings.Contains(a.Error, "memory") {
			w.memorySpilled[a.DeliveryID] = true
		}
		if a.Error == unsentDisabled || a.Error == unsentDeleted {
			w.unsent[a.DeliveryID] = true
		}
		w.logf("attempt %s n=%d %s %q", a.DeliveryID, a.N, a.State, a.Error)
		return
	case m.Topic == schemas.TopicDead || m.Topic == schemas.TopicEvents:
		return
	}
	topic := w.topics[m.Topic]
	if topic == nil {
		w.violate("a message to %s, which the sender does not read", m.Topic)
		return
	}
	p := (&kafka.Hash{}).Balance(kafka.Message{Key: m.Key}, simPartitions...)
	recs := topic.parts[p]
	rec := &simRecord{offset: int64(len(recs)), key: string(m.Key), value: m.Value, written: w.now, readable: w.now.Add(time.Millisecond),
		forRoom: records.ForRoom(m)}
	if topic.delay {
		rec.due = records.DueAt(m)
		if n := len(recs); n > 0 && rec.due.Before(recs[n-1].due) {
			w.violate("%s/%d out of due order: a record due %s after one due %s", m.Topic, p, w.at(rec.due), w.at(recs[n-1].due))
		}
		// Due its topic's exact delay after it was made (the outbox writes
		// it a few milliseconds later).
		if want := w.now.Add(topic.wait); rec.due.After(want) || rec.due.Before(want.Add(-time.Second)) {
			w.violate("%s/%d: a record written at %s is due %s, not its topic's delay %s after it was made", m.Topic, p, w.at(w.now), w.at(rec.due), topic.wait)
		}
	}
	topic.parts[p] = append(recs, rec)
	w.fetchAt(rec.readable)
}

// fetchAt makes the reader look again at t, once.
func (w *simWorld) fetchAt(t time.Time) {
	if w.fetches[t] {
		return
	}
	w.fetches[t] = true
	w.afterAt(t, "", func() {
		delete(w.fetches, t)
		w.fetch()
	})
}

// --- the process -----------------------------------------------------------

func (w *simWorld) startProc() {
	w.session++
	p := &simProc{session: w.session, cut: map[*item]bool{}, healthy: map[string]time.Time{}, assigned: true}
	cfg := StageConfig{Schedule: w.schedule, MaxQueueWait: w.queueWait, MaxQueueBytes: w.maxBytes,
		Breaker: BreakerConfig{Failures: 5, Cooldown: simCooldown}}.WithDefaults()
	p.breakers = newBreakers(cfg.Breaker, func(endpoint, from, to string) {
		w.logf("breaker %s %s->%s", endpoint, from, to)
		if to == BreakerClosed && !p.healthy[endpoint].Equal(w.now) {
			w.violate("the breaker of %s closed without a successful request", endpoint)
		}
	}, time.Now)
	p.reg = prometheus.NewRegistry()
	p.core = newCore(cfg.coreConfig(fmt.Sprintf("s%d", p.session)), w.seed*1000+uint64(p.session), w.hooks,
		p.breakers, w.health, newMetrics(p.reg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	p.core.trace = func(it *item, what string) {
		w.logf("core %s %s: %s", it.job.DeliveryID, it.job.WebhookID, what)
		if strings.HasPrefix(what, "put off (memory)") {
			w.memorySpillAt[it.job.WebhookID] = w.now
		}
	}
	p.offsets = broker.NewOffsets(w, "sim")
	w.proc = p
	w.pos = maps(w.committed)
	w.resumes = append(w.resumes, w.now)
	w.logf("sender session %d starts", p.session)
	w.commitLoop(p)
	w.fetch()
}

func maps(m map[srcPart]int64) map[srcPart]int64 {
	out := make(map[srcPart]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// CommitMessages is the group's commit: committed offsets never move back.
func (w *simWorld) CommitMessages(_ context.Context, msgs ...kafka.Message) error {
	for _, m := range msgs {
		src := srcPart{m.Topic, m.Partition}
		if next := m.Offset + 1; next < w.committed[src] {
			w.violate("%s/%d committed %d after %d: backwards", m.Topic, m.Partition, next, w.committed[src])
		} else {
			w.committed[src] = next
		}
	}
	return nil
}

func (w *simWorld) commitLoop(p *simProc) {
	w.after(simCommitEvery, "", func() {
		if w.proc != p {
			return
		}
		if p.revoking == nil {
			p.offsets.Commit(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)))
		}
		w.commitLoop(p)
	})
}

// fetch hands out what the reader would: each assigned partition's records
// in offset order, a delay topic's only once its head is due.
func (w *simWorld) fetch() {
	p := w.proc
	if p == nil || !p.assigned || p.revoking != nil {
		return
	}
	for _, name := range w.topicNames {
		topic := w.topics[name]
		for part := range simParts {
			src := srcPart{name, part}
			for recs := topic.parts[part]; w.pos[src] < int64(len(recs)) && w.proc == p; {
				if p.core.waiting() > p.core.cfg.maxBytes {
					// The fetch gate (Stage.WaitForRoom): nothing more is
					// fetched while the jobs waiting are over the bound;
					// apply looks again once they are not.
					p.gated = true
					return
				}
				rec := recs[w.pos[src]]
				if rec.readable.After(w.now) {
					w.fetchAt(rec.readable)
					break
				}
				if topic.delay && rec.due.After(w.now) {
					w.fetchAt(rec.due)
					break
				}
				if name == schemas.TopicOverflow && rec.forRoom {
					// Parked until its endpoint has room (Stage.due),
					// counted exactly: the core's state is current here.
					at := parked(rec.due, w.now, p.core.cfg.parkLimit(), func() bool {
						r, short := p.core.room(w.now)[rec.key]
						return short && r.part == part && r.left <= 0
					})
					if at.After(w.now) {
						w.fetchAt(at)
						break
					}
				}
				w.pos[src]++
				w.handOut(p, src, rec)
			}
		}
	}
}

func (w *simWorld) handOut(p *simProc, src srcPart, rec *simRecord) {
	var job schemas.Job
	if err := records.DecodeJob(rec.value, &job); err != nil {
		w.violate("a job does not decode: %v", err)
		return
	}
	in := &simInput{id: job.DeliveryID, webhook: job.WebhookID, src: src, offset: rec.offset, p: p, fetched: w.now}
	w.unfinished[src] = append(w.unfinished[src], in)
	if _, ok := w.firstRead[job.DeliveryID]; !ok {
		w.firstRead[job.DeliveryID] = w.now
	}
	in.done, in.tracker = p.offsets.Track(kafka.Message{Topic: src.topic, Partition: src.partition, Offset: rec.offset})
	p.inflight++
	size := int64(len(rec.key) + len(rec.value) + itemOverhead)
	w.maxItem = max(w.maxItem, size)
	w.logf("fetch %s %s/%d@%d", job.DeliveryID, src.topic, src.partition, rec.offset)
	p.core.arrive(w.now, job, in, src, rec.offset, rec.written, size)
	w.apply(p)
}

// apply does what the core asked for, and lets a gated fetch go on once
// there is room.
func (w *simWorld) apply(p *simProc) {
	if p.gated && p.core.waiting() <= p.core.cfg.maxBytes {
		p.gated = false
		w.fetchAt(w.now)
	}
	for _, f := range p.core.take() {
		in := f.it.ref.(*simInput)
		switch f.kind {
		case effSend:
			w.send(p, f.it, in)
		case effEmit:
			w.emit(p, f, in)
		case effAbandon:
			w.finishInput(in, false)
		}
	}
	w.checkMemory(p)
	w.arm(p)
}

// arm schedules the core's next tick.
func (w *simWorld) arm(p *simProc) {
	next := p.core.next()
	if next.IsZero() || (!p.tickAt.IsZero() && !next.Before(p.tickAt)) {
		return
	}
	p.tickAt = next
	w.afterAt(next, "", func() {
		if w.proc != p {
			return
		}
		if p.tickAt.Equal(next) {
			p.tickAt = time.Time{}
		}
		if len(p.core.wakes) > 0 {
			e := p.core.wakes[0]
			w.logf("tick %s wake %s queued %d held %d inflight %d out %d ready %d probing %v token %s pause %s backlog %s", e.id, w.at(e.wake), e.queued, len(e.held), e.inflight, e.nOut, e.ready.Len(), e.probing, w.at(e.tokenAt), w.at(e.pauseUntil), w.at(e.backlogSince))
		}
		p.core.tick(w.now)
		w.apply(p)
	})
}

// send makes an item's request to its simulated endpoint.
func (w *simWorld) send(p *simProc, it *item, in *simInput) {
	if in.tracker.Revoked() {
		w.violate("%s sent from %s/%d after the partition was revoked", it.job.DeliveryID, in.src.topic, in.src.partition)
	}
	ep := w.eps[it.job.WebhookID]
	n := it.job.Attempts + 1
	w.received[it.job.DeliveryID] = append(w.received[it.job.DeliveryID], simRequest{n: n, at: w.now, session: p.session})
	done, status, headers, err := ep.respond(w, w.now)
	w.logf("send %s n=%d to %s (%s): %d %v at +%s", it.job.DeliveryID, n, ep.id, ep.kind, status, err, done.Sub(w.now))
	ep.inflight++
	ep.peak = max(ep.peak, ep.inflight)
	start := w.now
	w.afterAt(done, "", func() {
		ep.inflight--
		ep.active = w.now
		if w.proc != p || p.cut[it] {
			return // the sender died or cut it short: the endpoint answered no one
		}
		att := schemas.Attempt{DeliveryID: it.job.DeliveryID, WebhookID: it.job.WebhookID, Tenant: it.job.Tenant,
			EventIDs: it.job.EventIDs, EventType: it.job.EventType, N: n, At: start.UTC(), DeliveryCreatedAt: it.job.CreatedAt,
			URL: it.fl.wh.URL, StatusCode: status, DurationMS: w.now.Sub(start).Milliseconds(), ResponseHeaders: headers}
		if err != nil {
			att.Error = err.Error()
		}
		r := delivery.Result{Attempt: att, Outcome: delivery.Classify(status, err), Err: err}
		if r.Outcome.Class != delivery.Retryable || status == 429 {
			p.healthy[it.job.WebhookID] = w.now
		}
		p.core.finished(w.now, it, r, true)
		w.apply(p)
		w.revokeProgress(p)
	})
}

var simPartitions = []int{0, 1, 2}

var errRefused = fmt.Errorf("dial tcp: %w", syscall.ECONNREFUSED)

// respond is what the endpoint does with a request sent now: when it
// answers, and what.
func (ep *simEndpoint) respond(w *simWorld, now time.Time) (time.Time, int, map[string]string, error) {
	since := now.Sub(w.start)
	jitter := time.Duration(w.rnd.Int64N(int64(ep.latency/5) + 1))
	ok := func() (time.Time, int, map[string]string, error) { return now.Add(ep.latency + jitter), 200, nil, nil }
	if ep.healed {
		return now.Add(10 * time.Millisecond), 200, nil, nil
	}
	switch ep.kind {
	case kindDead:
		return now.Add(time.Millisecond), 0, nil, errRefused
	case kindHanging:
		return now.Add(ep.timeout), 0, nil, context.DeadlineExceeded
	case kindFlapping:
		i, _ := slices.BinarySearch(ep.toggles, since)
		if i%2 == 1 {
			return now.Add(time.Millisecond), 0, nil, errRefused
		}
	case kindLimited:
		if w.rnd.IntN(3) == 0 {
			return now.Add(ep.latency), 429, map[string]string{"Retry-After": fmt.Sprint(1 + w.rnd.IntN(3))}, nil
		}
	case kindPausing:
		in := since % (10 * time.Second)
		if in >= ep.pauseAt && in < ep.pauseAt+1500*time.Millisecond {
			return now.Add(ep.pauseAt + 1500*time.Millisecond - in + ep.latency), 200, nil, nil
		}
	case kindRecovering:
		if since < ep.recoverAt {
			return now.Add(time.Millisecond), 0, nil, errRefused
		}
	case kindFlaky:
		if w.rnd.IntN(3) == 0 {
			return now.Add(ep.latency), 500, nil, nil
		}
	case kindGone:
		return now.Add(ep.latency), 410, nil, nil
	}
	return ok()
}

// outboxDone is when an emission made now is written: the outbox writes
// what was emitted meanwhile in one write when the one in progress ends
// (the runner's outbox gathers up to 2,000 emissions a write).
func (p *simProc) outboxDone(now time.Time, took time.Duration) time.Time {
	if !p.outboxNext.IsZero() && !now.Before(p.outboxAt) {
		p.outboxAt, p.outboxNext = p.outboxNext, time.Time{} // the gathered write is the one in progress
	}
	switch {
	case now.Before(p.outboxAt):
		if p.outboxNext.IsZero() {
			p.outboxNext = p.outboxAt.Add(took)
		}
		return p.outboxNext
	default:
		p.outboxAt = now.Add(took)
		return p.outboxAt
	}
}

// emit writes an item's outputs through the outbox, in order, a few
// milliseconds later; then the item's input is done. A crash first loses
// them.
func (w *simWorld) emit(p *simProc, f effect, in *simInput) {
	disabled := false
	if f.disable != "" {
		if wh, ok := w.hooks.m[f.it.fl.wh.ID]; ok && wh.Enabled {
			w.setEnabled(wh.ID, false)
			disabled = true
		}
	}
	msgs := f.messages(disabled)
	at := p.outboxDone(w.now, time.Millisecond+time.Duration(w.rnd.IntN(2000))*time.Microsecond)
	w.afterAt(at, "", func() {
		if w.proc != p {
			return
		}
		for _, m := range msgs {
			w.append(m)
		}
		w.finishInput(in, true)
	})
}

func (w *simWorld) finishInput(in *simInput, done bool) {
	if in.finished {
		w.violate("an input at %s/%d@%d finished twice", in.src.topic, in.src.partition, in.offset)
		return
	}
	in.finished = true
	in.p.inflight--
	if done {
		in.done()
	}
}

// checkMemory: what the core holds waiting (not in flight) stays within
// its bound, give or take the one item that arrives over it.
func (w *simWorld) checkMemory(p *simProc) {
	var flying int64
	for _, e := range p.core.endpoints {
		for _, it := range e.flying {
			flying += it.size
		}
	}
	if flying != p.core.flying {
		w.violate("the core counts %d bytes in flight, its requests hold %d", p.core.flying, flying)
	}
	if waiting := p.core.bytes - flying; waiting > w.maxBytes+w.maxItem && !w.overMemory {
		w.overMemory = true // once is enough
		w.violate("the core holds %d bytes waiting, over its bound of %d", waiting, w.maxBytes)
	}
}

// --- rebalances and crashes ------------------------------------------------

// rebalance takes every partition away (the range balancer is eager),
// fences them as the runner does, and gives them back a little later.
func (w *simWorld) rebalance() {
	p := w.proc
	if p == nil || p.revoking != nil || !p.assigned {
		return
	}
	parts := map[string][]int32{}
	set := map[srcPart]bool{}
	for _, name := range w.topicNames {
		for part := range simParts {
			parts[name] = append(parts[name], int32(part))
			set[srcPart{name, part}] = true
		}
	}
	w.logf("rebalance: every partition revoked")
	w.disruptions = append(w.disruptions, w.now) // what is not committed is read again
	p.revoking = &simRevoke{parts: parts}
	p.offsets.Revoke(parts)
	p.revoking.flying = p.core.revoke(w.now, set)
	w.apply(p)
	rv := p.revoking
	w.after(simRevokeCut, "", func() {
		if w.proc != p || p.revoking != rv {
			return
		}
		for _, it := range rv.flying {
			if it.state == stateInFlight {
				p.cut[it] = true
				w.disruptions = append(w.disruptions, w.now)
				p.core.finished(w.now, it, delivery.Result{}, false)
				w.apply(p)
			}
		}
		w.revokeProgress(p)
	})
	w.revokeProgress(p)
}

// revokeProgress ends a revoke once its requests in flight are done and
// the outbox wrote what they emitted: what is done is committed, the
// partitions are forgotten and given back.
func (w *simWorld) revokeProgress(p *simProc) {
	rv := p.revoking
	if rv == nil || p.core.revoked > 0 || rv.flushing {
		return
	}
	if last := maxTime(p.outboxAt, p.outboxNext); last.After(w.now) {
		rv.flushing = true
		w.afterAt(last, "", func() {
			rv.flushing = false
			if w.proc == p && p.revoking == rv {
				w.revokeProgress(p)
			}
		})
		return
	}
	p.offsets.CommitRevoked(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	p.offsets.Forget(rv.parts)
	p.revoking, p.assigned = nil, false
	w.after(time.Duration(100+w.rnd.IntN(2000))*time.Millisecond, "reassigned", func() {
		if w.proc != p {
			return
		}
		p.assigned = true
		w.pos = maps(w.committed)
		w.resumes = append(w.resumes, w.now)
		w.fetch()
	})
}

// crash kills the process: what it held, its requests' answers and its
// unwritten outputs are lost; a new one starts a little later from the
// committed offsets.
func (w *simWorld) crash() {
	if w.proc == nil {
		return
	}
	w.logf("crash of session %d", w.proc.session)
	w.proc = nil
	w.disruptions = append(w.disruptions, w.now)
	w.after(time.Duration(500+w.rnd.IntN(3000))*time.Millisecond, "restart", w.startProc)
}

// --- the event loop --------------------------------------------------------

type simEvent struct {
	at  time.Time
	seq uint64
	fn  func()
}

type simEvents []simEvent

func (h simEvents) Len() int { return len(h) }
func (h simEvents) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h simEvents) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *simEvents) Push(x any)   { *h = append(*h, x.(simEvent)) }
func (h *simEvents) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func (w *simWorld) after(d time.Duration, what string, fn func()) {
	w.afterAt(w.now.Add(d), what, fn)
}

func (w *simWorld) afterAt(at time.Time, what string, fn func()) {
	if at.Before(w.now) {
		at = w.now
	}
	w.evSeq++
	if what != "" {
		inner := fn
		fn = func() { w.logf("%s", what); inner() }
	}
	heap.Push(&w.evq, simEvent{at: at, seq: w.evSeq, fn: fn})
}

// run plays the events in time order, moving the bubble's clock to each.
func (w *simWorld) run() {
	for events := 0; !w.stop && w.evq.Len() > 0; events++ {
		if events > simMaxEvents {
			w.violate("more than %d events: a loop?", simMaxEvents)
			return
		}
		ev := heap.Pop(&w.evq).(simEvent)
		if d := time.Until(ev.at); d > 0 {
			time.Sleep(d)
		}
		w.now = time.Now()
		if !w.now.Equal(ev.at) {
			w.violate("the clock is at %s for an event at %s", w.at(w.now), w.at(ev.at))
			return
		}
		if w.now.Sub(w.start) > simMaxRun {
			w.violate("not every delivery ended within %s", simMaxRun)
			return
		}
		ev.fn()
	}
}

// checkQuiet ends the run once every delivery has ended and the sender
// holds nothing.
func (w *simWorld) checkQuiet() {
	if w.now.Sub(w.start) > w.healAt && w.proc != nil && w.proc.assigned && len(w.proc.core.endpoints) == 0 && w.proc.inflight == 0 {
		ended := true
		for _, id := range w.jobOrder {
			if _, done := w.final(id); !done {
				ended = false
				break
			}
		}
		if ended && w.topicsRead() {
			w.stop = true
			return
		}
	}
	w.after(time.Second, "", w.checkQuiet)
}

// topicsRead reports whether every record of every topic was read and
// committed.
func (w *simWorld) topicsRead() bool {
	for _, name := range w.topicNames {
		for part, recs := range w.topics[name].parts {
			if w.committed[srcPart{name, part}] < int64(len(recs)) {
				return false
			}
		}
	}
	return true
}

// final is a delivery's last record (highest n) and whether it ended.
func (w *simWorld) final(id string) (schemas.Attempt, bool) {
	recs := w.records[id]
	best := -1
	for n := range recs {
		best = max(best, n)
	}
	if best < 1 {
		return schemas.Attempt{}, false
	}
	a := recs[best]
	return a, a.State == schemas.StateSucceeded || a.State == schemas.StateFailed
}

type simTrace struct {
	buf  []string
	next int
}

const simTraceLines = 400

func (tr *simTrace) add(line string) {
	if len(tr.buf) < simTraceLines {
		tr.buf = append(tr.buf, line)
		return
	}
	tr.buf[tr.next] = line
	tr.next = (tr.next + 1) % simTraceLines
}

func (tr *simTrace) lines() []string {
	return append(slices.Clone(tr.buf[tr.next:]), tr.buf[:tr.next]...)
}

// --- invariants ---------------------------------------------------------------

// checkIdle: an endpoint that answers is never idle (no request in flight
// for a second) while a job of it has waited a second since it was
// eligible (work-conserving).
func (w *simWorld) checkIdle() {
	if w.now.Sub(w.start) > w.healAt {
		return
	}
	w.after(250*time.Millisecond, "", w.checkIdle)
	p := w.proc
	if p == nil || !p.assigned || p.revoking != nil {
		return
	}
	w.checkPins(p)
	resumed := w.resumes[len(w.resumes)-1]
	waiting := map[string]time.Time{}
	which := map[string]string{}
	for _, id := range w.jobOrder {
		j := w.jobs[id]
		ep := w.eps[j.webhook]
		if !ep.kind.answers() || ep.inflight > 0 || w.now.Sub(ep.active) < time.Second || len(w.received[id]) > 0 || w.memorySpilled[id] {
			continue
		}
		if at, ok := w.memorySpillAt[j.webhook]; ok && w.now.Sub(at) < w.queueWait*3/2 {
			continue // its jobs wait for the memory bound, not for it
		}
		if _, gone := w.deletedAt[j.webhook]; gone || len(w.disabledAt[j.webhook]) > 0 {
			continue
		}
		if eligible := maxTime(j.produced, resumed); w.now.Sub(eligible) > time.Second {
			if _, ok := waiting[j.webhook]; !ok {
				waiting[j.webhook], which[j.webhook] = eligible, id
			}
		}
	}
	for _, id := range slices.Sorted(keysOf(waiting)) {
		w.violate("%s (%s) is idle while its jobs wait, %s eligible since %s", id, w.eps[id].kind, which[id], w.at(waiting[id]))
	}
}

// pinBound is the longest an input may stay unfinished: what pins the
// commit of its partition, and so what a crash reads again. A job waits in
// memory for the order hold (half the queue wait and a second), then in
// its queue for one and a half queue waits at most, then its request
// takes at most its timeout.
func (w *simWorld) pinBound() time.Duration {
	return w.queueWait/2 + time.Second + w.queueWait*3/2 + simMaxTimeout + time.Second
}

// checkPins: no input of a partition stays unfinished longer than
// pinBound once an input of another webhook was read behind it (a slow
// endpoint never pins the commit of the partitions it shares for longer;
// one alone on its partition keeps its backlog in memory, in order).
func (w *simWorld) checkPins(p *simProc) {
	for _, src := range slices.SortedFunc(keysOfPart(w.unfinished), cmpPart) {
		ins := w.unfinished[src]
		for len(ins) > 0 && (ins[0].finished || ins[0].p != p) {
			ins = ins[1:]
		}
		w.unfinished[src] = ins
		if len(ins) == 0 {
			continue
		}
		pin := w.pins[src]
		if pin == nil || pin.head != ins[0] {
			pin = &simPin{head: ins[0], next: 1}
			w.pins[src] = pin
		}
		for ; pin.since.IsZero() && pin.next < len(ins); pin.next++ {
			if ins[pin.next].webhook != pin.head.webhook {
				pin.since = maxTime(pin.head.fetched, ins[pin.next].fetched)
			}
		}
		if !pin.since.IsZero() && w.now.Sub(pin.since) > w.pinBound() && !w.pinned[src] {
			w.pinned[src] = true // once per partition is enough
			w.violate("%s/%d@%d (%s) unfinished for %s since %s's input behind it: it pins its partition's commit",
				src.topic, src.partition, ins[0].offset, ins[0].id, w.now.Sub(pin.since), ins[pin.next-1].webhook)
		}
	}
}

// simPin is what checkPins knows of a partition's oldest unfinished
// input: since when an input of another webhook waits behind it (zero:
// none yet; next is where to look on).
type simPin struct {
	head  *simInput
	next  int
	since time.Time
}

func keysOfPart[V any](m map[srcPart]V) func(func(srcPart) bool) {
	return func(yield func(srcPart) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func cmpPart(a, b srcPart) int {
	if a.topic != b.topic {
		return strings.Compare(a.topic, b.topic)
	}
	return a.partition - b.partition
}

func keysOf[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// checkEnd checks the invariants over the whole run.
func (w *simWorld) checkEnd() {
	if w.stop && w.proc != nil {
		c := w.proc.core
		if len(c.endpoints) != 0 || c.bytes != 0 || c.active != 0 || len(c.wakes) != 0 || c.revoked != 0 || len(c.live) != 0 {
			w.violate("the core still holds records at the end: %d endpoints, %d bytes, %d active, %d wakes, %d revoked, %d live",
				len(c.endpoints), c.bytes, c.active, len(c.wakes), c.revoked, len(c.live))
		}
	}
	for _, id := range w.jobOrder {
		w.checkDelivery(w.jobs[id])
	}
	w.checkOrder()
	w.checkDuplicates()
}

// checkDelivery: it ended; a failure without a request is its webhook's
// disabling or deletion; a healthy endpoint's delivery went out in time.
func (w *simWorld) checkDelivery(j *simJob) {
	a, ended := w.final(j.id)
	reqs := w.received[j.id]
	switch {
	case !ended:
		w.violate("%s to %s (%s) never ended (last record %+v, %d requests)", j.id, j.webhook, w.eps[j.webhook].kind, a, len(reqs))
		return
	case a.State == schemas.StateFailed && (a.Error == unsentDisabled || a.Error == unsentDeleted):
		if a.Error == unsentDisabled && len(w.disabledAt[j.webhook]) == 0 {
			w.violate("%s failed %s, but its webhook was never disabled", j.id, a.Error)
		}
		if _, gone := w.deletedAt[j.webhook]; a.Error == unsentDeleted && !gone {
			w.violate("%s failed %s, but its webhook was never deleted", j.id, a.Error)
		}
	case a.State == schemas.StateFailed:
		if !slices.ContainsFunc(reqs, func(r simRequest) bool { return r.n == a.N }) {
			w.violate("%s failed (%q) at attempt %d without a request of it", j.id, a.Error, a.N)
		}
	}
	if w.eps[j.webhook].kind != kindHealthy || len(reqs) == 0 || w.memorySpilled[j.id] {
		return
	}
	if at, ok := w.memorySpillAt[j.webhook]; ok && reqs[0].at.Sub(at) < w.queueWait*3/2 && !reqs[0].at.Before(at) {
		return // it waited for the memory bound, behind a job of its lane
	}
	first := reqs[0].at
	eligible := j.produced
	for _, r := range w.resumes {
		if !r.After(first) && r.After(eligible) {
			eligible = r
		}
	}
	if late := first.Sub(eligible) - w.eps[j.webhook].latency; late > simHealthyBound {
		w.violate("%s to healthy %s went out %s after it was eligible (at %s)", j.id, j.webhook, late, w.at(eligible))
	}
}

// checkOrder: a resource's live jobs to one endpoint first go out in the
// order they were produced, but across a crash or a rebalance (retries may
// reorder too: only first attempts count).
func (w *simWorld) checkOrder() {
	last := map[string]*simJob{} // webhook/resource → the previous job of its stream
	for _, id := range w.jobOrder {
		j := w.jobs[id]
		if !j.stream {
			continue
		}
		k := j.webhook + "/" + j.resource
		prev := last[k]
		last[k] = j
		if prev == nil || len(w.received[prev.id]) == 0 || len(w.received[j.id]) == 0 || w.unsent[prev.id] || w.unsent[j.id] {
			continue
		}
		a, b := w.received[prev.id][0].at, w.received[j.id][0].at
		if !b.Before(a) {
			continue
		}
		if w.disruptedBetween(prev.produced, b) {
			continue
		}
		w.violate("%s went out at %s before %s (at %s), the earlier job of %s", j.id, w.at(b), prev.id, w.at(a), k)
	}
}

// disruptedBetween reports whether a crash, a rebalance's cut or a
// partition's resume happened in [from, to].
func (w *simWorld) disruptedBetween(from, to time.Time) bool {
	for _, ts := range [][]time.Time{w.disruptions, w.resumes[1:]} {
		for _, t := range ts {
			if !t.Before(from) && !t.After(to) {
				return true
			}
		}
	}
	return false
}

// checkDuplicates: a request is made twice only when a crash or a
// rebalance's cut came after its job was first read (its partition was
// read again from a commit behind it; checkPins bounds how far behind).
func (w *simWorld) checkDuplicates() {
	for _, id := range w.jobOrder {
		seen := map[int]time.Time{}
		for _, r := range w.received[id] {
			if _, dup := seen[r.n]; !dup {
				seen[r.n] = r.at
				continue
			}
			read := w.firstRead[id]
			if !slices.ContainsFunc(w.disruptions, func(d time.Time) bool { return !d.Before(read) && !d.After(r.at) }) {
				w.violate("%s attempt %d sent twice (%s, %s) with no crash or cut since it was first read (%s)",
					id, r.n, w.at(seen[r.n]), w.at(r.at), w.at(read))
				continue
			}
			// What a disruption sends again is what was sent within the
			// pin bound before it, endpoints alone on their partition
			// (whose commits wait for their whole backlog) included;
			// unless a disruption came before its first request too: a
			// put-off before it and the input read again are two copies,
			// each sent once (DESIGN, "What a crash costs").
			copies := slices.ContainsFunc(w.disruptions, func(d time.Time) bool { return !d.Before(read) && !d.After(seen[r.n]) })
			if k := slices.IndexFunc(w.disruptions, func(d time.Time) bool { return !d.Before(seen[r.n]) && !d.After(r.at) }); k >= 0 && !copies {
				if ago := w.disruptions[k].Sub(seen[r.n]); ago > w.pinBound() {
					w.violate("%s attempt %d sent again at %s, first sent %s before the disruption at %s: over the pin bound %s",
						id, r.n, w.at(r.at), ago, w.at(w.disruptions[k]), w.pinBound())
				}
			}
		}
	}
}
