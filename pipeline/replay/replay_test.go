package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/matcher"
	"github.com/hookline/hookline/pipeline/subscriptions"
	"github.com/hookline/hookline/schemas"
	"github.com/hookline/hookline/sealing"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// t1 is the time of the first events; t1+1h and t1+2h follow, all past.
var t1 = time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)

func startBroker(t *testing.T, dir string) *broker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{DataDir: dir, Partitions: 2}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func runRegistry(t *testing.T, b *broker.Broker) (*subscriptions.Registry, func()) {
	t.Helper()
	box, err := sealing.ParseKeys(sealing.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	r := subscriptions.New(b, box, quiet)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	syncCtx, syncCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer syncCancel()
	if err := r.Sync(syncCtx); err != nil {
		t.Fatal(err)
	}
	return r, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("registry: %v", err)
		}
	}
}

// The webhooks of the tests: replays name tickets and high; other and
// elsewhere must never get a replayed job.
func webhooks() []schemas.Webhook {
	hook := func(id, tenant string, events []string, cond string) schemas.Webhook {
		return schemas.Webhook{ID: id, Tenant: tenant, Name: id, URL: "https://example.com/" + id, Enabled: true,
			ContentType: schemas.ContentTypeJSON, Events: events, Condition: cond, Version: 1,
			// Batching does not apply to replays: each match goes alone.
			Batching: &schemas.Batching{Mode: "any", WaitSeconds: 60, MaxItems: 10}}
	}
	return []schemas.Webhook{
		hook("tickets", "t1", []string{"ticket.*"}, ""),
		hook("high", "t1", []string{"*"}, `data.priority == "High"`),
		hook("other", "t1", []string{"*"}, ""),
		hook("elsewhere", "t2", []string{"*"}, ""),
	}
}

func publishWebhooks(t *testing.T, reg *subscriptions.Registry, hooks ...schemas.Webhook) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, w := range hooks {
		if err := reg.PublishWebhook(ctx, schemas.WebhookEvent{Op: schemas.OpCreated, At: time.Now(), Webhook: w}); err != nil {
			t.Fatal(err)
		}
	}
}

// event is an input event; wants lists the named webhooks it matches.
type event struct {
	id, tenant, resource, priority string
	at                             time.Time
}

func (e event) wants() []string {
	var out []string
	if e.tenant == "t1" && e.resource == "ticket" {
		out = append(out, "tickets")
	}
	if e.tenant == "t1" && e.priority == "High" {
		out = append(out, "high")
	}
	return out
}

// events makes n events stored at `at`: tickets and orders, High and Low,
// one in ten of tenant t2.
func events(prefix string, n int, at time.Time) []event {
	out := make([]event, n)
	for i := range out {
		e := event{id: fmt.Sprintf("%s-%d", prefix, i), tenant: "t1", resource: "ticket", priority: "Low", at: at}
		if i%3 == 1 {
			e.resource = "order"
		}
		if i%2 == 0 {
			e.priority = "High"
		}
		if i%10 == 9 {
			e.tenant = "t2"
		}
		out[i] = e
	}
	return out
}

func produce(t *testing.T, b *broker.Broker, evs []event, raw ...kafka.Message) {
	t.Helper()
	msgs := slices.Clone(raw)
	for _, e := range evs {
		v, _ := json.Marshal(map[string]any{
			"id": e.id, "tenant": e.tenant, "resource": e.resource, "trigger": "create",
			"resource_id": "R-" + e.id, "data": map[string]any{"priority": e.priority},
		})
		msgs = append(msgs, kafka.Message{Key: []byte("R-" + e.id), Value: v, Time: e.at})
	}
	w := b.Writer(schemas.TopicEvents, nil)
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Write(ctx, msgs); err != nil {
		t.Fatal(err)
	}
}

