// Package projector owns the last stage: it reads delivery attempts from
// hookline.attempts and inserts them, in batches, into the attempts store
// that the query API reads.
//
// It commits an offset only after the batch holding it is durably stored, so
// a crash replays attempts instead of losing them; stores keep one row per
// (delivery id, n), so a replayed attempt never shows twice. It must never
// write to Kafka except dead letters for messages it cannot decode.
package projector
