package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/client"
	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// writeAttempts produces attempt records on hookline.attempts of the
// broker at addr, as a sender does.
func writeAttempts(t *testing.T, addr string, attempts ...schemas.Attempt) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: schemas.TopicAttempts, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	msgs := make([]kafka.Message, len(attempts))
	for i, a := range attempts {
		v, err := json.Marshal(a)
		fatalIf(t, err)
		msgs[i] = kafka.Message{Key: []byte(a.DeliveryID), Value: v}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fatalIf(t, w.WriteMessages(ctx, msgs...))
}

// TestConsoleShowsWhenAWaitingDeliveryIsNextAttempted: a retrying delivery
// whose attempt says when the next is due shows "next attempt in …" in the
// webhook's deliveries and on its page, a finished one does not, and the
// text goes once the next attempt succeeds. The records are written to
// hookline.attempts as the sender writes them, so that the retry's due
// time is known to the test.
func TestConsoleShowsWhenAWaitingDeliveryIsNextAttempted(t *testing.T) {
	consoleTest(t)
	kafkaAddr := freeAddr(t)
	p := startServe(t, "--data-dir", t.TempDir(), "--kafka-addr", kafkaAddr)
	ctx := context.Background()
	api := p.api()
	hook, err := api.CreateWebhook(ctx, schemas.WebhookInput{Name: client.Ptr("waits"), URL: client.Ptr("https://receiver.example/hook"),
		Events: client.Ptr([]string{"ticket.created"})})
	fatalIf(t, err)

	now := time.Now().UTC().Truncate(time.Millisecond)
	attempt := func(n int, state string, status int) schemas.Attempt {
		return schemas.Attempt{WebhookID: hook.ID, Tenant: schemas.DefaultTenant, EventIDs: []string{"evt-1"},
			EventType: "ticket.created", N: n, State: state, At: now.Add(time.Duration(n) * time.Second), DeliveryCreatedAt: now,
			StatusCode: status, DurationMS: 40, URL: "https://receiver.example/hook",
			RequestHeaders: map[string]string{"Content-Type": "application/json"}, RequestBody: `{"id":"evt-1"}`}
	}
	done := attempt(1, schemas.StateSucceeded, 200)
	done.DeliveryID = uuid.Must(uuid.NewV7()).String()
	retry := attempt(1, schemas.StateRetrying, 503)
	retry.DeliveryID = uuid.Must(uuid.NewV7()).String()
	due := now.Add(10 * time.Minute)
	retry.NextAttemptAt = &due
	writeAttempts(t, kafkaAddr, done, retry)
	var d projections.Delivery
	waitFor(t, "both deliveries in the API", 30*time.Second, func() bool {
		var err error
		_, errDone := api.Delivery(ctx, done.DeliveryID)
		d, err = api.Delivery(ctx, retry.DeliveryID)
		return err == nil && errDone == nil
	})
	if d.State != schemas.StateRetrying || d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(due) {
		t.Fatalf("the retrying delivery in the API: %+v; want retrying with next_attempt_at %s", d, due)
	}

	b := newConsoleBrowser(t, p.base)
	b.open("/webhooks/"+hook.ID, "webhook")
	row := fmt.Sprintf(`table#deliveries tbody tr[data-id=%q]`, retry.DeliveryID)
	b.waitJS("the retrying delivery's next attempt in its row", fmt.Sprintf(
		`(e => !!e && /^next attempt in (9|10) minutes$/.test(e.textContent))(document.querySelector(%s))`, js(row+" .next-attempt")), consoleDeliveryWait)
	if n := b.count(fmt.Sprintf(`table#deliveries tbody tr[data-id=%q] .next-attempt`, done.DeliveryID)); n != 0 {
		b.fatalf("the succeeded delivery's row shows a next attempt")
	}

	b.open("/deliveries/"+retry.DeliveryID, "delivery")
	if got := b.text("#delivery-summary .next-attempt"); got != "next attempt in 10 minutes" && got != "next attempt in 9 minutes" {
		b.fatalf("the delivery page shows %q, want next attempt in 10 minutes", got)
	}
	if n := b.count("section.attempt"); n != 1 {
		b.fatalf("the delivery page shows %d attempts, want 1", n)
	}

	// The retry succeeds: the open page follows, and the text goes.
	ok := attempt(2, schemas.StateSucceeded, 200)
	ok.DeliveryID = retry.DeliveryID
	writeAttempts(t, kafkaAddr, ok)
	b.waitJS("the delivery page to show the success", `document.querySelectorAll("section.attempt").length === 2`, consoleDeliveryWait)
	if n := b.count("#delivery-summary .next-attempt"); n != 0 {
		b.fatalf("the succeeded delivery's page still shows %q", b.text("#delivery-summary .next-attempt"))
	}
}
