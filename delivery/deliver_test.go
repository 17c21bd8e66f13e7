package delivery_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/schemas"
	"github.com/hookline/hookline/signing"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

var testStart = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// stepClock returns its time and moves on by step, so that an attempt's
// duration is exactly one step.
type stepClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.step)
	return t
}

// received is one request as the endpoint saw it.
type received struct {
	method string
	header http.Header
	body   []byte
	// verifyErr is what package signing said about the request.
	verifyErr error
}

// receiver is an httptest endpoint that records what it receives and
// answers with respond (204 when nil).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	secret string
	now    func() time.Time
}

func newReceiver(t *testing.T, secret string, now func() time.Time, respond http.HandlerFunc) *receiver {
	t.Helper()
	rc := &receiver{secret: secret, now: now}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rec := received{method: r.Method, header: r.Header.Clone(), body: body}
		if rc.secret != "" {
			rec.verifyErr = signing.Verify(rc.secret, r.Header, body, rc.now(), 0)
		}
		rc.mu.Lock()
		rc.got = append(rc.got, rec)
		rc.mu.Unlock()
		if respond != nil {
			respond(w, r)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) last(t *testing.T) received {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) == 0 {
		t.Fatal("the endpoint received no request")
	}
	return rc.got[len(rc.got)-1]
}

