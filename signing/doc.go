// Package signing signs Hookline deliveries and verifies them. The sender
// uses it to sign every request of a webhook that has a secret; customers'
// receivers use it to check that a request came from Hookline, unaltered and
// recently.
//
// Every signed delivery carries two signatures:
//
//	webhook-id:                the delivery id
//	webhook-timestamp:         unix seconds when the attempt was made
//	webhook-signature:         v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">
//	X-Hookline-Signature-256:  sha256=<hex HMAC-SHA256 of body>
//
// The first is the Standard Webhooks scheme (https://www.standardwebhooks.com)
// and binds the id and time, so a captured request cannot be replayed later;
// its HMAC key is the secret's UTF-8 bytes, except that a secret of the form
// whsec_<base64> uses the decoded bytes, as the Standard Webhooks libraries
// do. During a secret rotation it has one entry per valid secret. The second
// is the GitHub style, for receivers that already check that (such as
// @octokit/webhooks-methods verify(secret, body, signature)): its key is
// always the secret string's UTF-8 bytes, whsec_ prefix included. Verify
// accepts a request when either matches.
//
// A receiver verifies a request before it trusts the body:
//
//	func handle(w http.ResponseWriter, r *http.Request) {
//		body, err := signing.VerifyRequest(secret, r, signing.DefaultTolerance)
//		if err != nil {
//			http.Error(w, "bad signature", http.StatusUnauthorized)
//			return
//		}
//		// body is the exact payload Hookline sent; the webhook-id header
//		// is stable across retries and de-duplicates them.
//		w.WriteHeader(http.StatusNoContent)
//	}
//
// Signatures are compared in constant time. A body must be verified as the
// bytes that arrived: parsing and re-encoding it first breaks the signature.
//
// The package owns the signature formats and nothing else. It must never
// log, store or return a secret or a key, and it must never import the rest
// of Hookline: receivers depend on it alone.
package signing
