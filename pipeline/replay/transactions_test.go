package replay

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
)

// produceTx publishes events in one transaction of a franz-go producer
// with a transactional id, committed or aborted.
func produceTx(t *testing.T, b *broker.Broker, evs []event, end kgo.TransactionEndTry) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...), kgo.TransactionalID("replay-test-tx"),
		kgo.DefaultProduceTopic(schemas.TopicEvents))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		v, _ := json.Marshal(map[string]any{
			"id": e.id, "tenant": e.tenant, "resource": e.resource, "trigger": "create",
			"resource_id": "R-" + e.id, "data": map[string]any{"priority": e.priority},
		})
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("R-" + e.id), Value: v, Timestamp: e.at}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(ctx, end); err != nil {
		t.Fatal(err)
	}
}

// TestAReplaySkipsAbortedTransactions: a replay neither counts nor
// enqueues the events of an aborted transaction, nor the transactions'
// markers, and reads every partition to its end past them.
func TestAReplaySkipsAbortedTransactions(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	reg, stopReg := runRegistry(t, b)
	defer stopReg()
	publishWebhooks(t, reg, webhooks()...)
	plain, aborted, committed := events("plain", 20, t1), events("aborted", 10, t1), events("committed", 10, t1)
	produce(t, b, plain)
	produceTx(t, b, aborted, kgo.TryAbort)
	produceTx(t, b, committed, kgo.TryCommit)
	m, stop := startManager(t, b, reg, Config{}, nil)
	defer stop()

	r := create(t, m, "t1", schemas.ReplayRequest{WebhookIDs: []string{"tickets", "high"},
		From: &schemas.ReplayPosition{Time: at(t1)}})
	done := waitState(t, m, "t1", r.ID, schemas.ReplayDone)

	var data []kafka.Message
	for _, msg := range readTopic(t, b, schemas.TopicEvents) {
		if !broker.IsControl(msg) {
			data = append(data, msg)
		}
	}
	for _, msg := range data {
		if strings.Contains(string(msg.Value), "aborted-") {
			t.Fatalf("a reader handed out an aborted record: %s", msg.Value)
		}
	}
	want := expect(t, data, index(plain, committed), r.ID)
	if want.scanned == 0 || want.scanned > 30 {
		t.Fatalf("test data: %d committed events of t1, want up to 30", want.scanned)
	}
	checkCounts(t, done, want.scanned, want.matched, want.matched)
	checkJobs(t, replayJobs(t, b, r.ID), want, r.ID, 0)
	for _, p := range done.Partitions {
		if p.Next != p.End {
			t.Errorf("partition %+v not read to its end", p)
		}
	}
}

// TestAReplayFinishesWhileATransactionIsOpen: a replay ends at each
// partition's last stable offset, not its high watermark: a producer's
// transaction left open (Flink and Debezium keep one open for about a
// minute) does not keep it from finishing, and its records are not
// replayed. (Before, the replay's read_committed reader could not pass
// the open transaction, timed out five times and failed.)
func TestAReplayFinishesWhileATransactionIsOpen(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	reg, stopReg := runRegistry(t, b)
	defer stopReg()
	publishWebhooks(t, reg, webhooks()...)
	plain := events("plain", 20, t1)
	produce(t, b, plain)
	data := readTopic(t, b, schemas.TopicEvents) // before the transaction: a reader would wait at it

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...), kgo.TransactionalID("replay-open-tx"),
		kgo.DefaultProduceTopic(schemas.TopicEvents))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, e := range events("open", 10, t1) {
		v, _ := json.Marshal(map[string]any{"id": e.id, "tenant": e.tenant, "resource": e.resource, "trigger": "create",
			"resource_id": "R-" + e.id, "data": map[string]any{"priority": e.priority}})
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("R-" + e.id), Value: v, Timestamp: e.at}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	defer cl.EndTransaction(context.Background(), kgo.TryAbort)

	m, stop := startManager(t, b, reg, Config{}, nil)
	defer stop()
	r := create(t, m, "t1", schemas.ReplayRequest{WebhookIDs: []string{"tickets", "high"},
		From: &schemas.ReplayPosition{Time: at(t1)}})
	done := waitState(t, m, "t1", r.ID, schemas.ReplayDone)
	want := expect(t, data, index(plain), r.ID)
	checkCounts(t, done, want.scanned, want.matched, want.matched)
	for _, j := range replayJobs(t, b, r.ID) {
		if strings.Contains(strings.Join(j.EventIDs, ","), "open-") {
			t.Fatalf("an event of the open transaction was replayed: %v", j.EventIDs)
		}
	}
}
