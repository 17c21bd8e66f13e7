package delivery

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/hookline/hookline/schemas"
)

// ErrTokenRejected marks an attempt that could not get an OAuth2 token
// because the token endpoint refused the client credentials (400 or 401).
// Retrying with the same credentials cannot help; any other failure to get
// a token is retried, since token endpoints have outages of their own.
var ErrTokenRejected = errors.New("delivery: token endpoint rejected the client credentials")

// maxTokenEntries bounds the OAuth2 token cache. It holds one entry per
// webhook, so the bound only matters with more OAuth2 webhooks than that;
// the least recently used entry goes first.
const maxTokenEntries = 10_000

// setStaticAuth applies the webhook's basic, bearer or api_key credentials
// to the request; OAuth2 is applied at send time (send). Credentials it
// derives are added to m so that no echo of them is recorded.
func setStaticAuth(req *http.Request, a *schemas.Auth, m *masker) error {
	if a == nil {
		return nil
	}
	for _, s := range a.Secrets() {
		if !validHeaderValue(s) {
			// The message names no value: it ends up in the record.
			return fmt.Errorf("%w: auth credentials are not valid in an HTTP header", ErrInvalidRequest)
		}
	}
	switch a.Type {
	case schemas.AuthNone, schemas.AuthOAuth2Client:
	case schemas.AuthBasic:
		req.SetBasicAuth(a.Username, a.Password)
		m.add(base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + a.Password)))
	case schemas.AuthBearer:
		req.Header.Set("Authorization", "Bearer "+a.Token)
	case schemas.AuthAPIKey:
		if !validHeaderName(a.Header) {
			return fmt.Errorf("%w: auth header %q is not a valid HTTP header name", ErrInvalidRequest, a.Header)
		}
		req.Header.Set(a.Header, a.Value)
	default:
		return fmt.Errorf("%w: unknown auth type %q", ErrInvalidRequest, a.Type)
	}
	return nil
}

// response is what an attempt keeps of an endpoint's answer.
type response struct {
	status int
	header map[string]string
	body   string
}

// send makes the request, first getting an OAuth2 token when the webhook
// asks for one. A 401 answer to a token gets exactly one retry with a
// fresh token, within the same attempt: the token may have been revoked or
// have expired early, and that is not the delivery's fault.
func (d *Deliverer) send(req *http.Request, a *schemas.Auth, webhookID string, m *masker) (response, error) {
	if a == nil || a.Type != schemas.AuthOAuth2Client {
		return d.do(req, m)
	}
	ctx := req.Context()
	entry := d.tokens.entry(webhookID, a)
	tok, err := d.token(ctx, entry, nil, m)
	if err != nil {
		return response{}, err
	}
	tok.SetAuthHeader(req)
	resp, err := d.do(req, m)
	if err != nil || resp.status != http.StatusUnauthorized {
		return resp, err
	}
	if tok, err = d.token(ctx, entry, tok, m); err != nil {
		return response{}, err
	}
	if req.GetBody == nil {
		return resp, nil // cannot happen: newRequest's body can be re-read
	}
	retry := req.Clone(ctx)
	if retry.Body, err = req.GetBody(); err != nil {
		return response{}, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	tok.SetAuthHeader(retry)
	return d.do(retry, m)
}

// token returns the entry's cached token, fetching one when there is none,
// it has expired, or it is stale (the one an endpoint just answered 401
// to). The fetch goes through the Deliverer's own client, so the token
// endpoint passes the same private-address guard and redirect policy as
// endpoints do, and is bounded by the attempt's context.
func (d *Deliverer) token(ctx context.Context, e *tokenEntry, stale *oauth2.Token, m *masker) (*oauth2.Token, error) {
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, &tokenError{tokenURL: e.tokenURL, err: ctx.Err(), m: m}
	}
	defer func() { <-e.sem }()
	if e.tok == nil || !e.tok.Valid() || e.tok == stale {
		e.tok = nil
		tok, err := e.conf.Token(context.WithValue(ctx, oauth2.HTTPClient, d.client))
		if err != nil {
			return nil, &tokenError{tokenURL: e.tokenURL, err: err, m: m}
		}
		e.tok = tok
	}
	m.add(e.tok.AccessToken)
	return e.tok, nil
}

// tokenError is a failure to get an access token: no request reached the
// endpoint. Its text names the token endpoint without query or user info,
// never shows the token endpoint's response body, and has the credentials
// scrubbed from the error description: a token endpoint may echo what was
// sent to it, and the text is logged and recorded.
type tokenError struct {
	tokenURL string
	err      error
	m        *masker
}