// readTopic reads every message a topic holds now, partition by partition.
func readTopic(t *testing.T, b *broker.Broker, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	end, err := b.EndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []kafka.Message
	for p, last := range end {
		if last == 0 {
			continue
		}
		r, err := b.PartitionReader(topic, p, kafka.FirstOffset)
		if err != nil {
			t.Fatal(err)
		}
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("read %s/%d: %v", topic, p, err)
			}
			out = append(out, m)
			if m.Offset+1 >= last {
				break
			}
		}
		r.Close()
	}
	return out
}

// replayJobs are the jobs on hookline.deliveries that name the replay.
func replayJobs(t *testing.T, b *broker.Broker, replayID string) []schemas.Job {
	t.Helper()
	var out []schemas.Job
	for _, m := range readTopic(t, b, schemas.TopicDeliveries) {
		var job schemas.Job
		if err := json.Unmarshal(m.Value, &job); err != nil {
			t.Fatal(err)
		}
		if job.ReplayID != replayID {
			continue
		}
		if string(m.Key) != job.WebhookID {
			t.Errorf("job keyed %q, want its webhook %q", m.Key, job.WebhookID)
		}
		out = append(out, job)
	}
	return out
}

// expected is what a replay of msgs must give: the delivery ids of every
// (event, named webhook) match, and the counts.
type expected struct {
	ids              map[string]bool
	scanned, matched int64
}

func expect(t *testing.T, msgs []kafka.Message, byID map[string]event, replayID string) expected {
	t.Helper()
	want := expected{ids: map[string]bool{}}
	for _, m := range msgs {
		var v struct{ ID string }
		if json.Unmarshal(m.Value, &v) != nil {
			continue
		}
		e, ok := byID[v.ID]
		if !ok {
			t.Fatalf("unknown event %q", v.ID)
		}
		if e.tenant == "t1" { // the replays' tenant: only its events count
			want.scanned++
		}
		for _, w := range e.wants() {
			want.ids[matcher.DeliveryID(m.Time, e.id, w, replayID)] = true
			want.matched++
		}
	}
	return want
}

func index(evs ...[]event) map[string]event {
	out := map[string]event{}
	for _, list := range evs {
		for _, e := range list {
			out[e.id] = e
		}
	}
	return out
}

func startManager(t *testing.T, b *broker.Broker, hooks Webhooks, cfg Config, before func(context.Context, string)) (*Manager, func()) {
	t.Helper()
	return startManagerWith(t, b, hooks, cfg, func(m *Manager) { m.beforeEvent = before })
}

