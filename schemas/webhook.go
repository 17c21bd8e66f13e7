package schemas

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/hookline/hookline/signing"
)

// Content types a webhook can ask for (SPEC §3).
const (
	ContentTypeJSON = "application/json"
	ContentTypeForm = "application/x-www-form-urlencoded"
)

// Webhook defaults (SPEC §3).
const (
	DefaultRetries   = 5
	DefaultTimeoutMS = 10000
	MaxRetries       = 50
	MaxTimeoutMS     = 120000
	MaxRateLimit     = 100000
	// MinRateLimit is the lowest rate limit but none (0): one request every
	// 100 s. Lower would hold an endpoint's deliveries for hours each.
	MinRateLimit = 0.01
	// DefaultMaxConcurrency is the most requests in flight to one endpoint
	// unless the webhook says otherwise; the sender adapts below it.
	DefaultMaxConcurrency = 32
	MaxMaxConcurrency     = 1000
)

// Webhook is a subscription as it lives on hookline.subscriptions: the whole
// state after a change, secret included. The API never returns it as is; see
// Public.
type Webhook struct {
	ID          string `json:"id"`
	Tenant      string `json:"tenant"`
	Name        string `json:"name"`
	URL         string `json:"url"`
	Enabled     bool   `json:"enabled"`
	ContentType string `json:"content_type"`
	Secret      string `json:"secret,omitempty"`
	// PreviousSecrets still sign deliveries, beside Secret, until their
	// time: the overlap of a rotation (SPEC §3).
	PreviousSecrets []PreviousSecret `json:"previous_secrets,omitempty"`
	Events          []string         `json:"events"`
	Identifier      string           `json:"identifier,omitempty"`
	// IncludeRelated also fires on triggers of related resources (SPEC §3).
	IncludeRelated bool `json:"include_related,omitempty"`
	// Condition is a boolean expression over the event (package condition).
	Condition string `json:"condition,omitempty"`
	// Fields selects paths of data for the payload; empty is all.
	Fields []string `json:"fields,omitempty"`
	// IncludeAllFields false sends only changed fields of updates; nil is
	// true, the default.
	IncludeAllFields *bool `json:"include_all_fields,omitempty"`
	// IncludeChanges false leaves an update's changes out of the payload;
	// nil is true, the default.
	IncludeChanges *bool `json:"include_changes,omitempty"`
	// SelectValues sends single-select values ({"id", "display"}) as their
	// id or display text (SelectID, SelectDisplay); empty sends them as given.
	SelectValues string            `json:"select_values,omitempty"`
	Batching     *Batching         `json:"batching,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`
	Auth         *Auth             `json:"auth,omitempty"`
	Retries      int               `json:"retries"`
	TimeoutMS    int               `json:"timeout_ms"`
	// RateLimit caps requests per second to the endpoint; 0 is no limit.
	RateLimit float64 `json:"rate_limit,omitempty"`
	// MaxConcurrency caps the requests in flight to the endpoint; the
	// sender adapts below it. 0 (webhooks stored before the field) is
	// DefaultMaxConcurrency; see Concurrency.
	MaxConcurrency int `json:"max_concurrency,omitempty"`
	// DisabledReason says why Hookline disabled the webhook (an endpoint
	// that answered 410 Gone); empty when enabled or disabled by a user.
	DisabledReason string `json:"disabled_reason,omitempty"`
	// DisabledAt is when the webhook was last disabled, kept when it is
	// enabled again: a delivery that waited on a retry topic since before
	// then was failed (webhook_disabled) and is not sent when it comes back.
	DisabledAt *time.Time `json:"disabled_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	// Version grows by one with every change; consumers of the topic ignore
	// a change older than the state they hold.
	Version int64 `json:"version"`
}

// PreviousSecret is a secret replaced by a rotation, valid until Until.
type PreviousSecret struct {
	Secret string    `json:"secret"`
	Until  time.Time `json:"until"`
}

// SigningSecrets returns the secrets that sign a delivery made at at: the
// current one first, then the previous ones still valid. None for an
// unsigned webhook.
func (w *Webhook) SigningSecrets(at time.Time) []string {
	if w.Secret == "" {
		return nil
	}
	out := []string{w.Secret}
	for _, p := range w.PreviousSecrets {
		if p.Until.After(at) && p.Secret != w.Secret {
			out = append(out, p.Secret)
		}
	}
	return out
}

// MapSecrets returns a copy of the webhook with f applied to every secret
// it holds: the signing secret, the previous ones and the endpoint's
// credentials. The registry seals them with it on the way to
// hookline.subscriptions and opens them on the way back.
func (w Webhook) MapSecrets(f func(string) (string, error)) (Webhook, error) {
	return w.MapSecretsNamed(func(_, v string) (string, error) { return f(v) })
}

// MapSecretsNamed is MapSecrets with each value's field: "secret",
// "previous_secret" (every previous secret: a rotation moves the secret
// there), "auth.password", "auth.token", "auth.value" or
// "auth.client_secret".
func (w Webhook) MapSecretsNamed(f func(field, v string) (string, error)) (Webhook, error) {
	var err error
	apply := func(field string, s *string) {
		if err == nil && *s != "" {
			*s, err = f(field, *s)
		}
	}
	apply("secret", &w.Secret)
	if w.PreviousSecrets != nil {
		w.PreviousSecrets = append([]PreviousSecret(nil), w.PreviousSecrets...)
		for i := range w.PreviousSecrets {
			apply("previous_secret", &w.PreviousSecrets[i].Secret)
		}
	}
	if w.Auth != nil {
		a := *w.Auth
		apply("auth.password", &a.Password)
		apply("auth.token", &a.Token)
		apply("auth.value", &a.Value)
		apply("auth.client_secret", &a.ClientSecret)
		w.Auth = &a
	}
	return w, err
}

// SealedPrefix begins every sealed value on hookline.subscriptions
// (sealing.Marker). A secret or credential given in plain text may not
// begin with it: it would be stored as if sealed, unsealed, and could not
// be read back.
const SealedPrefix = "hlenc:"

var errLooksSealed = errors.New("looks sealed")

// MaxPreviousSecrets bounds the secrets a rotation keeps signing.
const MaxPreviousSecrets = 5

// RotateSecret makes secret the webhook's secret; the current one keeps
// signing for overlap after now. Expired previous secrets are dropped.
func (w *Webhook) RotateSecret(secret string, overlap time.Duration, now time.Time) {
	var keep []PreviousSecret
	if w.Secret != "" && overlap > 0 {
		keep = append(keep, PreviousSecret{Secret: w.Secret, Until: now.Add(overlap).UTC()})
	}
	for _, p := range w.PreviousSecrets {
		if p.Until.After(now) && len(keep) < MaxPreviousSecrets {
			keep = append(keep, p)
		}
	}
	w.Secret, w.PreviousSecrets = secret, keep
}

// GenerateSecret returns a new Standard Webhooks secret: whsec_ and the
// base64 of 32 random bytes.
func GenerateSecret() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return signing.SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// WebhookOp names a change on hookline.subscriptions.
type WebhookOp string

// The changes a webhook goes through.
const (
	OpCreated WebhookOp = "created"
	OpUpdated WebhookOp = "updated"
	OpDeleted WebhookOp = "deleted"
)

// ErrVersionConflict: a webhook change was made from a version that is no
// longer the current one (another change came first). The writer reads
// the webhook again and makes its change again.
var ErrVersionConflict = errors.New("the webhook changed meanwhile")

// ErrWebhookNotFound: no webhook of the tenant has that id.
var ErrWebhookNotFound = errors.New("no such webhook")

// ErrUnchanged: a change that changes nothing; nothing is published.
var ErrUnchanged = errors.New("nothing to change")

// WebhookEvent is one message on hookline.subscriptions, keyed by webhook id.
// The topic is compacted: the last message of a key is the webhook's state.
type WebhookEvent struct {
	Op      WebhookOp `json:"op"`
	At      time.Time `json:"at"`
	Webhook Webhook   `json:"webhook"`
}

// PublicWebhook is a webhook as the API returns it: credentials are
// write-only, so the secret is replaced by has_secret.
type PublicWebhook struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	URL         string `json:"url"`
	Enabled     bool   `json:"enabled"`
	ContentType string `json:"content_type"`
	HasSecret   bool   `json:"has_secret"`
	// Secret is set in the answer that generated it only: a create without
	// a secret, or a rotation.
	Secret string `json:"secret,omitempty"`
	// Warnings name what was accepted but looks wrong, such as an event
	// type outside the catalogue; in the answer of a create or update only.
	Warnings []string `json:"warnings,omitempty"`
	// PreviousSecretExpiresAt is when the last secret replaced by a rotation
	// stops signing; absent when none does.
	PreviousSecretExpiresAt *time.Time        `json:"previous_secret_expires_at,omitempty"`
	Events                  []string          `json:"events"`
	Identifier              string            `json:"identifier,omitempty"`
	IncludeRelated          bool              `json:"include_related"`
	Condition               string            `json:"condition,omitempty"`
	Fields                  []string          `json:"fields,omitempty"`
	IncludeAllFields        bool              `json:"include_all_fields"`
	IncludeChanges          bool              `json:"include_changes"`
	SelectValues            string            `json:"select_values,omitempty"`
	Batching                *Batching         `json:"batching,omitempty"`
	Headers                 map[string]string `json:"headers,omitempty"`
	Auth                    *PublicAuth       `json:"auth,omitempty"`
	RateLimit               float64           `json:"rate_limit,omitempty"`
	MaxConcurrency          int               `json:"max_concurrency"`
	DisabledReason          string            `json:"disabled_reason,omitempty"`
	// BreakerState is the endpoint's circuit: closed, open or half-open.
	BreakerState string `json:"breaker_state,omitempty"`
	// ConcurrencyLimit is the requests at once the sender allows the
	// endpoint now, as its owner last published it (hookline.endpoints).
	ConcurrencyLimit int       `json:"concurrency_limit,omitempty"`
	Retries          int       `json:"retries"`
	TimeoutMS        int       `json:"timeout_ms"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// Public returns the API view of the webhook.
func (w Webhook) Public() PublicWebhook {
	return PublicWebhook{
		ID: w.ID, Name: w.Name, URL: w.URL, Enabled: w.Enabled,
		ContentType: w.ContentType, HasSecret: w.Secret != "",
		Events: w.Events, Identifier: w.Identifier, IncludeRelated: w.IncludeRelated,
		Condition: w.Condition, Fields: w.Fields, IncludeAllFields: w.AllFields(),
		IncludeChanges: w.Changes(), SelectValues: w.SelectValues,
		Batching: w.Batching, Headers: w.Headers,
		Auth: w.Auth.Public(), Retries: w.Retries, TimeoutMS: w.TimeoutMS,
		RateLimit: w.RateLimit, MaxConcurrency: w.Concurrency(), DisabledReason: w.DisabledReason,
		CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt,
	}
}

// Concurrency is the most requests in flight to the endpoint.
func (w *Webhook) Concurrency() int {
	if w.MaxConcurrency <= 0 {
		return DefaultMaxConcurrency
	}
	return w.MaxConcurrency
}

// AllFields reports whether updates send every field (the default).
func (w *Webhook) AllFields() bool { return w.IncludeAllFields == nil || *w.IncludeAllFields }

// Changes reports whether updates carry their changes (the default).
func (w *Webhook) Changes() bool { return w.IncludeChanges == nil || *w.IncludeChanges }

// Single-select modes of select_values.
const (
	SelectValuesID      = "id"
	SelectValuesDisplay = "display"
)

// WebhookInput is the body of create (POST) and update (PATCH). A nil field
// is "not given": create applies the default, update keeps the old value.
type WebhookInput struct {
	Name        *string `json:"name"`
	URL         *string `json:"url"`
	Enabled     *bool   `json:"enabled"`
	ContentType *string `json:"content_type"`
	// Secret absent on create generates one; NoSecret (JSON null) makes
	// the webhook unsigned.
	Secret     *string            `json:"secret,omitempty"`
	NoSecret   bool               `json:"-"`
	Events     *[]string          `json:"events"`
	Identifier *string            `json:"identifier"`
	Headers    *map[string]string `json:"headers"`
	Retries    *int               `json:"retries"`
	TimeoutMS  *int               `json:"timeout_ms"`

	IncludeRelated   *bool     `json:"include_related"`
	IncludeAllFields *bool     `json:"include_all_fields"`
	IncludeChanges   *bool     `json:"include_changes"`
	SelectValues     *string   `json:"select_values"`
	Condition        *string   `json:"condition"`
	Fields           *[]string `json:"fields"`
	Auth             *Auth     `json:"auth"`
	RateLimit        *float64  `json:"rate_limit"`
	MaxConcurrency   *int      `json:"max_concurrency"`
	Batching         *Batching `json:"batching"`
}

// MarshalJSON writes "secret": null for NoSecret, so that a client can ask
// for an unsigned webhook.
func (in WebhookInput) MarshalJSON() ([]byte, error) {
	type plain WebhookInput
	b, err := json.Marshal(plain(in))
	if err != nil || !in.NoSecret || in.Secret != nil {
		return b, err
	}
	return append([]byte(`{"secret":null,`), b[1:]...), nil
}

// MarkNulls records the fields given as JSON null where null means more
// than "not given": "secret": null asks for an unsigned webhook.
func (in *WebhookInput) MarkNulls(body []byte) {
	var probe struct {
		Secret json.RawMessage `json:"secret"`
	}
	if json.Unmarshal(body, &probe) == nil && string(probe.Secret) == "null" {
		in.NoSecret = true
	}
}

// Apply merges the input into w (a zero Webhook for a create) and validates
// the result. It does not touch id, tenant, times or version.
func (in *WebhookInput) Apply(w *Webhook, create bool) error {
	if create {
		w.Enabled = true
		w.ContentType = ContentTypeJSON
		w.Events = []string{"*"}
		w.Retries = DefaultRetries
		w.TimeoutMS = DefaultTimeoutMS
		w.MaxConcurrency = DefaultMaxConcurrency
		if in.Name == nil {
			return &FieldError{Field: "name", Message: "is required"}
		}
		if in.URL == nil {
			return &FieldError{Field: "url", Message: "is required"}
		}
	}
	setIf(&w.Name, in.Name)
	setIf(&w.URL, in.URL)
	if in.Enabled != nil && *in.Enabled {
		w.DisabledReason = ""
	}
	setIf(&w.Enabled, in.Enabled)
	setIf(&w.ContentType, in.ContentType)
	switch {
	case in.NoSecret:
		w.Secret, w.PreviousSecrets = "", nil
	case in.Secret != nil:
		w.Secret = *in.Secret
	case create:
		w.Secret = GenerateSecret()
	}
	setIf(&w.Events, in.Events)
	setIf(&w.Identifier, in.Identifier)
	setIf(&w.Headers, in.Headers)
	setIf(&w.Retries, in.Retries)
	setIf(&w.TimeoutMS, in.TimeoutMS)
	setIf(&w.RateLimit, in.RateLimit)
	if in.MaxConcurrency != nil && *in.MaxConcurrency < 1 {
		return &FieldError{Field: "max_concurrency", Message: fmt.Sprintf("must be between 1 and %d", MaxMaxConcurrency)}
	}
	setIf(&w.MaxConcurrency, in.MaxConcurrency)
	setIf(&w.IncludeRelated, in.IncludeRelated)
	setIf(&w.Condition, in.Condition)
	setIf(&w.Fields, in.Fields)
	if in.IncludeChanges != nil {
		w.IncludeChanges = nil // true is the default: store nothing
		if !*in.IncludeChanges {
			w.IncludeChanges = in.IncludeChanges
		}
	}
	setIf(&w.SelectValues, in.SelectValues)
	if in.IncludeAllFields != nil {
		w.IncludeAllFields = nil // true is the default: store nothing
		if !*in.IncludeAllFields {
			w.IncludeAllFields = in.IncludeAllFields
		}
	}
	if in.Batching != nil {
		w.Batching = in.Batching.normalized()
	}
	if in.Auth != nil {
		// auth is replaced whole: credentials are write-only, so a change
		// of auth gives them again.
		if err := in.Auth.Validate(); err != nil {
			return err
		}
		w.Auth = in.Auth
		if w.Auth.Type == AuthNone {
			w.Auth = nil
		}
	}
	return w.Validate()
}

func setIf[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// Validate checks every field of a webhook.
func (w *Webhook) Validate() error {
	w.Name = strings.TrimSpace(w.Name)
	if w.Name == "" || len(w.Name) > 200 {
		return &FieldError{Field: "name", Message: "must be 1 to 200 characters"}
	}
	if err := ValidateURL(w.URL); err != nil {
		return &FieldError{Field: "url", Message: err.Error()}
	}
	if w.ContentType != ContentTypeJSON && w.ContentType != ContentTypeForm {
		return &FieldError{Field: "content_type", Message: fmt.Sprintf("must be %q or %q", ContentTypeJSON, ContentTypeForm)}
	}
	if in := w.Secret; in != "" && strings.TrimSpace(in) == "" {
		return &FieldError{Field: "secret", Message: "must not be blank; null makes the webhook unsigned"}
	}
	if len(w.Secret) > 500 {
		return &FieldError{Field: "secret", Message: "must be at most 500 characters"}
	}
	if _, err := signing.Key(w.Secret); w.Secret != "" && err != nil {
		return &FieldError{Field: "secret", Message: "a secret starting with whsec_ must be followed by base64"}
	}
	if strings.HasPrefix(w.Secret, SealedPrefix) {
		return &FieldError{Field: "secret", Message: "must not begin with " + SealedPrefix + ", the mark of a sealed value"}
	}
	if _, err := w.MapSecrets(func(v string) (string, error) {
		if strings.HasPrefix(v, SealedPrefix) {
			return v, errLooksSealed
		}
		return v, nil
	}); err != nil {
		return &FieldError{Field: "auth", Message: "a credential must not begin with " + SealedPrefix + ", the mark of a sealed value"}
	}
	if err := validateEvents(w.Events); err != nil {
		return err
	}
	if err := validateHeaders(w.Headers); err != nil {
		return err
	}
	if w.Retries < 0 || w.Retries > MaxRetries {
		return &FieldError{Field: "retries", Message: fmt.Sprintf("must be between 0 and %d", MaxRetries)}
	}
	if w.TimeoutMS < 1 || w.TimeoutMS > MaxTimeoutMS {
		return &FieldError{Field: "timeout_ms", Message: fmt.Sprintf("must be between 1 and %d", MaxTimeoutMS)}
	}
	if err := validateCondition(w.Condition); err != nil {
		return err
	}
	if err := validateFields(w.Fields); err != nil {
		return err
	}
	if err := w.Batching.Validate(); err != nil {
		return err
	}
	if w.RateLimit < 0 || (w.RateLimit > 0 && w.RateLimit < MinRateLimit) || w.RateLimit > MaxRateLimit || math.IsNaN(w.RateLimit) {
		return &FieldError{Field: "rate_limit", Message: fmt.Sprintf("must be 0 (no limit) or a number of requests per second from %g to %d", MinRateLimit, MaxRateLimit)}
	}
	if w.SelectValues != "" && w.SelectValues != SelectValuesID && w.SelectValues != SelectValuesDisplay {
		return &FieldError{Field: "select_values", Message: `must be "id" or "display" (or "" to send single-select values as given)`}
	}
	if w.MaxConcurrency < 0 || w.MaxConcurrency > MaxMaxConcurrency {
		return &FieldError{Field: "max_concurrency", Message: fmt.Sprintf("must be between 1 and %d", MaxMaxConcurrency)}
	}
	return w.Auth.Validate()
}

// ValidateURL accepts absolute http and https URLs with a host.
func ValidateURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("is required")
	}
	if len(raw) > 2048 {
		return fmt.Errorf("must be at most 2048 characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("must use http or https")
	}
	if u.Hostname() == "" {
		return fmt.Errorf("must name a host")
	}
	if u.User != nil {
		return fmt.Errorf("must not carry credentials; use auth")
	}
	return nil
}

func validateEvents(events []string) error {
	if len(events) == 0 {
		return &FieldError{Field: "events", Message: `must list at least one event type, or "*"`}
	}
	for i, e := range events {
		if !ValidEventPattern(e) {
			return &FieldError{Field: fmt.Sprintf("events[%d]", i),
				Message: fmt.Sprintf("%q is not an event type: use \"*\", \"resource.*\" or \"resource.trigger\"", e)}
		}
	}
	return nil
}

// ValidEventPattern accepts "*", "resource.*" and "resource.type".
func ValidEventPattern(p string) bool {
	if p == "*" {
		return true
	}
	res, typ, ok := strings.Cut(p, ".")
	if !ok || res == "" || typ == "" || strings.ContainsAny(res, "* \t") || strings.ContainsAny(typ, ". \t") {
		return false
	}
	return typ == "*" || !strings.Contains(typ, "*")
}

// reservedHeaders are set by the sender and cannot be overridden.
var reservedHeaders = map[string]bool{
	"content-type": true, "content-length": true, "host": true, "user-agent": true,
	"webhook-id": true, "webhook-timestamp": true, "webhook-signature": true,
	"x-hookline-signature-256": true, "x-hookline-event": true, "x-hookline-attempt": true,
	"transfer-encoding": true, "connection": true,
}

func validateHeaders(h map[string]string) error {
	if len(h) > 50 {
		return &FieldError{Field: "headers", Message: "at most 50 headers"}
	}
	for k, v := range h {
		if !validHeaderName(k) {
			return &FieldError{Field: "headers", Message: fmt.Sprintf("%q is not a valid header name", k)}
		}
		if reservedHeaders[strings.ToLower(k)] {
			return &FieldError{Field: "headers", Message: fmt.Sprintf("%q is set by Hookline and cannot be overridden", k)}
		}
		if strings.ContainsAny(v, "\r\n\x00") || len(v) > 4096 {
			return &FieldError{Field: "headers", Message: fmt.Sprintf("value of %q is not a valid header value", k)}
		}
	}
	return nil
}

func validHeaderName(k string) bool {
	if k == "" || len(k) > 256 {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)) {
			return false
		}
	}
	return true
}
