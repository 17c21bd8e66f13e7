// Package replay owns replays (SPEC §5): re-running matching over a stretch
// of hookline.events for some webhooks of one tenant, producing the jobs to
// hookline.deliveries again under new delivery ids that name the replay.
//
// A replay's state lives on the compacted hookline.replays topic, keyed by
// replay id, each message the whole state: what to replay, the stretch of
// every partition fixed when the replay was created, the checkpoint (the
// next offset of each partition) and the counters. The Manager rebuilds the
// state by reading the topic from its start, never changes it except by
// applying a message read back from the topic, and runs every replay the
// topic says is running, resuming from its checkpoint after a restart.
//
// Each replay runs on the stage runner (package stage) like every stage:
// its reader is the stretch of hookline.events (read_committed, so an
// aborted transaction is never replayed), its handler matches and emits
// jobs, and its commits are checkpoints: per partition the offset after
// the last event done, with the counters of exactly the events before it.
// The replays are a versioned table (package table).
//
// It must never touch normal traffic: it reads hookline.events with its own
// partition readers, outside any consumer group, and commits nothing to a
// group.
package replay