// startManagerWith runs a manager after setup (test hooks) has run on it.
func startManagerWith(t *testing.T, b *broker.Broker, hooks Webhooks, cfg Config, setup func(*Manager)) (*Manager, func()) {
	t.Helper()
	m, err := New(b, hooks, cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	setup(m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	syncCtx, syncCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer syncCancel()
	if err := m.Sync(syncCtx); err != nil {
		t.Fatal(err)
	}
	stopped := false
	return m, func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}
}

func create(t *testing.T, m *Manager, tenant string, req schemas.ReplayRequest) schemas.Replay {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := m.CreateReplay(ctx, tenant, req)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if got, ok := m.Replay(tenant, r.ID); !ok || got.State != schemas.ReplayRunning {
		t.Fatalf("the replay is not readable after create: %+v %v", got, ok)
	}
	if list := m.Replays(tenant); len(list) == 0 || list[0].ID != r.ID {
		t.Fatalf("the tenant's replays after create: %d, the newest not the one created", len(list))
	}
	for _, other := range m.Replays(tenant + "-other") {
		t.Fatalf("another tenant lists replay %s", other.ID)
	}
	return r
}

// waitState polls until the replay is in the state.
func waitState(t *testing.T, m *Manager, tenant, id, state string) schemas.Replay {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, ok := m.Replay(tenant, id)
		if ok && r.State == state {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("replay %s: state %q after 60 s, want %q (%+v)", id, r.State, state, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkJobs compares the replay's jobs with what is expected: the set of
// delivery ids, each job delivered alone with the replay id in its body,
// and at most extra more jobs than ids (a stretch read again).
func checkJobs(t *testing.T, jobs []schemas.Job, want expected, replayID string, extra int) {
	t.Helper()
	got := map[string]bool{}
	for _, job := range jobs {
		got[job.DeliveryID] = true
		var env schemas.Envelope
		if err := json.Unmarshal(job.Payload, &env); err != nil {
			t.Fatalf("job %s: payload is not one envelope: %v (%s)", job.DeliveryID, err, job.Payload)
		}
		if env.ID != job.DeliveryID || len(job.EventIDs) != 1 || env.EventID != job.EventIDs[0] || env.WebhookID != job.WebhookID {
			t.Errorf("job %s: envelope %+v, event ids %v", job.DeliveryID, env, job.EventIDs)
		}
		if job.WebhookID != "tickets" && job.WebhookID != "high" {
			t.Errorf("job for webhook %s, which the replay does not name", job.WebhookID)
		}
	}
	if !maps.Equal(got, want.ids) {
		t.Errorf("%d delivery ids, want %d; missing %d, unexpected %d",
			len(got), len(want.ids), len(diff(want.ids, got)), len(diff(got, want.ids)))
	}
	t.Logf("%d jobs for %d delivery ids", len(jobs), len(want.ids))
	if len(jobs) > len(want.ids)+extra {
		t.Errorf("%d jobs for %d delivery ids: more duplicates than %d", len(jobs), len(want.ids), extra)
	}
}

func diff(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	return out
}

func checkCounts(t *testing.T, r schemas.Replay, scanned, matched, enqueued int64) {
	t.Helper()
	if r.Scanned != scanned || r.Matched != matched || r.Enqueued != enqueued {
		t.Errorf("scanned %d matched %d enqueued %d, want %d %d %d", r.Scanned, r.Matched, r.Enqueued, scanned, matched, enqueued)
	}
}

func at(t time.Time) *time.Time { return &t }

func TestReplayByTimeEnqueuesTheMatchesOfTheStretch(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	reg, stopReg := runRegistry(t, b)
	defer stopReg()
	publishWebhooks(t, reg, webhooks()...)
	before, during, after := events("a", 20, t1), events("b", 30, t1.Add(time.Hour)), events("c", 20, t1.Add(2*time.Hour))
	produce(t, b, slices.Concat(before, during, after),
		kafka.Message{Key: []byte("bad"), Value: []byte("not json"), Time: t1.Add(time.Hour + time.Minute)})
	m, stop := startManager(t, b, reg, Config{}, nil)
	defer stop()

	r := create(t, m, "t1", schemas.ReplayRequest{WebhookIDs: []string{"tickets", "high"},
		From: &schemas.ReplayPosition{Time: at(t1.Add(time.Hour))}, To: &schemas.ReplayPosition{Time: at(t1.Add(2 * time.Hour))}})
	if len(r.Partitions) != 2 {
		t.Fatalf("partitions %+v, want both", r.Partitions)
	}
	done := waitState(t, m, "t1", r.ID, schemas.ReplayDone)

	var stretch []kafka.Message
	for _, msg := range readTopic(t, b, schemas.TopicEvents) {
		if !msg.Time.Before(t1.Add(time.Hour)) && msg.Time.Before(t1.Add(2*time.Hour)) {
			stretch = append(stretch, msg)
		}
	}
	want := expect(t, stretch, index(during), r.ID)
	if want.scanned != 27 || want.matched == 0 { // 31 in the stretch, 27 of them t1's
		t.Fatalf("test data: %d events in the stretch, %d matches", want.scanned, want.matched)
	}
	checkCounts(t, done, want.scanned, want.matched, want.matched)
	checkJobs(t, replayJobs(t, b, r.ID), want, r.ID, 0)
	for _, p := range done.Partitions {
		if p.Next != p.End {
			t.Errorf("partition %+v not read to its end", p)
		}
	}
}

func TestReplayByOffsetsReadsTheNamedPartitionsToTheEndAtStart(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	reg, stopReg := runRegistry(t, b)
	defer stopReg()
	publishWebhooks(t, reg, webhooks()...)
	evs := events("e", 40, t1)
	produce(t, b, evs)
	all := readTopic(t, b, schemas.TopicEvents)
	var per [2]int64
	for _, msg := range all {
		per[msg.Partition]++
	}
	if per[0] < 5 || per[1] < 5 {
		t.Fatalf("test data: %v events per partition", per)
	}

	m, stop := startManager(t, b, reg, Config{}, func(context.Context, string) {})
	defer stop()
	// From offset 3 of partition 0 to offset per[0]-1; partition 1 from 2
	// to its end when the replay starts.
	r := create(t, m, "t1", schemas.ReplayRequest{WebhookIDs: []string{"tickets", "high"},
		From: &schemas.ReplayPosition{Offsets: map[string]int64{"0": 3, "1": 2}},
		To:   &schemas.ReplayPosition{Offsets: map[string]int64{"0": per[0] - 1}}})
	produce(t, b, events("late", 10, t1.Add(time.Minute))) // after the start: not replayed
	done := waitState(t, m, "t1", r.ID, schemas.ReplayDone)

	var stretch []kafka.Message
	for _, msg := range all {
		if msg.Partition == 0 && msg.Offset >= 3 && msg.Offset < per[0]-1 || msg.Partition == 1 && msg.Offset >= 2 {
			stretch = append(stretch, msg)
		}
	}
	want := expect(t, stretch, index(evs), r.ID)
	checkCounts(t, done, want.scanned, want.matched, want.matched)
	checkJobs(t, replayJobs(t, b, r.ID), want, r.ID, 0)
	wantParts := []schemas.ReplayPartition{{Partition: 0, Start: 3, End: per[0] - 1, Next: per[0] - 1}, {Partition: 1, Start: 2, End: per[1], Next: per[1]}}
	if !slices.Equal(done.Partitions, wantParts) {
		t.Errorf("partitions %+v, want %+v", done.Partitions, wantParts)
	}
}

func TestDryRunCountsAndEnqueuesNothing(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	reg, stopReg := runRegistry(t, b)
	defer stopReg()
	publishWebhooks(t, reg, webhooks()...)
	evs := events("e", 30, t1)
	produce(t, b, evs)
	m, stop := startManager(t, b, reg, Config{}, nil)
	defer stop()

	r := create(t, m, "t1", schemas.ReplayRequest{WebhookIDs: []string{"tickets", "high"}, DryRun: true,
		From: &schemas.ReplayPosition{Time: at(t1)}})
	done := waitState(t, m, "t1", r.ID, schemas.ReplayDone)
	want := expect(t, readTopic(t, b, schemas.TopicEvents), index(evs), r.ID)
	checkCounts(t, done, want.scanned, want.matched, 0)
	if jobs := readTopic(t, b, schemas.TopicDeliveries); len(jobs) != 0 {
		t.Errorf("a dry run produced %d jobs", len(jobs))
	}
}

func TestAWebhookCreatedAfterTheEventsMatchesThem(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	reg, stopReg := runRegistry(t, b)
	defer stopReg()
	evs := events("e", 20, t1)
	produce(t, b, evs)
	publishWebhooks(t, reg, webhooks()...) // after the events
	m, stop := startManager(t, b, reg, Config{}, nil)
	defer stop()

	r := create(t, m, "t1", schemas.ReplayRequest{WebhookIDs: []string{"tickets"}, From: &schemas.ReplayPosition{Time: at(time.Unix(0, 0))}})
	done := waitState(t, m, "t1", r.ID, schemas.ReplayDone)
	var tickets, own int64
	for _, e := range evs {
		if e.tenant == "t1" && e.resource == "ticket" {
			tickets++
		}
		if e.tenant == "t1" {
			own++
		}
	}
	checkCounts(t, done, own, tickets, tickets)
	if jobs := replayJobs(t, b, r.ID); int64(len(jobs)) != tickets {
		t.Errorf("%d jobs, want %d", len(jobs), tickets)
	}
}

// TestReplayGivesAnEventWithoutIDTheMatchersID: the id an event published
// without one gets is derived from its position, the same in a replay as
// in the matcher, so that both name the same event.
func TestReplayGivesAnEventWithoutIDTheMatchersID(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	reg, stopReg := runRegistry(t, b)
	defer stopReg()
	publishWebhooks(t, reg, webhooks()...)
	produce(t, b, nil, kafka.Message{Key: []byte("T-1"), Time: t1,
		Value: []byte(`{"tenant":"t1","resource":"ticket","trigger":"create","resource_id":"T-1"}`)})

	stage := matcher.NewStage(b, reg, matcher.StageConfig{}, quiet)
	ctx, cancel := context.WithCancel(context.Background())
	stageDone := make(chan error, 1)
	go func() { stageDone <- stage.Run(ctx) }()
	var fromMatcher []string
	for deadline := time.Now().Add(30 * time.Second); len(fromMatcher) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the matcher produced no job")
		}
		time.Sleep(50 * time.Millisecond)
		fromMatcher = nil
		for _, job := range replayJobs(t, b, "") {
			if job.WebhookID == "tickets" {
				fromMatcher = job.EventIDs
			}
		}
	}
	cancel()
	if err := <-stageDone; err != nil {
		t.Fatal(err)
	}

	m, stop := startManager(t, b, reg, Config{}, nil)
	defer stop()
	r := create(t, m, "t1", schemas.ReplayRequest{WebhookIDs: []string{"tickets"}, From: &schemas.ReplayPosition{Time: at(t1)}})
	waitState(t, m, "t1", r.ID, schemas.ReplayDone)
	jobs := replayJobs(t, b, r.ID)
	if len(jobs) != 1 || !slices.Equal(jobs[0].EventIDs, fromMatcher) {
		t.Errorf("replayed event ids %v, the matcher's %v", jobs, fromMatcher)
	}
}

func TestCancelStopsAReplay(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	reg, stopReg := runRegistry(t, b)
	defer stopReg()
	publishWebhooks(t, reg, webhooks()...)
	produce(t, b, events("e", 400, t1))
	var seen atomic.Int64
	slow := func(ctx context.Context, _ string) {
		seen.Add(1)
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}
	m, stop := startManager(t, b, reg, Config{CheckpointEvery: 10}, slow)
	defer stop()

	r := create(t, m, "t1", schemas.ReplayRequest{WebhookIDs: []string{"tickets", "high"}, From: &schemas.ReplayPosition{Time: at(t1)}})
	for deadline := time.Now().Add(30 * time.Second); seen.Load() < 50; {
		if time.Now().After(deadline) {
			t.Fatal("the replay does not run")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := m.CancelReplay(ctx, "t1", r.ID)
	if err != nil || got.State != schemas.ReplayCancelled {
		t.Fatalf("cancel: %+v %v", got, err)
	}
	if _, err := m.CancelReplay(ctx, "t2", r.ID); !errors.Is(err, schemas.ErrReplayNotFound) {
		t.Errorf("another tenant's cancel: %v, want ErrReplayNotFound", err)
	}
	if _, err := m.CancelReplay(ctx, "t1", r.ID); !errors.Is(err, schemas.ErrReplayFinished) {
		t.Errorf("cancel twice: %v, want ErrReplayFinished", err)
	}
	waitIdle(t, m)
	seenAtStop := seen.Load()
	time.Sleep(300 * time.Millisecond)
	if seen.Load() != seenAtStop {
		t.Errorf("the replay read on after it stopped: %d events, then %d", seenAtStop, seen.Load())
	}
	final, _ := m.Replay("t1", r.ID)
	// The event whose read was under way when the cancel came is not
	// handled; every event before it is, and counted.
	// Scanned counts t1's events only (one in ten is t2's).
	if final.State != schemas.ReplayCancelled || final.Scanned < (seenAtStop-1)*8/10 || final.Scanned > seenAtStop || final.Scanned >= 400 {
		t.Errorf("after cancel, with %d events read: %+v", seenAtStop, final)
	}
	if jobs := replayJobs(t, b, r.ID); int64(len(jobs)) != final.Enqueued {
		t.Errorf("%d jobs on the topic, the replay counts %d enqueued", len(jobs), final.Enqueued)
	}
}

// waitIdle waits until no replay runs in the manager.
func waitIdle(t *testing.T, m *Manager) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		m.mu.RLock()
		n := len(m.active)
		m.mu.RUnlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d replays still run", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAReplayResumesAfterARestart: the manager stops in the middle of a
// replay, the broker restarts on its data dir, and a new manager finishes
// the replay from its checkpoint with the totals of an uninterrupted run,
// and every delivery id once (but for a stretch read again when the last
// progress could not be saved).
func TestAReplayResumesAfterARestart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		drain time.Duration
		extra int // jobs produced twice at most
	}{
		{"progress saved at stop", 0, 0},
		// Read again: at most the events of one checkpoint interval
		// (1000), each matching at most both webhooks.
		{"progress since the last checkpoint lost", time.Nanosecond, 2 * 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b := startBroker(t, dir)
			reg, stopReg := runRegistry(t, b)
			publishWebhooks(t, reg, webhooks()...)
			evs := events("e", 3000, t1)
			produce(t, b, evs)

			reached := make(chan struct{})
			var n atomic.Int64
			halt := func(ctx context.Context, _ string) {
				if n.Add(1) == 1700 {
					close(reached)
					<-ctx.Done()
				}
			}
			m, stop := startManager(t, b, reg, Config{DrainTimeout: tc.drain}, halt)
			r := create(t, m, "t1", schemas.ReplayRequest{WebhookIDs: []string{"tickets", "high"}, From: &schemas.ReplayPosition{Time: at(t1)}})
			select {
			case <-reached:
			case <-time.After(60 * time.Second):
				t.Fatal("the replay did not get to its middle")
			}
			stop()
			mid, _ := m.Replay("t1", r.ID)
			if mid.State != schemas.ReplayRunning || mid.Scanned >= 3000 {
				t.Fatalf("stopped in the middle, the replay is %+v", mid)
			}
			stopReg()
			b.Close()

			b = startBroker(t, dir)
			defer b.Close()
			reg, stopReg = runRegistry(t, b)
			defer stopReg()
			m, stop = startManager(t, b, reg, Config{}, nil)
			defer stop()
			done := waitState(t, m, "t1", r.ID, schemas.ReplayDone)
			want := expect(t, readTopic(t, b, schemas.TopicEvents), index(evs), r.ID)
			checkCounts(t, done, want.scanned, want.matched, want.matched)
			checkJobs(t, replayJobs(t, b, r.ID), want, r.ID, tc.extra)
		})
	}
}

func TestCreateRefusesWhatCannotBeReplayed(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	reg, stopReg := runRegistry(t, b)
	defer stopReg()
	publishWebhooks(t, reg, webhooks()...)
	produce(t, b, events("e", 10, t1))
	m, stop := startManager(t, b, reg, Config{}, nil)
	defer stop()
	from := &schemas.ReplayPosition{Time: at(t1)}
	for _, tc := range []struct {
		name   string
		tenant string
		req    schemas.ReplayRequest
		field  string
	}{
		{"another tenant's webhook", "t2", schemas.ReplayRequest{WebhookIDs: []string{"elsewhere", "tickets"}, From: from}, "webhook_ids[1]"},
		{"no such partition", "t1", schemas.ReplayRequest{WebhookIDs: []string{"tickets"}, From: &schemas.ReplayPosition{Offsets: map[string]int64{"2": 0}}}, "from.offsets.2"},
		{"past the end", "t1", schemas.ReplayRequest{WebhookIDs: []string{"tickets"}, From: from, To: &schemas.ReplayPosition{Offsets: map[string]int64{"0": 1000}}}, "to.offsets.0"},
		{"invalid", "t1", schemas.ReplayRequest{WebhookIDs: []string{"tickets"}}, "from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.CreateReplay(context.Background(), tc.tenant, tc.req)
			var fe *schemas.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("error %v, want a field error on %s", err, tc.field)
			}
		})
	}
	if n := m.t.Len(); n != 0 {
		t.Errorf("%d refused replays were published", n)
	}
}

