// Package delivery is the HTTP half of sending a webhook, usable without
// Kafka: it turns a delivery job into one HTTP request to the webhook's
// endpoint and the attempt record that says what happened (SPEC §4).
//
// It owns the outbound HTTP client and its connection pools, the request
// format (body encoding, headers, signatures through package signing),
// endpoint authentication (basic, bearer, API key, OAuth2 client
// credentials with a token cache), the guard against private targets
// (checked at connect time), the attempt record with its secrets masked,
// and the one function that decides what a response means (Classify).
//
// It must never follow a redirect (a 3xx is the endpoint's answer, recorded
// with its Location), never log or record a secret, a signature or a
// credential header in clear, never hold more of a response body than its
// cap, and never panic, whatever the job or the endpoint sends back. It
// knows nothing of retries, breakers, queues or topics: that is the
// sender stage's.
package delivery