func (e *tokenError) Error() string {
	return e.m.text("oauth2: fetching token from " + e.tokenURL + ": " + tokenCauseText(e.err))
}

// text is Error for the attempt record, with errorText's wording of
// timeouts and refused targets.
func (e *tokenError) text(timeout time.Duration) string {
	cause := tokenCauseText(e.err)
	if !errors.As(e.err, new(*oauth2.RetrieveError)) {
		cause = errorText(e.err, timeout)
	}
	return e.m.text("oauth2: fetching token from " + e.tokenURL + ": " + cause)
}

func (e *tokenError) Unwrap() error { return e.err }

// Is makes a 400 or 401 from the token endpoint ErrTokenRejected: RFC 6749
// §5.2 answers bad client credentials or a bad request with those.
func (e *tokenError) Is(target error) bool {
	var re *oauth2.RetrieveError
	if target != ErrTokenRejected || !errors.As(e.err, &re) || re.Response == nil {
		return false
	}
	return re.Response.StatusCode == http.StatusBadRequest || re.Response.StatusCode == http.StatusUnauthorized
}

// tokenCauseText describes why no token came, without the response body
// that oauth2.RetrieveError's own text includes.
func tokenCauseText(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		s := "the token endpoint answered"
		if re.Response != nil {
			s += " " + re.Response.Status
		}
		if re.ErrorCode != "" {
			s += fmt.Sprintf(" %q", re.ErrorCode)
		}
		if re.ErrorDescription != "" {
			s += fmt.Sprintf(" (%q)", re.ErrorDescription)
		}
		return s
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// url.Error repeats the token URL, query and all.
		return ue.Err.Error()
	}
	return err.Error()
}

// tokenCache holds the OAuth2 token of each webhook that uses
// oauth2_client_credentials. It does not use oauth2.ReuseTokenSource: a
// TokenSource keeps the context it was made with for every later fetch,
// but a fetch must be bounded by the attempt that needs it.
type tokenCache struct {
	mu        sync.Mutex
	max       int
	lru       *list.List               // of *tokenEntry, most recently used first
	byWebhook map[string]*list.Element // guarded by mu
}

// tokenEntry is one webhook's token and the credentials it was fetched
// with.
type tokenEntry struct {
	webhookID   string
	fingerprint [sha256.Size]byte
	tokenURL    string // for error texts: no query, no user info
	conf        *clientcredentials.Config
	// sem is held while a token is read or fetched, so that concurrent
	// deliveries to one webhook make a single token request. A channel
	// rather than a mutex, so that a waiter gives up when its attempt ends.
	sem chan struct{}
	tok *oauth2.Token // guarded by sem
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, lru: list.New(), byWebhook: map[string]*list.Element{}}
}

// entry returns the webhook's entry. A change of token URL, client id,
// secret or scopes replaces the entry, so that a token fetched with old
// credentials is never used with new ones and old entries do not pile up.
func (c *tokenCache) entry(webhookID string, a *schemas.Auth) *tokenEntry {
	fp := credentialFingerprint(a)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byWebhook[webhookID]; ok {
		if e := el.Value.(*tokenEntry); e.fingerprint == fp {
			c.lru.MoveToFront(el)
			return e
		}
		c.lru.Remove(el)
	}
	e := &tokenEntry{
		webhookID: webhookID, fingerprint: fp, tokenURL: displayURL(a.TokenURL),
		conf: &clientcredentials.Config{
			ClientID: a.ClientID, ClientSecret: a.ClientSecret, TokenURL: a.TokenURL, Scopes: a.Scopes,
		},
		sem: make(chan struct{}, 1),
	}
	c.byWebhook[webhookID] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		oldest := c.lru.Back()
		delete(c.byWebhook, oldest.Value.(*tokenEntry).webhookID)
		c.lru.Remove(oldest)
	}
	return e
}

// credentialFingerprint identifies the credentials a token was fetched
// with, holding a hash rather than the client secret itself. Fields are
// length-prefixed so that no two sets of credentials run together alike.
func credentialFingerprint(a *schemas.Auth) [sha256.Size]byte {
	h := sha256.New()
	write := func(s string) {
		_ = binary.Write(h, binary.BigEndian, uint64(len(s)))
		h.Write([]byte(s))
	}
	write(a.TokenURL)
	write(a.ClientID)
	write(a.ClientSecret)
	_ = binary.Write(h, binary.BigEndian, uint64(len(a.Scopes)))
	for _, s := range a.Scopes {
		write(s)
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// displayURL is raw without user info, query and fragment, which may hold
// credentials.
func displayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
