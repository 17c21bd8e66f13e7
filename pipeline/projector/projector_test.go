package projector

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/projections/clickhouse"
	"github.com/hookline/hookline/projections/embedded"
	"github.com/hookline/hookline/projections/storetest"
	"github.com/hookline/hookline/schemas"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func attempt(i, n int, state string) schemas.Attempt {
	at := time.Date(2026, 11, 22, 10, 0, i, 0, time.UTC)
	return schemas.Attempt{
		DeliveryID: fmt.Sprintf("01a20000-0000-7000-8000-%012d", i), WebhookID: "w1", Tenant: "t1",
		EventIDs: []string{fmt.Sprint("e", i)}, EventType: "ticket.created", N: n, State: state,
		At: at, DeliveryCreatedAt: at, StatusCode: 200, URL: "https://example.com",
		RequestHeaders: map[string]string{"Content-Type": "application/json"}, RequestBody: "{}",
	}
}

// TestDecode: attempts and pending marks (n 0, pending) are kept; a record
// that is not JSON, a mark that is not pending and a negative n are
// dead-lettered.
func TestDecode(t *testing.T) {
	good, _ := json.Marshal(attempt(1, 1, schemas.StateSucceeded))
	mark, _ := json.Marshal(attempt(2, 0, schemas.StatePending))
	markNotPending, _ := json.Marshal(attempt(3, 0, schemas.StateSucceeded))
	negative, _ := json.Marshal(attempt(4, -1, schemas.StateFailed))
	attempts, dead := Decode([]kafka.Message{{Value: good}, {Value: []byte("{")}, {Value: mark}, {Value: markNotPending}, {Value: negative}})
	if len(attempts) != 2 || attempts[0].DeliveryID != attempt(1, 1, "").DeliveryID || attempts[1].N != 0 {
		t.Fatalf("attempts = %+v, want the attempt and the pending mark", attempts)
	}
	if len(dead) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dead))
	}
}

// TestDecodeRecordsLeavesTheBodiesInTheJSON: for a record store, the
// attempt is decoded without its bodies (the costly part), the record's
// JSON is kept whole, and the embedded store answers with the same
// delivery as for a fully decoded attempt.
func TestDecodeRecordsLeavesTheBodiesInTheJSON(t *testing.T) {
	a := attempt(1, 1, schemas.StateFailed)
	a.RequestBody = `{"html":"<b>\"quoted\" & more</b>"}`
	a.ResponseBody = "no \"thanks\""
	a.At = a.At.Add(1234567 * time.Nanosecond) // finer than the stores keep
	v, _ := json.Marshal(a)
	records, dead := DecodeRecords([]kafka.Message{{Value: v}, {Value: []byte(`{"delivery_id": 5}`)}})
	if len(records) != 1 || len(dead) != 1 {
		t.Fatalf("%d records, %d dead letters; want 1 and 1", len(records), len(dead))
	}
	r := records[0]
	if r.Attempt.DeliveryID != a.DeliveryID || r.Attempt.N != 1 || r.Attempt.RequestBody != "" || r.Attempt.ResponseBody != "" || string(r.JSON) != string(v) {
		t.Fatalf("record %+v, JSON %s", r.Attempt, r.JSON)
	}
	ctx := context.Background()
	var got []projections.Delivery
	for _, insert := range []func(*embedded.Store) error{
		func(s *embedded.Store) error { return s.InsertRecords(ctx, records) },
		func(s *embedded.Store) error { return s.InsertAttempts(ctx, []schemas.Attempt{a}) },
	} {
		s, err := embedded.Open(filepath.Join(t.TempDir(), "attempts.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := insert(s); err != nil {
			t.Fatal(err)
		}
		d, err := s.GetDelivery(ctx, a.Tenant, a.DeliveryID)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, d)
	}
	records0, attempts0 := fmt.Sprintf("%+v %+v", got[0], got[0].Request), fmt.Sprintf("%+v %+v", got[1], got[1].Request)
	if !reflect.DeepEqual(got[0], got[1]) || got[0].Request == nil || got[0].Request.Body != a.RequestBody || got[0].Attempts[0].ResponseBody != a.ResponseBody {
		t.Fatalf("stored from the record:\n%s\nfrom the attempt:\n%s", records0, attempts0)
	}
}

