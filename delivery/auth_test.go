package delivery

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hookline/hookline/schemas"
)

const (
	testClientID     = "hookline-client"
	testClientSecret = "cl1ent-s3cret-value"
)

// authEndpoint is an httptest endpoint on 127.0.0.1 that records the
// Authorization (and X-Partner-Id) of each request and answers with
// status(r), echoing the credentials back in a header and the body as a
// careless endpoint might.
type authEndpoint struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

func newAuthEndpoint(t *testing.T, status func(r *http.Request) int) *authEndpoint {
	t.Helper()
	e := &authEndpoint{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.seen = append(e.seen, r.Header.Clone())
		e.mu.Unlock()
		echo := r.Header.Get("Authorization") + " " + r.Header.Get("X-Partner-Id")
		w.Header().Set("X-Echo", echo)
		code := http.StatusOK
		if status != nil {
			code = status(r)
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "you sent %q", echo)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *authEndpoint) requests() []http.Header {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]http.Header(nil), e.seen...)
}

// tokenServer is an OAuth2 token endpoint that checks the client
// credentials grant and counts the tokens it hands out. answer, when set,
// replaces the token response.
type tokenServer struct {
	srv     *httptest.Server
	fetches atomic.Int32
}

func newTokenServer(t *testing.T, answer func(w http.ResponseWriter, n int32)) *tokenServer {
	t.Helper()
	ts := &tokenServer{}
	ts.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkTokenRequest(r); err != nil {
			t.Errorf("token request: %v", err)
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		n := ts.fetches.Add(1)
		if answer != nil {
			answer(w, n)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"acc3ss-tok3n-%d","token_type":"bearer","expires_in":3600}`, n)
	}))
	t.Cleanup(ts.srv.Close)
	return ts
}

// checkTokenRequest accepts the client credentials in either place RFC
// 6749 allows: HTTP basic auth or the form.
func checkTokenRequest(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return err
	}
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	switch {
	case r.Method != http.MethodPost:
		return fmt.Errorf("method %s", r.Method)
	case r.PostForm.Get("grant_type") != "client_credentials":
		return fmt.Errorf("grant_type %q", r.PostForm.Get("grant_type"))
	case r.PostForm.Get("scope") != "read write":
		return fmt.Errorf("scope %q", r.PostForm.Get("scope"))
	case id != testClientID || !strings.HasPrefix(secret, testClientSecret):
		return fmt.Errorf("client %q with a wrong secret", id)
	}
	return nil
}

func oauthWebhook(endpointURL, tokenURL string) schemas.Webhook {
	return schemas.Webhook{
		ID: "wh_auth", URL: endpointURL, TimeoutMS: 5000, ContentType: schemas.ContentTypeJSON,
		Auth: &schemas.Auth{
			Type: schemas.AuthOAuth2Client, TokenURL: tokenURL + "/token?tenant=acme",
			ClientID: testClientID, ClientSecret: testClientSecret, Scopes: []string{"read", "write"},
		},
	}
}

func authJob() schemas.Job {
	return schemas.Job{DeliveryID: "dlv_auth", WebhookID: "wh_auth", EventType: "ticket.created",
		Payload: json.RawMessage(`{"id":"dlv_auth"}`)}
}

func newAuthDeliverer(t *testing.T) *Deliverer {
	t.Helper()
	// The endpoints and token endpoints of these tests are on 127.0.0.1.
	d, err := NewDeliverer(Config{AllowPrivateTargets: true}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// assertNoCredentials fails when any of the values shows anywhere in the
// attempt record.
func assertNoCredentials(t *testing.T, att schemas.Attempt, values ...string) {
	t.Helper()
	record, err := json.Marshal(att)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if strings.Contains(string(record), v) {
			t.Errorf("attempt record contains credential %q: %s", v, record)
		}
	}
}

func TestDeliverStaticAuth(t *testing.T) {
	tests := []struct {
		name string
		auth schemas.Auth
		// check says what is wrong with the request the endpoint got.
		check   func(r http.Header) string
		secrets []string
		// maskedHeader is the request header that must be recorded masked.
		maskedHeader string
	}{
		{
			name: "basic", auth: schemas.Auth{Type: schemas.AuthBasic, Username: "hook-user", Password: "pa55word-basic"},
			check: func(h http.Header) string {
				r := &http.Request{Header: h}
				if u, p, ok := r.BasicAuth(); !ok || u != "hook-user" || p != "pa55word-basic" {
					return fmt.Sprintf("basic auth %q %q %v", u, p, ok)
				}
				return ""
			},
			secrets:      []string{"pa55word-basic", base64.StdEncoding.EncodeToString([]byte("hook-user:pa55word-basic"))},
			maskedHeader: "Authorization",
		},
		{
			name: "bearer", auth: schemas.Auth{Type: schemas.AuthBearer, Token: "b3arer-token-value"},
			check: func(h http.Header) string {
				if got := h.Get("Authorization"); got != "Bearer b3arer-token-value" {
					return "Authorization " + got
				}
				return ""
			},
			secrets:      []string{"b3arer-token-value"},
			maskedHeader: "Authorization",
		},
		{
			// X-Partner-Id says nothing of a secret: it is masked by value.
			name: "api_key in a custom header", auth: schemas.Auth{Type: schemas.AuthAPIKey, Header: "X-Partner-Id", Value: "ap1-key-value"},
			check: func(h http.Header) string {
				if got := h.Get("X-Partner-Id"); got != "ap1-key-value" {
					return "X-Partner-Id " + got
				}
				if h.Get("Authorization") != "" {
					return "an Authorization header besides the key"
				}
				return ""
			},
			secrets:      []string{"ap1-key-value"},
			maskedHeader: "X-Partner-Id",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := newAuthEndpoint(t, nil)
			d := newAuthDeliverer(t)
			wh := schemas.Webhook{ID: "wh_auth", URL: ep.srv.URL, TimeoutMS: 5000, Auth: &tt.auth}

			res := d.Send(context.Background(), wh, authJob())

			reqs := ep.requests()
			if len(reqs) != 1 {
				t.Fatalf("endpoint got %d requests, want 1", len(reqs))
			}
			if problem := tt.check(reqs[0]); problem != "" {
				t.Errorf("endpoint got %s", problem)
			}
			att := res.Attempt
			if att.State != schemas.StateSucceeded || att.StatusCode != http.StatusOK {
				t.Errorf("attempt state %q status %d error %q, want succeeded 200", att.State, att.StatusCode, att.Error)
			}
			if got := att.RequestHeaders[tt.maskedHeader]; got != Masked {
				t.Errorf("recorded %s = %q, want %q", tt.maskedHeader, got, Masked)
			}
			if got := att.ResponseHeaders["X-Echo"]; got != Masked {
				t.Errorf("recorded echo header = %q, want %q", got, Masked)
			}
			assertNoCredentials(t, att, tt.secrets...)
		})
	}
}

func TestDeliverOAuth2FetchesOneTokenForManyDeliveries(t *testing.T) {
	ts := newTokenServer(t, nil)
	ep := newAuthEndpoint(t, func(r *http.Request) int {
		if r.Header.Get("Authorization") != "Bearer acc3ss-tok3n-1" {
			return http.StatusUnauthorized
		}
		return http.StatusNoContent
	})
	d := newAuthDeliverer(t)
	wh := oauthWebhook(ep.srv.URL, ts.srv.URL)

	for i := range 2 {
		att := d.Deliver(context.Background(), wh, authJob())
		if att.State != schemas.StateSucceeded {
			t.Fatalf("delivery %d: state %q status %d error %q", i, att.State, att.StatusCode, att.Error)
		}
		if att.RequestHeaders["Authorization"] != Masked {
			t.Errorf("recorded Authorization = %q, want %q", att.RequestHeaders["Authorization"], Masked)
		}
		assertNoCredentials(t, att, testClientSecret, "acc3ss-tok3n")
	}
	if n := ts.fetches.Load(); n != 1 {
		t.Errorf("two deliveries fetched %d tokens, want 1", n)
	}
	if n := len(ep.requests()); n != 2 {
		t.Errorf("endpoint got %d requests, want 2", n)
	}
}

func TestDeliverOAuth2ConcurrentDeliveriesShareOneFetch(t *testing.T) {
	ts := newTokenServer(t, nil)
	ep := newAuthEndpoint(t, nil)
	d := newAuthDeliverer(t)
	wh := oauthWebhook(ep.srv.URL, ts.srv.URL)

	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if att := d.Deliver(context.Background(), wh, authJob()); att.State != schemas.StateSucceeded {
				t.Errorf("state %q error %q", att.State, att.Error)
			}
		})
	}
	wg.Wait()
	if n := ts.fetches.Load(); n != 1 {
		t.Errorf("16 concurrent deliveries fetched %d tokens, want 1", n)
	}
}

func TestDeliverOAuth2RefetchesOnceOn401(t *testing.T) {
	tests := []struct {
		name string
		// accept is the token the endpoint accepts; "" accepts none.
		accept      string
		wantStatus  int
		wantFetches int32
	}{
		{name: "revoked token is replaced and the attempt succeeds", accept: "Bearer acc3ss-tok3n-2", wantStatus: http.StatusOK, wantFetches: 2},
		{name: "endpoint refusing every token is tried twice only", wantStatus: http.StatusUnauthorized, wantFetches: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, nil)
			ep := newAuthEndpoint(t, func(r *http.Request) int {
				if tt.accept == "" || r.Header.Get("Authorization") != tt.accept {
					return http.StatusUnauthorized
				}
				return http.StatusOK
			})
			d := newAuthDeliverer(t)

			res := d.Send(context.Background(), oauthWebhook(ep.srv.URL, ts.srv.URL), authJob())

			if res.Attempt.StatusCode != tt.wantStatus {
				t.Errorf("status %d error %q, want %d", res.Attempt.StatusCode, res.Attempt.Error, tt.wantStatus)
			}
			if n := ts.fetches.Load(); n != tt.wantFetches {
				t.Errorf("fetched %d tokens, want %d", n, tt.wantFetches)
			}
			reqs := ep.requests()
			if len(reqs) != 2 || reqs[0].Get("Authorization") != "Bearer acc3ss-tok3n-1" || reqs[1].Get("Authorization") != "Bearer acc3ss-tok3n-2" {
				t.Errorf("endpoint got %d requests, want one with each token", len(reqs))
			}
			for i, r := range reqs {
				if r.Get("Webhook-Id") != "dlv_auth" || r.Get("Content-Length") != strconv.Itoa(len(authJob().Payload)) {
					t.Errorf("request %d lacks its headers or body: %v", i, r)
				}
			}
			assertNoCredentials(t, res.Attempt, testClientSecret, "acc3ss-tok3n")
		})
	}
}

func TestDeliverOAuth2TokenFailures(t *testing.T) {
	tests := []struct {
		name      string
		answer    func(w http.ResponseWriter, n int32)
		wantClass Class
		wantError string
	}{
		{
			name: "bad client credentials are permanent",
			answer: func(w http.ResponseWriter, _ int32) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				// A careless token endpoint echoing the secret.
				fmt.Fprintf(w, `{"error":"invalid_client","error_description":"secret %s is wrong"}`, testClientSecret)
			},
			wantClass: Permanent,
			wantError: `: the token endpoint answered 401 Unauthorized "invalid_client" ("secret **** is wrong")`,
		},
		{
			name: "a bad request is permanent",
			answer: func(w http.ResponseWriter, _ int32) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"error":"invalid_scope"}`)
			},
			wantClass: Permanent,
			wantError: `: the token endpoint answered 400 Bad Request "invalid_scope"`,
		},
		{
			name: "an outage is retried",
			answer: func(w http.ResponseWriter, _ int32) {
				http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			},
			wantClass: Retryable,
			wantError: ": the token endpoint answered 503 Service Unavailable",
		},
		{
			name: "a response without a token is retried",
			answer: func(w http.ResponseWriter, _ int32) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"token_type":"bearer"}`)
			},
			wantClass: Retryable,
			wantError: ": oauth2: server response missing access_token",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, tt.answer)
			ep := newAuthEndpoint(t, nil)
			d := newAuthDeliverer(t)

			res := d.Send(context.Background(), oauthWebhook(ep.srv.URL, ts.srv.URL), authJob())

			att := res.Attempt
			wantError := "oauth2: fetching token from " + ts.srv.URL + "/token" + tt.wantError
			if att.StatusCode != 0 || att.State != schemas.StateFailed || att.Error != wantError {
				t.Errorf("attempt status %d state %q error\n%q\nwant 0, failed,\n%q", att.StatusCode, att.State, att.Error, wantError)
			}
			if res.Outcome.Class != tt.wantClass || errors.Is(res.Err, ErrTokenRejected) != (tt.wantClass == Permanent) {
				t.Errorf("outcome %v err %v, want %v", res.Outcome, res.Err, tt.wantClass)
			}
			if strings.Contains(res.Err.Error(), testClientSecret) {
				t.Errorf("Result.Err shows the client secret: %v", res.Err)
			}
			if n := len(ep.requests()); n != 0 {
				t.Errorf("endpoint got %d requests without a token", n)
			}
			assertNoCredentials(t, att, testClientSecret)
		})
	}
}

func TestDeliverOAuth2TokenEndpointUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	ep := newAuthEndpoint(t, nil)

	res := newAuthDeliverer(t).Send(context.Background(), oauthWebhook(ep.srv.URL, closed), authJob())

	if res.Outcome.Class != Retryable || !strings.HasPrefix(res.Attempt.Error, "oauth2: fetching token from "+closed+"/token: ") {
		t.Errorf("outcome %v error %q, want retryable oauth2 error", res.Outcome, res.Attempt.Error)
	}
	if strings.Contains(res.Attempt.Error, "tenant=acme") || strings.Contains(res.Attempt.Error, "Post ") {
		t.Errorf("error %q repeats the token request", res.Attempt.Error)
	}
}

func TestDeliverOAuth2TokenRequestIsGuarded(t *testing.T) {
	ts := newTokenServer(t, nil)
	d, err := NewDeliverer(Config{}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The endpoint would be refused too; the token request comes first.
	res := d.Send(context.Background(), oauthWebhook("http://127.0.0.1:9/hook", ts.srv.URL), authJob())

	want := "oauth2: fetching token from " + ts.srv.URL + "/token: refused: 127.0.0.1 is a loopback address; " +
		"start hookline with --allow-private-targets to allow private targets"
	if res.Attempt.Error != want || !errors.Is(res.Err, ErrForbiddenTarget) || res.Outcome.Class != Permanent {
		t.Errorf("error %q err %v outcome %v, want\n%q, ErrForbiddenTarget, permanent", res.Attempt.Error, res.Err, res.Outcome, want)
	}
	if n := ts.fetches.Load(); n != 0 {
		t.Errorf("the token endpoint on loopback got %d requests", n)
	}
}

func TestDeliverOAuth2CredentialChangeFetchesNewToken(t *testing.T) {
	ts := newTokenServer(t, nil)
	ep := newAuthEndpoint(t, nil)
	d := newAuthDeliverer(t)
	wh := oauthWebhook(ep.srv.URL, ts.srv.URL)

	d.Deliver(context.Background(), wh, authJob())
	changed := wh
	auth := *wh.Auth
	auth.ClientSecret = testClientSecret + "-rotated"
	changed.Auth = &auth
	d.Deliver(context.Background(), changed, authJob())
	d.Deliver(context.Background(), changed, authJob())

	if n := ts.fetches.Load(); n != 2 {
		t.Errorf("fetched %d tokens, want 2: one per set of credentials", n)
	}
	if n := len(d.tokens.byWebhook); n != 1 {
		t.Errorf("cache holds %d entries for one webhook, want 1", n)
	}
}

func TestDeliverOAuth2ExpiredTokenIsRefetched(t *testing.T) {
	// expires_in 1 is inside oauth2's expiry margin: the token is stale at
	// once, so every delivery needs a new one.
	ts := newTokenServer(t, func(w http.ResponseWriter, n int32) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"short-lived-%d","token_type":"bearer","expires_in":1}`, n)
	})
	ep := newAuthEndpoint(t, nil)
	d := newAuthDeliverer(t)

	for range 2 {
		if att := d.Deliver(context.Background(), oauthWebhook(ep.srv.URL, ts.srv.URL), authJob()); att.State != schemas.StateSucceeded {
			t.Fatalf("state %q error %q", att.State, att.Error)
		}
	}
	if n := ts.fetches.Load(); n != 2 {
		t.Errorf("fetched %d tokens, want 2", n)
	}
}

