package projections

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/hookline/hookline/schemas"
)

// ErrNotFound is returned for a delivery that does not exist in the asked
// tenant.
var ErrNotFound = errors.New("not found")

// Record is an attempt with the JSON it came in as (a value of
// hookline.attempts). Its Attempt may lack the request and response bodies
// and headers: they are in JSON.
type Record struct {
	Attempt schemas.Attempt
	JSON    []byte
}

// RecordStore is a store that keeps attempts as their records' JSON, so
// that the projector need not decode their bodies nor the store encode
// them again (the embedded store).
type RecordStore interface {
	// InsertRecords is InsertAttempts for records.
	InsertRecords(ctx context.Context, records []Record) error
}

// Store is the attempts store. Every method is safe for concurrent use.
type Store interface {
	// InsertAttempts stores a batch durably before returning nil. An attempt
	// already stored (same delivery id and n) is kept once; of two that
	// differ (two pending marks), reads answer the later by At. Records
	// with n 0 are pending marks (schemas.Attempt), not attempts.
	InsertAttempts(ctx context.Context, attempts []schemas.Attempt) error
	// ListDeliveries answers one page of a webhook's deliveries, newest
	// first (by delivery id, which grows with creation time).
	ListDeliveries(ctx context.Context, q DeliveryQuery) (DeliveryPage, error)
	// GetDelivery returns one delivery with its request and every attempt,
	// or ErrNotFound.
	GetDelivery(ctx context.Context, tenant, id string) (Delivery, error)
	// Stats aggregates a webhook's deliveries created since a time.
	Stats(ctx context.Context, q StatsQuery) (Stats, error)
	// DropBefore removes the attempts made before t (retention), a whole
	// day at a time: it may keep a little more than asked, never less.
	DropBefore(ctx context.Context, t time.Time) error
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	Close() error
}

// DeliveryQuery selects deliveries of one webhook.
type DeliveryQuery struct {
	Tenant    string
	WebhookID string
	// State keeps only deliveries whose current state is this one (as
	// Derive has it: pending finds those with a pending mark alone).
	State string
	// EventType keeps only deliveries of this event type.
	EventType string
	// Status keeps only deliveries whose last attempt's status code is
	// this one ("503") or in this class ("5xx"); "error" is no response.
	// A delivery with no attempt yet (a pending mark alone) matches none.
	Status string
	// Since and Until bound the delivery's creation time: Since <= t < Until.
	// A zero time leaves that side open.
	Since, Until time.Time
	// Limit is the page size, 1 to 500.
	Limit int
	// Cursor is the NextCursor of the previous page: only deliveries with an
	// id lower than it are returned, so new deliveries never shift a page.
	Cursor string
}

// DeliveryPage is one page of deliveries.
type DeliveryPage struct {
	Deliveries []Delivery
	// NextCursor is empty on the last page.
	NextCursor string
}

// Delivery is a delivery as the API shows it (SPEC §5). Request and Attempts
// are set only by GetDelivery. NextAttemptAt is set only while it waits
// (pending or retrying) and its sender said until when (see Derive).
type Delivery struct {
	ID             string        `json:"id"`
	WebhookID      string        `json:"webhook_id"`
	EventIDs       []string      `json:"event_ids"`
	EventType      string        `json:"event_type"`
	State          string        `json:"state"`
	AttemptCount   int           `json:"attempt_count"`
	LastStatusCode int           `json:"last_status_code"`
	CreatedAt      time.Time     `json:"created_at"`
	UpdatedAt      time.Time     `json:"updated_at"`
	NextAttemptAt  *time.Time    `json:"next_attempt_at,omitempty"`
	RedeliveryOf   string        `json:"redelivery_of,omitempty"`
	ReplayID       string        `json:"replay_id,omitempty"`
	URL            string        `json:"url,omitempty"`
	Request        *Request      `json:"request,omitempty"`
	Attempts       []AttemptView `json:"attempts,omitempty"`
}

// StatsQuery selects the deliveries a Stats call aggregates.
type StatsQuery struct {
	Tenant    string
	WebhookID string
	// Since and Until bound the delivery's creation time, Since <= t <
	// Until; a zero bound is open. A store may round both down to the hour
	// (the embedded one keeps hourly aggregates).
	Since, Until time.Time
}