// TestProjectorStoresAttemptsOnceEach runs the stage against each store: a
// batch of attempts, some of them twice on the topic, lands once each, and
// after a restart of the stage nothing is lost or doubled.
func TestProjectorStoresAttemptsOnceEach(t *testing.T) {
	stores := map[string]func(t *testing.T) projections.Store{
		"embedded": func(t *testing.T) projections.Store {
			s, err := embedded.Open(filepath.Join(t.TempDir(), "attempts.db"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"clickhouse": func(t *testing.T) projections.Store {
			s, err := clickhouse.Open(t.Context(), storetest.ClickHouseDatabase(t))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			store := open(t)
			defer store.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			b, err := broker.Start(ctx, broker.Config{DataDir: t.TempDir(), Partitions: 2}, quiet)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()

			var msgs []kafka.Message
			for i := 0; i < 30; i++ {
				a := attempt(i, 1, schemas.StateSucceeded)
				v, _ := json.Marshal(a)
				msgs = append(msgs, kafka.Message{Key: []byte(a.DeliveryID), Value: v})
				if i%3 == 0 { // replayed: the same attempt twice
					msgs = append(msgs, kafka.Message{Key: []byte(a.DeliveryID), Value: v})
				}
			}
			msgs = append(msgs, kafka.Message{Key: []byte("bad"), Value: []byte("not an attempt")})
			w := b.Writer(schemas.TopicAttempts, nil)
			defer w.Close()
			if err := w.Write(ctx, msgs); err != nil {
				t.Fatal(err)
			}

			runStage := func(what string, done func() bool) {
				stageCtx, stop := context.WithCancel(ctx)
				exited := make(chan error, 1)
				go func() { exited <- NewStage(b, store, Config{}, quiet).Run(stageCtx) }()
				for deadline := time.Now().Add(30 * time.Second); !done(); time.Sleep(50 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("timed out waiting for %s", what)
					}
				}
				stop()
				if err := <-exited; err != nil {
					t.Fatal(err)
				}
			}
			runStage("30 deliveries", func() bool {
				page, err := store.ListDeliveries(ctx, projections.DeliveryQuery{Tenant: "t1", WebhookID: "w1", Limit: 100})
				return err == nil && len(page.Deliveries) == 30
			})
			// A second attempt of one delivery arrives after a restart.
			second := attempt(0, 2, schemas.StateFailed)
			second.StatusCode = 400
			v, _ := json.Marshal(second)
			if err := w.Write(ctx, []kafka.Message{{Key: []byte(second.DeliveryID), Value: v}}); err != nil {
				t.Fatal(err)
			}
			runStage("the second attempt", func() bool {
				d, err := store.GetDelivery(ctx, "t1", second.DeliveryID)
				return err == nil && len(d.Attempts) == 2
			})
			d, err := store.GetDelivery(ctx, "t1", second.DeliveryID)
			if err != nil {
				t.Fatal(err)
			}
			page, err := store.ListDeliveries(ctx, projections.DeliveryQuery{Tenant: "t1", WebhookID: "w1", Limit: 100})
			if err != nil || len(page.Deliveries) != 30 {
				t.Fatalf("after restart %d deliveries (err %v), want 30", len(page.Deliveries), err)
			}
			for _, d := range page.Deliveries {
				if d.ID != second.DeliveryID && d.AttemptCount != 1 {
					t.Fatalf("delivery %s has %d attempts, want 1: a replayed attempt shows twice", d.ID, d.AttemptCount)
				}
			}
			if len(d.Attempts) != 2 || d.State != schemas.StateFailed || d.LastStatusCode != 400 {
				t.Fatalf("delivery after restart = %+v", d)
			}
		})
	}
}

// TestProjectorGoesOnPastAnUndecodableRecordTooLargeToDeadLetter: a record
// that does not decode and, with its dead-letter headers, is over the size
// limit: it is dead-lettered without its value (too_large, counted), and
// the attempts around it are stored.
func TestProjectorGoesOnPastAnUndecodableRecordTooLargeToDeadLetter(t *testing.T) {
	store, err := embedded.Open(filepath.Join(t.TempDir(), "attempts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const limit = 8192
	b, err := broker.Start(ctx, broker.Config{DataDir: t.TempDir(), Partitions: 1, MaxMessageBytes: limit}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	before, _ := json.Marshal(attempt(1, 1, schemas.StateSucceeded))
	after, _ := json.Marshal(attempt(2, 1, schemas.StateSucceeded))
	junk := make([]byte, limit-100) // fits alone; not with the headers a dead letter adds
	for i := range junk {
		junk[i] = 'x'
	}
	w := b.Writer(schemas.TopicAttempts, nil)
	if err := w.Write(ctx, []kafka.Message{{Key: []byte("a"), Value: before}, {Key: []byte("junk"), Value: junk}, {Key: []byte("b"), Value: after}}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	stageCtx, stop := context.WithCancel(ctx)
	exited := make(chan error, 1)
	go func() { exited <- NewStage(b, store, Config{}, quiet).Run(stageCtx) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, err1 := store.GetDelivery(ctx, "t1", attempt(1, 1, "").DeliveryID)
		_, err2 := store.GetDelivery(ctx, "t1", attempt(2, 1, "").DeliveryID)
		if err1 == nil && err2 == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("attempts around the junk not stored: %v %v", err1, err2)
		}
	}
	stop()
	if err := <-exited; err != nil {
		t.Fatal(err)
	}
	r, err := b.PartitionReader(schemas.TopicDead, 0, kafka.FirstOffset)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	dead, err := r.FetchMessage(rctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(dead.Key) != "junk" || len(dead.Value) != 0 || broker.Header(dead, broker.HeaderTopic) != schemas.TopicDead ||
		!strings.HasPrefix(broker.Header(dead, broker.HeaderReason), broker.ReasonTooLarge) {
		t.Fatalf("dead letter %q %+v; want the junk's key, too_large, no value", dead.Key, dead.Headers)
	}
}
