// Package bench is the load generator behind `hookline bench`: it starts
// a fresh `hookline serve` per scenario, publishes events open loop through
// the public API (or straight to Kafka), receives the deliveries on its own
// endpoints, and prints throughput, latency, CPU and memory as one table.
//
// It owns the scenarios, the receiver, the recorder of what arrived and the
// /proc readings of the serve child; it must never be imported by the
// production stages, and it talks to serve only as a user does: its HTTP
// API (package client), Kafka and the receivers.
package bench
