package schemas

import (
	"encoding/json"
	"time"
)

// Delivery states (SPEC §4).
const (
	StatePending   = "pending"
	StateSucceeded = "succeeded"
	StateRetrying  = "retrying"
	StateFailed    = "failed"
)

// Job is one delivery to make, on hookline.deliveries keyed by webhook id so
// that one endpoint's jobs stay on one partition, in order.
type Job struct {
	DeliveryID string    `json:"delivery_id"`
	WebhookID  string    `json:"webhook_id"`
	Tenant     string    `json:"tenant"`
	EventIDs   []string  `json:"event_ids"`
	EventType  string    `json:"event_type"`
	ResourceID string    `json:"resource_id,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	// Payload is the request body in JSON: one envelope, or an array of them
	// for a batch. The sender form-encodes it when the webhook asks.
	Payload json.RawMessage `json:"payload"`
	// Attempts counts the attempts already made (0 for a new delivery).
	Attempts int `json:"attempts"`
	// Deferrals counts the times the job was put off without a request,
	// because the endpoint's circuit was open or its queue full. They do
	// not count against the webhook's retries.
	Deferrals int `json:"deferrals,omitempty"`
	// DueAt is when a waiting job may be sent again: after a failure, an
	// open circuit or a Retry-After. A wait longer than the delay of the
	// topic it is on goes on from a shorter one when it comes back.
	DueAt time.Time `json:"due_at,omitempty"`
	// Reason says why a job is on a retry topic or hookline.overflow:
	// RetryAfterFailure, RetryCircuitOpen or RetryEndpointBusy.
	Reason string `json:"reason,omitempty"`
	// Queue is the job's place in its endpoint's queue while it waits on
	// hookline.overflow for room: it comes back to that queue in order.
	Queue        *QueuePlace `json:"queue,omitempty"`
	RedeliveryOf string      `json:"redelivery_of,omitempty"`
	ReplayID     string      `json:"replay_id,omitempty"`
	// Test marks a test delivery a person asked for (POST
	// /v1/webhooks/{id}/test): it goes out even to a disabled webhook, and
	// through an open circuit as its probe.
	Test bool `json:"test,omitempty"`
}

// QueuePlace is where a job stood in its endpoint's queue when the sender
// moved it to hookline.overflow: the sender session (one run of one
// process) and the job's arrival sequence there. Another session treats
// the job as new.
type QueuePlace struct {
	Session string `json:"session"`
	Seq     uint64 `json:"seq"`
	// Pos is its place among its endpoint's jobs: how far back it is.
	Pos uint64 `json:"pos,omitempty"`
}

// LaneKey is what keeps a job's order: its resource's jobs go out one
// after another. A job without a resource (a redelivery, a batch of several
// resources) is its own lane.
func (j *Job) LaneKey() string {
	if j.ResourceID != "" {
		return j.ResourceID
	}
	return j.DeliveryID
}

// PingEventType is the event type of a test delivery.
const PingEventType = "hookline.ping"

// Reasons a job waits on a retry topic.
const (
	RetryAfterFailure = "failure"
	RetryCircuitOpen  = "circuit_open"
	RetryEndpointBusy = "endpoint_busy"
)

// Envelope is the body of a delivery of one event (SPEC §4).
type Envelope struct {
	ID             string          `json:"id"`
	EventID        string          `json:"event_id"`
	EventType      string          `json:"event_type"`
	EventTime      time.Time       `json:"event_time"`
	Resource       string          `json:"resource"`
	ResourceID     string          `json:"resource_id"`
	WebhookID      string          `json:"webhook_id"`
	CurrentContext json.RawMessage `json:"current_context,omitempty"`
	Data           json.RawMessage `json:"data,omitempty"`
	// Changes are an update's changed fields, {"field": {"old", "new"}},
	// unless the webhook's include_changes is false.
	Changes json.RawMessage `json:"changes,omitempty"`
}

// Attempt is one HTTP attempt of a delivery, on hookline.attempts keyed by
// delivery id. It is self-contained: a store can answer every question about
// a delivery from its attempts alone. Secrets in RequestHeaders are masked
// before the record is produced.
type Attempt struct {
	DeliveryID string   `json:"delivery_id"`
	WebhookID  string   `json:"webhook_id"`
	Tenant     string   `json:"tenant"`
	EventIDs   []string `json:"event_ids"`
	EventType  string   `json:"event_type"`
	// N numbers the attempts of one delivery from 1. (DeliveryID, N) is
	// unique: a store keeps one row for it however often it is replayed.
	// N 0 is no attempt but a mark that the delivery waits without one
	// (State pending: for room at its endpoint, or for its circuit);
	// NextAttemptAt says until when. A delivery's attempts are those with
	// N of 1 and more.
	N int `json:"n"`
	// State is the delivery's state after this attempt.
	State             string            `json:"state"`
	At                time.Time         `json:"at"`
	DeliveryCreatedAt time.Time         `json:"delivery_created_at"`
	StatusCode        int               `json:"status_code"`
	DurationMS        int64             `json:"duration_ms"`
	Error             string            `json:"error,omitempty"`
	URL               string            `json:"url"`
	RequestHeaders    map[string]string `json:"request_headers"`
	RequestBody       string            `json:"request_body"`
	ResponseHeaders   map[string]string `json:"response_headers,omitempty"`
	ResponseBody      string            `json:"response_body,omitempty"`
	RedeliveryOf      string            `json:"redelivery_of,omitempty"`
	ReplayID          string            `json:"replay_id,omitempty"`
	// NextAttemptAt is, for a delivery that waits (State retrying or
	// pending), when its next attempt is due at the earliest.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
}

// DeadLetter is one message on hookline.dead: an input that could not be
// processed, or a delivery that failed for good, with the reason.
type DeadLetter struct {
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	// Source is the topic, partition and offset the message came from.
	Topic     string `json:"topic,omitempty"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key,omitempty"`
	// Value is the original message when it could not be decoded.
	Value string `json:"value,omitempty"`
	// Job and LastAttempt are set for a delivery that failed for good.
	Job         *Job     `json:"job,omitempty"`
	LastAttempt *Attempt `json:"last_attempt,omitempty"`
}
