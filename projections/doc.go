// Package projections owns the read side of Hookline: the attempts store
// interface, the types it answers with, and the rules every store shares:
// how a delivery's state, attempts and next attempt derive from its
// records, attempts and pending marks (Derive), and how status codes fall
// into classes (StatusClass, StatusRange). Implementations live in
// sub-packages (clickhouse, embedded) and all pass the conformance suite in
// storetest.
//
// A store is a projection of hookline.attempts: it can be rebuilt by
// re-reading the topic, so it must accept the same attempt twice and keep one
// row. It must never be written to from anywhere but the projector.
package projections
