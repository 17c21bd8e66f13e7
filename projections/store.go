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
	// already stored (same delivery id and n) is kept once.
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
	// State keeps only deliveries whose current state is this one.
	State string
	// EventType keeps only deliveries of this event type.
	EventType string
	// Status keeps only deliveries whose last attempt's status code is
	// this one ("503") or in this class ("5xx"); "error" is no response.
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
// are set only by GetDelivery.
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
	// error for no response.
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

// Derive builds a delivery from its attempts, in any order and with
// duplicates: the attempt with the highest n decides the state. It returns
// false when there are none. withDetail adds the request and the attempts.
func Derive(attempts []schemas.Attempt, withDetail bool) (Delivery, bool) {
	if len(attempts) == 0 {
		return Delivery{}, false
	}
	// The same n twice is the same attempt made again after a crash, or
	// read again from the topic: the later one wins.
	sorted := make([]schemas.Attempt, 0, len(attempts))
	seen := make(map[int]int, len(attempts))
	for _, a := range attempts {
		if i, ok := seen[a.N]; !ok {
			seen[a.N] = len(sorted)
			sorted = append(sorted, a)
		} else if a.At.After(sorted[i].At) {
			sorted[i] = a
		}
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].N < sorted[j].N })
	first, last := sorted[0], sorted[len(sorted)-1]
	d := Delivery{
		ID: last.DeliveryID, WebhookID: last.WebhookID, EventIDs: last.EventIDs,
		EventType: last.EventType, State: last.State, AttemptCount: len(sorted),
		LastStatusCode: last.StatusCode, CreatedAt: first.DeliveryCreatedAt.UTC(),
		UpdatedAt: last.At.UTC(), RedeliveryOf: last.RedeliveryOf, ReplayID: last.ReplayID,
		URL: last.URL,
	}
	if !withDetail {
		return d, true
	}
	// Retries do not repeat the body: it is on the earliest attempt that
	// has one. The headers (signature, attempt number) are the last ones.
	d.Request = &Request{Headers: last.RequestHeaders, Body: last.RequestBody}
	for _, a := range sorted {
		if a.RequestBody != "" {
			d.Request.Body = a.RequestBody
			break
		}
	}
	for _, a := range sorted {
		d.Attempts = append(d.Attempts, AttemptView{
			N: a.N, At: a.At.UTC(), StatusCode: a.StatusCode, DurationMS: a.DurationMS,
			Error: a.Error, ResponseHeaders: a.ResponseHeaders, ResponseBody: a.ResponseBody,
		})
	}
	return d, true
}
