package signing_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/signing"
)

var (
	testTime = time.Unix(1_700_000_000, 0)
	testBody = []byte(`{"id":"dlv_1","event_type":"ticket.updated","data":{"priority":"High"}}`)
)

// independentMAC recomputes an HMAC without going through the package.
func independentMAC(key []byte, parts ...string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(strings.Join(parts, "")))
	return mac.Sum(nil)
}

func signedHeader(t *testing.T, secret, id string, ts time.Time, body []byte) http.Header {
	t.Helper()
	std, gh, err := signing.Sign(id, ts, body, secret)
	if err != nil {
		t.Fatalf("Sign with %q: %v", secret, err)
	}
	h := http.Header{}
	h.Set(signing.HeaderID, id)
	h.Set(signing.HeaderTimestamp, signing.Timestamp(ts))
	h.Set(signing.HeaderSignature, std)
	h.Set(signing.HeaderSignature256, gh)
	return h
}

func TestSignMatchesIndependentHMAC(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		key    []byte
	}{
		{name: "plain secret uses its UTF-8 bytes", secret: "s3cr3t-ünïcode", key: []byte("s3cr3t-ünïcode")},
		{name: "whsec secret uses the decoded bytes", secret: "whsec_" + base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 0xff, 'k'}), key: []byte{0, 1, 2, 0xff, 'k'}},
		{name: "whsec secret without padding", secret: "whsec_" + base64.RawStdEncoding.EncodeToString([]byte("abcd")), key: []byte("abcd")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := signing.Key(tt.secret)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(key, tt.key) {
				t.Fatalf("Key = %x, want %x", key, tt.key)
			}
			std, gh, err := signing.Sign("dlv_1", testTime, testBody, tt.secret)
			if err != nil {
				t.Fatal(err)
			}
			wantStd := "v1," + base64.StdEncoding.EncodeToString(
				independentMAC(tt.key, "dlv_1.", strconv.FormatInt(testTime.Unix(), 10), ".", string(testBody)))
			// GitHub style: always the secret string's bytes, as octokit's
			// verify(secret, body, signature) computes it.
			wantGH := "sha256=" + hex.EncodeToString(independentMAC([]byte(tt.secret), string(testBody)))
			if std != wantStd {
				t.Errorf("standard signature = %q, want %q", std, wantStd)
			}
			if gh != wantGH {
				t.Errorf("github signature = %q, want %q", gh, wantGH)
			}
		})
	}
}

// TestStandardWebhooksVector checks the test vector published with the
// Standard Webhooks reference libraries, so that receivers using those
// libraries accept Hookline's signatures.
func TestStandardWebhooksVector(t *testing.T) {
	const secret, id, body = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", `{"test": 2432232314}`
	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	ts := time.Unix(1614265330, 0)
	std, _, err := signing.Sign(id, ts, []byte(body), secret)
	if err != nil {
		t.Fatal(err)
	}
	if std != want {
		t.Fatalf("signature = %q, want %q", std, want)
	}
	// Verify accepts the vector as any Standard Webhooks sender sends it:
	// without Hookline's GitHub-style header.
	h := http.Header{}
	h.Set(signing.HeaderID, id)
	h.Set(signing.HeaderTimestamp, "1614265330")
	h.Set(signing.HeaderSignature, want)
	if err := signing.Verify(secret, h, []byte(body), ts, time.Minute); err != nil {
		t.Fatalf("Verify of the published vector: %v", err)
	}
}

func TestKeyRejectsInvalidSecrets(t *testing.T) {
	for _, secret := range []string{"", "whsec_", "whsec_not*base64!", "whsec_===="} {
		if _, err := signing.Key(secret); !errors.Is(err, signing.ErrInvalidSecret) {
			t.Errorf("Key(%q) error = %v, want ErrInvalidSecret", secret, err)
		}
	}
}