// newDeliverer builds a Deliverer for the httptest endpoints of these
// tests, which listen on 127.0.0.1: it allows private targets. Tests of the
// private-address guard build theirs with delivery.NewDeliverer.
func newDeliverer(t testing.TB, cfg delivery.Config, now func() time.Time) *delivery.Deliverer {
	t.Helper()
	cfg.AllowPrivateTargets = true
	d, err := delivery.NewDeliverer(cfg, nil, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func testJob() schemas.Job {
	return schemas.Job{
		DeliveryID: "dlv_01", WebhookID: "wh_1", Tenant: "acme",
		EventIDs: []string{"ev_1"}, EventType: "ticket.updated", ResourceID: "t_9",
		CreatedAt: testStart.Add(-time.Minute),
		Payload:   json.RawMessage(`{"id":"dlv_01","event_type":"ticket.updated","data":{"subject":"Printer on fire & smoking","priority":"High"}}`),
		Attempts:  2, RedeliveryOf: "dlv_00", ReplayID: "rp_1",
	}
}

func testWebhook(url string) schemas.Webhook {
	return schemas.Webhook{
		ID: "wh_1", Tenant: "acme", Name: "test", URL: url, Enabled: true,
		ContentType: schemas.ContentTypeJSON, Secret: testSecret, TimeoutMS: 5000,
	}
}

func TestDeliverSendsSignedRequest(t *testing.T) {
	tests := []struct {
		name   string
		secret string
	}{
		{name: "whsec secret", secret: testSecret},
		{name: "plain secret", secret: "correct horse battery staple"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &stepClock{t: testStart, step: 25 * time.Millisecond}
			rc := newReceiver(t, tt.secret, func() time.Time { return testStart }, nil)
			d := newDeliverer(t, delivery.Config{UserAgentVersion: "1.2.3"}, clock.Now)
			wh, job := testWebhook(rc.srv.URL+"/hooks?x=1"), testJob()
			wh.Secret = tt.secret

			att := d.Deliver(context.Background(), wh, job)

			got := rc.last(t)
			if got.verifyErr != nil {
				t.Fatalf("receiver could not verify the request: %v", got.verifyErr)
			}
			if got.method != http.MethodPost {
				t.Errorf("method = %s, want POST", got.method)
			}
			if string(got.body) != string(job.Payload) {
				t.Errorf("body = %s, want the payload as it is", got.body)
			}
			for name, want := range map[string]string{
				"Content-Type":       "application/json",
				"User-Agent":         "hookline/1.2.3",
				"webhook-id":         "dlv_01",
				"webhook-timestamp":  strconv.FormatInt(testStart.Unix(), 10),
				"X-Hookline-Event":   "ticket.updated",
				"X-Hookline-Attempt": "3",
				"Content-Length":     strconv.Itoa(len(job.Payload)),
			} {
				if v := got.header.Get(name); v != want {
					t.Errorf("header %s = %q, want %q", name, v, want)
				}
			}
			for name, prefix := range map[string]string{signing.HeaderSignature: "v1,", signing.HeaderSignature256: "sha256="} {
				if v := got.header.Get(name); !strings.HasPrefix(v, prefix) {
					t.Errorf("header %s = %q, want %q...", name, v, prefix)
				}
			}

			want := schemas.Attempt{
				DeliveryID: "dlv_01", WebhookID: "wh_1", Tenant: "acme", EventIDs: []string{"ev_1"},
				EventType: "ticket.updated", N: 3, State: schemas.StateSucceeded, At: testStart,
				DeliveryCreatedAt: job.CreatedAt, StatusCode: http.StatusNoContent, DurationMS: 25,
				URL: wh.URL, RequestBody: string(job.Payload), RedeliveryOf: "dlv_00", ReplayID: "rp_1",
			}
			if att.DeliveryID != want.DeliveryID || att.WebhookID != want.WebhookID || att.Tenant != want.Tenant ||
				len(att.EventIDs) != 1 || att.EventIDs[0] != "ev_1" || att.EventType != want.EventType ||
				att.N != want.N || att.State != want.State || !att.At.Equal(want.At) ||
				!att.DeliveryCreatedAt.Equal(want.DeliveryCreatedAt) || att.StatusCode != want.StatusCode ||
				att.DurationMS != want.DurationMS || att.URL != want.URL || att.RequestBody != want.RequestBody ||
				att.RedeliveryOf != want.RedeliveryOf || att.ReplayID != want.ReplayID || att.Error != "" {
				t.Errorf("attempt =\n%+v\nwant\n%+v", att, want)
			}
			if att.RequestHeaders["Webhook-Id"] != "dlv_01" || att.RequestHeaders["X-Hookline-Attempt"] != "3" {
				t.Errorf("request headers not recorded: %v", att.RequestHeaders)
			}
			if att.ResponseHeaders["Date"] == "" {
				t.Errorf("response headers not recorded: %v", att.ResponseHeaders)
			}
		})
	}
}

func TestDeliverFormEncoding(t *testing.T) {
	// Real clock on both sides: the receiver checks the timestamp as a
	// customer's would.
	rc := newReceiver(t, testSecret, time.Now, nil)
	d := newDeliverer(t, delivery.Config{}, nil)
	wh, job := testWebhook(rc.srv.URL), testJob()
	wh.ContentType = schemas.ContentTypeForm

	att := d.Deliver(context.Background(), wh, job)

	got := rc.last(t)
	if got.verifyErr != nil {
		t.Fatalf("receiver could not verify the form body: %v", got.verifyErr)
	}
	if ct := got.header.Get("Content-Type"); ct != schemas.ContentTypeForm {
		t.Errorf("Content-Type = %q, want %q", ct, schemas.ContentTypeForm)
	}
	form, err := url.ParseQuery(string(got.body))
	if err != nil {
		t.Fatalf("body is not a form: %v", err)
	}
	if len(form) != 1 || form.Get("payload") != string(job.Payload) {
		t.Errorf("form = %v, want only payload=<the JSON>", form)
	}
	if att.RequestBody != string(got.body) || att.State != schemas.StateSucceeded {
		t.Errorf("attempt body %q state %q, want what was sent and succeeded", att.RequestBody, att.State)
	}
	if ua := got.header.Get("User-Agent"); ua != "hookline/"+delivery.DefaultUserAgentVersion {
		t.Errorf("User-Agent = %q", ua)
	}
}

func TestDeliverWithoutSecretSendsNoSignature(t *testing.T) {
	rc := newReceiver(t, "", nil, nil)
	d := newDeliverer(t, delivery.Config{}, nil)
	wh := testWebhook(rc.srv.URL)
	wh.Secret = ""

	att := d.Deliver(context.Background(), wh, testJob())

	got := rc.last(t)
	for _, h := range []string{signing.HeaderSignature, signing.HeaderSignature256} {
		if v := got.header.Get(h); v != "" {
			t.Errorf("%s = %q without a secret", h, v)
		}
	}
	if got.header.Get(signing.HeaderID) == "" || att.State != schemas.StateSucceeded {
		t.Errorf("unsigned delivery lacks webhook-id or failed: %+v", att)
	}
}

func TestDeliverCustomHeadersAndMasking(t *testing.T) {
	rc := newReceiver(t, testSecret, func() time.Time { return testStart }, func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "endpoint-session"})
		w.Header().Set("X-Request-Id", "req-7")
		w.WriteHeader(http.StatusOK)
	})
	d := newDeliverer(t, delivery.Config{}, (&stepClock{t: testStart}).Now)
	wh := testWebhook(rc.srv.URL)
	wh.Headers = map[string]string{
		"Authorization":   "Bearer t0ps3cret",
		"X-Api-Key":       "k3y-value",
		"X-Auth-Token":    "auth-tok",
		"X-Client-Secret": "cl1ent",
		"Cookie":          "sid=cookie-value",
		"X-Tenant":        "acme-visible",
		// Schema validation refuses these; the sender must not let them
		// through even so.
		"User-Agent": "evil/1.0",
		"Webhook-Id": "forged",
	}

	att := d.Deliver(context.Background(), wh, testJob())

	got := rc.last(t)
	if got.verifyErr != nil {
		t.Fatalf("verify: %v", got.verifyErr)
	}
	for name, want := range map[string]string{
		"Authorization": "Bearer t0ps3cret", "X-Api-Key": "k3y-value", "X-Auth-Token": "auth-tok",
		"X-Client-Secret": "cl1ent", "Cookie": "sid=cookie-value", "X-Tenant": "acme-visible",
		"User-Agent": "hookline/dev", "Webhook-Id": "dlv_01",
	} {
		if v := got.header.Get(name); v != want {
			t.Errorf("endpoint got %s = %q, want %q", name, v, want)
		}
	}

	for _, name := range []string{"Authorization", "X-Api-Key", "X-Auth-Token", "X-Client-Secret", "Cookie"} {
		if v := att.RequestHeaders[name]; v != delivery.Masked {
			t.Errorf("recorded %s = %q, want %q", name, v, delivery.Masked)
		}
	}
	// Hookline's own signatures are recorded as sent, for comparing with a
	// receiver's check.
	for _, name := range []string{"Webhook-Signature", "X-Hookline-Signature-256"} {
		if v := att.RequestHeaders[name]; v == "" || v != got.header.Get(name) {
			t.Errorf("recorded %s = %q, want the one sent, %q", name, v, got.header.Get(name))
		}
	}
	if v := att.RequestHeaders["X-Tenant"]; v != "acme-visible" {
		t.Errorf("recorded X-Tenant = %q, want it in clear", v)
	}
	if v := att.ResponseHeaders["Set-Cookie"]; v != delivery.Masked {
		t.Errorf("recorded response Set-Cookie = %q, want masked", v)
	}
	if v := att.ResponseHeaders["X-Request-Id"]; v != "req-7" {
		t.Errorf("recorded response X-Request-Id = %q", v)
	}

	record, err := json.Marshal(att)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{"t0ps3cret", "k3y-value", "auth-tok", "cl1ent", "cookie-value", "endpoint-session",
		strings.TrimPrefix(testSecret, "whsec_")}
	for _, s := range secrets {
		if strings.Contains(string(record), s) {
			t.Errorf("attempt record contains secret %q: %s", s, record)
		}
	}
}

