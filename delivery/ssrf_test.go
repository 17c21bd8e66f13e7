package delivery

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hookline/hookline/schemas"
)

func TestCheckTarget(t *testing.T) {
	tests := []struct {
		name string
		addr string
		// reason is the refusal's reason; "" means the address is allowed.
		reason string
	}{
		{name: "IPv4 loopback", addr: "127.0.0.1", reason: "a loopback address"},
		{name: "anywhere in 127/8", addr: "127.1.2.3", reason: "a loopback address"},
		{name: "IPv6 loopback", addr: "::1", reason: "a loopback address"},
		{name: "RFC 1918 10/8", addr: "10.1.2.3", reason: "a private address"},
		{name: "RFC 1918 172.16/12 start", addr: "172.16.0.1", reason: "a private address"},
		{name: "RFC 1918 172.16/12 end", addr: "172.31.255.255", reason: "a private address"},
		{name: "RFC 1918 192.168/16", addr: "192.168.1.1", reason: "a private address"},
		{name: "IPv6 unique local", addr: "fd12:3456::1", reason: "a private address"},
		{name: "IPv6 unique local fc00", addr: "fc00::1", reason: "a private address"},
		{name: "AWS, GCP and Azure metadata", addr: "169.254.169.254", reason: "a cloud metadata address"},
		{name: "AWS IPv6 metadata", addr: "fd00:ec2::254", reason: "a cloud metadata address"},
		{name: "Alibaba metadata", addr: "100.100.100.200", reason: "a cloud metadata address"},
		{name: "IPv4 link-local", addr: "169.254.1.1", reason: "a link-local address"},
		{name: "IPv6 link-local", addr: "fe80::1", reason: "a link-local address"},
		{name: "IPv6 link-local with zone", addr: "fe80::1%eth0", reason: "a link-local address"},
		{name: "IPv4 unspecified", addr: "0.0.0.0", reason: "an unspecified address"},
		{name: "this network", addr: "0.1.2.3", reason: "an unspecified address"},
		{name: "IPv6 unspecified", addr: "::", reason: "an unspecified address"},
		{name: "CGNAT start", addr: "100.64.1.1", reason: "a carrier-grade NAT (shared) address"},
		{name: "CGNAT end", addr: "100.127.255.255", reason: "a carrier-grade NAT (shared) address"},
		{name: "IPv4 multicast", addr: "224.0.0.1", reason: "a multicast address"},
		{name: "IPv6 multicast", addr: "ff02::1", reason: "a multicast address"},
		{name: "limited broadcast", addr: "255.255.255.255", reason: "a broadcast or reserved address"},
		{name: "IPv4-mapped loopback", addr: "::ffff:127.0.0.1", reason: "a loopback address"},
		{name: "IPv4-mapped private", addr: "::ffff:10.0.0.1", reason: "a private address"},
		{name: "IPv4-mapped metadata", addr: "::ffff:169.254.169.254", reason: "a cloud metadata address"},
		{name: "IPv4-mapped unspecified", addr: "::ffff:0.0.0.0", reason: "an unspecified address"},
		{name: "IPv4-compatible loopback", addr: "::7f00:1", reason: "a reserved address"},
		{name: "NAT64 to loopback", addr: "64:ff9b::7f00:1", reason: "a loopback address"},
		{name: "NAT64 to private", addr: "64:ff9b::a00:1", reason: "a private address"},
		{name: "local-use NAT64", addr: "64:ff9b:1::808:808", reason: "a private address"},
		{name: "6to4 of a private address", addr: "2002:c0a8:101::1", reason: "a private address"},

		{name: "public IPv4", addr: "8.8.8.8"},
		{name: "public IPv4 1.1.1.1", addr: "1.1.1.1"},
		{name: "just below 172.16/12", addr: "172.15.255.255"},
		{name: "just above 172.16/12", addr: "172.32.0.1"},
		{name: "just above 192.168/16", addr: "192.169.0.1"},
		{name: "just above CGNAT", addr: "100.128.0.1"},
		{name: "just below CGNAT", addr: "100.63.255.255"},
		{name: "11/8", addr: "11.0.0.1"},
		{name: "public IPv6", addr: "2606:4700:4700::1111"},
		{name: "public IPv6 Google", addr: "2001:4860:4860::8888"},
		{name: "IPv4-mapped public", addr: "::ffff:8.8.8.8"},
		{name: "NAT64 to public", addr: "64:ff9b::808:808"},
		{name: "6to4 of a public address", addr: "2002:808:808::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckTarget(netip.MustParseAddr(tt.addr))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("CheckTarget(%s) = %v, want it allowed", tt.addr, err)
				}
				return
			}
			if !errors.Is(err, ErrForbiddenTarget) {
				t.Fatalf("CheckTarget(%s) = %v, want ErrForbiddenTarget", tt.addr, err)
			}
			want := "refused: " + tt.addr + " is " + tt.reason + "; start hookline with --allow-private-targets to allow private targets"
			if err.Error() != want {
				t.Errorf("error = %q\nwant      %q", err, want)
			}
		})
	}
}

