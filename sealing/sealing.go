package sealing

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Prefix marks a sealed value of the first format, bound to nothing but
// the prefix: it still opens (Open, OpenFor), and is sealed again as
// PrefixBound at its next write.
const Prefix = "hlenc:v1:"

// PrefixBound marks a sealed value bound to its place (SealFor): the
// webhook and the field it was sealed for are part of its additional
// data, so that it opens nowhere else (moved to another webhook or field
// by someone who can write the topic, it does not open).
const PrefixBound = "hlenc:v2:"

// Marker begins every sealed value, of any format.
const Marker = "hlenc:"

// KeySize is the length of a key: AES-256.
const KeySize = 32

const idSize = 4

// ErrNoKey: a sealed value's key is not among the box's keys.
var ErrNoKey = errors.New("sealing: sealed with a key this box does not have")

// Box seals with its first key and opens with any.
type Box struct {
	ids   [][idSize]byte
	aeads []cipher.AEAD
}

// New returns a box of keys, each KeySize bytes; the first seals.
func New(keys ...[]byte) (*Box, error) {
	if len(keys) == 0 {
		return nil, errors.New("sealing: no key")
	}
	b := &Box{}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("sealing: key %d is %d bytes, want %d", i+1, len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(k)
		b.ids = append(b.ids, [idSize]byte(sum[:idSize]))
		b.aeads = append(b.aeads, aead)
	}
	return b, nil
}

// ParseKeys reads comma-separated base64 keys (standard or URL alphabet,
// padded or not), the sealing one first.
func ParseKeys(s string) (*Box, error) {
	var keys [][]byte
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		k, err := decodeKey(part)
		if err != nil {
			return nil, fmt.Errorf("sealing: key %d is not base64 of %d bytes", i+1, KeySize)
		}
		keys = append(keys, k)
	}
	return New(keys...)
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == KeySize {
			return k, nil
		}
	}
	return nil, errors.New("not a key")
}

// NewKey returns a new random key, base64.
func NewKey() string {
	k := make([]byte, KeySize)
	rand.Read(k) // never fails (crypto/rand)
	return base64.StdEncoding.EncodeToString(k)
}

// LoadOrCreateKeyFile reads the key in path, or writes a new one there
// (mode 0600) when there is none, and returns it, base64.
func LoadOrCreateKeyFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("sealing: read key file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("sealing: key file: %w", err)
	}
	key := NewKey()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // another process made it first
		return LoadOrCreateKeyFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("sealing: create key file: %w", err)
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("sealing: write key file: %w", err)
	}
	// On disk before anything is sealed with it: a key lost to a crash
	// would leave the secrets sealed with it unreadable.
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("sealing: write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("sealing: write key file: %w", err)
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		err = dir.Sync() // the file's name too
		dir.Close()
		if err != nil {
			return "", fmt.Errorf("sealing: sync key file's directory: %w", err)
		}
	}
	return key, nil
}

// Seal encrypts v under the first key, in the first format (bound to the
// prefix only); "" stays "" (no secret), and a value sealed already is
// kept.
func (b *Box) Seal(v string) string { return b.seal(v, Prefix, Prefix) }

// SealFor encrypts v under the first key, bound to place (the webhook and
// the field it belongs to); "" stays "", and a value sealed already is
// kept.
func (b *Box) SealFor(v, place string) string { return b.seal(v, PrefixBound, PrefixBound+place) }

// seal encrypts v with additional data ad and marks it with prefix.
func (b *Box) seal(v, prefix, ad string) string {
	if v == "" || IsSealed(v) {
		return v
	}
	aead := b.aeads[0]
	out := make([]byte, idSize+aead.NonceSize(), idSize+aead.NonceSize()+len(v)+aead.Overhead())
	copy(out, b.ids[0][:])
	rand.Read(out[idSize:]) // never fails (crypto/rand)
	out = aead.Seal(out, out[idSize:], []byte(v), []byte(ad))
	return prefix + base64.RawStdEncoding.EncodeToString(out)
}

// OpenFor decrypts a value sealed for place (SealFor), or one of the first
// format (Seal); a value that is not sealed is returned as it is. A value
// sealed for another place does not open.
func (b *Box) OpenFor(v, place string) (string, error) {
	if enc, ok := strings.CutPrefix(v, PrefixBound); ok {
		return b.open(enc, PrefixBound+place)
	}
	return b.Open(v)
}

// Open decrypts a sealed value of the first format; a value that is not
// sealed is returned as it is.
func (b *Box) Open(v string) (string, error) {
	enc, ok := strings.CutPrefix(v, Prefix)
	if !ok {
		if strings.HasPrefix(v, PrefixBound) {
			return "", errors.New("sealing: a value sealed for a place opens only with OpenFor")
		}
		return v, nil
	}
	return b.open(enc, Prefix)
}

func (b *Box) open(enc, ad string) (string, error) {
	raw, err := base64.RawStdEncoding.DecodeString(enc)
	if err != nil || len(raw) < idSize+12 {
		return "", errors.New("sealing: malformed sealed value")
	}
	for i, id := range b.ids {
		if [idSize]byte(raw[:idSize]) != id {
			continue
		}
		aead := b.aeads[i]
		nonce, ct := raw[idSize:idSize+aead.NonceSize()], raw[idSize+aead.NonceSize():]
		plain, err := aead.Open(nil, nonce, ct, []byte(ad))
		if err != nil {
			return "", errors.New("sealing: sealed value does not open (altered, sealed for another webhook or field, or another key with the same id)")
		}
		return string(plain), nil
	}
	return "", ErrNoKey
}

// IsSealed reports whether v is a sealed value, of any format.
func IsSealed(v string) bool { return strings.HasPrefix(v, Marker) }