func TestDeliverTimeout(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, "", nil, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release) // before rc.srv.Close, which waits for the handler
	d := newDeliverer(t, delivery.Config{}, nil)
	wh := testWebhook(rc.srv.URL)
	wh.TimeoutMS = 50

	start := time.Now()
	res := d.Send(context.Background(), wh, testJob())
	elapsed := time.Since(start)

	att := res.Attempt
	if att.StatusCode != 0 || att.State != schemas.StateFailed || !strings.Contains(att.Error, "timeout") {
		t.Errorf("attempt status %d state %q error %q, want 0, failed, a timeout", att.StatusCode, att.State, att.Error)
	}
	if !errors.Is(res.Err, context.DeadlineExceeded) || res.Outcome.Class != delivery.Retryable {
		t.Errorf("err %v outcome %v, want deadline exceeded and retryable", res.Err, res.Outcome)
	}
	if elapsed > 3*time.Second || att.DurationMS < 50 {
		t.Errorf("elapsed %s, recorded %dms: the 50ms timeout was not applied", elapsed, att.DurationMS)
	}
}

func TestDeliverConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	d := newDeliverer(t, delivery.Config{}, nil)

	res := d.Send(context.Background(), testWebhook("http://"+addr+"/hook"), testJob())

	if res.Attempt.StatusCode != 0 || res.Attempt.Error == "" || res.Attempt.State != schemas.StateFailed {
		t.Errorf("attempt %+v, want status 0, an error, failed", res.Attempt)
	}
	if strings.Contains(res.Attempt.Error, "Post ") {
		t.Errorf("error %q repeats the request line", res.Attempt.Error)
	}
	if res.Outcome.Class != delivery.Retryable || res.Err == nil {
		t.Errorf("outcome %v err %v, want retryable with an error", res.Outcome, res.Err)
	}
}

