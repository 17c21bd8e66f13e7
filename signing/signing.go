package signing

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Header names of a signed delivery (SPEC §4). http.Header canonicalises
// them; receivers may look them up in any case.
const (
	HeaderID           = "webhook-id"
	HeaderTimestamp    = "webhook-timestamp"
	HeaderSignature    = "webhook-signature"
	HeaderSignature256 = "X-Hookline-Signature-256"
)

const (
	// SecretPrefix marks a Standard Webhooks secret: the rest is the base64
	// of the key.
	SecretPrefix = "whsec_"
	// DefaultTolerance is how far a webhook-timestamp may be from the
	// receiver's clock, either way, when Verify is given no tolerance.
	DefaultTolerance = 5 * time.Minute
	// MaxBodyBytes bounds the body VerifyRequest reads.
	MaxBodyBytes = 16 << 20

	versionV1    = "v1"
	prefixSHA256 = "sha256="
)

// Errors Verify and VerifyRequest return, wrapped with detail. Test them
// with errors.Is.
var (
	// ErrInvalidSecret: the secret is empty, or whsec_ followed by
	// something that is not base64.
	ErrInvalidSecret = errors.New("signing: invalid secret")
	// ErrNoSignature: a signature header is missing.
	ErrNoSignature = errors.New("signing: no signature")
	// ErrBadSignature: no signature matches the body, or the headers they
	// depend on are missing or malformed.
	ErrBadSignature = errors.New("signing: signature does not match")
	// ErrTimestamp: webhook-timestamp is missing, not unix seconds, or
	// outside the tolerance (a replay, or a clock far off).
	ErrTimestamp = errors.New("signing: timestamp outside tolerance")
	// ErrBodyTooLarge: VerifyRequest met a body over MaxBodyBytes.
	ErrBodyTooLarge = errors.New("signing: body too large")
)

// Key returns the HMAC key of a secret: the bytes a whsec_ secret encodes,
// or else the secret's UTF-8 bytes.
func Key(secret string) ([]byte, error) {
	if secret == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidSecret)
	}
	enc, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return []byte(secret), nil
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		// Some tools print the key without padding; it is the same key.
		key, err = base64.RawStdEncoding.DecodeString(enc)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s must be followed by base64", ErrInvalidSecret, SecretPrefix)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: empty key after %s", ErrInvalidSecret, SecretPrefix)
	}
	return key, nil
}

// Timestamp formats ts as the webhook-timestamp header value.
func Timestamp(ts time.Time) string {
	return strconv.FormatInt(ts.Unix(), 10)
}

// Sign returns the webhook-signature value and the X-Hookline-Signature-256
// value of one request. id is the webhook-id, ts the time sent as
// webhook-timestamp (to the second), body the exact bytes of the request
// body. webhook-signature has one "v1,<base64>" entry per secret, space
// separated: the current secret first, then those still valid during a
// rotation. X-Hookline-Signature-256 ("sha256=<hex>") is made with the
// first secret, keyed with its string's bytes, as GitHub receivers expect.
func Sign(id string, ts time.Time, body []byte, secrets ...string) (standard, github string, err error) {
	if len(secrets) == 0 {
		return "", "", fmt.Errorf("%w: none given", ErrInvalidSecret)
	}
	stamp := Timestamp(ts)
	entries := make([]string, len(secrets))
	for i, secret := range secrets {
		m, err := macsOf(secret)
		if err != nil {
			return "", "", err
		}
		mac := m.standard.Get().(hash.Hash)
		mac.Reset()
		entries[i] = versionV1 + "," + base64.StdEncoding.EncodeToString(standardMAC(mac, id, stamp, body))
		m.standard.Put(mac)
	}
	m, _ := macsOf(secrets[0])
	mac := m.github.Get().(hash.Hash)
	mac.Reset()
	github = prefixSHA256 + hex.EncodeToString(githubMAC(mac, body))
	m.github.Put(mac)
	return strings.Join(entries, " "), github, nil
}

// macs are a secret's HMACs, kept for reuse: making one computes the
// key's pads, which costs as much as signing a small body (BenchmarkSign).
type macs struct {
	standard, github sync.Pool // of hash.Hash
}

// macCache holds the macs of the secrets signed with, by secret; it is
// emptied when it passes maxCachedSecrets (rotated secrets pile up).
var (
	macCache  sync.Map
	macCached atomic.Int64
)

const maxCachedSecrets = 10000

func macsOf(secret string) (*macs, error) {
	if m, ok := macCache.Load(secret); ok {
		return m.(*macs), nil
	}
	key, err := Key(secret)
	if err != nil {
		return nil, err
	}
	m := &macs{}
	m.standard.New = func() any { return hmac.New(sha256.New, key) }
	m.github.New = func() any { return hmac.New(sha256.New, []byte(secret)) }
	if macCached.Add(1) > maxCachedSecrets {
		macCache.Clear()
		macCached.Store(1)
	}
	got, _ := macCache.LoadOrStore(secret, m)
	return got.(*macs), nil
}

