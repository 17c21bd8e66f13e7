// Package embedded is the on-disk attempts store of the embedded default
// (`hookline serve` with no ClickHouse): one bbolt file, pure Go, no server.
//
// It owns the file's layout. Attempts are kept as they arrive, keyed so that
// a webhook's deliveries sort by id and a delivery's attempts by n; a
// delivery's state is derived on every read with projections.Derive and is
// never stored. It must never keep a second copy of a delivery's state,
// never answer a page by loading every delivery of a webhook when filters do
// not need it, and never be opened by two processes at once (bbolt locks the
// file; Open waits a few seconds for the lock and then fails).
package embedded
