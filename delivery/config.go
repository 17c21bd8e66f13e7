package delivery

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/hookline/hookline/schemas"
)

// Config tunes the sender's HTTP delivery. The zero value is usable: every
// zero field takes the default its comment states.
type Config struct {
	// UserAgentVersion is <version> in "User-Agent: hookline/<version>".
	// Default "dev".
	UserAgentVersion string
	// MaxResponseBody is how many bytes of a response body an attempt keeps.
	// Default 64 KiB.
	MaxResponseBody int
	// MaxDrain is how many further bytes of a response body are read and
	// discarded so that the connection can be reused; a longer body closes
	// the connection instead. Default 256 KiB.
	MaxDrain int
	// DefaultTimeout bounds an attempt of a webhook without timeout_ms.
	// Default 10s (schemas.DefaultTimeoutMS).
	DefaultTimeout time.Duration
	// MaxTimeout caps any webhook's timeout_ms. Default 120s
	// (schemas.MaxTimeoutMS).
	MaxTimeout time.Duration

	// The fields below tune the shared transport that NewDeliverer builds
	// when it is given no client.

	// DialTimeout bounds a TCP connect. Default 10s.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds a TLS handshake. Default 10s.
	TLSHandshakeTimeout time.Duration
	// IdleConnTimeout closes a pooled connection idle this long. Default 90s.
	IdleConnTimeout time.Duration
	// MaxIdleConns caps idle connections over all endpoints. Default 1024.
	MaxIdleConns int
	// MaxIdleConnsPerHost caps idle connections kept per endpoint host.
	// Default 32.
	MaxIdleConnsPerHost int
	// AllowPrivateTargets lets deliveries (and OAuth2 token requests)
	// connect to loopback, private, link-local and other internal
	// addresses, which are refused otherwise (see CheckTarget) so that a
	// webhook cannot be used to reach the sender's own network. Default
	// false; meant for development and tests, or for a deployment whose
	// endpoints are all internal. A client given to NewDeliverer is not
	// guarded either way.
	AllowPrivateTargets bool
}

// Defaults of Config (see its fields).
const (
	DefaultUserAgentVersion    = "dev"
	DefaultMaxResponseBody     = 64 << 10
	DefaultMaxDrain            = 256 << 10
	DefaultTimeout             = schemas.DefaultTimeoutMS * time.Millisecond
	DefaultMaxTimeout          = schemas.MaxTimeoutMS * time.Millisecond
	DefaultDialTimeout         = 10 * time.Second
	DefaultTLSHandshakeTimeout = 10 * time.Second
	DefaultIdleConnTimeout     = 90 * time.Second
	DefaultMaxIdleConns        = 1024
	DefaultMaxIdleConnsPerHost = 32
)

// WithDefaults returns the config with every unset field at its default.
func (c Config) WithDefaults() Config {
	c.UserAgentVersion = cmp.Or(c.UserAgentVersion, DefaultUserAgentVersion)
	c.MaxResponseBody = cmp.Or(c.MaxResponseBody, DefaultMaxResponseBody)
	c.MaxDrain = cmp.Or(c.MaxDrain, DefaultMaxDrain)
	c.DefaultTimeout = cmp.Or(c.DefaultTimeout, DefaultTimeout)
	c.MaxTimeout = cmp.Or(c.MaxTimeout, DefaultMaxTimeout)
	c.DialTimeout = cmp.Or(c.DialTimeout, DefaultDialTimeout)
	c.TLSHandshakeTimeout = cmp.Or(c.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	c.IdleConnTimeout = cmp.Or(c.IdleConnTimeout, DefaultIdleConnTimeout)
	c.MaxIdleConns = cmp.Or(c.MaxIdleConns, DefaultMaxIdleConns)
	c.MaxIdleConnsPerHost = cmp.Or(c.MaxIdleConnsPerHost, DefaultMaxIdleConnsPerHost)
	return c
}

// Validate reports every field that no default can make sense of. Zero
// fields are valid: they take their defaults.
func (c Config) Validate() error {
	var errs []error
	nonNegative := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("sender: %s must not be negative", name))
		}
	}
	nonNegative("MaxResponseBody", int64(c.MaxResponseBody))
	nonNegative("MaxDrain", int64(c.MaxDrain))
	nonNegative("DefaultTimeout", int64(c.DefaultTimeout))
	nonNegative("MaxTimeout", int64(c.MaxTimeout))
	nonNegative("DialTimeout", int64(c.DialTimeout))
	nonNegative("TLSHandshakeTimeout", int64(c.TLSHandshakeTimeout))
	nonNegative("IdleConnTimeout", int64(c.IdleConnTimeout))
	nonNegative("MaxIdleConns", int64(c.MaxIdleConns))
	nonNegative("MaxIdleConnsPerHost", int64(c.MaxIdleConnsPerHost))
	for _, r := range c.UserAgentVersion {
		if r <= ' ' || r >= 0x7f || r == '/' {
			errs = append(errs, fmt.Errorf("sender: UserAgentVersion %q must be printable ASCII without spaces or slashes", c.UserAgentVersion))
			break
		}
	}
	d := c.WithDefaults()
	if d.DefaultTimeout > d.MaxTimeout {
		errs = append(errs, fmt.Errorf("sender: DefaultTimeout %s exceeds MaxTimeout %s", d.DefaultTimeout, d.MaxTimeout))
	}
	return errors.Join(errs...)
}
