// Package sender is the delivery stage: it turns a delivery job into an HTTP
// request to the webhook's endpoint and the attempt record that says what
// happened (SPEC §4).
//
// It owns the outbound HTTP client and its connection pools, the request
// format (body encoding, headers, signatures through package signing), the
// attempt record with its secrets masked, and the one function that decides
// what a response means (Classify).
//
// Deliverer makes one attempt and reports it; the consumer loop around it
// decides what to publish and when to commit. Retries, the per-endpoint
// circuit breaker and the private-address guard build on Deliverer and
// Classify rather than beside them.
//
// It must never follow a redirect (a 3xx is the endpoint's answer, recorded
// with its Location), never log or record a secret, a signature or a
// credential header in clear, never hold more of a response body than its
// cap, never let one endpoint's slowness hold up another's request, and
// never panic, whatever the job or the endpoint sends back.
package sender
