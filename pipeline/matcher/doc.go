// Package matcher owns the first stage: it reads input events from
// hookline.events, decides which webhooks each one goes to, shapes the
// payload, and produces one delivery job per (event, webhook) to
// hookline.deliveries. Input it cannot decode goes to hookline.dead.
//
// It must never make an HTTP request or wait on a customer: its only outputs
// are Kafka messages, and it commits an input offset only after every output
// of that input is acknowledged by the broker.
package matcher