func TestVerify(t *testing.T) {
	const secret = "whsec_c2VjcmV0LWtleS1ieXRlcw=="
	tests := []struct {
		name    string
		header  func() http.Header
		body    []byte
		secret  string
		now     time.Time
		wantErr error
	}{
		{
			name:   "valid delivery",
			header: func() http.Header { return signedHeader(t, secret, "dlv_1", testTime, testBody) },
		},
		{
			name:   "clock skew inside tolerance",
			header: func() http.Header { return signedHeader(t, secret, "dlv_1", testTime, testBody) },
			now:    testTime.Add(4 * time.Minute),
		},
		{
			name: "plain secret",
			header: func() http.Header {
				return signedHeader(t, "plain-secret", "dlv_1", testTime, testBody)
			},
			secret: "plain-secret",
		},
		{
			name:    "tampered body",
			header:  func() http.Header { return signedHeader(t, secret, "dlv_1", testTime, testBody) },
			body:    bytes.Replace(testBody, []byte("High"), []byte("Low!"), 1),
			wantErr: signing.ErrBadSignature,
		},
		{
			name:    "wrong secret",
			header:  func() http.Header { return signedHeader(t, "another-secret", "dlv_1", testTime, testBody) },
			wantErr: signing.ErrBadSignature,
		},
		{
			name: "webhook-id swapped for another delivery",
			header: func() http.Header {
				h := signedHeader(t, secret, "dlv_1", testTime, testBody)
				h.Set(signing.HeaderID, "dlv_2")
				return h
			},
			wantErr: signing.ErrBadSignature,
		},
		{
			name: "timestamp changed without re-signing",
			header: func() http.Header {
				h := signedHeader(t, secret, "dlv_1", testTime, testBody)
				h.Set(signing.HeaderTimestamp, signing.Timestamp(testTime.Add(time.Second)))
				return h
			},
			wantErr: signing.ErrBadSignature,
		},
		{
			// webhook-signature decides when sent: during a rotation the
			// GitHub style is made with the new secret only.
			name: "github signature of another secret beside a matching standard one",
			header: func() http.Header {
				h := signedHeader(t, secret, "dlv_1", testTime, testBody)
				h.Set(signing.HeaderSignature256, "sha256="+strings.Repeat("00", 32))
				return h
			},
		},
		{
			name: "github signature alone, tampered",
			header: func() http.Header {
				h := signedHeader(t, secret, "dlv_1", testTime, testBody)
				h.Del(signing.HeaderSignature)
				h.Set(signing.HeaderSignature256, "sha256="+strings.Repeat("00", 32))
				return h
			},
			wantErr: signing.ErrBadSignature,
		},
		{
			name:    "stale timestamp",
			header:  func() http.Header { return signedHeader(t, secret, "dlv_1", testTime, testBody) },
			now:     testTime.Add(5*time.Minute + time.Second),
			wantErr: signing.ErrTimestamp,
		},
		{
			name:    "timestamp from the future",
			header:  func() http.Header { return signedHeader(t, secret, "dlv_1", testTime, testBody) },
			now:     testTime.Add(-6 * time.Minute),
			wantErr: signing.ErrTimestamp,
		},
		{
			name: "timestamp not a number",
			header: func() http.Header {
				h := signedHeader(t, secret, "dlv_1", testTime, testBody)
				h.Set(signing.HeaderTimestamp, "yesterday")
				return h
			},
			wantErr: signing.ErrTimestamp,
		},
		{
			name:    "no signature headers",
			header:  func() http.Header { return http.Header{} },
			wantErr: signing.ErrNoSignature,
		},
		{
			// A Standard Webhooks sender sends no GitHub-style header.
			name: "standard signature alone",
			header: func() http.Header {
				h := signedHeader(t, secret, "dlv_1", testTime, testBody)
				h.Del(signing.HeaderSignature256)
				return h
			},
		},
		{
			// A GitHub-style sender sends no webhook-signature.
			name: "github signature alone",
			header: func() http.Header {
				h := signedHeader(t, secret, "dlv_1", testTime, testBody)
				h.Del(signing.HeaderSignature)
				h.Del(signing.HeaderID)
				h.Del(signing.HeaderTimestamp)
				return h
			},
		},
		{
			name: "github signature alone, keyed with the decoded whsec_ bytes",
			header: func() http.Header {
				h := signedHeader(t, secret, "dlv_1", testTime, testBody)
				h.Del(signing.HeaderSignature)
				key, _ := signing.Key(secret)
				h.Set(signing.HeaderSignature256, "sha256="+hex.EncodeToString(independentMAC(key, string(testBody))))
				return h
			},
			wantErr: signing.ErrBadSignature,
		},
		{
			name: "webhook-id missing",
			header: func() http.Header {
				h := signedHeader(t, secret, "dlv_1", testTime, testBody)
				h.Del(signing.HeaderID)
				return h
			},
			wantErr: signing.ErrBadSignature,
		},
		{
			name:    "invalid secret",
			header:  func() http.Header { return signedHeader(t, secret, "dlv_1", testTime, testBody) },
			secret:  "whsec_%%%",
			wantErr: signing.ErrInvalidSecret,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, sec, now := tt.body, tt.secret, tt.now
			if body == nil {
				body = testBody
			}
			if sec == "" {
				sec = secret
			}
			if now.IsZero() {
				now = testTime
			}
			err := signing.Verify(sec, tt.header(), body, now, 0)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyMultipleSignatures(t *testing.T) {
	const secret = "new-secret"
	good := signedHeader(t, secret, "dlv_1", testTime, testBody)
	oldStd, _, _ := signing.Sign("dlv_1", testTime, testBody, "old-secret")
	tests := []struct {
		name    string
		value   []string
		wantErr error
	}{
		{name: "match listed last", value: []string{oldStd + " v1a,ZWQyNTUxOQ== " + good.Get(signing.HeaderSignature)}},
		{name: "match listed first", value: []string{good.Get(signing.HeaderSignature) + " " + oldStd}},
		{name: "match in a second header line", value: []string{oldStd, good.Get(signing.HeaderSignature)}},
		{name: "garbage entries around a match", value: []string{"v1 v1, v1,!!! ,x " + good.Get(signing.HeaderSignature)}},
		{name: "only other secrets", value: []string{oldStd + " " + oldStd}, wantErr: signing.ErrBadSignature},
		{name: "right bytes under another version", value: []string{"v2" + strings.TrimPrefix(good.Get(signing.HeaderSignature), "v1")}, wantErr: signing.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := good.Clone()
			h[http.CanonicalHeaderKey(signing.HeaderSignature)] = tt.value
			err := signing.Verify(secret, h, testBody, testTime, time.Minute)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyCustomTolerance(t *testing.T) {
	h := signedHeader(t, "s", "dlv_1", testTime, testBody)
	if err := signing.Verify("s", h, testBody, testTime.Add(30*time.Second), 10*time.Second); !errors.Is(err, signing.ErrTimestamp) {
		t.Fatalf("30s late with 10s tolerance: error = %v, want ErrTimestamp", err)
	}
	if err := signing.Verify("s", h, testBody, testTime.Add(30*time.Second), time.Hour); err != nil {
		t.Fatalf("30s late with 1h tolerance: %v", err)
	}
}

func TestVerifyRequest(t *testing.T) {
	now := time.Now()
	newRequest := func(body []byte) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
		for k, v := range signedHeader(t, "s", "dlv_1", now, testBody) {
			r.Header[k] = v
		}
		return r
	}

	t.Run("valid request returns body and keeps it readable", func(t *testing.T) {
		r := newRequest(testBody)
		body, err := signing.VerifyRequest("s", r, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, testBody) {
			t.Fatalf("body = %q, want %q", body, testBody)
		}
		again, _ := io.ReadAll(r.Body)
		if !bytes.Equal(again, testBody) {
			t.Fatalf("r.Body after verification = %q, want %q", again, testBody)
		}
	})
	t.Run("tampered request returns no body", func(t *testing.T) {
		body, err := signing.VerifyRequest("s", newRequest([]byte(`{"forged":true}`)), 0)
		if !errors.Is(err, signing.ErrBadSignature) || body != nil {
			t.Fatalf("VerifyRequest = %q, %v; want nil, ErrBadSignature", body, err)
		}
	})
	t.Run("oversized body", func(t *testing.T) {
		_, err := signing.VerifyRequest("s", newRequest(make([]byte, signing.MaxBodyBytes+1)), 0)
		if !errors.Is(err, signing.ErrBodyTooLarge) {
			t.Fatalf("error = %v, want ErrBodyTooLarge", err)
		}
	})
}

func TestVerifyNeverPanics(t *testing.T) {
	headers := []http.Header{
		nil,
		{"Webhook-Signature": {""}, "X-Hookline-Signature-256": {""}},
		{"Webhook-Id": {"x"}, "Webhook-Timestamp": {"-9223372036854775808"}, "Webhook-Signature": {"v1,"}, "X-Hookline-Signature-256": {"sha256="}},
		{"Webhook-Id": {"x"}, "Webhook-Timestamp": {"9223372036854775807"}, "Webhook-Signature": {"v1,AAAA"}, "X-Hookline-Signature-256": {"sha256=zz"}},
		{"Webhook-Id": {"x"}, "Webhook-Timestamp": {"1"}, "Webhook-Signature": {",,, v1 ,"}, "X-Hookline-Signature-256": {"sha256"}},
	}
	for i, h := range headers {
		if err := signing.Verify("s", h, nil, testTime, time.Minute); err == nil {
			t.Errorf("header %d verified", i)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	for _, size := range []int{256, 4 << 10, 64 << 10} {
		body := bytes.Repeat([]byte("x"), size)
		b.Run(fmt.Sprintf("body=%dB", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				signing.Sign("dlv_1", testTime, body, secret)
			}
		})
	}
}

// TestARotationSignsForBothSecrets: with the new and the old secret,
// webhook-signature has an entry for each, and a receiver verifies with
// either; X-Hookline-Signature-256 is the new secret's.
func TestARotationSignsForBothSecrets(t *testing.T) {
	std, gh, err := signing.Sign("dlv_1", testTime, testBody, "new-secret", "whsec_b2xkLXNlY3JldA==")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(std)); n != 2 {
		t.Fatalf("webhook-signature %q has %d entries, want 2", std, n)
	}
	h := http.Header{}
	h.Set(signing.HeaderID, "dlv_1")
	h.Set(signing.HeaderTimestamp, signing.Timestamp(testTime))
	h.Set(signing.HeaderSignature, std)
	h.Set(signing.HeaderSignature256, gh)
	for _, secret := range []string{"new-secret", "whsec_b2xkLXNlY3JldA=="} {
		if err := signing.Verify(secret, h, testBody, testTime, time.Minute); err != nil {
			t.Errorf("verify with %q: %v", secret, err)
		}
	}
	if err := signing.Verify("third", h, testBody, testTime, time.Minute); !errors.Is(err, signing.ErrBadSignature) {
		t.Errorf("verify with a third secret: %v, want ErrBadSignature", err)
	}
	if want := "sha256=" + hex.EncodeToString(independentMAC([]byte("new-secret"), string(testBody))); gh != want {
		t.Errorf("X-Hookline-Signature-256 = %q, want the new secret's %q", gh, want)
	}
}

// TestSignReusesMACsSafely: signatures made at once from many goroutines,
// with the secrets' pooled HMACs, all verify, each with its own secret.
func TestSignReusesMACsSafely(t *testing.T) {
	secrets := []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "plain-secret"}
	now := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			secret := secrets[i%2]
			body := []byte(fmt.Sprintf(`{"n":%d}`, i))
			id := fmt.Sprint("msg_", i)
			std, gh, err := signing.Sign(id, now, body, secret)
			if err != nil {
				errs <- err
				return
			}
			h := http.Header{}
			h.Set(signing.HeaderID, id)
			h.Set(signing.HeaderTimestamp, signing.Timestamp(now))
			h.Set(signing.HeaderSignature, std)
			h.Set(signing.HeaderSignature256, gh)
			if err := signing.Verify(secret, h, body, now, time.Minute); err != nil {
				errs <- fmt.Errorf("message %d: %w", i, err)
			}
			h.Del(signing.HeaderSignature)
			if err := signing.Verify(secret, h, body, now, time.Minute); err != nil {
				errs <- fmt.Errorf("message %d, GitHub style: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
