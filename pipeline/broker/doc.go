// Package broker owns Hookline's connection to Kafka: it starts the embedded
// kfake broker when no cluster is configured, creates the topics of SPEC §1
// idempotently, learns the broker's message size limit, and hands out the
// one writer (Writer: hashed keys, acks=all, record batches cut at the size
// limit, every failure classified once by Retryable, a message too large
// replaced and never retried) and the one reader (Reader: franz-go's kgo
// with read_committed, transaction markers flagged by IsControl, never
// auto-committing) that every stage uses. Offsets and Tracker know which
// prefix of a partition is done and may be committed.
//
// It knows topics, not what flows on them: it must never decode a message.
package broker
