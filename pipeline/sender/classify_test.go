package sender_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/hookline/hookline/pipeline/sender"
)

func TestClassify(t *testing.T) {
	connRefused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name   string
		status int
		err    error
		want   sender.Outcome
	}{
		{name: "200 succeeds", status: 200, want: sender.Outcome{Class: sender.Succeeded}},
		{name: "201 succeeds", status: 201, want: sender.Outcome{Class: sender.Succeeded}},
		{name: "204 succeeds", status: 204, want: sender.Outcome{Class: sender.Succeeded}},
		{name: "299 succeeds", status: 299, want: sender.Outcome{Class: sender.Succeeded}},
		{name: "2xx with a body read error still succeeds", status: 200, err: context.DeadlineExceeded, want: sender.Outcome{Class: sender.Succeeded}},
		{name: "301 redirect is permanent", status: 301, want: sender.Outcome{Class: sender.Permanent}},
		{name: "302 redirect is permanent", status: 302, want: sender.Outcome{Class: sender.Permanent}},
		{name: "304 is permanent", status: 304, want: sender.Outcome{Class: sender.Permanent}},
		{name: "400 is permanent", status: 400, want: sender.Outcome{Class: sender.Permanent}},
		{name: "401 is permanent", status: 401, want: sender.Outcome{Class: sender.Permanent}},
		{name: "403 is permanent", status: 403, want: sender.Outcome{Class: sender.Permanent}},
		{name: "404 is permanent", status: 404, want: sender.Outcome{Class: sender.Permanent}},
		{name: "408 is retried", status: 408, want: sender.Outcome{Class: sender.Retryable}},
		{name: "409 is retried", status: 409, want: sender.Outcome{Class: sender.Retryable}},
		{name: "410 is permanent and disables the webhook", status: 410, want: sender.Outcome{Class: sender.Permanent, DisableWebhook: true}},
		{name: "413 is permanent", status: 413, want: sender.Outcome{Class: sender.Permanent}},
		{name: "422 is permanent", status: 422, want: sender.Outcome{Class: sender.Permanent}},
		{name: "425 is retried", status: 425, want: sender.Outcome{Class: sender.Retryable}},
		{name: "429 is retried", status: 429, want: sender.Outcome{Class: sender.Retryable}},
		{name: "500 is retried", status: 500, want: sender.Outcome{Class: sender.Retryable}},
		{name: "501 is permanent", status: 501, want: sender.Outcome{Class: sender.Permanent}},
		{name: "502 is retried", status: 502, want: sender.Outcome{Class: sender.Retryable}},
		{name: "503 is retried", status: 503, want: sender.Outcome{Class: sender.Retryable}},
		{name: "504 is retried", status: 504, want: sender.Outcome{Class: sender.Retryable}},
		{name: "505 is permanent", status: 505, want: sender.Outcome{Class: sender.Permanent}},
		{name: "nonstandard 599 is permanent", status: 599, want: sender.Outcome{Class: sender.Permanent}},
		{name: "1xx as final status is permanent", status: 101, want: sender.Outcome{Class: sender.Permanent}},
		{name: "timeout is retried", err: fmt.Errorf("post: %w", context.DeadlineExceeded), want: sender.Outcome{Class: sender.Retryable}},
		{name: "connection refused is retried", err: connRefused, want: sender.Outcome{Class: sender.Retryable}},
		{name: "DNS failure is retried", err: &net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}, want: sender.Outcome{Class: sender.Retryable}},
		{name: "cancelled by the caller is retried", err: context.Canceled, want: sender.Outcome{Class: sender.Retryable}},
		{name: "invalid request is permanent", err: fmt.Errorf("%w: bad url", sender.ErrInvalidRequest), want: sender.Outcome{Class: sender.Permanent}},
		{name: "forbidden target is permanent", err: &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("%w: loopback", sender.ErrForbiddenTarget)}, want: sender.Outcome{Class: sender.Permanent}},
		{name: "rejected client credentials are permanent", err: fmt.Errorf("oauth2: %w", sender.ErrTokenRejected), want: sender.Outcome{Class: sender.Permanent}},
		{name: "unknown error without response is retried", err: errors.New("tls: handshake failure"), want: sender.Outcome{Class: sender.Retryable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sender.Classify(tt.status, tt.err); got != tt.want {
				t.Errorf("Classify(%d, %v) = %+v, want %+v", tt.status, tt.err, got, tt.want)
			}
		})
	}
}

func TestClassString(t *testing.T) {
	for c, want := range map[sender.Class]string{
		sender.Succeeded: "succeeded", sender.Retryable: "retryable", sender.Permanent: "permanent", 0: "unknown",
	} {
		if got := c.String(); got != want {
			t.Errorf("Class(%d).String() = %q, want %q", int(c), got, want)
		}
	}
}
