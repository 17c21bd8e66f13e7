package sealing_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookline/hookline/sealing"
)

func TestSealOpens(t *testing.T) {
	box, err := sealing.ParseKeys(sealing.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "p", strings.Repeat("ü", 1000)} {
		sealed := box.Seal(v)
		if !sealing.IsSealed(sealed) || (len(v) > 8 && strings.Contains(sealed, v)) {
			t.Fatalf("Seal(%.10q) = %.40q: not sealed, or the value shows", v, sealed)
		}
		if sealed == box.Seal(v) {
			t.Fatal("two seals of one value are equal: the nonce is not random")
		}
		if got, err := box.Open(sealed); err != nil || got != v {
			t.Fatalf("Open = %.10q, %v; want the value back", got, err)
		}
		if box.Seal(sealed) != sealed {
			t.Fatal("sealing a sealed value sealed it twice")
		}
	}
	if box.Seal("") != "" {
		t.Fatal(`Seal("") is not "": no secret must stay no secret`)
	}
	if got, err := box.Open("plain-legacy"); err != nil || got != "plain-legacy" {
		t.Fatalf("a value written before sealing: %q, %v; want it as it is", got, err)
	}
}

// TestKeyRotation: a box whose first key is new opens what the old key
// sealed and seals with the new one; a box without the old key says so.
func TestKeyRotation(t *testing.T) {
	oldKey, newKey := sealing.NewKey(), sealing.NewKey()
	old, _ := sealing.ParseKeys(oldKey)
	rotated, err := sealing.ParseKeys(newKey + ", " + oldKey)
	if err != nil {
		t.Fatal(err)
	}
	sealedOld := old.Seal("secret")
	if got, err := rotated.Open(sealedOld); err != nil || got != "secret" {
		t.Fatalf("the rotated box opens the old seal: %q, %v", got, err)
	}
	onlyNew, _ := sealing.ParseKeys(newKey)
	if _, err := onlyNew.Open(sealedOld); !errors.Is(err, sealing.ErrNoKey) {
		t.Fatalf("a box without the old key: %v, want ErrNoKey", err)
	}
	if got, err := onlyNew.Open(rotated.Seal("x")); err != nil || got != "x" {
		t.Fatalf("the rotated box seals with the new key: %q, %v", got, err)
	}
}

func TestOpenRefusesAlteredValues(t *testing.T) {
	box, _ := sealing.ParseKeys(sealing.NewKey())
	sealed := box.Seal("secret")
	altered := sealed[:len(sealed)-2] + "AA"
	if altered == sealed {
		altered = sealed[:len(sealed)-2] + "BB"
	}
	for _, v := range []string{altered, sealing.Prefix + "!!", sealing.Prefix + "AAAA"} {
		if _, err := box.Open(v); err == nil {
			t.Errorf("Open(%.30q) succeeded, want an error", v)
		}
	}
}

func TestParseKeysRefusesBadKeys(t *testing.T) {
	for _, s := range []string{"", "short", sealing.NewKey() + ",nope", "YWJj"} {
		if _, err := sealing.ParseKeys(s); err == nil {
			t.Errorf("ParseKeys(%q) accepted", s)
		}
	}
}

func TestKeyFileIsCreatedOnceWithMode0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "secrets.key")
	k1, err := sealing.LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", info.Mode().Perm(), err)
	}
	k2, err := sealing.LoadOrCreateKeyFile(path)
	if err != nil || k2 != k1 {
		t.Fatalf("second load gave another key (%v)", err)
	}
	if _, err := sealing.ParseKeys(k1); err != nil {
		t.Fatalf("the file's key does not parse: %v", err)
	}
}

// TestASealedValueOpensOnlyWhereItWasSealedFor: a value sealed for one
// webhook's field opens there only: copied to another webhook, or to
// another field of the same one, by someone who can write the topic, it
// does not open. A value of the first format (bound to nothing) still
// opens, so a topic written before keeps working.
func TestASealedValueOpensOnlyWhereItWasSealedFor(t *testing.T) {
	box, err := sealing.ParseKeys(sealing.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	sealed := box.SealFor("s3cret", "w1/secret")
	if !strings.HasPrefix(sealed, sealing.PrefixBound) || !sealing.IsSealed(sealed) {
		t.Fatalf("sealed %q", sealed)
	}
	if got, err := box.OpenFor(sealed, "w1/secret"); err != nil || got != "s3cret" {
		t.Fatalf("OpenFor where it was sealed: %q, %v", got, err)
	}
	for _, place := range []string{"w2/secret", "w1/auth.token", ""} {
		if got, err := box.OpenFor(sealed, place); err == nil {
			t.Errorf("opened for %q: %q", place, got)
		}
	}
	if _, err := box.Open(sealed); err == nil {
		t.Error("Open opened a value sealed for a place")
	}
	old := box.Seal("legacy")
	if got, err := box.OpenFor(old, "w9/secret"); err != nil || got != "legacy" {
		t.Fatalf("a value of the first format: %q, %v", got, err)
	}
}
