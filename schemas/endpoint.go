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
	UpdatedAt    time.Time `json:"updated_at"`
	// Version grows by one with every change.
	Version int64 `json:"version"`
}
