package schemas

import (
	"errors"
	"time"
)

// Answer is one message on hookline.idempotency: the answer the API gave to
// a POST sent with an Idempotency-Key, kept for a retry of it.
type Answer struct {
	// Key is the tenant, the request's path and the Idempotency-Key,
	// separated by NUL bytes.
	Key    string              `json:"key"`
	Status int                 `json:"status"`
	Header map[string][]string `json:"header,omitempty"`
	Body   []byte              `json:"body,omitempty"`
	// Request is the SHA-256 of the request's body: the key names one
	// request, and another body with it is refused.
	Request []byte    `json:"request"`
	At      time.Time `json:"at"`
}

// Validate checks what a reader of the topic relies on.
func (a *Answer) Validate() error {
	switch {
	case a.Key == "":
		return errors.New("answer: no key")
	case a.Status < 100 || a.Status > 599:
		return errors.New("answer: no HTTP status")
	case len(a.Request) != 32:
		return errors.New("answer: no request digest")
	case a.At.IsZero():
		return errors.New("answer: no time")
	}
	return nil
}