// Stats summarises a webhook's deliveries (SPEC §5).
type Stats struct {
	// Deliveries counts deliveries by their current state.
	Deliveries map[string]int64 `json:"deliveries"`
	// Attempts counts attempts by status class: 2xx, 3xx, 4xx, 5xx, and
	// error for no response. A pending mark is no attempt: it counts
	// nowhere but in its delivery's state.
	Attempts map[string]int64 `json:"attempts"`
	// SuccessRate is succeeded / (succeeded + failed) deliveries, 0 to 1;
	// 0 when none has finished.
	SuccessRate float64 `json:"success_rate"`
	// LatencyMS are percentiles of the attempts' durations, over attempts
	// that got a response.
	LatencyMS Percentiles `json:"latency_ms"`
}

// Percentiles of a latency distribution, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// Request is what was sent, secrets masked.
type Request struct {
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// AttemptView is one attempt in a delivery's detail.
type AttemptView struct {
	N               int               `json:"n"`
	At              time.Time         `json:"at"`
	StatusCode      int               `json:"status_code"`
	DurationMS      int64             `json:"duration_ms"`
	Error           string            `json:"error,omitempty"`
	ResponseHeaders map[string]string `json:"response_headers,omitempty"`
	ResponseBody    string            `json:"response_body,omitempty"`
}

// Waiting reports whether a delivery in state waits for an attempt, and so
// may have a next_attempt_at.
func Waiting(state string) bool {
	return state == schemas.StatePending || state == schemas.StateRetrying
}

// Derive builds a delivery from its records, in any order and with
// duplicates. It returns false when there are none. withDetail adds the
// request and the attempts.
//
// A delivery's records are its attempts (n 1 and up) and at most one
// pending mark (n 0, the latest written: see schemas.Attempt). Its state is
// that of its record with the highest n: a mark alone makes it pending,
// and a mark after attempts changes nothing but next_attempt_at. Only
// attempts count and show as attempts. updated_at is the time of its
// latest record: the later of its highest attempt and its mark (attempts
// are made in order of n, so the highest is the latest), and
// next_attempt_at, while it waits, is that record's. The detail's request
// body is the earliest record's that has one, a mark's included.
func Derive(records []schemas.Attempt, withDetail bool) (Delivery, bool) {
	if len(records) == 0 {
		return Delivery{}, false
	}
	// The same n twice is the same attempt made again after a crash, or
	// read again from the topic, or a newer mark: the later one wins.
	sorted := make([]schemas.Attempt, 0, len(records))
	seen := make(map[int]int, len(records))
	for _, a := range records {
		if i, ok := seen[a.N]; !ok {
			seen[a.N] = len(sorted)
			sorted = append(sorted, a)
		} else if a.At.After(sorted[i].At) {
			sorted[i] = a
		}
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].N < sorted[j].N })
	first, last := sorted[0], sorted[len(sorted)-1]
	attempts := sorted
	var mark *schemas.Attempt
	if first.N == 0 {
		mark, attempts = &sorted[0], sorted[1:]
	}
	d := Delivery{
		ID: last.DeliveryID, WebhookID: last.WebhookID, EventIDs: last.EventIDs,
		EventType: last.EventType, State: last.State, AttemptCount: len(attempts),
		LastStatusCode: last.StatusCode, CreatedAt: first.DeliveryCreatedAt.UTC(),
		RedeliveryOf: last.RedeliveryOf, ReplayID: last.ReplayID, URL: last.URL,
	}
	d.UpdatedAt, d.NextAttemptAt = Latest(last, mark, d.State)
	if !withDetail {
		return d, true
	}
	// Retries do not repeat the body: it is on the earliest record that
	// has one. The headers (signature, attempt number) are the last ones.
	d.Request = &Request{Headers: last.RequestHeaders, Body: last.RequestBody}
	for _, a := range sorted {
		if a.RequestBody != "" {
			d.Request.Body = a.RequestBody
			break
		}
	}
	for _, a := range attempts {
		d.Attempts = append(d.Attempts, AttemptView{
			N: a.N, At: a.At.UTC(), StatusCode: a.StatusCode, DurationMS: a.DurationMS,
			Error: a.Error, ResponseHeaders: a.ResponseHeaders, ResponseBody: a.ResponseBody,
		})
	}
	return d, true
}

// Latest answers a delivery's updated_at and next_attempt_at from its
// record with the highest n and its mark (nil when it has none, or when
// the highest is the mark): the later of the two by at decides, the
// highest on a tie. next_attempt_at is nil unless state waits.
func Latest(highest schemas.Attempt, mark *schemas.Attempt, state string) (time.Time, *time.Time) {
	latest := &highest
	if mark != nil && mark.At.After(highest.At) {
		latest = mark
	}
	var next *time.Time
	if Waiting(state) && latest.NextAttemptAt != nil {
		t := latest.NextAttemptAt.UTC()
		next = &t
	}
	return latest.At.UTC(), next
}