func TestCheckTargetRefusesTheZeroAddr(t *testing.T) {
	if err := CheckTarget(netip.Addr{}); !errors.Is(err, ErrForbiddenTarget) {
		t.Errorf("CheckTarget(zero Addr) = %v, want ErrForbiddenTarget", err)
	}
}

func TestGuardControl(t *testing.T) {
	tests := []struct {
		address string
		allowed bool
	}{
		{address: "127.0.0.1:80"},
		{address: "[::1]:443"},
		{address: "[fe80::1%eth0]:80"},
		{address: "10.0.0.1:8080"},
		{address: "not-an-address"}, // fails closed
		{address: "93.184.215.14:443", allowed: true},
		{address: "[2606:4700:4700::1111]:443", allowed: true},
	}
	for _, tt := range tests {
		t.Run(tt.address, func(t *testing.T) {
			err := guardControl("tcp", tt.address, nil)
			if tt.allowed != (err == nil) || err != nil && !errors.Is(err, ErrForbiddenTarget) {
				t.Errorf("guardControl(%q) = %v, want allowed %v", tt.address, err, tt.allowed)
			}
		})
	}
}

// countingServer is an httptest endpoint on 127.0.0.1 that counts requests.
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestDeliverRefusesPrivateTargets(t *testing.T) {
	srv, received := countingServer(t)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// Only loopback targets: if the guard failed, no packet would leave
	// this host. Other ranges are covered by TestCheckTarget.
	tests := []struct {
		name, url, wantError string
	}{
		{name: "IPv4 loopback literal", url: srv.URL,
			wantError: "refused: 127.0.0.1 is a loopback address; start hookline with --allow-private-targets to allow private targets"},
		{name: "hostname resolving to loopback", url: "http://localhost:" + port, wantError: "is a loopback address"},
		{name: "IPv6 loopback literal", url: "http://[::1]:" + port, wantError: "refused: ::1 is a loopback address"},
		{name: "IPv4-mapped loopback", url: "http://[::ffff:127.0.0.1]:" + port, wantError: "is a loopback address"},
		{name: "unspecified address", url: "http://0.0.0.0:" + port, wantError: "refused: 0.0.0.0 is an unspecified address"},
	}
	d, err := NewDeliverer(Config{}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wh := schemas.Webhook{ID: "wh_1", URL: tt.url + "/hook", TimeoutMS: 5000}

			res := d.Send(context.Background(), wh, schemas.Job{DeliveryID: "dlv_1"})

			att := res.Attempt
			if !errors.Is(res.Err, ErrForbiddenTarget) || res.Outcome.Class != Permanent {
				t.Errorf("err %v outcome %v, want ErrForbiddenTarget, permanent", res.Err, res.Outcome)
			}
			if att.StatusCode != 0 || att.State != schemas.StateFailed || !strings.Contains(att.Error, tt.wantError) {
				t.Errorf("attempt status %d state %q error %q, want 0, failed, %q", att.StatusCode, att.State, att.Error, tt.wantError)
			}
			if strings.Contains(att.Error, "dial tcp") || strings.Contains(att.Error, "Post ") {
				t.Errorf("error %q carries the dialer's or client's prefix", att.Error)
			}
		})
	}
	if n := received.Load(); n != 0 {
		t.Errorf("the endpoint received %d requests", n)
	}
}

func TestAllowPrivateTargetsLetsLoopbackThrough(t *testing.T) {
	srv, received := countingServer(t)
	d, err := NewDeliverer(Config{AllowPrivateTargets: true}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	res := d.Send(context.Background(), schemas.Webhook{ID: "wh_1", URL: srv.URL}, schemas.Job{DeliveryID: "dlv_1"})

	if res.Attempt.StatusCode != http.StatusNoContent || res.Outcome.Class != Succeeded || received.Load() != 1 {
		t.Errorf("status %d outcome %v received %d, want 204, succeeded, 1 (error %q)",
			res.Attempt.StatusCode, res.Outcome, received.Load(), res.Attempt.Error)
	}
}
