package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// Webhooks is the API's view of hookline.subscriptions.
type Webhooks interface {
	// Webhook returns the tenant's webhook with that id.
	Webhook(tenant, id string) (schemas.Webhook, bool)
	// Webhooks returns every webhook of the tenant, sorted by id ascending.
	Webhooks(tenant string) []schemas.Webhook
	// PublishWebhook writes a new webhook (version 1) durably to the topic;
	// when it returns nil the webhook is visible to Webhook and Webhooks.
	PublishWebhook(ctx context.Context, ev schemas.WebhookEvent) error
	// ChangeWebhook makes change to the tenant's webhook as it is now and
	// publishes the result as the next version, making it again on the new
	// state when another writer came first, so no change is lost. change
	// returning schemas.ErrUnchanged publishes nothing; another error of
	// change is returned as it is; schemas.ErrWebhookNotFound for another
	// tenant's or a missing webhook; an error wrapping
	// schemas.ErrVersionConflict when the webhook kept changing.
	ChangeWebhook(ctx context.Context, tenant, id string, change func(*schemas.WebhookEvent) error) (schemas.Webhook, error)
}

// Events publishes input events to hookline.events.
type Events interface {
	// PublishEvents writes every event durably, or returns an error. An
	// event that no write could take (over the broker's message size
	// limit) is an *EventTooLargeError, returned before anything is
	// written.
	PublishEvents(ctx context.Context, evs []schemas.Event) error
}

// EventTooLargeError: event Index of a publish is Size bytes encoded, over
// the broker's limit of Limit bytes. Nothing of the publish was written.
type EventTooLargeError struct{ Index, Size, Limit int }

func (e *EventTooLargeError) Error() string {
	return fmt.Sprintf("event %d is %d bytes encoded, over the limit of %d", e.Index, e.Size, e.Limit)
}

// Deliveries is the read side of the attempts store.
type Deliveries interface {
	ListDeliveries(ctx context.Context, q projections.DeliveryQuery) (projections.DeliveryPage, error)
	// GetDelivery returns projections.ErrNotFound for a delivery that is not
	// the tenant's.
	GetDelivery(ctx context.Context, tenant, id string) (projections.Delivery, error)
	// Stats aggregates a webhook's deliveries.
	Stats(ctx context.Context, q projections.StatsQuery) (projections.Stats, error)
}

// Breakers reports an endpoint's circuit breaker state (closed, open,
// half-open) from the sender running in this process.
type Breakers interface {
	State(webhookID string) string
}

// Check is one readiness check, such as "broker reachable". It returns nil
// when the dependency is ready.
type Check func(ctx context.Context) error

// Shown is a check's error that /readyz may show, not only log: it says
// what is wrong (the webhooks a process cannot read) and holds no secret.
// Other errors are logged and named "failing" (a DSN may hold a password).
type Shown struct{ Err error }

func (e Shown) Error() string { return e.Err.Error() }
func (e Shown) Unwrap() error { return e.Err }

// AnswerStore keeps the answers to POSTs sent with an Idempotency-Key
// where every API process, and this one after a restart, finds them
// (Answers, on hookline.idempotency).
type AnswerStore interface {
	// Answer returns the answer kept for key within its window.
	Answer(ctx context.Context, key string) (schemas.Answer, bool, error)
	// Keep writes an answer; a key answered already keeps its first.
	Keep(ctx context.Context, a schemas.Answer) error
}

// Deps are what the API needs from the rest of Hookline.
type Deps struct {
	Webhooks   Webhooks   // required
	Events     Events     // required
	Deliveries Deliveries // required
	Jobs       Jobs       // required: redeliveries go there
	// Checks are the named readiness checks of GET /readyz; none means
	// always ready.
	Checks map[string]Check
	// Metrics serves GET /metrics; nil answers 501 until metrics exist.
	Metrics http.Handler
	// Replays serves /v1/replays; nil answers 501 there.
	Replays Replays
	// Failures, when set, fails the waiting deliveries of a webhook that
	// the API disables or deletes, in the background (see sweeper); nil
	// leaves them to the sender, which fails each as it comes back.
	Failures Failures
	// Answers keeps Idempotency-Key answers beyond this process; nil keeps
	// them in this process's memory only.
	Answers AnswerStore
	// Breakers adds breaker_state (and concurrency_limit, if it has a
	// Limit(webhookID) int method) to every webhook; nil leaves them out.
	Breakers Breakers
	// Now is the clock; default time.Now.
	Now func() time.Time
	// NewID makes webhook and event ids; default a UUIDv7 string, so ids
	// grow with creation time.
	NewID func() string
}

func (d *Deps) setDefaults() {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.NewID == nil {
		d.NewID = schemas.NewID
	}
	checks := make(map[string]Check, len(d.Checks))
	for name, c := range d.Checks {
		checks[name] = c
	}
	d.Checks = checks
}

func (d *Deps) validate() error {
	switch {
	case d.Webhooks == nil:
		return errors.New("api: Deps.Webhooks is required")
	case d.Events == nil:
		return errors.New("api: Deps.Events is required")
	case d.Deliveries == nil:
		return errors.New("api: Deps.Deliveries is required")
	case d.Jobs == nil:
		return errors.New("api: Deps.Jobs is required")
	}
	for name, c := range d.Checks {
		if name == "" || c == nil {
			return errors.New("api: every readiness check needs a name and a function")
		}
	}
	return nil
}