// standardMAC writes the parts instead of joining them so that a large body
// is not copied.
func standardMAC(mac hash.Hash, id, ts string, body []byte) []byte {
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

func githubMAC(mac hash.Hash, body []byte) []byte {
	mac.Write(body)
	return mac.Sum(nil)
}

// Verify checks a delivery's headers against its body, with either
// signature: webhook-signature when it is sent (Standard Webhooks: one
// matching "v1,<base64>" entry among several space-separated ones, as
// during a secret rotation; it needs webhook-id and webhook-timestamp),
// else X-Hookline-Signature-256 (GitHub style, keyed with the secret
// string's bytes). So Verify accepts any Standard Webhooks sender as well
// as Hookline, which sends both, and a receiver still on the old secret
// during a rotation. A webhook-timestamp sent
// must be within tolerance of now (DefaultTolerance when tolerance <= 0).
// A receiver that wants the replay protection of the timestamp for every
// request should require webhook-signature to be present: the GitHub style
// alone signs the body only.
//
// It returns nil, or an error that wraps ErrInvalidSecret, ErrNoSignature,
// ErrBadSignature or ErrTimestamp.
func Verify(secret string, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := Key(secret)
	if err != nil {
		return err
	}
	std := strings.Join(header.Values(HeaderSignature), " ")
	gh := header.Get(HeaderSignature256)
	if strings.TrimSpace(std) == "" && gh == "" {
		return fmt.Errorf("%w: neither %s nor %s", ErrNoSignature, HeaderSignature, HeaderSignature256)
	}
	id, ts := header.Get(HeaderID), header.Get(HeaderTimestamp)
	var sent int64
	if ts != "" || strings.TrimSpace(std) != "" {
		sent, err = strconv.ParseInt(ts, 10, 64)
		if err != nil || sent < 0 {
			return fmt.Errorf("%w: %s %q is not unix seconds", ErrTimestamp, HeaderTimestamp, ts)
		}
	}

	if strings.TrimSpace(std) != "" {
		if id == "" {
			return fmt.Errorf("%w: %s without %s", ErrBadSignature, HeaderSignature, HeaderID)
		}
		if !matchStandard(standardMAC(hmac.New(sha256.New, key), id, ts, body), std) {
			return fmt.Errorf("%w: %s", ErrBadSignature, HeaderSignature)
		}
	}
	// The GitHub style counts only without webhook-signature: during a
	// rotation it is made with the new secret alone, while a receiver
	// still on the old one finds its entry in webhook-signature.
	if strings.TrimSpace(std) == "" && !matchGitHub(githubMAC(hmac.New(sha256.New, []byte(secret)), body), gh) {
		return fmt.Errorf("%w: %s", ErrBadSignature, HeaderSignature256)
	}

	if ts == "" {
		return nil // GitHub style alone carries no time
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	// Compare in seconds: a time.Time of year 10^10 would overflow Duration.
	if skew := now.Unix() - sent; skew > int64(tolerance/time.Second) || -skew > int64(tolerance/time.Second) {
		return fmt.Errorf("%w: %s is %ds from now, tolerance %s", ErrTimestamp, HeaderTimestamp, skew, tolerance)
	}
	return nil
}

// matchStandard accepts when any "v1,<base64>" entry of the header equals
// want. Entries of other versions (v1a, ...) are skipped.
func matchStandard(want []byte, header string) bool {
	ok := false
	for _, entry := range strings.Fields(header) {
		version, sig, found := strings.Cut(entry, ",")
		if !found || version != versionV1 {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		// No early return: the time taken must not tell which entry matched.
		if hmac.Equal(want, got) {
			ok = true
		}
	}
	return ok
}

func matchGitHub(want []byte, header string) bool {
	sig, found := strings.CutPrefix(strings.TrimSpace(header), prefixSHA256)
	if !found {
		return false
	}
	got, err := hex.DecodeString(sig)
	return err == nil && hmac.Equal(want, got)
}

// VerifyRequest reads r's body (at most MaxBodyBytes) and verifies it with
// Verify against the current time. It returns the body only when it
// verifies, and puts the bytes back into r.Body so that later handlers can
// read them again.
func VerifyRequest(secret string, r *http.Request, tolerance time.Duration) ([]byte, error) {
	if r.Body == nil {
		r.Body = http.NoBody
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("signing: reading body: %w", err)
	}
	if len(body) > MaxBodyBytes {
		return nil, fmt.Errorf("%w: over %d bytes", ErrBodyTooLarge, MaxBodyBytes)
	}
	if err := Verify(secret, r.Header, body, time.Now(), tolerance); err != nil {
		return nil, err
	}
	return body, nil
}
