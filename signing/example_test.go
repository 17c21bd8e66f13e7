package signing_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/hookline/hookline/signing"
)

// A receiver checks every request before it trusts the body.
func ExampleVerifyRequest() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := signing.VerifyRequest(secret, r, signing.DefaultTolerance)
		if err != nil {
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		fmt.Printf("delivery %s: %s\n", r.Header.Get(signing.HeaderID), body)
		w.WriteHeader(http.StatusNoContent)
	})

	// What Hookline sends, built here so that the example runs alone.
	body := []byte(`{"id":"dlv_1","event_type":"ticket.created"}`)
	now := time.Now()
	std, github, _ := signing.Sign("dlv_1", now, body, secret)
	send := func(body []byte) int {
		r := httptest.NewRequest(http.MethodPost, "/webhooks/hookline", bytes.NewReader(body))
		r.Header.Set(signing.HeaderID, "dlv_1")
		r.Header.Set(signing.HeaderTimestamp, signing.Timestamp(now))
		r.Header.Set(signing.HeaderSignature, std)
		r.Header.Set(signing.HeaderSignature256, github)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		return w.Code
	}

	fmt.Println(send(body))
	fmt.Println(send([]byte(`{"id":"dlv_1","event_type":"ticket.deleted"}`)))
	// Output:
	// delivery dlv_1: {"id":"dlv_1","event_type":"ticket.created"}
	// 204
	// 401
}

func ExampleVerify() {
	ts := time.Unix(1_700_000_000, 0)
	body := []byte(`{"ok":true}`)
	std, github, _ := signing.Sign("dlv_42", ts, body, "my-secret")

	h := http.Header{}
	h.Set(signing.HeaderID, "dlv_42")
	h.Set(signing.HeaderTimestamp, signing.Timestamp(ts))
	h.Set(signing.HeaderSignature, std)
	h.Set(signing.HeaderSignature256, github)

	fmt.Println(signing.Verify("my-secret", h, body, ts.Add(time.Minute), time.Minute*5))
	fmt.Println(signing.Verify("my-secret", h, body, ts.Add(time.Hour), time.Minute*5))
	// Output:
	// <nil>
	// signing: timestamp outside tolerance: webhook-timestamp is 3600s from now, tolerance 5m0s
}
