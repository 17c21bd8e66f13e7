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
	// TopicRetryPrefix names the delayed retry topics (hookline.retry.<tier>).
	TopicRetryPrefix = "hookline.retry."
)
