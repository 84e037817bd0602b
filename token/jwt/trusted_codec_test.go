package jwt

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/tokencache/tokencache/internal/fakeclock"
	"github.com/tokencache/tokencache/token"
)

// trustRig is a codec that trusts one IdP served on loopback, all on one
// fake clock.
type trustRig struct {
	idp   *testIdP
	idpK  *Key // the IdP's signing key
	tr    *Trusted
	codec *Codec
	clk   *fakeclock.Clock
}

func newTrustRig(tb testing.TB, cfg TrustedConfig, opts ...TrustedOption) *trustRig {
	tb.Helper()
	r := &trustRig{idpK: newIdPKey(tb, AlgRS256, "idp-1")}
	r.idp = newTestIdP(tb, r.idpK)
	r.clk = fakeclock.New(time.Now().Truncate(time.Second))
	cfg.JWKSURL = r.idp.url()
	if cfg.Issuer == "" {
		cfg.Issuer = testIss
	}
	if cfg.Audiences == nil {
		cfg.Audiences = []string{"gateway"}
	}
	r.tr, _ = mustTrusted(tb, cfg, append([]TrustedOption{WithNow(r.clk.Now)}, opts...)...)
	mustStart(tb, r.tr)
	local := newIdPKey(tb, AlgEdDSA, "local")
	ks, err := NewKeySet("local", local)
	if err != nil {
		tb.Fatal(err)
	}
	r.codec, err = New(Config{Issuer: "https://tokencache.test", Audiences: []string{"*"}, Leeway: 30 * time.Second, CacheSize: 128, Now: r.clk.Now}, ks, r.tr)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// claims are an IdP access token's claims, issued now for an hour.
func (r *trustRig) claims(jti string) gojwt.MapClaims {
	now := r.clk.Now()
	return gojwt.MapClaims{
		"iss": testIss, "sub": "alice", "aud": "gateway", "jti": jti,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "scope": "read write",
	}
}

func (r *trustRig) parse(tb testing.TB, s string) token.Presented {
	tb.Helper()
	p, err := r.codec.Parse([]byte(s))
	if err != nil {
		tb.Fatalf("Parse(IdP token) = %v", err)
	}
	return p
}

func (r *trustRig) refused(tb testing.TB, what, s string, want error) {
	tb.Helper()
	_, err := r.codec.Parse([]byte(s))
	if !errors.Is(err, want) || !errors.Is(err, token.ErrMalformed) {
		tb.Errorf("%s: Parse = %v, want %v", what, err, want)
	}
}

// TestTrustedThroughCodec: a token signed by the IdP's key verifies through
// the codec and states the record the claim mapping makes; the trusted
// issuer's audiences and required claims are enforced.
func TestTrustedThroughCodec(t *testing.T) {
	r := newTrustRig(t, TrustedConfig{RequiredClaims: []string{"email"}, UsernameClaim: "preferred_username"})
	cl := r.claims("jti-1")
	cl["preferred_username"], cl["email"], cl["aud"] = "alice.smith", "alice@example.org", []string{"gateway"}
	s := signTestJWT(t, r.idpK, cl)
	p := r.parse(t, s)
	if !p.External || p.Key != ExternalKey(testIss, "jti-1") || p.Claims == nil || p.Claims.Key != p.Key {
		t.Fatalf("Parse = %+v, want an external token under ExternalKey(iss, jti)", p)
	}
	rec := p.Claims
	if rec.Username != "alice.smith" || rec.Scopes != "read write" || rec.Type != token.TypeOAuth ||
		rec.Format != token.FormatJWT || rec.Ext == nil || rec.Ext.Audience != "gateway" ||
		rec.Expires != token.At(r.clk.Now().Add(time.Hour)) || rec.Created != token.At(r.clk.Now()) {
		t.Errorf("Parse(IdP token).Claims = %+v, want alice.smith, read write, oauth, jwt, aud gateway", rec)
	}

	cl = r.claims("jti-2")
	cl["preferred_username"], cl["email"], cl["aud"] = "alice", "a@example.org", "billing"
	r.refused(t, "wrong audience", signTestJWT(t, r.idpK, cl), ErrAudience)
	cl = r.claims("jti-3")
	cl["preferred_username"] = "alice"
	r.refused(t, "required claim missing", signTestJWT(t, r.idpK, cl), ErrClaims)
	cl["email"], cl["preferred_username"] = "a@example.org", "alice smith"
	r.refused(t, "username with a space", signTestJWT(t, r.idpK, cl), ErrClaims)

	// A key of another holder under the IdP's kid: the signature fails.
	forger := newIdPKey(t, AlgRS256, "idp-1")
	cl = r.claims("jti-4")
	cl["preferred_username"], cl["email"] = "alice", "a@example.org"
	r.refused(t, "forged with the IdP's kid", signTestJWT(t, forger, cl), ErrSignature)
	// The local issuer's keys never verify the IdP's tokens, nor the
	// reverse.
	other := newIdPKey(t, AlgRS256, "local")
	r.refused(t, "IdP token under a local kid", signTestJWT(t, other, cl), ErrUnknownKey)
}

// TestTrustedScopesClaimForms: scopes come as a space-separated string or
// as an array of strings (RFC 9068 uses the string; several IdPs send an
// array, under scope or scp).
func TestTrustedScopesClaimForms(t *testing.T) {
	r := newTrustRig(t, TrustedConfig{})
	rScp := newTrustRig(t, TrustedConfig{ScopesClaim: "scp"})
	for _, tc := range []struct {
		name  string
		rig   *trustRig
		value any
		want  token.Scopes
	}{
		{"scope string", r, "write read", "read write"},
		{"scope array", r, []string{"write", "read"}, "read write"},
		{"scope empty array", r, []string{}, ""},
		{"scp array", rScp, []string{"b", "a"}, "a b"},
		{"scp string", rScp, "a b", "a b"},
	} {
		cl := tc.rig.claims("jti-" + tc.name)
		delete(cl, "scope")
		claim := "scope"
		if tc.rig == rScp {
			claim = "scp"
		}
		cl[claim] = tc.value
		p, err := tc.rig.codec.Parse([]byte(signTestJWT(t, tc.rig.idpK, cl)))
		if err != nil || p.Claims.Scopes != tc.want {
			t.Errorf("%s: Parse = %+v, %v; want scopes %q", tc.name, p.Claims, err, tc.want)
		}
	}
	// Claims named like tokencache's own with the IdP's types (Okta's
	// string uid, a display name) do not make the token malformed.
	cl := r.claims("okta-like")
	cl["uid"], cl["name"], cl["realm"], cl["token_type"] = "00u1abcd", "Alice Smith", []string{"x"}, 7
	if p, err := r.codec.Parse([]byte(signTestJWT(t, r.idpK, cl))); err != nil || p.Claims.Username != "alice" {
		t.Errorf("Parse(token with a string uid) = %+v, %v; want accepted", p.Claims, err)
	}
	// A scope claim that is neither a string nor strings is refused.
	cl = r.claims("bad-scope")
	cl["scope"] = []any{"a", 1}
	r.refused(t, "scope array with a number", signTestJWT(t, r.idpK, cl), ErrClaims)
}

// TestTrustedKeyRotationThroughCodec: the IdP starts signing with a new
// key: the first token under the new kid is refused and asks for an early
// fetch; once it is in, the token verifies. Tokens of the old key keep
// verifying while the IdP still publishes it, and when the IdP is down.
func TestTrustedKeyRotationThroughCodec(t *testing.T) {
	r := newTrustRig(t, TrustedConfig{})
	old := signTestJWT(t, r.idpK, r.claims("old"))
	r.parse(t, old)

	k2 := newIdPKey(t, AlgES256, "idp-2")
	r.idp.setKeys(r.idpK, k2)
	r.clk.Advance(MinTrustedRefresh)
	s := signTestJWT(t, k2, r.claims("new"))
	r.refused(t, "new kid before the fetch", s, ErrUnknownKey)
	waitFor(t, "idp-2", func() bool { return hasKid(r.tr, "idp-2") })
	r.parse(t, s)

	// The IdP goes down: the last good keys keep verifying new tokens.
	r.idp.srv.Close()
	// Refresh joins a fetch already in flight, which may have begun (and
	// succeed) before the close: the first fetch begun after it must fail.
	failed := false
	for deadline := time.Now().Add(5 * time.Second); !failed && time.Now().Before(deadline); {
		failed = r.tr.Refresh(context.Background()) != nil
	}
	if !failed {
		t.Fatal("Refresh against a closed IdP succeeded")
	}
	r.parse(t, signTestJWT(t, r.idpK, r.claims("while-down-1")))
	r.parse(t, signTestJWT(t, k2, r.claims("while-down-2")))
}

// TestTrustedExternalKeyPerIssuer: the record key of an external token is
// derived from (iss, jti): stable across verifications, distinct per
// issuer for one jti, and never a local token's key.
func TestTrustedExternalKeyPerIssuer(t *testing.T) {
	r := newTrustRig(t, TrustedConfig{})
	r2k := newIdPKey(t, AlgEdDSA, "idp2-1")
	idp2 := newTestIdP(t, r2k)
	tr2, _ := mustTrusted(t, TrustedConfig{Issuer: "https://idp2.test", JWKSURL: idp2.url(), Audiences: []string{"*"}}, WithNow(r.clk.Now))
	mustStart(t, tr2)
	if err := r.codec.SetTrusted(r.tr, tr2); err != nil {
		t.Fatal(err)
	}
	s1 := signTestJWT(t, r.idpK, r.claims("same-jti"))
	cl := r.claims("same-jti")
	cl["iss"] = "https://idp2.test"
	s2 := signTestJWT(t, r2k, cl)
	p1, p2 := r.parse(t, s1), r.parse(t, s2)
	if p1.Key == p2.Key {
		t.Errorf("two issuers' tokens with one jti share the key %s", p1.Key)
	}
	if p1.Key != ExternalKey(testIss, "same-jti") || p2.Key != ExternalKey("https://idp2.test", "same-jti") {
		t.Errorf("keys %s, %s; want ExternalKey of each issuer", p1.Key, p2.Key)
	}
	// Stable: another token with the same iss and jti (re-signed later)
	// has the same key, so a revocation of one covers it.
	r.clk.Advance(time.Minute)
	if p := r.parse(t, signTestJWT(t, r.idpK, r.claims("same-jti"))); p.Key != p1.Key {
		t.Errorf("re-signed token key %s, want %s", p.Key, p1.Key)
	}
}

// TestTrustedDroppedKeyLeavesVerifiedCache: when the IdP stops publishing
// a key (say it leaked), tokens already verified with it stop verifying
// once the refresh sees it, though the codec had cached them.
func TestTrustedDroppedKeyLeavesVerifiedCache(t *testing.T) {
	var r *trustRig
	r = newTrustRig(t, TrustedConfig{}, WithKeysChanged(func() { _ = r.codec.SetTrusted(r.tr) }))
	s := signTestJWT(t, r.idpK, r.claims("cached"))
	r.parse(t, s)
	r.parse(t, s) // a cache hit
	k2 := newIdPKey(t, AlgEdDSA, "idp-2")
	r.idp.setKeys(k2)
	if err := r.tr.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.refused(t, "token of a dropped key", s, ErrUnknownKey)
}

// TestTrustedCaseVariantClaimsRefused: encoding/json matches field names
// ignoring case (the last wins), so {"exp":…,"EXP":…} would give golang-jwt's
// view and the exact-name claims (required claims, claim mapping) two
// different tokens. A trusted issuer's token with a claim that differs from
// one of ours only in case is refused.
func TestTrustedCaseVariantClaimsRefused(t *testing.T) {
	r := newTrustRig(t, TrustedConfig{})
	for _, variant := range []string{"EXP", "Aud", "Iss", "Sub", "JTI", "Scope"} {
		cl := r.claims("jti-" + variant)
		cl[variant] = cl[strings.ToLower(variant)]
		r.refused(t, "claim "+variant, signTestJWT(t, r.idpK, cl), ErrClaims)
	}
	cl := r.claims("jti-exact")
	cl["email"], cl["Email"] = "a@example.org", "b@example.org" // not one of ours: left to the mapping
	r.parse(t, signTestJWT(t, r.idpK, cl))
}
