package jwt

import (
	"errors"
	"testing"
	"time"

	"github.com/tokencache/tokencache/internal/fakeclock"
	"github.com/tokencache/tokencache/token"
)

// newVerifyOnly returns a codec without local keys that trusts one
// external issuer (idpName, key idp), on a fake clock. issuer is
// tokens.jwt.issuer ("" for none).
func newVerifyOnly(tb testing.TB, issuer string, idp *Key) (*Codec, *fakeclock.Clock) {
	tb.Helper()
	clk := fakeclock.New(testStart)
	ext := &testIssuerExt{name: idpName, keys: map[string]*Key{idp.ID(): idp}, auds: []string{"gateway"}}
	c, err := New(Config{Issuer: issuer, Audiences: []string{AnyAudience}, Leeway: 30 * time.Second, CacheSize: 64, Now: clk.Now}, nil, ext)
	if err != nil {
		tb.Fatalf("New(no keys, one trusted issuer) = %v", err)
	}
	return c, clk
}

const idpName = "https://idp.example"

// TestVerifyOnlyCodec: a codec built without local keys but with a trusted
// issuer (a validate-only node) verifies that issuer's tokens, registers no
// local issuer (a token naming tokens.jwt.issuer is refused like any
// unknown issuer), and mints nothing.
func TestVerifyOnlyCodec(t *testing.T) {
	idp := newIdPKey(t, AlgES256, "idp-1")
	for _, issuer := range []string{"", testIssuer} {
		c, clk := newVerifyOnly(t, issuer, idp)
		cl := claimsAt(clk.Now())
		cl["iss"], cl["aud"], cl["jti"] = idpName, "gateway", "jti-1"
		text := signTestJWT(t, idp, cl)
		for range 2 { // a miss, then a verified-cache hit
			p, err := c.Parse([]byte(text))
			if err != nil {
				t.Fatalf("issuer %q: Parse(trusted issuer's token) = %v", issuer, err)
			}
			if !p.External || p.Key != ExternalKey(idpName, "jti-1") || p.Claims == nil || p.Claims.Username != "alice" {
				t.Fatalf("issuer %q: Parse = %+v, want the external token of alice", issuer, p)
			}
		}

		// A token naming the configured issuer, signed by a key holding a
		// kid the keys file would have: no local issuer verifies it.
		local := mustKey(t, AlgEdDSA)
		lc := claimsAt(clk.Now())
		lc["iss"] = testIssuer
		if _, err := c.Parse([]byte(signKey(t, local, lc))); !errors.Is(err, ErrIssuer) {
			t.Errorf("issuer %q: Parse(token naming tokens.jwt.issuer) = %v, want ErrIssuer", issuer, err)
		}

		rec := newRecord(clk.Now())
		s, err := c.Encode(rec, "")
		if !errors.Is(err, ErrNoSigningKey) || s != "" {
			t.Errorf("issuer %q: Encode = %q, %v; want ErrNoSigningKey", issuer, s, err)
		}
		if !errors.Is(err, token.ErrInvalid) {
			t.Errorf("issuer %q: Encode error %v does not wrap token.ErrInvalid (a 400, as on a node without JWTs)", issuer, err)
		}
		if err := c.CheckMint(); !errors.Is(err, ErrNoSigningKey) {
			t.Errorf("issuer %q: CheckMint = %v, want ErrNoSigningKey", issuer, err)
		}
		if ks := c.KeySet(); ks != nil {
			t.Errorf("issuer %q: KeySet() = %v, want nil", issuer, ks)
		}
		if got := c.Issuer(); got != "" {
			t.Errorf("issuer %q: Issuer() = %q, want \"\" (no local issuer)", issuer, got)
		}
		// Keys handed to a validate-only codec change nothing: whether a
		// node signs is a setting its cluster shares (the fingerprint).
		c.SetKeys(mustSet(t, local.ID(), local))
		if c.KeySet() != nil || c.CheckMint() == nil {
			t.Errorf("issuer %q: SetKeys made a validate-only codec sign", issuer)
		}
		if _, err := c.Parse([]byte(signKey(t, local, lc))); !errors.Is(err, ErrIssuer) {
			t.Errorf("issuer %q: after SetKeys, Parse(token naming tokens.jwt.issuer) = %v, want ErrIssuer", issuer, err)
		}
	}
}

// TestVerifyOnlyFingerprint: a validate-only codec never shares a
// fingerprint with a signing one of the same settings (nodes that disagree
// on whether local tokens exist must not form a cluster).
func TestVerifyOnlyFingerprint(t *testing.T) {
	idp := newIdPKey(t, AlgES256, "idp-1")
	vo, _ := newVerifyOnly(t, testIssuer, idp)
	k := mustKey(t, AlgEdDSA)
	signing, err := New(Config{Issuer: testIssuer, Audiences: []string{AnyAudience}}, mustSet(t, k.ID(), k))
	if err != nil {
		t.Fatal(err)
	}
	if vo.Fingerprint() == signing.Fingerprint() {
		t.Errorf("Fingerprint() of a validate-only codec = %q, that of a signing one", vo.Fingerprint())
	}
	vo2, _ := newVerifyOnly(t, "", idp)
	if vo.Fingerprint() != vo2.Fingerprint() {
		t.Errorf("validate-only fingerprints differ with the unused issuer: %q, %q", vo.Fingerprint(), vo2.Fingerprint())
	}
}

// TestNewNeedsKeysOrTrusted: without local keys, at least one trusted
// issuer is needed (a codec that accepts nothing is a configuration
// mistake), and a validate-only codec keeps one through SetTrusted.
func TestNewNeedsKeysOrTrusted(t *testing.T) {
	cfg := Config{Issuer: testIssuer, Audiences: []string{AnyAudience}}
	for _, trusted := range [][]Issuer{nil, {nil}} {
		if _, err := New(cfg, nil, trusted...); !errors.Is(err, ErrConfig) {
			t.Errorf("New(no keys, %d nil issuers) = %v, want ErrConfig", len(trusted), err)
		}
	}
	// The local issuer's name is needed only to sign.
	k := mustKey(t, AlgEdDSA)
	if _, err := New(Config{Audiences: []string{AnyAudience}}, mustSet(t, k.ID(), k)); !errors.Is(err, ErrConfig) {
		t.Errorf("New(keys, no issuer) = %v, want ErrConfig", err)
	}
	vo, _ := newVerifyOnly(t, "", newIdPKey(t, AlgES256, "idp-1"))
	if err := vo.SetTrusted(); !errors.Is(err, ErrConfig) {
		t.Errorf("SetTrusted() on a validate-only codec = %v, want ErrConfig", err)
	}
	if err := vo.SetTrusted(nil); !errors.Is(err, ErrConfig) {
		t.Errorf("SetTrusted(nil) on a validate-only codec = %v, want ErrConfig", err)
	}
}
