package matcher

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	fastjson "github.com/segmentio/encoding/json"

	"github.com/google/uuid"

	"github.com/hookline/hookline/condition"
	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/schemas"
)

// Webhooks is the webhook state the matcher reads.
type Webhooks interface {
	// Webhooks returns a tenant's webhooks. The slice is never modified:
	// a change gives a new slice.
	Webhooks(tenant string) []schemas.Webhook
}

// Matcher turns one event into delivery jobs.
type Matcher struct {
	idx *index
	// OnConditionError, if set, is called when a condition fails at run
	// time on an event (a missing field, a wrong type): the webhook does
	// not match, and the caller counts it.
	OnConditionError func(webhookID string, err error)
}

// New returns a matcher over the given webhook state.
func New(webhooks Webhooks) *Matcher {
	return &Matcher{idx: newIndex(webhooks)}
}

// Input is one event with the time the broker stored it. The time, not the
// wall clock, goes into delivery ids, so that reading the same message twice
// gives the same ids.
type Input struct {
	Event schemas.Event
	// Time is the message's Kafka timestamp: the job's created_at (its
	// delivery id comes from the event's occurred_at).
	Time time.Time
}

// Match is one webhook an event goes to: its job, and the batching the
// webhook asks for (nil: deliver alone).
type Match struct {
	Job      schemas.Job
	Envelope schemas.Envelope
	Batching *schemas.Batching
	// Err is set when the payload could not be shaped for this webhook;
	// Job is then empty.
	Err error
}

// Process returns a job for every webhook the event matches, unbatched;
// none means the event is filtered out.
func (m *Matcher) Process(ctx context.Context, in Input) ([]schemas.Job, error) {
	var jobs []schemas.Job
	for _, mt := range m.Matches(in) {
		if mt.Err != nil {
			return nil, mt.Err
		}
		jobs = append(jobs, mt.Job)
	}
	return jobs, nil
}

// Matches finds every webhook an event goes to, directly or through a
// related resource, each once.
func (m *Matcher) Matches(in Input) []Match {
	ev := &in.Event
	ti := m.idx.forTenant(ev.Tenant)
	var out []Match
	var env condition.Env
	take := func(e *entry, relatedID string) {
		if relatedID == "" && e.w.Identifier != "" && e.w.Identifier != ev.ResourceID ||
			relatedID != "" && (!e.w.IncludeRelated || e.w.Identifier != "" && e.w.Identifier != relatedID) ||
			e.broken || matched(out, e.w.ID) {
			return
		}
		if e.cond != nil {
			if env == nil {
				env = eventEnv(ev)
			}
			ok, err := e.cond.Match(env)
			if err != nil && m.OnConditionError != nil {
				m.OnConditionError(e.w.ID, err)
			}
			if !ok {
				return
			}
		}
		out = append(out, newMatch(e.w, ev, in.Time))
	}
	ti.candidates(ev.Type, ev.Resource, func(e *entry) { take(e, "") })
	if ti.related {
		for _, res := range PropagatesTo(ev.Resource, ev.Trigger) {
			for _, rel := range ev.Related {
				if rel.Resource == res {
					ti.candidates(schemas.TypeFor(res, ev.Trigger), res, func(e *entry) { take(e, rel.ID) })
				}
			}
		}
	}
	return out
}

func matched(out []Match, webhookID string) bool {
	for i := range out {
		if out[i].Job.WebhookID == webhookID || out[i].Err != nil && out[i].Envelope.WebhookID == webhookID {
			return true
		}
	}
	return false
}

// eventEnv is what a condition sees: the event's JSON objects decoded once
// per event, for all its webhooks.
func eventEnv(ev *schemas.Event) condition.Env {
	related := make([]any, len(ev.Related))
	for i, r := range ev.Related {
		related[i] = map[string]any{"resource": r.Resource, "id": r.ID}
	}
	return condition.Env{
		"data": decodeObject(ev.Data), "changes": decodeObject(ev.Changes), "context": decodeObject(ev.Context),
		"type": ev.Type, "resource": ev.Resource, "trigger": ev.Trigger, "resource_id": ev.ResourceID,
		"tenant": ev.Tenant, "related": related,
	}
}

func decodeObject(raw json.RawMessage) any {
	if len(raw) == 0 {
		return map[string]any{}
	}
	var v any
	if fastjson.Unmarshal(raw, &v) != nil {
		return map[string]any{}
	}
	return v
}

// newMatch builds the job of one (event, webhook): its delivery id, its
// shaped payload, one envelope as the body. The delivery id's time is the
// event's occurred_at (the time it was stored when it had none), not the
// time it was stored: the same event published twice (a producer's retry
// after a timeout, through the API or straight to the topic) gives each
// webhook the same delivery id, which its receiver de-duplicates on
// (webhook-id), however far apart the two were published. So history,
// newest first by id, lists deliveries by their event's time. Batches
// (their first event's stored time) and replays (their own id) are new
// deliveries and keep ids of their own.
func newMatch(w *schemas.Webhook, ev *schemas.Event, at time.Time) Match {
	env := schemas.Envelope{
		ID: DeliveryID(ev.OccurredAt, ev.ID, w.ID, ""), EventID: ev.ID, EventType: ev.Type, EventTime: ev.OccurredAt.UTC(),
		Resource: ev.Resource, ResourceID: ev.ResourceID, WebhookID: w.ID, CurrentContext: ev.Context,
	}
	data, err := payload.Data(ev.Trigger, ev.Data, ev.Changes, payload.Options{Fields: w.Fields, IncludeAllFields: w.AllFields()})
	if err != nil {
		return Match{Envelope: env, Err: fmt.Errorf("shaping the payload for webhook %s: %w", w.ID, err)}
	}
	env.Data = payload.SelectValues(data, w.SelectValues)
	if ev.Trigger == payload.TriggerUpdate && w.Changes() {
		env.Changes = payload.SelectValues(payload.Changes(ev.Changes, w.Fields), w.SelectValues)
	}
	body := appendEnvelope(make([]byte, 0, 256+len(env.Data)+len(env.Changes)+len(ev.Context)), &env)
	return Match{
		Envelope: env, Batching: w.Batching,
		Job: schemas.Job{
			DeliveryID: env.ID, WebhookID: w.ID, Tenant: w.Tenant,
			EventIDs: []string{ev.ID}, EventType: ev.Type, ResourceID: ev.ResourceID,
			CreatedAt: at.UTC().Truncate(time.Millisecond), Payload: body,
		},
	}
}

// DeliveryID derives a UUIDv7 from a time of the event and the
// (event, webhook, replay) triple: deterministic, so an event processed again
// after a crash yields the same delivery id (receivers and the store
// de-duplicate on it), and sortable by time, so history pages by id.
func DeliveryID(at time.Time, eventID, webhookID, replayID string) string {
	sum := sha256.Sum256([]byte(eventID + "\x00" + webhookID + "\x00" + replayID))
	var u uuid.UUID
	copy(u[6:], sum[:10])
	ms := uint64(min(max(at.UnixMilli(), 0), 1<<48-1))
	for i := 0; i < 6; i++ {
		u[i] = byte(ms >> (40 - 8*i))
	}
	u[6] = 0x70 | u[6]&0x0f // version 7
	// (ms was clamped to the 48 bits a UUIDv7 holds: an occurred_at before
	// 1970 is 1970, one past the year 10889 is then.)
	u[8] = 0x80 | u[8]&0x3f // RFC 4122 variant
	return u.String()
}
