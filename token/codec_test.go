package token

import (
	"errors"
	"testing"
)

func mustOpaqueFormats(tb testing.TB, prefix string, pepper []byte) (*Formats, *Opaque) {
	tb.Helper()
	o := NewOpaque(prefix, NewHasher(pepper))
	f, err := NewFormats(o)
	if err != nil {
		tb.Fatalf("NewFormats() = %v", err)
	}
	return f, o
}

func TestOpaqueMintParseVerify(t *testing.T) {
	for _, pepper := range [][]byte{nil, []byte("pepper-0123456789")} {
		f, o := mustOpaqueFormats(t, "tc", pepper)
		k := NewKey()
		secret, h := o.Mint(k)
		rec := &Token{Key: k, Hash: h, Username: "alice", Format: FormatOpaque}
		text, err := o.Encode(rec, secret)
		if err != nil || text != Encode("tc", k, secret) {
			t.Fatalf("Encode() = %q, %v, want %q", text, err, Encode("tc", k, secret))
		}
		c, p, err := f.Parse([]byte(text))
		if err != nil || c != Codec(o) || p.Key != k || string(p.Secret) != secret {
			t.Fatalf("Parse(%q) = %v, %+v, %v", text, c, p, err)
		}
		if !c.Verify(p, rec) {
			t.Errorf("Verify(own record) = false, want true")
		}
		if c.Sum(p) != h {
			t.Errorf("Sum() = %x, want the minted hash %x", c.Sum(p), h)
		}
		other := *rec
		other.Hash[0] ^= 1
		if c.Verify(p, &other) {
			t.Errorf("Verify(record with another hash) = true, want false")
		}
		jwt := *rec
		jwt.Format = FormatJWT
		if c.Verify(p, &jwt) {
			t.Errorf("Verify(JWT record) = true, want false")
		}
	}
}

func TestFormatsParseRefuses(t *testing.T) {
	f, _ := mustOpaqueFormats(t, "tc", nil)
	k := NewKey()
	for _, raw := range []string{
		"",
		"hello",
		Encode("tx", k, NewSecret()),           // another prefix
		"tc_" + k.String() + ".short",          // short secret
		"eyJhbGciOiJub25lIn0.eyJqdGkiOiJ4In0.", // a JWT: no JWT format
		"eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJ4In0.c2ln", // a signed-looking JWT
	} {
		if c, p, err := f.Parse([]byte(raw)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) = %v, %+v, %v, want ErrMalformed", raw, c, p, err)
		}
	}
}

func TestNewFormatsRefuses(t *testing.T) {
	if _, err := NewFormats(); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewFormats() = %v, want ErrInvalid", err)
	}
	o := NewOpaque("tc", NewHasher(nil))
	if _, err := NewFormats(o, NewOpaque("tx", NewHasher(nil))); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewFormats(opaque, opaque) = %v, want ErrInvalid", err)
	}
	f, _ := NewFormats(o)
	if c, ok := f.Codec(FormatOpaque); !ok || c != Codec(o) {
		t.Errorf("Codec(opaque) = %v, %v, want the opaque codec", c, ok)
	}
	if c, ok := f.Codec(FormatJWT); ok {
		t.Errorf("Codec(jwt) = %v, true, want none", c)
	}
}

// TestFormatsFingerprint: the opaque format's part is the text the settings
// fingerprint held before formats had a seam (prefix, then an 8-byte digest
// of the pepper), so clusters keep their fingerprint.
func TestFormatsFingerprint(t *testing.T) {
	f, _ := mustOpaqueFormats(t, "tc", nil)
	const want = "prefix=tc|pepper=e3b0c44298fc1c14" // SHA-256 of the empty pepper
	if got := f.Fingerprint(); got != want {
		t.Errorf("Fingerprint() = %q, want %q", got, want)
	}
	g, _ := mustOpaqueFormats(t, "tc", []byte("pepper-0123456789"))
	if g.Fingerprint() == f.Fingerprint() {
		t.Errorf("Fingerprint() does not change with the pepper")
	}
}

func TestFormatsParseVerifyAllocs(t *testing.T) {
	f, o := mustOpaqueFormats(t, "tc", []byte("pepper-0123456789"))
	k := NewKey()
	secret, h := o.Mint(k)
	rec := &Token{Key: k, Hash: h, Format: FormatOpaque}
	raw := []byte(Encode("tc", k, secret))
	allocs := testing.AllocsPerRun(100, func() {
		c, p, err := f.Parse(raw)
		if err != nil || !c.Verify(p, rec) {
			t.Fatal("Parse/Verify failed")
		}
	})
	if allocs != 0 {
		t.Errorf("Parse+Verify allocs = %v, want 0", allocs)
	}
}
