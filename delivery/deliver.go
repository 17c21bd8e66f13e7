package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/hookline/hookline/schemas"
	"github.com/hookline/hookline/signing"
)

// Headers the sender sets besides those of package signing (SPEC §4).
const (
	HeaderEvent   = "X-Hookline-Event"
	HeaderAttempt = "X-Hookline-Attempt"
)

// maxResponseHeaderBytes bounds the response headers an endpoint may send;
// they end up in the attempt record.
const maxResponseHeaderBytes = 64 << 10

// Deliverer makes single delivery attempts. It keeps no per-delivery state:
// one Deliverer, and its connection pools, serve every worker at once.
type Deliverer struct {
	cfg       Config
	client    *http.Client
	tokens    *tokenCache
	now       func() time.Time
	logger    *slog.Logger
	userAgent string
}

// NewDeliverer returns a Deliverer. With a nil client it builds one on a
// tuned transport shared by every endpoint (keep-alive, per-host idle
// pools, HTTP/2) whose dialer refuses private targets unless
// cfg.AllowPrivateTargets. A client given is copied, and the copy's
// redirect policy and cookie jar are replaced: redirects are never
// followed, and cookies of one response never ride on another request; its
// transport is used as it is, so the private-address guard is the
// caller's business then. The same client fetches OAuth2 tokens. now
// (default time.Now) times and stamps attempts; logger (default: discard)
// gets one debug line per attempt, never a secret.
func NewDeliverer(cfg Config, client *http.Client, now func() time.Time, logger *slog.Logger) (*Deliverer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if client == nil {
		client = &http.Client{Transport: newTransport(cfg)}
	} else {
		c := *client
		client = &c
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client.Jar = nil
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Deliverer{
		cfg: cfg, client: client, now: now, logger: logger,
		tokens:    newTokenCache(maxTokenEntries),
		userAgent: "hookline/" + cfg.UserAgentVersion,
	}, nil
}

// newTransport builds the shared transport. Its dialer holds the
// private-address guard (net.Dialer.Control), so that the check happens at
// connect time, after DNS, on every address tried. It uses no proxy from
// the environment for the same reason: a proxy would hide the real target
// from the guard.
func newTransport(cfg Config) *http.Transport {
	dialer := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	if !cfg.AllowPrivateTargets {
		dialer.Control = guardControl
	}
	return &http.Transport{
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    cfg.TLSHandshakeTimeout,
		MaxIdleConns:           cfg.MaxIdleConns,
		MaxIdleConnsPerHost:    cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:        cfg.IdleConnTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
}

// Result is one attempt and what it means.
type Result struct {
	// Attempt is the record for hookline.attempts, secrets masked.
	Attempt schemas.Attempt
	// Outcome is Classify of the attempt.
	Outcome Outcome
	// Err is why no response arrived (Attempt.StatusCode is 0), or what
	// failed while reading one; nil otherwise. It wraps ErrInvalidRequest
	// when no request could be built. When the caller's context ended the
	// attempt (ctx.Err() != nil after Send) the attempt says nothing about
	// the endpoint: a consumer shutting down should leave the job to its
	// successor rather than publish it.
	Err error
}

// Deliver makes one attempt of job to wh and returns its record.
func (d *Deliverer) Deliver(ctx context.Context, wh schemas.Webhook, job schemas.Job) schemas.Attempt {
	return d.Send(ctx, wh, job).Attempt
}

// Send makes one attempt of job to wh: one POST, bounded by the webhook's
// timeout, never followed through a redirect. Every field of the attempt is
// filled whatever happens; Send never panics.
func (d *Deliverer) Send(ctx context.Context, wh schemas.Webhook, job schemas.Job) Result {
	start := d.now()
	n := max(job.Attempts, 0) + 1
	webhookID := job.WebhookID
	if webhookID == "" {
		webhookID = wh.ID
	}
	att := schemas.Attempt{
		DeliveryID: job.DeliveryID, WebhookID: webhookID, Tenant: job.Tenant,
		EventIDs: job.EventIDs, EventType: job.EventType, N: n,
		At: start.UTC(), DeliveryCreatedAt: job.CreatedAt, URL: wh.URL,
		RedeliveryOf: job.RedeliveryOf, ReplayID: job.ReplayID,
	}

	timeout := d.timeout(wh)
	attemptCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	body := encodeBody(wh.ContentType, job.Payload)
	att.RequestBody = bodyText(body.bytes)
	m := newMasker(wh.Auth)
	req, err := d.newRequest(attemptCtx, wh, job, body, start, n, m)
	if err == nil {
		var resp response
		resp, err = d.send(req, wh.Auth, webhookID, m)
		att.StatusCode, att.ResponseHeaders, att.ResponseBody = resp.status, resp.header, resp.body
	}
	if req != nil {
		// Recorded after sending, so that an OAuth2 attempt shows its
		// (masked) Authorization too.
		att.RequestHeaders = m.record(req.Header)
	}
	att.DurationMS = d.now().Sub(start).Milliseconds()
	if err != nil {
		att.Error = m.text(errorText(err, timeout))
		if att.StatusCode != 0 {
			att.Error = "reading response body: " + att.Error
		}
	}
	outcome := Classify(att.StatusCode, err)
	att.State = stateFor(outcome)

	d.logger.LogAttrs(ctx, slog.LevelDebug, "delivery attempt",
		slog.String("delivery_id", att.DeliveryID), slog.String("webhook_id", att.WebhookID),
		slog.Int("n", att.N), slog.Int("status", att.StatusCode),
		slog.Int64("duration_ms", att.DurationMS), slog.String("outcome", outcome.Class.String()),
		slog.String("error", att.Error))
	return Result{Attempt: att, Outcome: outcome, Err: err}
}

// timeout is the webhook's timeout_ms, defaulted and capped.
func (d *Deliverer) timeout(wh schemas.Webhook) time.Duration {
	if wh.TimeoutMS <= 0 {
		return d.cfg.DefaultTimeout
	}
	// Compare in milliseconds first: a huge timeout_ms would overflow.
	if int64(wh.TimeoutMS) >= d.cfg.MaxTimeout.Milliseconds() {
		return d.cfg.MaxTimeout
	}
	return time.Duration(wh.TimeoutMS) * time.Millisecond
}

// bodyText is the request body as the attempt's text without a copy: a
// 1 KiB copy for every attempt was a tenth of the bytes a delivery
// allocates (BenchmarkDeliver). The body is never written after it is
// encoded: it is the job's payload, which Send's callers do not change
// while they hold its Result (the sender owns its jobs' payloads), or a
// form encoding made for this attempt.
func bodyText(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

type encodedBody struct {
	bytes       []byte
	contentType string
}

// encodeBody is the request body: the payload as it is, or form-encoded as
// payload=<json> when the webhook asks for a form.
func encodeBody(contentType string, payload []byte) encodedBody {
	if contentType == schemas.ContentTypeForm {
		return encodedBody{[]byte("payload=" + url.QueryEscape(string(payload))), schemas.ContentTypeForm}
	}
	return encodedBody{payload, schemas.ContentTypeJSON}
}

// newRequest builds the POST, with the webhook's credentials unless they
// are OAuth2 (see send). Errors wrap ErrInvalidRequest; the request is
// returned with them when it got as far as its headers.
func (d *Deliverer) newRequest(ctx context.Context, wh schemas.Webhook, job schemas.Job, body encodedBody, at time.Time, n int, m *masker) (*http.Request, error) {
	if job.DeliveryID == "" {
		// Receivers de-duplicate on webhook-id and sign over it.
		return nil, fmt.Errorf("%w: job has no delivery id", ErrInvalidRequest)
	}
	// The URL is parsed once, by NewRequest.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, wh.URL, bytes.NewReader(body.bytes))
	if err != nil || (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Host == "" || req.URL.User != nil {
		return nil, fmt.Errorf("%w: url must be an absolute http or https URL without credentials", ErrInvalidRequest)
	}
	h := req.Header
	for name, value := range wh.Headers {
		if !validHeaderName(name) || !validHeaderValue(value) {
			return req, fmt.Errorf("%w: header %q is not a valid HTTP header", ErrInvalidRequest, name)
		}
		h.Set(name, value)
	}
	// Auth wins over a header of the same name; the headers below win over
	// both, so that nothing overrides what receivers rely on.
	if err := setStaticAuth(req, wh.Auth, m); err != nil {
		return req, err
	}
	h.Set("Content-Type", body.contentType)
	h.Set("User-Agent", d.userAgent)
	h.Set(signing.HeaderID, job.DeliveryID)
	h.Set(signing.HeaderTimestamp, signing.Timestamp(at))
	h.Set(HeaderEvent, job.EventType)
	h.Set(HeaderAttempt, strconv.Itoa(n))
	if wh.Secret == "" {
		return req, nil
	}
	std, github, err := signing.Sign(job.DeliveryID, at, body.bytes, wh.SigningSecrets(at)...)
	if err != nil {
		return req, fmt.Errorf("%w: secret: %w", ErrInvalidRequest, err)
	}
	h.Set(signing.HeaderSignature, std)
	h.Set(signing.HeaderSignature256, github)
	return req, nil
}

// do sends req and reads at most MaxResponseBody bytes of the answer, its
// headers and body filtered through m. It always drains and closes the
// body so that the connection can be reused.
func (d *Deliverer) do(req *http.Request, m *masker) (response, error) {
	resp, err := d.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer func() {
		// Errors here only cost the connection its place in the pool.
		_, _ = io.CopyN(io.Discard, resp.Body, int64(d.cfg.MaxDrain))
		_ = resp.Body.Close()
	}()
	var b []byte
	if resp.ContentLength != 0 { // most receivers answer with no body: no buffer for it
		b, err = io.ReadAll(io.LimitReader(resp.Body, int64(d.cfg.MaxResponseBody)))
	}
	return response{status: resp.StatusCode, header: m.record(resp.Header), body: m.text(string(b))}, err
}

// errorText describes a failed attempt for the record. The URL is already
// in the record, so url.Error's "Post <url>:" prefix is dropped.
func errorText(err error, timeout time.Duration) string {
	var te *tokenError
	if errors.As(err, &te) {
		return te.text(timeout)
	}
	var fe *forbiddenError
	if errors.As(err, &fe) {
		// Not "dial tcp 127.0.0.1:80: refused: ...": the guard's text
		// says it all.
		return fe.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("timeout: no complete response within %s", timeout)
	case errors.Is(err, context.Canceled):
		return "cancelled: the sender stopped before the endpoint answered"
	}
	return err.Error()
}

func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		isToken := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !isToken {
			return false
		}
	}
	return true
}

func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
