package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/client"
	"github.com/hookline/hookline/schemas"
	"github.com/hookline/hookline/signing"
)

// captured is one request a capturing endpoint received.
type captured struct {
	header http.Header
	body   []byte
}

// TestServeSignsForBothSecretsDuringARotation: a webhook with the Standard
// Webhooks test vector's secret is rotated with an overlap; the deliveries
// after it verify with the old secret and with the new one, by signing
// and by an HMAC computed here from the Standard Webhooks rules alone, and
// the GitHub-style header is keyed with the new secret string.
func TestServeSignsForBothSecretsDuringARotation(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	const oldSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // the Standard Webhooks vector's
	var mu sync.Mutex
	var got []captured
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, captured{r.Header.Clone(), b})
		mu.Unlock()
	}))
	defer srv.Close()
	p := startServe(t, "--data-dir", t.TempDir())
	defer p.stop(t)
	ctx := context.Background()
	api := p.api()
	hook := createHook(t, p, schemas.WebhookInput{Name: client.Ptr("rotating"), URL: client.Ptr(srv.URL), Secret: client.Ptr(oldSecret)})

	rotated, err := api.RotateSecret(ctx, hook.ID, "", 10*time.Minute)
	fatalIf(t, err)
	newSecret := rotated.Secret
	if !strings.HasPrefix(newSecret, signing.SecretPrefix) {
		t.Fatalf("rotate answered secret %q, want a generated whsec_ secret", newSecret)
	}
	_, err = api.PublishEvents(ctx, schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: "t1", Data: json.RawMessage(`{"n":1}`)})
	fatalIf(t, err)
	waitFor(t, "the delivery", 30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) > 0 })

	mu.Lock()
	c := got[0]
	mu.Unlock()
	now := time.Now()
	for _, secret := range []string{oldSecret, newSecret} {
		if err := signing.Verify(secret, c.header, c.body, now, time.Minute); err != nil {
			t.Errorf("signing.Verify with %s…: %v", secret[:10], err)
		}
		// The Standard Webhooks rule, computed here: key = base64 of what
		// follows whsec_, content = id.timestamp.body, one v1 entry of the
		// space-separated list must match.
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		fatalIf(t, err)
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(c.header.Get("webhook-id") + "." + c.header.Get("webhook-timestamp") + "."))
		mac.Write(c.body)
		want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
		if !strings.Contains(" "+c.header.Get("webhook-signature")+" ", " "+want+" ") {
			t.Errorf("webhook-signature %q has no entry %q for %s…", c.header.Get("webhook-signature"), want, secret[:10])
		}
	}
	mac := hmac.New(sha256.New, []byte(newSecret)) // octokit's verify(secret, body, signature)
	mac.Write(c.body)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); c.header.Get("X-Hookline-Signature-256") != want {
		t.Errorf("X-Hookline-Signature-256 = %q, want %q (keyed with the new secret string)", c.header.Get("X-Hookline-Signature-256"), want)
	}
}

// TestServeSendsATestDelivery: a test delivery to a disabled webhook goes
// through the pipeline: the receiver verifies a signed hookline.ping, and
// the history shows it succeeded.
func TestServeSendsATestDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	const secret = "whsec_dGVzdC1kZWxpdmVyeS1zZWNyZXQ="
	recv := newReceiver(t, secret)
	p := startServe(t, "--data-dir", t.TempDir())
	defer p.stop(t)
	ctx := context.Background()
	api := p.api()
	hook := createHook(t, p, schemas.WebhookInput{Name: client.Ptr("pinged"), URL: client.Ptr(recv.URL),
		Secret: client.Ptr(secret), Enabled: client.Ptr(false), Events: client.Ptr([]string{"order.paid"})})
	d, err := api.SendTest(ctx, hook.ID, "")
	fatalIf(t, err)
	waitFor(t, "the test delivery", 30*time.Second, func() bool { _, n, _ := recv.snapshot(); return n > 0 })
	bodies, _, failures := recv.snapshot()
	if len(failures) > 0 {
		t.Fatalf("the receiver refused the test delivery: %v", failures)
	}
	var env schemas.Envelope
	fatalIf(t, json.Unmarshal(bodies[d.ID], &env))
	if env.EventType != schemas.PingEventType || env.WebhookID != hook.ID {
		t.Fatalf("received %s, want a hookline.ping for the webhook", bodies[d.ID])
	}
	waitFor(t, "the test delivery in the history", 30*time.Second, func() bool {
		got, err := api.Delivery(ctx, d.ID)
		return err == nil && got.State == schemas.StateSucceeded && got.EventType == schemas.PingEventType
	})
}

// TestServeMetricsOnTheirOwnAddress: with --metrics-addr, /metrics is
// served there without a token, and the API's /metrics points to it.
func TestServeMetricsOnTheirOwnAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	fatalIf(t, err)
	addr := l.Addr().String()
	l.Close()
	p := startServe(t, "--data-dir", t.TempDir(), "--metrics-addr", addr, "--api-tokens", "tok:acme")
	defer p.stop(t)
	resp, err := http.Get("http://" + addr + "/metrics")
	fatalIf(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "hookline_sender_attempts_total") && !strings.Contains(string(body), "go_goroutines") {
		t.Fatalf("--metrics-addr /metrics: %d %.200s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodGet, p.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err = http.DefaultClient.Do(req)
	fatalIf(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), addr) {
		t.Fatalf("the API's /metrics with --metrics-addr, with a token: %d %s; want a 404 naming %s", resp.StatusCode, body, addr)
	}
}

// TestServeRefusesABusyDataDirAndAddressAtOnce: a second serve on a data
// directory in use says so at once, and one on an address in use fails
// with that as its only error, before starting anything.
func TestServeRefusesABusyDataDirAndAddressAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	p := startServe(t, "--data-dir", dir)
	defer p.stop(t)
	run := func(args ...string) (string, time.Duration) {
		start := time.Now()
		out, err := exec.Command(binary, append([]string{"serve", "--allow-private-targets"}, args...)...).CombinedOutput()
		if err == nil {
			t.Fatalf("serve %v succeeded beside a running one", args)
		}
		return string(out), time.Since(start)
	}
	out, took := run("--data-dir", dir, "--http-addr", "127.0.0.1:0")
	if !strings.Contains(out, "in use by another hookline serve") || took > 3*time.Second {
		t.Fatalf("second serve on the data dir, after %v: %s", took, out)
	}
	addr := strings.TrimPrefix(p.base, "http://")
	out, took = run("--data-dir", t.TempDir(), "--http-addr", addr)
	if !strings.Contains(out, "--http-addr") || !strings.Contains(out, "address already in use") || strings.Contains(out, "level=WARN") || took > 3*time.Second {
		t.Fatalf("serve on an address in use, after %v: %s", took, out)
	}
}

func TestProgressRateIsOverAtLeastASecond(t *testing.T) {
	if got := rate(500, time.Now(), "deliveries"); got != "500 deliveries/s" {
		t.Fatalf("a jump right after the start: %q, want the count over one second", got)
	}
	if got := rate(600, time.Now().Add(-time.Minute), "events"); got != "10 events/s" {
		t.Fatalf("600 over a minute: %q", got)
	}
}
