// Package schemas holds Hookline's wire contracts: the Go types of every
// message that crosses a Kafka topic or the HTTP API, the JSON Schema files
// that describe them to other languages, and the SQL DDL of the attempts
// store.
//
// It owns decoding and validating input events. It must never import a stage
// or talk to a broker: every other package depends on it, never the reverse.
package schemas