func TestDeliverDoesNotFollowRedirects(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			var followed atomic.Int32
			mux := http.NewServeMux()
			mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
			mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/moved", status)
			})
			srv := httptest.NewServer(mux)
			defer srv.Close()
			d := newDeliverer(t, delivery.Config{}, nil)

			res := d.Send(context.Background(), testWebhook(srv.URL+"/hook"), testJob())

			if n := followed.Load(); n != 0 {
				t.Fatalf("redirect followed %d times", n)
			}
			att := res.Attempt
			if att.StatusCode != status || att.State != schemas.StateFailed || res.Outcome.Class != delivery.Permanent {
				t.Errorf("status %d state %q outcome %v, want %d, failed, permanent", att.StatusCode, att.State, res.Outcome, status)
			}
			if loc := att.ResponseHeaders["Location"]; loc != "/moved" {
				t.Errorf("recorded Location = %q, want /moved", loc)
			}
		})
	}
}

func TestDeliverGivenClientStillRefusesRedirects(t *testing.T) {
	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/moved", http.StatusFound) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}

	d, err := delivery.NewDeliverer(delivery.Config{}, client, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	att := d.Deliver(context.Background(), testWebhook(srv.URL+"/hook"), testJob())

	if followed.Load() != 0 || att.StatusCode != http.StatusFound {
		t.Errorf("followed %d, status %d: the given client's redirect policy leaked through", followed.Load(), att.StatusCode)
	}
	if client.CheckRedirect == nil || client.CheckRedirect(nil, nil) != nil {
		t.Error("NewDeliverer modified the caller's client")
	}
}

func TestDeliverGivenClientCookieJarIsNotUsed(t *testing.T) {
	rc := newReceiver(t, "", nil, func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "from-first-response", Path: "/"})
		w.WriteHeader(http.StatusOK)
	})
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := delivery.NewDeliverer(delivery.Config{}, &http.Client{Jar: jar}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	for range 2 {
		d.Deliver(context.Background(), testWebhook(rc.srv.URL), testJob())
	}

	if c := rc.last(t).header.Get("Cookie"); c != "" {
		t.Errorf("second delivery carried Cookie %q from the first response", c)
	}
}

func TestDeliverCapsResponseBody(t *testing.T) {
	tests := []struct {
		name     string
		cfg      delivery.Config
		bodySize int
		wantSize int
	}{
		{name: "default cap is 64 KiB", bodySize: 100 << 10, wantSize: 64 << 10},
		{name: "configured cap", cfg: delivery.Config{MaxResponseBody: 100}, bodySize: 10_000, wantSize: 100},
		{name: "short body kept whole", bodySize: 10, wantSize: 10},
		{name: "body beyond the drain limit", cfg: delivery.Config{MaxResponseBody: 10, MaxDrain: 10}, bodySize: 1 << 20, wantSize: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := strings.Repeat("0123456789", tt.bodySize/10+1)[:tt.bodySize]
			rc := newReceiver(t, "", nil, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusInternalServerError)
				io.WriteString(w, body)
			})
			d := newDeliverer(t, tt.cfg, nil)

			res := d.Send(context.Background(), testWebhook(rc.srv.URL), testJob())

			att := res.Attempt
			if len(att.ResponseBody) != tt.wantSize || att.ResponseBody != body[:tt.wantSize] {
				t.Errorf("recorded %d bytes, want the first %d", len(att.ResponseBody), tt.wantSize)
			}
			if att.StatusCode != 500 || att.Error != "" || res.Outcome.Class != delivery.Retryable {
				t.Errorf("status %d error %q outcome %v, want 500, no error, retryable", att.StatusCode, att.Error, res.Outcome)
			}
		})
	}
}

func TestDeliverReusesConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 10_000)) // more than the cap, less than the drain limit
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	d := newDeliverer(t, delivery.Config{MaxResponseBody: 100}, nil)

	for range 5 {
		if att := d.Deliver(context.Background(), testWebhook(srv.URL), testJob()); att.State != schemas.StateSucceeded {
			t.Fatalf("attempt failed: %+v", att)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("5 sequential deliveries opened %d connections, want 1", n)
	}
}

func TestDeliverOutcomeByStatus(t *testing.T) {
	tests := []struct {
		status    int
		wantState string
		wantClass delivery.Class
		disable   bool
	}{
		{200, schemas.StateSucceeded, delivery.Succeeded, false},
		{202, schemas.StateSucceeded, delivery.Succeeded, false},
		{400, schemas.StateFailed, delivery.Permanent, false},
		{410, schemas.StateFailed, delivery.Permanent, true},
		{429, schemas.StateFailed, delivery.Retryable, false},
		{503, schemas.StateFailed, delivery.Retryable, false},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			rc := newReceiver(t, "", nil, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(tt.status) })
			d := newDeliverer(t, delivery.Config{}, nil)

			res := d.Send(context.Background(), testWebhook(rc.srv.URL), testJob())

			if res.Attempt.StatusCode != tt.status || res.Attempt.State != tt.wantState ||
				res.Outcome.Class != tt.wantClass || res.Outcome.DisableWebhook != tt.disable {
				t.Errorf("got status %d state %q outcome %+v", res.Attempt.StatusCode, res.Attempt.State, res.Outcome)
			}
		})
	}
}

func TestDeliverInvalidInputsNeverPanic(t *testing.T) {
	rc := newReceiver(t, "", nil, nil)
	valid := testWebhook(rc.srv.URL)
	tests := []struct {
		name string
		job  schemas.Job // default: an id and a negative attempt count
		wh   func() schemas.Webhook
	}{
		{name: "empty webhook", wh: func() schemas.Webhook { return schemas.Webhook{} }},
		{name: "job without delivery id", job: schemas.Job{Attempts: -3, EventType: "ticket.created"}, wh: func() schemas.Webhook { return valid }},
		{name: "ftp URL", wh: func() schemas.Webhook { w := valid; w.URL = "ftp://example.com/x"; return w }},
		{name: "URL without host", wh: func() schemas.Webhook { w := valid; w.URL = "http://"; return w }},
		{name: "unparsable URL", wh: func() schemas.Webhook { w := valid; w.URL = "http://[::1"; return w }},
		{name: "relative URL", wh: func() schemas.Webhook { w := valid; w.URL = "/hook"; return w }},
		{name: "URL with credentials", wh: func() schemas.Webhook { w := valid; w.URL = strings.Replace(rc.srv.URL, "//", "//u:p@", 1); return w }},
		{name: "header name with a space", wh: func() schemas.Webhook { w := valid; w.Headers = map[string]string{"Bad Name": "v"}; return w }},
		{name: "header value with CRLF", wh: func() schemas.Webhook {
			w := valid
			w.Headers = map[string]string{"X-Ok": "v\r\nX-Injected: 1"}
			return w
		}},
		{name: "whsec secret that is not base64", wh: func() schemas.Webhook { w := valid; w.Secret = "whsec_n0t-base64!"; return w }},
	}
	d := newDeliverer(t, delivery.Config{}, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wh, job := tt.wh(), tt.job
			if job.EventType == "" {
				job = schemas.Job{DeliveryID: "dlv_x", Attempts: -3}
			}
			res := d.Send(context.Background(), wh, job)

			if !errors.Is(res.Err, delivery.ErrInvalidRequest) || res.Outcome.Class != delivery.Permanent {
				t.Errorf("err %v outcome %v, want ErrInvalidRequest and permanent", res.Err, res.Outcome)
			}
			att := res.Attempt
			if att.StatusCode != 0 || att.State != schemas.StateFailed || att.Error == "" || att.N != 1 || att.URL != wh.URL {
				t.Errorf("attempt %+v, want status 0, failed, an error, n 1, the URL", att)
			}
			if wh.Secret != "" && strings.Contains(att.Error, strings.TrimPrefix(wh.Secret, "whsec_")) {
				t.Errorf("error text %q shows the secret", att.Error)
			}
		})
	}
	if n := len(rc.got); n != 0 {
		t.Errorf("the endpoint received %d of the invalid requests", n)
	}
}

