// Package client is a typed client of Hookline's HTTP API (SPEC §5), for
// the CLI, the load generator, the end-to-end tests and any Go program.
// Requests and answers are the API's own types (package schemas and
// projections); an error answer is an *Error with the API's code, message
// and field.
//
// It owns the wire details of calling the API (paths, query strings,
// bearer token, error decoding); it must never hold state between calls
// beyond the connection pool.
package client
