// Package bench is the load generator behind `hookline bench`: it starts
// a fresh `hookline serve` per scenario, publishes events closed loop
// straight to Kafka (a window of outstanding jobs per endpoint) or open loop
// through the public API (a burst, or a fixed rate, never waiting for
// deliveries), receives the deliveries on its own endpoints, and prints
// throughput, latency, CPU, memory, put-offs, losses, duplicates and
// per-resource order swaps as one table.
//
// It owns the scenarios, the receiver, the recorder of what arrived and the
// /proc readings of the serve child; it must never be imported by the
// production stages, and it talks to serve only as a user does: its HTTP
// API (package client), Kafka and the receivers.
package bench
