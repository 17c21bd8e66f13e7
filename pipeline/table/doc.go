// Package table is state kept as events: a versioned table folded from a
// compacted topic, where the last message of a key is that row's state.
// Every process reads the whole topic from its start (outside any
// consumer group) and folds it; writers change a row with a
// compare-and-set on its version, so that no change is ever lost to
// another made at the same time, in this process or another. The webhook
// registry (hookline.subscriptions) and the replay manager
// (hookline.replays) are the two tables.
//
// It owns the fold and the write path; it must never decide what a row
// means (the codec and the owner's hook do).
package table
