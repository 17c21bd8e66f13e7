package matcher

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/hookline/hookline/schemas"
)

// Webhooks is the webhook state the matcher reads.
type Webhooks interface {
	// Webhooks returns a tenant's webhooks; the slice is not modified.
	Webhooks(tenant string) []schemas.Webhook
}

// Matcher turns one event into delivery jobs.
type Matcher struct {
	webhooks Webhooks
}

// New returns a matcher over the given webhook state.
func New(webhooks Webhooks) *Matcher {
	return &Matcher{webhooks: webhooks}
}

// Input is one event with the time the broker stored it. The time, not the
// wall clock, goes into delivery ids, so that reading the same message twice
// gives the same ids.
type Input struct {
	Event schemas.Event
	// Time is the message's Kafka timestamp.
	Time time.Time
}

// Process returns a job for every webhook the event matches; none means the
// event is filtered out.
func (m *Matcher) Process(_ context.Context, in Input) ([]schemas.Job, error) {
	ev := in.Event
	var jobs []schemas.Job
	hooks := m.webhooks.Webhooks(ev.Tenant)
	for i := range hooks {
		w := &hooks[i]
		if !Matches(w, &ev) {
			continue
		}
		job, err := newJob(w, &ev, in.Time)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, job)
	}
	return jobs, nil
}

// Matches reports whether a webhook wants an event.
func Matches(w *schemas.Webhook, ev *schemas.Event) bool {
	return w.Enabled &&
		w.Tenant == ev.Tenant &&
		(w.Identifier == "" || w.Identifier == ev.ResourceID) &&
		TypeMatches(w.Events, ev.Type)
}

func newJob(w *schemas.Webhook, ev *schemas.Event, at time.Time) (schemas.Job, error) {
	id := DeliveryID(at, ev.ID, w.ID, "")
	body, err := json.Marshal(schemas.Envelope{
		ID: id, EventID: ev.ID, EventType: ev.Type, EventTime: ev.OccurredAt.UTC(),
		Resource: ev.Resource, ResourceID: ev.ResourceID, WebhookID: w.ID,
		CurrentContext: ev.Context, Data: payloadData(ev),
	})
	if err != nil {
		return schemas.Job{}, fmt.Errorf("matcher: encode envelope: %w", err)
	}
	return schemas.Job{
		DeliveryID: id, WebhookID: w.ID, Tenant: w.Tenant,
		EventIDs: []string{ev.ID}, EventType: ev.Type, ResourceID: ev.ResourceID,
		CreatedAt: at.UTC().Truncate(time.Millisecond), Payload: body,
	}, nil
}

// payloadData is the data of the envelope: deletes carry none (SPEC §3).
func payloadData(ev *schemas.Event) json.RawMessage {
	if ev.Trigger == "delete" {
		return nil
	}
	return ev.Data
}

// DeliveryID derives a UUIDv7 from the time the event was stored and the
// (event, webhook, replay) triple: deterministic, so an event processed again
// after a crash yields the same delivery id (receivers and the store
// de-duplicate on it), and sortable by time, so history pages by id.
func DeliveryID(at time.Time, eventID, webhookID, replayID string) string {
	sum := sha256.Sum256([]byte(eventID + "\x00" + webhookID + "\x00" + replayID))
	var u uuid.UUID
	copy(u[6:], sum[:10])
	ms := uint64(at.UnixMilli())
	for i := 0; i < 6; i++ {
		u[i] = byte(ms >> (40 - 8*i))
	}
	u[6] = 0x70 | u[6]&0x0f // version 7
	u[8] = 0x80 | u[8]&0x3f // RFC 4122 variant
	return u.String()
}
