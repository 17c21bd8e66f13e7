package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/client"
	"github.com/hookline/hookline/schemas"
)

// TestADayOldHourOfEventsIsDeliveredToASlowEndpointBesideABusyOne: an hour
// of events from a day ago (their Kafka timestamps, as a replay or a
// backlog after an outage carries them) reaches an endpoint that answers
// in 150 ms one request at a time, beside one kept busy by fresh events,
// under a retry schedule of 3 s in all and a 1 s queue wait, so that the
// slow endpoint's jobs are put off again and again for far longer than the
// schedule: every event is delivered to both, none fails, none is sent
// twice. (Before, a job put off for room longer than the retry schedule
// failed without a request.) The events are produced with kgo, as an
// external producer writes hookline.events.
func TestADayOldHourOfEventsIsDeliveredToASlowEndpointBesideABusyOne(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	type receiver struct {
		mu  sync.Mutex
		ids map[string]int
		n   atomic.Int64
	}
	serveReceiver := func(delay time.Duration) (*receiver, *httptest.Server) {
		r := &receiver{ids: map[string]int{}}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			time.Sleep(delay)
			r.mu.Lock()
			r.ids[req.Header.Get("webhook-id")]++
			r.mu.Unlock()
			r.n.Add(1)
		}))
		t.Cleanup(srv.Close)
		return r, srv
	}
	slow, slowSrv := serveReceiver(150 * time.Millisecond)
	busy, busySrv := serveReceiver(0)

	kafkaAddr := freeAddr(t)
	p := startServe(t, "--data-dir", t.TempDir(), "--kafka-addr", kafkaAddr,
		"--retry-schedule", "1s,2s", "--max-queue-wait", "1s")
	defer p.stop(t)
	slowHook := createHook(t, p, schemas.WebhookInput{Name: client.Ptr("slow"), URL: client.Ptr(slowSrv.URL),
		Events: client.Ptr([]string{"ticket.*"}), MaxConcurrency: client.Ptr(1)})
	busyHook := createHook(t, p, schemas.WebhookInput{Name: client.Ptr("busy"), URL: client.Ptr(busySrv.URL),
		Events: client.Ptr([]string{"ticket.*", "order.*"})})

	// The hour, a day ago: 120 events, 30 s apart, over 40 tickets.
	const old = 120
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.DefaultProduceTopic(schemas.TopicEvents))
	fatalIf(t, err)
	defer cl.Close()
	hourAgo := time.Now().Add(-25 * time.Hour).UTC()
	var recs []*kgo.Record
	for i := range old {
		at := hourAgo.Add(time.Duration(i) * 30 * time.Second)
		ev := schemas.Event{ID: fmt.Sprint("old-", i), Type: "ticket.updated", Resource: "ticket", Trigger: "update",
			ResourceID: fmt.Sprint("T-", i%40), OccurredAt: at, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
		v, err := json.Marshal(ev)
		fatalIf(t, err)
		recs = append(recs, &kgo.Record{Key: []byte(ev.ResourceID), Value: v, Timestamp: at})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fatalIf(t, cl.ProduceSync(ctx, recs...).FirstErr())

	// Meanwhile the busy endpoint takes fresh events, 100 a second.
	stop := make(chan struct{})
	var fresh atomic.Int64
	go func() {
		for tick := time.NewTicker(100 * time.Millisecond); ; {
			select {
			case <-stop:
				tick.Stop()
				return
			case <-tick.C:
			}
			evs := make([]schemas.Event, 10)
			for i := range evs {
				evs[i] = schemas.Event{Resource: "order", Trigger: "paid", ResourceID: fmt.Sprint("O-", fresh.Add(1))}
			}
			if _, err := p.api().PublishEvents(context.Background(), evs...); err != nil {
				t.Errorf("publishing fresh events: %v", err)
				return
			}
		}
	}()

	waitFor(t, "every day-old event at the slow endpoint", 90*time.Second, func() bool {
		slow.mu.Lock()
		defer slow.mu.Unlock()
		return len(slow.ids) >= old
	})
	close(stop)
	waitFor(t, "every event at the busy endpoint", 60*time.Second, func() bool {
		busy.mu.Lock()
		defer busy.mu.Unlock()
		return len(busy.ids) >= old+int(fresh.Load())
	})

	slow.mu.Lock()
	if int(slow.n.Load()) != len(slow.ids) {
		t.Errorf("the slow endpoint got %d requests for %d deliveries: some were sent twice", slow.n.Load(), len(slow.ids))
	}
	slow.mu.Unlock()
	since := hourAgo.Add(-time.Hour)
	for _, h := range []schemas.PublicWebhook{slowHook, busyHook} {
		if failed := deliveriesOf(t, p, h.ID, client.DeliveryQuery{State: schemas.StateFailed, Since: since}).Data; len(failed) > 0 {
			t.Errorf("%s: %d deliveries failed, the first %s (%d attempts)", h.Name, len(failed), failed[0].ID, failed[0].AttemptCount)
		}
	}
	waitFor(t, "the slow endpoint's day-old deliveries succeeded in the history", 30*time.Second, func() bool {
		n, cursor := 0, ""
		for {
			page, err := p.api().Deliveries(context.Background(), slowHook.ID,
				client.DeliveryQuery{State: schemas.StateSucceeded, Since: since, Until: hourAgo.Add(2 * time.Hour), Limit: 500, Cursor: cursor})
			fatalIf(t, err)
			n += len(page.Data)
			if cursor = page.NextCursor; cursor == "" {
				return n == old
			}
		}
	})
}
