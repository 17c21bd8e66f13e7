// Package embedded is the on-disk attempts store of the embedded default
// (`hookline serve` with no ClickHouse): one bbolt file, pure Go, no server.
//
// It owns the file's layout (keys.go). Attempts are kept as they arrive,
// keyed so that a webhook's deliveries sort by id and a delivery's attempts
// by n; lists and details derive a delivery from its attempts with
// projections.Derive on every read. Stats cannot afford that (a million
// attempts do not decode in 100 ms), so each insert also keeps hourly
// aggregates, a day index for retention and, per delivery, its highest
// record's n and state, all in the same transaction as the attempts, and
// all rebuilt from the attempts when an older file is opened. A pending
// mark (n 0) is kept like an attempt, the later by At of two, and counts
// in its delivery's state but never as an attempt.
//
// It must never update the derived buckets outside the transaction that
// writes or deletes the attempts they derive from, never answer a page by
// loading every delivery of a webhook when filters do not need it, and
// never be opened by two processes at once (bbolt locks the file; Open waits
// a few seconds for the lock and then fails).
package embedded
