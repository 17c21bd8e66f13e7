// Command hookline is the one binary of Hookline: `serve` runs any subset
// of the stages (api, matcher, sender, projector) with the embedded broker
// and store by default; `receive` is a demo receiver that verifies
// signatures; `bench` is the load generator (package bench); `deliveries`,
// `redeliver` and `replay` are the CLI over the HTTP API (package client).
//
// It owns flags and environment variables, wiring and supervision (one
// errgroup per serve, every goroutine waited for) and signals; it must
// never hold logic that a stage or the API owns.
package main
