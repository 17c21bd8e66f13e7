package delivery

import (
	"errors"
	"net/http"

	"github.com/hookline/hookline/schemas"
)

// ErrInvalidRequest marks an attempt that could not be sent because the
// webhook or job cannot make a valid request (a URL that is not http or
// https, a malformed header, an unusable secret). Retrying cannot help.
var ErrInvalidRequest = errors.New("delivery: invalid request")

// Class is what an attempt's result means for its delivery.
type Class int

// The classes of an attempt (SPEC §4).
const (
	// Succeeded: the endpoint answered 2xx.
	Succeeded Class = iota + 1
	// Retryable: the endpoint may accept the same request later (408, 409,
	// 425, 429, 500, 502, 503, 504, a timeout, a connection error).
	Retryable
	// Permanent: sending the same request again will fail again (any other
	// status, a redirect, an invalid request, a forbidden target, rejected
	// client credentials).
	Permanent
)

func (c Class) String() string {
	switch c {
	case Succeeded:
		return "succeeded"
	case Retryable:
		return "retryable"
	case Permanent:
		return "permanent"
	}
	return "unknown"
}

// Outcome is the classification of one attempt.
type Outcome struct {
	Class Class
	// DisableWebhook is set on 410 Gone: the endpoint asks never to be
	// called again, so the webhook is to be disabled.
	DisableWebhook bool
}

// retryableStatus lists the statuses that SPEC §4 retries.
var retryableStatus = map[int]bool{
	http.StatusRequestTimeout:      true, // 408
	http.StatusConflict:            true, // 409
	http.StatusTooEarly:            true, // 425
	http.StatusTooManyRequests:     true, // 429
	http.StatusInternalServerError: true, // 500
	http.StatusBadGateway:          true, // 502
	http.StatusServiceUnavailable:  true, // 503
	http.StatusGatewayTimeout:      true, // 504
}

// Classify is the one place that decides what an attempt means. status is
// the response status, 0 when no response arrived; err is the error that
// prevented a response. A response decides on its own: an error met after
// it (reading its body) does not change what the endpoint answered.
func Classify(status int, err error) Outcome {
	if status == 0 {
		// A request that cannot be built, a target the guard refuses and
		// client credentials the token endpoint refuses stay so until the
		// webhook changes.
		if errors.Is(err, ErrInvalidRequest) || errors.Is(err, ErrForbiddenTarget) || errors.Is(err, ErrTokenRejected) {
			return Outcome{Class: Permanent}
		}
		// Timeouts, refused or reset connections, DNS and TLS failures,
		// token endpoint outages, and a cancelled context (shutdown is not
		// the endpoint's fault).
		return Outcome{Class: Retryable}
	}
	switch {
	case status >= 200 && status <= 299:
		return Outcome{Class: Succeeded}
	case status == http.StatusGone:
		return Outcome{Class: Permanent, DisableWebhook: true}
	case retryableStatus[status]:
		return Outcome{Class: Retryable}
	}
	return Outcome{Class: Permanent}
}

// stateFor is the delivery state an attempt leaves behind. Until retries
// exist every attempt is the last one, so anything short of success fails.
func stateFor(o Outcome) string {
	if o.Class == Succeeded {
		return schemas.StateSucceeded
	}
	return schemas.StateFailed
}
