package schemas

// Topic names (SPEC §1). Every stage reads and writes only these.
const (
	TopicEvents        = "hookline.events"
	TopicSubscriptions = "hookline.subscriptions"
	TopicDeliveries    = "hookline.deliveries"
	TopicAttempts      = "hookline.attempts"
	TopicDead          = "hookline.dead"
	// TopicEndpoints holds each endpoint's state as its sender sees it
	// (compacted, keyed by webhook id).
	TopicEndpoints = "hookline.endpoints"
	// TopicOverflow holds the jobs an endpoint has no room for in its
	// sender's memory, each due a fixed delay after it was written
	// (--max-queue-wait), keyed by webhook id.
	TopicOverflow = "hookline.overflow"
	// TopicRetryPrefix names the delayed retry topics (hookline.retry.<tier>).
	TopicRetryPrefix = "hookline.retry."
)

// TopicIdempotency holds the answers the API gave to requests sent with an
// Idempotency-Key (compacted, keyed by tenant, path and key), so that a
// retry gets the first answer from any API process and after a restart.
const TopicIdempotency = "hookline.idempotency"
