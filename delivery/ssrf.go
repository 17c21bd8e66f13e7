package delivery

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// ErrForbiddenTarget marks an attempt refused because the endpoint (or the
// OAuth2 token endpoint) resolved to a loopback, private, link-local or
// otherwise internal address (SPEC §4). Retrying cannot help: the address
// is checked again at every connect, so only a change of the webhook's URL
// or of its DNS can.
var ErrForbiddenTarget = errors.New("delivery: forbidden target address")

// forbiddenError says which address was refused and why. Its text goes into
// the attempt record as it is, so it also tells the operator the way out.
type forbiddenError struct {
	addr   string
	reason string
}

func (e *forbiddenError) Error() string {
	return fmt.Sprintf("refused: %s is %s; start hookline with --allow-private-targets to allow private targets", e.addr, e.reason)
}

func (e *forbiddenError) Unwrap() error { return ErrForbiddenTarget }

// metadataAddrs are the instance-metadata services of the big clouds (AWS,
// GCP and Azure on 169.254.169.254, AWS over IPv6, Alibaba). They hand out
// credentials to whoever asks from inside, which is what an SSRF is after,
// so they are named as such rather than as the ranges they fall in.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"),
	netip.MustParseAddr("fd00:ec2::254"),
	netip.MustParseAddr("100.100.100.200"),
}

// forbiddenPrefixes are the ranges that reach the sender's own host or
// network rather than the internet. Order matters: the first match names
// the reason.
var forbiddenPrefixes = []struct {
	prefix netip.Prefix
	reason string
}{
	// 0.0.0.0/8 is "this network"; Linux connects 0.0.0.0 to the local host.
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a carrier-grade NAT (shared) address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	// 240.0.0.0/4 holds the limited broadcast 255.255.255.255.
	{netip.MustParsePrefix("240.0.0.0/4"), "a broadcast or reserved address"},
	{netip.MustParsePrefix("::/128"), "an unspecified address"},
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	// IPv4-compatible addresses (::a.b.c.d) are deprecated; nothing public
	// lives there.
	{netip.MustParsePrefix("::/96"), "a reserved address"},
	{netip.MustParsePrefix("fc00::/7"), "a private address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	// Site-local addresses are deprecated but still private where used.
	{netip.MustParsePrefix("fec0::/10"), "a private address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	// Local-use NAT64 (RFC 8215) translates into a private network.
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a private address"},
}

// Prefixes whose IPv6 addresses carry an IPv4 address that a gateway
// connects to: the well-known NAT64 prefix (in the last 32 bits) and 6to4
// (in bits 16 to 48). The IPv4 address inside is what is checked.
var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// CheckTarget reports whether a delivery may connect to addr: nil for a
// public address, an error wrapping ErrForbiddenTarget for a loopback,
// private, link-local, unspecified, CGNAT, multicast, broadcast or
// cloud-metadata one, in IPv4, IPv6 or IPv4-in-IPv6 form. The sender calls
// it on every resolved address it dials unless AllowPrivateTargets is set;
// it is exported so that a webhook's URL can be checked at registration
// too.
func CheckTarget(addr netip.Addr) error {
	if reason := forbiddenReason(addr); reason != "" {
		return &forbiddenError{addr: addr.String(), reason: reason}
	}
	return nil
}

// forbiddenReason is why addr is refused, "" when it is not.
func forbiddenReason(addr netip.Addr) string {
	if !addr.IsValid() {
		return "not a valid address"
	}
	a := embeddedIPv4(addr.WithZone("").Unmap())
	for _, m := range metadataAddrs {
		if a == m {
			return "a cloud metadata address"
		}
	}
	for _, f := range forbiddenPrefixes {
		if f.prefix.Contains(a) {
			return f.reason
		}
	}
	return ""
}

// embeddedIPv4 returns the IPv4 address a NAT64 or 6to4 address leads to,
// and any other address as it is.
func embeddedIPv4(a netip.Addr) netip.Addr {
	b := a.As16()
	switch {
	case !a.Is6():
		return a
	case nat64Prefix.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16]))
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6]))
	}
	return a
}

// guardControl is the dialer's Control hook: it runs after DNS, on the very
// address about to be connected, for every connection (the endpoint's and
// the token endpoint's alike). Checking here rather than on the URL is what
// defeats a hostname that resolves to 127.0.0.1 and DNS rebinding.
func guardControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Fail closed: an address the guard cannot read is not dialled.
		return &forbiddenError{addr: address, reason: "not an address the guard can check"}
	}
	return CheckTarget(ap.Addr())
}
