// Package stage is the one runner every stage runs on: fetch (never
// auto-commit) → the stage's Handler → its outputs through one Outbox
// writer (broker.Writer: byte-capped, classified errors) → mark the input
// done → commit, per partition, the longest prefix of done inputs.
//
// It owns the consume loops, the in-flight bound, the outbox goroutine,
// the committers and the two-step stop: the soft stop (the context of Run
// is cancelled: no more fetching) and the hard stop (DrainTimeout later:
// in-flight work is abandoned and read again by the next run). Handlers
// get the hard-stop context as an argument; nothing keeps a context in a
// field.
//
// It must never commit an input whose outputs are not acknowledged, never
// decode a message (that is the handler's), and never retry a handler's
// batch past the hard stop or skip it before.
package stage
