package api

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config configures the API. The zero value is usable: WithDefaults fills
// every unset field.
type Config struct {
	// Tokens maps a bearer token to the tenant it acts for. Empty means no
	// authentication: every request is schemas.DefaultTenant, and the
	// caller must listen on loopback only.
	Tokens map[string]string
	// MaxBodyBytes caps a request body; a larger one is a 413. Default 1 MiB.
	MaxBodyBytes int64
	// MaxEvents caps the events of one POST /v1/events. Default 1000.
	MaxEvents int
	// Version is reported by GET /healthz. Default empty (not reported).
	Version string
	// CheckTimeout bounds each readiness check. Default 2s.
	CheckTimeout time.Duration
	// MetricsAddr, when set, is where /metrics is served instead (serve's
	// --metrics-addr): the API's /metrics then says so with a 404.
	MetricsAddr string
	// MetricsToken is the bearer token that reads /metrics when there are
	// Tokens (serve's --metrics-token): its series name every tenant's
	// webhooks, so a tenant's token gets 403. Empty: no token reads it
	// here (use MetricsAddr).
	MetricsToken string
	// DedupeWindow is how long an event id published is remembered, so
	// that the same id from the same tenant is published once (serve's
	// --dedupe-window). Default 24 h.
	DedupeWindow time.Duration
	// keyWindow is how long an Idempotency-Key's answer is given again:
	// IdempotencyKeyWindow, shorter in tests.
	keyWindow time.Duration

	// Timeouts of the http.Server that HTTPServer builds.
	ReadHeaderTimeout time.Duration // default 5s
	ReadTimeout       time.Duration // default 30s
	WriteTimeout      time.Duration // default 30s
	IdleTimeout       time.Duration // default 120s
}

// Defaults of Config.
const (
	DefaultMaxBodyBytes      = 1 << 20
	DefaultMaxEvents         = 1000
	DefaultCheckTimeout      = 2 * time.Second
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
)

// WithDefaults returns the config with every unset field at its default.
func (c Config) WithDefaults() Config {
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, DefaultMaxBodyBytes)
	c.MaxEvents = cmp.Or(c.MaxEvents, DefaultMaxEvents)
	c.CheckTimeout = cmp.Or(c.CheckTimeout, DefaultCheckTimeout)
	c.DedupeWindow = cmp.Or(c.DedupeWindow, DefaultDedupeWindow)
	c.keyWindow = cmp.Or(c.keyWindow, IdempotencyKeyWindow)
	c.ReadHeaderTimeout = cmp.Or(c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	c.ReadTimeout = cmp.Or(c.ReadTimeout, DefaultReadTimeout)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, DefaultWriteTimeout)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, DefaultIdleTimeout)
	return c
}

// Validate reports a config that cannot work; unset fields are at their
// defaults.
func (c Config) Validate() error {
	c = c.WithDefaults()
	for token, tenant := range c.Tokens {
		if token == "" || strings.ContainsAny(token, " \t\r\n,") {
			// The token itself is never printed: it is a credential.
			return errors.New("api: a token is empty or contains spaces or commas")
		}
		if strings.TrimSpace(tenant) == "" {
			return errors.New("api: a token maps to an empty tenant")
		}
	}
	if t := c.MetricsToken; t != "" {
		if strings.ContainsAny(t, " \t\r\n,") {
			return errors.New("api: the metrics token contains spaces or commas")
		}
		if _, ok := c.Tokens[t]; ok {
			return errors.New("api: the metrics token is also a tenant's token: give it its own")
		}
	}
	switch {
	case c.MaxBodyBytes < 1:
		return fmt.Errorf("api: MaxBodyBytes must be positive, not %d", c.MaxBodyBytes)
	case c.MaxEvents < 1:
		return fmt.Errorf("api: MaxEvents must be positive, not %d", c.MaxEvents)
	case c.DedupeWindow < time.Second || c.DedupeWindow > 7*24*time.Hour:
		return fmt.Errorf("api: the dedupe window must be 1s to 168h, not %v", c.DedupeWindow)
	case c.CheckTimeout < 0 || c.ReadHeaderTimeout < 0 || c.ReadTimeout < 0 ||
		c.WriteTimeout < 0 || c.IdleTimeout < 0:
		return errors.New("api: timeouts must not be negative")
	}
	return nil
}