// TestAReplayThatCannotReadFails: with hookline.events gone, the replay
// fails with the reason once its attempts are used up.
func TestAReplayThatCannotReadFails(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	reg, stopReg := runRegistry(t, b)
	defer stopReg()
	publishWebhooks(t, reg, webhooks()...)
	produce(t, b, events("e", 10, t1))
	release := make(chan struct{})
	var first atomic.Bool
	hold := func(ctx context.Context, _ string) {
		if first.CompareAndSwap(false, true) {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	}
	// Held before the reading starts: a reader fetches ahead.
	m, stop := startManagerWith(t, b, reg, Config{Attempts: 2, RetryDelay: 10 * time.Millisecond, ReadTimeout: 500 * time.Millisecond},
		func(m *Manager) { m.beforeRun = hold })
	defer stop()
	r := create(t, m, "t1", schemas.ReplayRequest{WebhookIDs: []string{"tickets"}, From: &schemas.ReplayPosition{Time: at(t1)}})

	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(b.Addrs()...), Timeout: 10 * time.Second, Transport: transport}
	resp, err := client.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{schemas.TopicEvents}})
	if err != nil || resp.Errors[schemas.TopicEvents] != nil {
		t.Fatalf("delete topic: %v %v", err, resp)
	}
	close(release)
	failed := waitState(t, m, "t1", r.ID, schemas.ReplayFailed)
	if failed.Error == "" {
		t.Error("a failed replay without a reason")
	}
	t.Logf("reason: %s", failed.Error)
}

