package delivery

import (
	"net/http"
	"slices"
	"strings"

	"github.com/hookline/hookline/schemas"
	"github.com/hookline/hookline/signing"
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
	"signature", // x-signature and the like (not Hookline's own: shownHeaders)
	"csrf",
	"xsrf",
}

// shownHeaders are the signatures Hookline computes itself: recorded in
// clear, as GitHub's and Svix's delivery logs show them (an HMAC of the
// request does not reveal its key), so that a receiver's failed check can
// be compared. A custom header that merely looks like one stays masked.
var shownHeaders = map[string]bool{"webhook-signature": true, "x-hookline-signature-256": true}

// maskHeader is the one place that decides what of a header an attempt may
// record: the value itself, or Masked.
func maskHeader(name, value string) string {
	if shown, known := commonHeaders[name]; known {
		if shown {
			return value
		}
		return Masked
	}
	return maskHeaderByName(name, value)
}

func maskHeaderByName(name, value string) string {
	lower := strings.ToLower(name)
	if shownHeaders[lower] {
		return value
	}
	for _, part := range sensitiveNameParts {
		if strings.Contains(lower, part) {
			return Masked
		}
	}
	return value
}

// commonHeaders holds maskHeader's answer (shown or masked) for the names
// every attempt records, decided once: lowering and searching each name of
// every request and response cost about a microsecond a delivery.
var commonHeaders = func() map[string]bool {
	m := map[string]bool{}
	for _, name := range []string{
		// what newRequest sets
		"Content-Type", "User-Agent", "Authorization", signing.HeaderID, signing.HeaderTimestamp,
		signing.HeaderSignature, signing.HeaderSignature256, HeaderEvent, HeaderAttempt,
		// what most answers carry
		"Content-Length", "Date", "Server", "Connection", "Set-Cookie", "Cache-Control", "Content-Encoding",
		"Vary", "X-Request-Id", "Keep-Alive", "Transfer-Encoding",
	} {
		// http.Header keys are canonical: the map is looked up as given.
		name = http.CanonicalHeaderKey(name)
		m[name] = maskHeaderByName(name, "v") == "v"
	}
	return m
}()

// minScrubLen is the shortest credential that is looked for inside longer
// values and texts. Any credential is masked where it is a whole header
// value; shorter ones turn up by chance in ordinary text, and scrubbing
// them would garble records without protecting much.
const minScrubLen = 6

// masker is what an attempt record is filtered through. Besides the header
// names that hint at a secret (maskHeader), it knows the webhook's
// credentials by value: an api_key header can have any name, and an
// endpoint or token endpoint may echo a credential back. A nil masker masks
// by name only.
type masker struct {
	secrets []string
}

// newMasker knows the credentials of a; nil a means none.
func newMasker(a *schemas.Auth) *masker {
	m := &masker{}
	for _, s := range a.Secrets() {
		m.add(s)
	}
	return m
}

// add makes s a secret too: a credential derived while sending, such as a
// basic-auth encoding or an OAuth2 access token.
func (m *masker) add(s string) {
	if s != "" && !slices.Contains(m.secrets, s) {
		m.secrets = append(m.secrets, s)
		// Longest first, so that a secret containing another is replaced
		// whole.
		slices.SortFunc(m.secrets, func(a, b string) int { return len(b) - len(a) })
	}
}

// header is what an attempt may record of a header: its value, or Masked.
func (m *masker) header(name, value string) string {
	if v := maskHeader(name, value); v == Masked || m == nil {
		return v
	}
	for _, s := range m.secrets {
		if value == s || len(s) >= minScrubLen && strings.Contains(value, s) {
			return Masked
		}
	}
	return value
}

// text replaces every credential in s by Masked.
func (m *masker) text(s string) string {
	if m == nil {
		return s
	}
	for _, secret := range m.secrets {
		if len(secret) >= minScrubLen {
			s = strings.ReplaceAll(s, secret, Masked)
		}
	}
	return s
}

// record flattens headers for an attempt record, joining repeated values
// with ", " and masking secrets. It is used for requests and responses
// alike: a Set-Cookie answered by an endpoint is as much a credential as an
// Authorization sent to it.
func (m *masker) record(h http.Header) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for name, values := range h {
		out[name] = m.header(name, strings.Join(values, ", "))
	}
	return out
}
