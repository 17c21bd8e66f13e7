// Package sender is the delivery stage: on the stage runner it consumes
// hookline.deliveries and the retry topics, queues each job for its
// endpoint, makes one attempt through package delivery when the endpoint's
// rate limit and circuit breaker allow, and emits what follows: the attempt
// record, and a retry job on the tier the retry policy picks or a dead
// letter.
//
// It owns the per-endpoint queues and lanes (a resource's jobs in order),
// the retry schedule and policy, the breakers, and the webhook disabling
// that a 410 Gone asks for.
//
// It must never let one endpoint's slowness hold up another's request,
// never commit a job whose outcome is not on a topic, and never make an
// HTTP request itself: package delivery does.
package sender
