// Package api owns Hookline's HTTP API (SPEC §5): routing with gorilla/mux,
// bearer-token authentication that maps every request to one tenant, strict
// decoding and validation of request bodies, and the JSON shapes of answers
// and errors.
//
// It writes only by publishing: webhook changes go to hookline.subscriptions,
// input events to hookline.events, redeliveries to hookline.deliveries, and
// the failures of deliveries that waited on a webhook it disabled or
// deleted to hookline.attempts and hookline.dead (the records the sender
// writes for them), through the small interfaces declared in deps.go and
// unsent.go (Producer implements the Kafka ones with broker.Writer); it
// reads webhooks from a view of hookline.subscriptions and deliveries from
// the attempts store. It must never write to the attempts store, never
// query a database directly, never answer with one tenant's object to
// another tenant (that is a 404), never return or log a secret or a token,
// never accept a field it would ignore, and never publish part of a request
// that fails validation.
//
// With no tokens configured every request belongs to schemas.DefaultTenant
// and no token is checked; the caller (cmd) must then listen on loopback
// only.
package api