func TestDeliverOddJobsStillDeliver(t *testing.T) {
	rc := newReceiver(t, testSecret, time.Now, nil)
	d := newDeliverer(t, delivery.Config{}, nil)
	wh := testWebhook(rc.srv.URL)
	wh.TimeoutMS = math.MaxInt // capped, not overflowed into a negative timeout
	wh.ContentType = ""        // taken as JSON

	att := d.Deliver(context.Background(), wh, schemas.Job{DeliveryID: "dlv_min"})

	got := rc.last(t)
	if att.State != schemas.StateSucceeded || got.verifyErr != nil || len(got.body) != 0 {
		t.Errorf("attempt %+v verify %v body %q, want an empty, signed, succeeded delivery", att, got.verifyErr, got.body)
	}
	if att.WebhookID != wh.ID || got.header.Get("Content-Type") != schemas.ContentTypeJSON {
		t.Errorf("webhook id %q content type %q", att.WebhookID, got.header.Get("Content-Type"))
	}
}

func TestDeliverCancelledContext(t *testing.T) {
	rc := newReceiver(t, "", nil, nil)
	d := newDeliverer(t, delivery.Config{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	res := d.Send(ctx, testWebhook(rc.srv.URL), testJob())

	if !errors.Is(res.Err, context.Canceled) || res.Attempt.StatusCode != 0 || !strings.Contains(res.Attempt.Error, "cancelled") {
		t.Errorf("err %v attempt %+v, want a cancelled attempt", res.Err, res.Attempt)
	}
}

func TestDeliverConcurrently(t *testing.T) {
	rc := newReceiver(t, testSecret, time.Now, nil)
	d := newDeliverer(t, delivery.Config{}, nil)
	var wg sync.WaitGroup
	failures := make(chan string, 32)
	for i := range 32 {
		wg.Go(func() {
			job := testJob()
			job.DeliveryID = "dlv_" + strconv.Itoa(i)
			if att := d.Deliver(context.Background(), testWebhook(rc.srv.URL), job); att.State != schemas.StateSucceeded {
				failures <- att.DeliveryID + ": " + att.Error
			}
		})
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, r := range rc.got {
		if r.verifyErr != nil {
			t.Errorf("%s: %v", r.header.Get("webhook-id"), r.verifyErr)
		}
	}
	if len(rc.got) != 32 {
		t.Errorf("endpoint received %d requests, want 32", len(rc.got))
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     delivery.Config
		wantErr bool
	}{
		{name: "zero config takes defaults", cfg: delivery.Config{}},
		{name: "explicit values", cfg: delivery.Config{UserAgentVersion: "1.4.0-rc.1", MaxResponseBody: 1, DefaultTimeout: time.Second, MaxTimeout: time.Minute}},
		{name: "negative body cap", cfg: delivery.Config{MaxResponseBody: -1}, wantErr: true},
		{name: "negative dial timeout", cfg: delivery.Config{DialTimeout: -time.Second}, wantErr: true},
		{name: "default timeout above the cap", cfg: delivery.Config{DefaultTimeout: time.Hour}, wantErr: true},
		{name: "version with a space", cfg: delivery.Config{UserAgentVersion: "1.0 beta"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, want error %v", err, tt.wantErr)
			}
			if _, nerr := delivery.NewDeliverer(tt.cfg, nil, nil, nil); (nerr != nil) != tt.wantErr {
				t.Fatalf("NewDeliverer error = %v, want error %v", nerr, tt.wantErr)
			}
		})
	}
}
