package sender

import (
	"net/http"
	"strings"
)

// Masked replaces the value of a header that may hold a secret in an
// attempt record. It does not depend on the value, so it leaks no length.
const Masked = "****"

// sensitiveNameParts: a header whose lower-case name contains one of these
// may carry a credential or a signature.
var sensitiveNameParts = []string{
	"auth", // authorization, proxy-authorization, x-auth-token, ...
	"token",
	"secret",
	"key", // x-api-key, apikey, ...
	"password",
	"passwd",
	"cookie", // cookie, set-cookie
	"session",
	"credential",
	"signature", // webhook-signature, x-hookline-signature-256
	"csrf",
	"xsrf",
}

// maskHeader is the one place that decides what of a header an attempt may
// record: the value itself, or Masked.
func maskHeader(name, value string) string {
	lower := strings.ToLower(name)
	for _, part := range sensitiveNameParts {
		if strings.Contains(lower, part) {
			return Masked
		}
	}
	return value
}

// recordHeaders flattens headers for an attempt record, joining repeated
// values with ", " and masking secrets. It is used for requests and
// responses alike: a Set-Cookie answered by an endpoint is as much a
// credential as an Authorization sent to it.
func recordHeaders(h http.Header) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for name, values := range h {
		out[name] = maskHeader(name, strings.Join(values, ", "))
	}
	return out
}
