package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/hookline/hookline/delivery"
)

func TestClassify(t *testing.T) {
	connRefused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name   string
		status int
		err    error
		want   delivery.Outcome
	}{
		{name: "200 succeeds", status: 200, want: delivery.Outcome{Class: delivery.Succeeded}},
		{name: "201 succeeds", status: 201, want: delivery.Outcome{Class: delivery.Succeeded}},
		{name: "204 succeeds", status: 204, want: delivery.Outcome{Class: delivery.Succeeded}},
		{name: "299 succeeds", status: 299, want: delivery.Outcome{Class: delivery.Succeeded}},
		{name: "2xx with a body read error still succeeds", status: 200, err: context.DeadlineExceeded, want: delivery.Outcome{Class: delivery.Succeeded}},
		{name: "301 redirect is permanent", status: 301, want: delivery.Outcome{Class: delivery.Permanent}},
		{name: "302 redirect is permanent", status: 302, want: delivery.Outcome{Class: delivery.Permanent}},
		{name: "304 is permanent", status: 304, want: delivery.Outcome{Class: delivery.Permanent}},
		{name: "400 is permanent", status: 400, want: delivery.Outcome{Class: delivery.Permanent}},
		{name: "401 is permanent", status: 401, want: delivery.Outcome{Class: delivery.Permanent}},
		{name: "403 is permanent", status: 403, want: delivery.Outcome{Class: delivery.Permanent}},
		{name: "404 is permanent", status: 404, want: delivery.Outcome{Class: delivery.Permanent}},
		{name: "408 is retried", status: 408, want: delivery.Outcome{Class: delivery.Retryable}},
		{name: "409 is retried", status: 409, want: delivery.Outcome{Class: delivery.Retryable}},
		{name: "410 is permanent and disables the webhook", status: 410, want: delivery.Outcome{Class: delivery.Permanent, DisableWebhook: true}},
		{name: "413 is permanent", status: 413, want: delivery.Outcome{Class: delivery.Permanent}},
		{name: "422 is permanent", status: 422, want: delivery.Outcome{Class: delivery.Permanent}},
		{name: "425 is retried", status: 425, want: delivery.Outcome{Class: delivery.Retryable}},
		{name: "429 is retried", status: 429, want: delivery.Outcome{Class: delivery.Retryable}},
		{name: "500 is retried", status: 500, want: delivery.Outcome{Class: delivery.Retryable}},
		{name: "501 is permanent", status: 501, want: delivery.Outcome{Class: delivery.Permanent}},
		{name: "502 is retried", status: 502, want: delivery.Outcome{Class: delivery.Retryable}},
		{name: "503 is retried", status: 503, want: delivery.Outcome{Class: delivery.Retryable}},
		{name: "504 is retried", status: 504, want: delivery.Outcome{Class: delivery.Retryable}},
		{name: "505 is permanent", status: 505, want: delivery.Outcome{Class: delivery.Permanent}},
		{name: "nonstandard 599 is permanent", status: 599, want: delivery.Outcome{Class: delivery.Permanent}},
		{name: "1xx as final status is permanent", status: 101, want: delivery.Outcome{Class: delivery.Permanent}},
		{name: "timeout is retried", err: fmt.Errorf("post: %w", context.DeadlineExceeded), want: delivery.Outcome{Class: delivery.Retryable}},
		{name: "connection refused is retried", err: connRefused, want: delivery.Outcome{Class: delivery.Retryable}},
		{name: "DNS failure is retried", err: &net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}, want: delivery.Outcome{Class: delivery.Retryable}},
		{name: "cancelled by the caller is retried", err: context.Canceled, want: delivery.Outcome{Class: delivery.Retryable}},
		{name: "invalid request is permanent", err: fmt.Errorf("%w: bad url", delivery.ErrInvalidRequest), want: delivery.Outcome{Class: delivery.Permanent}},
		{name: "forbidden target is permanent", err: &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("%w: loopback", delivery.ErrForbiddenTarget)}, want: delivery.Outcome{Class: delivery.Permanent}},
		{name: "rejected client credentials are permanent", err: fmt.Errorf("oauth2: %w", delivery.ErrTokenRejected), want: delivery.Outcome{Class: delivery.Permanent}},
		{name: "unknown error without response is retried", err: errors.New("tls: handshake failure"), want: delivery.Outcome{Class: delivery.Retryable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := delivery.Classify(tt.status, tt.err); got != tt.want {
				t.Errorf("Classify(%d, %v) = %+v, want %+v", tt.status, tt.err, got, tt.want)
			}
		})
	}
}

func TestClassString(t *testing.T) {
	for c, want := range map[delivery.Class]string{
		delivery.Succeeded: "succeeded", delivery.Retryable: "retryable", delivery.Permanent: "permanent", 0: "unknown",
	} {
		if got := c.String(); got != want {
			t.Errorf("Class(%d).String() = %q, want %q", int(c), got, want)
		}
	}
}
