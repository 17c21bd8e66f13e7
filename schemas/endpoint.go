package schemas

import "time"

// EndpointState is a webhook endpoint's state as the sender that owns it
// sees it, on hookline.endpoints (compacted, keyed by webhook id): what a
// sender taking the endpoint over, after a crash or a rebalance, goes on
// from.
type EndpointState struct {
	WebhookID string `json:"webhook_id"`
	// FailingSince is the time of the first failed attempt after the last
	// one that succeeded; zero when the last attempt succeeded. A webhook
	// failing for --disable-after is disabled.
	FailingSince time.Time `json:"failing_since,omitzero"`
	// Breaker is the endpoint's circuit breaker: closed, open or
	// half-open.
	Breaker string `json:"breaker_state,omitempty"`
	// ConcurrencyLimit is the requests at once the sender allows the
	// endpoint now (it adapts up to the webhook's max_concurrency).
	ConcurrencyLimit int       `json:"concurrency_limit,omitempty"`
	UpdatedAt        time.Time `json:"updated_at"`
	// Version grows by one with every change.
	Version int64 `json:"version"`
}