func TestTokenCacheIsBounded(t *testing.T) {
	c := newTokenCache(2)
	auth := &schemas.Auth{Type: schemas.AuthOAuth2Client, TokenURL: "https://auth.example/token", ClientID: "c", ClientSecret: "s"}

	a := c.entry("wh_a", auth)
	c.entry("wh_b", auth)
	if c.entry("wh_a", auth) != a {
		t.Fatal("same webhook and credentials got a new entry")
	}
	c.entry("wh_c", auth) // evicts wh_b, the least recently used

	if c.lru.Len() != 2 || len(c.byWebhook) != 2 {
		t.Fatalf("cache holds %d/%d entries, want 2", c.lru.Len(), len(c.byWebhook))
	}
	if _, ok := c.byWebhook["wh_b"]; ok {
		t.Error("wh_b was kept, wh_a or wh_c evicted instead")
	}
	if c.entry("wh_a", auth) != a {
		t.Error("recently used wh_a was evicted")
	}
}

func TestCredentialFingerprint(t *testing.T) {
	base := schemas.Auth{TokenURL: "https://auth.example/token", ClientID: "id", ClientSecret: "secret", Scopes: []string{"a", "b"}}
	variants := map[string]func(a *schemas.Auth){
		"token url": func(a *schemas.Auth) { a.TokenURL += "2" },
		"client id": func(a *schemas.Auth) { a.ClientID = "id2" },
		"secret":    func(a *schemas.Auth) { a.ClientSecret = "secret2" },
		"scopes":    func(a *schemas.Auth) { a.Scopes = []string{"a b"} },
		"run-in":    func(a *schemas.Auth) { a.ClientID, a.ClientSecret = "ids", "ecret" },
	}
	for name, change := range variants {
		a := base
		change(&a)
		if credentialFingerprint(&a) == credentialFingerprint(&base) {
			t.Errorf("changing the %s keeps the fingerprint", name)
		}
	}
}

func TestSetStaticAuthRefusesBadCredentials(t *testing.T) {
	tests := map[string]schemas.Auth{
		"token with a line break": {Type: schemas.AuthBearer, Token: "tok\r\nX-Injected: 1"},
		"api key header name":     {Type: schemas.AuthAPIKey, Header: "Bad Name", Value: "v"},
		"unknown type":            {Type: "kerberos"},
	}
	for name, auth := range tests {
		t.Run(name, func(t *testing.T) {
			ep := newAuthEndpoint(t, nil)
			wh := schemas.Webhook{ID: "wh_auth", URL: ep.srv.URL, Auth: &auth}

			res := newAuthDeliverer(t).Send(context.Background(), wh, authJob())

			if !errors.Is(res.Err, ErrInvalidRequest) || res.Outcome.Class != Permanent || len(ep.requests()) != 0 {
				t.Errorf("err %v outcome %v requests %d, want ErrInvalidRequest, permanent, none sent", res.Err, res.Outcome, len(ep.requests()))
			}
			if strings.Contains(res.Attempt.Error, "tok\r\n") {
				t.Errorf("error %q shows the credential", res.Attempt.Error)
			}
		})
	}
}
