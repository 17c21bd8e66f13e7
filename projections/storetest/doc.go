// Package storetest is the conformance suite of projections.Store: every
// implementation runs Run from its own tests and passes all of it, so that
// the API behaves the same on the embedded store and on ClickHouse.
//
// It owns the behaviour a store promises (deduplication, state from the
// highest attempt, tenant and webhook isolation, filters, stable cursors,
// durability across a reopen, stats that count each attempt once,
// retention by whole days) and the one rule for finding a test
// ClickHouse server (ClickHouseDSN). It must never be imported by
// non-test code, and never depends on any implementation.
package storetest
