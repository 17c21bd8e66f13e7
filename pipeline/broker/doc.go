// Package broker owns Hookline's connection to Kafka: it starts the embedded
// kfake broker when no cluster is configured, creates the topics of SPEC §1
// idempotently, hands out writers and readers configured the one way every
// stage needs (hashed keys, acks=all, low batching latency), and runs the
// consume loop that commits offsets only after a batch's output is durable.
//
// It knows topics, not what flows on them: it must never decode a message.
package broker