func TestConfigValidate(t *testing.T) {
	for i, c := range []Config{{MaxRunning: -1}, {CheckpointEvery: -1}, {ReadTimeout: -time.Second}, {Attempts: -2}} {
		if err := c.Validate(); err == nil {
			t.Errorf("config %d %+v accepted", i, c)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
}

type staticWebhooks map[string][]schemas.Webhook

func (s staticWebhooks) Webhooks(tenant string) []schemas.Webhook { return s[tenant] }

// TestViewShowsOnlyTheNamedWebhooksOfTheTenant, and hands the matcher a
// new slice only when the registry's changes, so that its index is
// rebuilt then and only then.
func TestViewShowsOnlyTheNamedWebhooksOfTheTenant(t *testing.T) {
	all := webhooks()
	src := staticWebhooks{"t1": all[:3], "t2": all[3:]}
	v := newView(src, "t1", []string{"tickets", "other", "elsewhere"})
	got := v.Webhooks("t1")
	if len(got) != 2 || got[0].ID != "tickets" || got[1].ID != "other" {
		t.Fatalf("view %v", got)
	}
	if again := v.Webhooks("t1"); &again[0] != &got[0] {
		t.Error("an unchanged source gave a new slice")
	}
	if other := v.Webhooks("t2"); other != nil {
		t.Errorf("another tenant's webhooks: %v", other)
	}
	src["t1"] = slices.Clone(all[:1])
	if changed := v.Webhooks("t1"); len(changed) != 1 || &changed[0] == &got[0] {
		t.Errorf("after a change: %v", changed)
	}
}
