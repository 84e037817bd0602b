package jwt

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/tokencache/tokencache/token"
)

// mustParse parses s and fails the test on an error.
func mustParse(tb testing.TB, c *Codec, s string) token.Presented {
	tb.Helper()
	p, err := c.Parse([]byte(s))
	if err != nil {
		tb.Fatalf("Parse = %v, want a valid token", err)
	}
	return p
}

// wantRefused parses s and fails the test unless it is refused with an
// error that wraps token.ErrMalformed and want, quotes none of s, and
// presents nothing.
func wantRefused(tb testing.TB, c *Codec, s string, want error) {
	tb.Helper()
	p, err := c.Parse([]byte(s))
	if err == nil {
		tb.Fatalf("Parse = %+v, nil; want %v", p, want)
	}
	if !errors.Is(err, token.ErrMalformed) {
		tb.Errorf("Parse error %v does not wrap token.ErrMalformed", err)
	}
	if want != nil && !errors.Is(err, want) {
		tb.Errorf("Parse error = %v, want %v", err, want)
	}
	if !p.Key.IsZero() || p.Claims != nil || p.Secret != nil || p.External {
		tb.Errorf("Parse presented %+v with an error", p)
	}
	for _, seg := range strings.Split(s, ".") {
		if len(seg) >= 8 && strings.Contains(err.Error(), seg) {
			tb.Errorf("Parse error %q quotes the token", err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			c, clk := newTestCodec(t, alg)
			rec := newRecord(clk.Now())
			s := mustEncode(t, c, rec)
			hdr, _, _ := gojwt.NewParser().ParseUnverified(s, &Claims{})
			if hdr.Header["kid"] != "k-"+alg || hdr.Header["alg"] != alg {
				t.Errorf("header = %v, want kid k-%s alg %s", hdr.Header, alg, alg)
			}
			p := mustParse(t, c, s)
			if p.Key != rec.Key || p.External || p.Secret != nil {
				t.Errorf("Parse = key %v external %v, want key %v, local", p.Key, p.External, rec.Key)
			}
			got := p.Claims
			want := rec.Clone()
			want.Format = token.FormatJWT
			if got == nil || got.Key != want.Key || got.Username != want.Username || got.Scopes != want.Scopes ||
				got.Realm != want.Realm || got.UID != want.UID || !got.HasUID || got.Type != want.Type ||
				got.Name() != "laptop" || got.Ext.Audience != "api" || got.Format != token.FormatJWT ||
				got.Expires != want.Expires || got.Created != want.Created {
				t.Errorf("Parse claims = %+v %+v, want %+v %+v", got, got.Ext, want, want.Ext)
			}
			if !c.Verify(p, rec) {
				t.Errorf("Verify(p, its record) = false")
			}
			other := rec.Clone()
			other.Key = token.NewKey()
			if c.Verify(p, other) {
				t.Errorf("Verify(p, another record) = true")
			}
			opaque := rec.Clone()
			opaque.Format = token.FormatOpaque
			if c.Verify(p, opaque) {
				t.Errorf("Verify(p, opaque record) = true")
			}
			// The second parse is a cache hit: the same shared claims.
			if p2 := mustParse(t, c, s); p2.Claims != p.Claims {
				t.Errorf("second Parse did not come from the verified cache")
			}
		})
	}
}

func TestEncodeAudienceAndOptionalClaims(t *testing.T) {
	c, clk := newTestCodec(t, AlgEdDSA)
	rec := newRecord(clk.Now())
	rec.SetExtra(token.Extra{Audience: "api web"})
	rec.HasUID, rec.UID, rec.Type, rec.Realm, rec.Scopes = false, 0, token.TypeUnknown, "", ""
	s := mustEncode(t, c, rec)
	var m gojwt.MapClaims
	if _, _, err := gojwt.NewParser().ParseUnverified(s, &m); err != nil {
		t.Fatal(err)
	}
	if aud, ok := m["aud"].([]any); !ok || len(aud) != 2 || aud[0] != "api" || aud[1] != "web" {
		t.Errorf("aud = %v, want [api web]", m["aud"])
	}
	for _, absent := range []string{"uid", "token_type", "realm", "scope", "name"} {
		if _, ok := m[absent]; ok {
			t.Errorf("claim %s = %v, want it absent", absent, m[absent])
		}
	}
	if p := mustParse(t, c, s); p.Claims.Ext.Audience != "api web" || p.Claims.HasUID {
		t.Errorf("Parse claims audience %q HasUID %v", p.Claims.Ext.Audience, p.Claims.HasUID)
	}
	// No audience: the first allowed one.
	rec.SetExtra(token.Extra{})
	m = gojwt.MapClaims{}
	gojwt.NewParser().ParseUnverified(mustEncode(t, c, rec), &m)
	if m["aud"] != "api" {
		t.Errorf("aud of a record without audience = %v, want api", m["aud"])
	}
	rec.Expires = 0
	if _, err := c.Encode(rec, ""); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("Encode(no expiry) = %v, want ErrInvalid", err)
	}
}

func TestCodecSecretlessMethods(t *testing.T) {
	c, _ := newTestCodec(t, AlgEdDSA)
	if s, h := c.Mint(token.NewKey()); s != "" || h != (token.Hash{}) {
		t.Errorf("Mint = %q, %x; want empty", s, h)
	}
	if h := c.Sum(token.Presented{Key: token.NewKey()}); h != (token.Hash{}) {
		t.Errorf("Sum = %x, want zero", h)
	}
	if c.Format() != token.FormatJWT {
		t.Errorf("Format() = %v", c.Format())
	}
	if got, want := c.Fingerprint(), "jwt|iss="+testIssuer+"|aud=api web"; got != want {
		t.Errorf("Fingerprint() = %q, want %q", got, want)
	}
	if err := c.CheckAudience("api web"); err != nil {
		t.Errorf("CheckAudience(api web) = %v", err)
	}
	if err := c.CheckAudience("api evil"); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("CheckAudience(api evil) = %v, want ErrInvalid", err)
	}
}

func TestMatch(t *testing.T) {
	c, clk := newTestCodec(t, AlgHS256)
	good := mustEncode(t, c, newRecord(clk.Now()))
	tests := []struct {
		raw  string
		want bool
	}{
		{good, true},
		{"eyJh.eyJi.c2ln", true},
		{"eyJh.eyJi.", false}, // empty signature
		{"eyJh..c2ln", false},
		{"eyJh.eyJi.c2ln.", false},
		{"eyJh.eyJi.c2ln.eA", false},
		{"eyJh.eyJi", false},
		{"Bearer " + good, false},
		{"tc_AAAAAAAAAAAAAAAAAAAAAA.secret", false},
		{"eyJh.eyJi.c2l=", true}, // Parse's strict base64 refuses it
		{"eyJh.eyJi.c2l+", true},
		{"eyJh.eyJi.c2l\x00", true},
		{"eyJ" + strings.Repeat("a", MaxTokenLen), false},
	}
	for _, tt := range tests {
		if got := c.Match([]byte(tt.raw)); got != tt.want {
			t.Errorf("Match(%.40q) = %v, want %v", tt.raw, got, tt.want)
		}
	}
	for _, raw := range []string{"eyJh.eyJi.c2l=", "eyJh.eyJi.c2l+", "eyJh.eyJi.c2l\x00", "eyJ\n.eyJi.c2ln", good[:len(good)-1] + "="} {
		wantRefused(t, c, raw, ErrSyntax)
	}
	goodRaw := []byte(good)
	if n := testing.AllocsPerRun(100, func() { c.Match(goodRaw) }); n != 0 {
		t.Errorf("Match allocates %v times", n)
	}
}

func TestRotation(t *testing.T) {
	clk := newTestClock()
	a, b := mustGen(t, AlgEdDSA), mustGen(t, AlgES256)
	c := mustCodec(t, clk, mustSet(t, a.ID(), a, b))
	old := mustEncode(t, c, newRecord(clk.Now()))
	oldUnseen := mustEncode(t, c, newRecord(clk.Now()))
	mustParse(t, c, old) // cached

	// Switch the active key: old tokens still verify, new ones carry b.
	c.SetKeys(mustSet(t, b.ID(), a, b))
	mustParse(t, c, old)
	mustParse(t, c, oldUnseen)
	fresh := mustEncode(t, c, newRecord(clk.Now()))
	if h, _, _ := gojwt.NewParser().ParseUnverified(fresh, &Claims{}); h.Header["kid"] != b.ID() {
		t.Errorf("token after the switch has kid %v, want %s", h.Header["kid"], b.ID())
	}
	mustParse(t, c, fresh)

	// Remove a: its tokens fail, cached or not; b's still verify.
	c.SetKeys(mustSet(t, b.ID(), b))
	wantRefused(t, c, old, ErrUnknownKey)
	wantRefused(t, c, oldUnseen, ErrUnknownKey)
	mustParse(t, c, fresh)

	// The kid of b now names other material: b's cached tokens are dropped
	// and fail.
	b2, err := GenerateKey(AlgES256, b.ID())
	if err != nil {
		t.Fatal(err)
	}
	c.SetKeys(mustSet(t, b.ID(), b2))
	wantRefused(t, c, fresh, ErrSignature)
	if got := c.KeySet().Active(); got != b2 {
		t.Errorf("KeySet().Active() = %v, want the new key", got)
	}
}

func newTestClock() *fakeClockT { return newFakeClock(testStart) }

func mustCodec(tb testing.TB, clk *fakeClockT, ks *KeySet, trusted ...Issuer) *Codec {
	tb.Helper()
	c, err := New(Config{Issuer: testIssuer, Audiences: []string{"api", "web"}, Leeway: 30 * time.Second, CacheSize: 1024, Now: clk.Now}, ks, trusted...)
	if err != nil {
		tb.Fatalf("New = %v", err)
	}
	return c
}

func TestTimeClaims(t *testing.T) {
	c, clk := newTestCodec(t, AlgEdDSA)
	k := mustKey(t, AlgEdDSA)
	now := clk.Now()
	with := func(kv ...any) gojwt.MapClaims {
		m := claimsAt(now)
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	t.Run("missing exp", func(t *testing.T) {
		wantRefused(t, c, signKey(t, k, with("exp", nil)), ErrClaims)
	})
	t.Run("exp past leeway", func(t *testing.T) {
		wantRefused(t, c, signKey(t, k, with("exp", now.Add(-31*time.Second).Unix())), ErrExpired)
	})
	t.Run("exp within leeway", func(t *testing.T) {
		mustParse(t, c, signKey(t, k, with("exp", now.Add(-29*time.Second).Unix())))
	})
	t.Run("nbf in future", func(t *testing.T) {
		wantRefused(t, c, signKey(t, k, with("nbf", now.Add(31*time.Second).Unix())), ErrNotYetValid)
	})
	t.Run("nbf within leeway", func(t *testing.T) {
		mustParse(t, c, signKey(t, k, with("nbf", now.Add(29*time.Second).Unix())))
	})
	t.Run("iat in future", func(t *testing.T) {
		wantRefused(t, c, signKey(t, k, with("iat", now.Add(time.Minute).Unix(), "nbf", nil)), ErrNotYetValid)
	})
	t.Run("exp beyond an int64 of nanoseconds", func(t *testing.T) {
		wantRefused(t, c, signKey(t, k, with("exp", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC).Unix())), ErrClaims)
	})
	t.Run("exp not a number", func(t *testing.T) {
		wantRefused(t, c, signKey(t, k, with("exp", "tomorrow")), token.ErrMalformed)
	})
}

func TestCacheHitRechecksTime(t *testing.T) {
	c, clk := newTestCodec(t, AlgHS256)
	k := mustKey(t, AlgHS256)
	now := clk.Now()
	cl := claimsAt(now)
	cl["nbf"] = now.Add(20 * time.Second).Unix() // valid now thanks to the leeway
	s := signKey(t, k, cl)
	mustParse(t, c, s)
	clk.Advance(time.Hour + 29*time.Second)
	mustParse(t, c, s) // exp + 29s: within the leeway, a hit
	clk.Advance(2 * time.Second)
	wantRefused(t, c, s, ErrExpired)
	if n := c.cache.len(); n != 0 {
		t.Errorf("cache holds %d entries after the only one expired", n)
	}
	// nbf is re-checked on a hit too: a codec whose clock goes back.
	c2, clk2 := newTestCodec(t, AlgHS256)
	mustParse(t, c2, s)
	clk2.Advance(-time.Minute)
	wantRefused(t, c2, s, ErrNotYetValid)
}

func TestIssuerAndAudience(t *testing.T) {
	c, clk := newTestCodec(t, AlgES256)
	k := mustKey(t, AlgES256)
	cl := claimsAt(clk.Now())
	cl["iss"] = "https://evil.test"
	wantRefused(t, c, signKey(t, k, cl), ErrIssuer)
	delete(cl, "iss")
	wantRefused(t, c, signKey(t, k, cl), ErrIssuer)
	cl = claimsAt(clk.Now())
	cl["aud"] = "evil"
	wantRefused(t, c, signKey(t, k, cl), ErrAudience)
	cl["jti"] = "not-a-key"
	cl["aud"] = "api"
	wantRefused(t, c, signKey(t, k, cl), ErrClaims)
	cl = claimsAt(clk.Now())
	cl["scope"] = "bad\"scope"
	wantRefused(t, c, signKey(t, k, cl), ErrClaims)
	cl = claimsAt(clk.Now())
	delete(cl, "sub")
	wantRefused(t, c, signKey(t, k, cl), ErrClaims)
}

func TestUnknownKid(t *testing.T) {
	c, clk := newTestCodec(t, AlgEdDSA)
	k := mustKey(t, AlgEdDSA)
	for _, kid := range []string{"nope", "../k-EdDSA", "k-EdDSA/../k-EdDSA", "./k-EdDSA", "/etc/passwd", "", "k-EdDSA\x00", "K-EDDSA"} {
		s := signWith(t, k.method, k.sign, map[string]any{"kid": kid}, claimsAt(clk.Now()))
		wantRefused(t, c, s, ErrUnknownKey)
	}
	for _, kid := range []any{7, []string{"k-EdDSA"}, map[string]any{"kid": "k-EdDSA"}, nil} {
		s := signWith(t, k.method, k.sign, map[string]any{"kid": kid}, claimsAt(clk.Now()))
		wantRefused(t, c, s, ErrHeader)
	}
	s := signWith(t, k.method, k.sign, nil, claimsAt(clk.Now()))
	wantRefused(t, c, s, ErrUnknownKey) // no kid
}

func TestForgedVariantOfCachedTokenMisses(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			c, clk := newTestCodec(t, alg)
			s := mustEncode(t, c, newRecord(clk.Now()))
			mustParse(t, c, s)
			before := c.cache.len()
			seg := segments(s)
			// One character changed in every position of the header, the
			// payload and the signature.
			for part := 0; part <= 2; part++ {
				for i := 0; i < len(seg[part]); i++ {
					b := []byte(s)
					pos := i
					for q := 0; q < part; q++ {
						pos += len(seg[q]) + 1
					}
					if b[pos] == 'A' {
						b[pos] = 'B'
					} else {
						b[pos] = 'A'
					}
					if p, err := c.Parse(b); err == nil {
						t.Fatalf("Parse(variant with segment %d byte %d changed) = %+v, want refused", part, i, p)
					}
				}
			}
			if after := c.cache.len(); after != before {
				t.Errorf("cache holds %d entries after the forgeries, want %d", after, before)
			}
			mustParse(t, c, s)
		})
	}
}

func TestKeyURLHeadersIgnored(t *testing.T) {
	c, clk := newTestCodec(t, AlgEdDSA)
	ours := mustKey(t, AlgEdDSA)
	evil := mustGen(t, AlgEdDSA)
	var evilJWK map[string]any
	_ = jsonUnmarshal(evil.publicJWK(t), &evilJWK)
	evilJWK["kid"] = ours.ID()
	// Signed by an attacker's key that the header carries or points to.
	for _, hdr := range [][]any{
		{"jwk", evilJWK},
		{"jku", "http://127.0.0.1:1/jwks.json"},
		{"x5u", "http://127.0.0.1:1/cert.pem"},
		{"x5c", []string{"MIIB"}},
	} {
		s := signWith(t, evil.method, evil.sign, map[string]any{"kid": ours.ID(), hdr[0].(string): hdr[1]}, claimsAt(clk.Now()))
		wantRefused(t, c, s, ErrSignature)
	}
	// Signed by our key: the members are there and simply not used.
	mustParse(t, c, signKey(t, ours, claimsAt(clk.Now()), "jku", "http://127.0.0.1:1/jwks.json", "jwk", evilJWK))
}

func TestCritHeaderRefused(t *testing.T) {
	c, clk := newTestCodec(t, AlgEdDSA)
	s := signKey(t, mustKey(t, AlgEdDSA), claimsAt(clk.Now()), "crit", []string{"exp"})
	wantRefused(t, c, s, ErrHeader)
}

func TestTrustedIssuer(t *testing.T) {
	ext := mustGen(t, AlgRS256)
	if ext == nil {
		t.Fatal("no key")
	}
	pub, err := newKey(ext.ID(), "", ext.Public())
	if err != nil {
		t.Fatal(err)
	}
	iss := &testIssuerExt{name: "https://idp.test", keys: map[string]*Key{pub.ID(): pub}, auds: []string{AnyAudience}}
	c, clk := newTestCodec(t, AlgEdDSA, iss)
	cl := claimsAt(clk.Now())
	cl["iss"], cl["jti"], cl["aud"], cl["groups"] = iss.name, "abc-123", []string{"anything", "else"}, []string{"g1"}
	s := signKey(t, ext, cl)
	p := mustParse(t, c, s)
	if !p.External || p.Key != ExternalKey(iss.name, "abc-123") || p.Claims.Key != p.Key {
		t.Errorf("Parse(external) = %+v, want External and the derived key", p)
	}
	// The local issuer's audience list does not apply to it; its own does.
	iss2 := &testIssuerExt{name: iss.name, keys: iss.keys, auds: []string{"only"}}
	if err := c.SetTrusted(iss2); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, c, s, ErrAudience)
	// Claims of the token reach the issuer's mapping.
	var seen *Claims
	rec := &recordingIssuer{testIssuerExt: iss, seen: &seen}
	if err := c.SetTrusted(rec); err != nil {
		t.Fatal(err)
	}
	mustParse(t, c, s)
	if seen == nil || seen.Extra["groups"] == nil {
		t.Errorf("Record saw claims %+v, want Extra with groups", seen)
	}
	// The issuer drops the key (a JWKS refresh, no SetTrusted): the cached
	// token fails at once.
	delete(iss.keys, pub.ID())
	wantRefused(t, c, s, ErrUnknownKey)
	iss.keys[pub.ID()] = pub
	mustParse(t, c, s)
	// An external token without jti cannot be revoked: refused.
	delete(cl, "jti")
	wantRefused(t, c, signKey(t, ext, cl), ErrClaims)
	// No longer trusted: refused, though cached.
	if err := c.SetTrusted(); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, c, s, ErrIssuer)
	// The local issuer cannot be trusted as external, nor one issuer twice.
	if err := c.SetTrusted(&testIssuerExt{name: testIssuer}); !errors.Is(err, ErrConfig) {
		t.Errorf("SetTrusted(local name) = %v, want ErrConfig", err)
	}
	if err := c.SetTrusted(iss, iss2); !errors.Is(err, ErrConfig) {
		t.Errorf("SetTrusted(twice) = %v, want ErrConfig", err)
	}
}

type recordingIssuer struct {
	*testIssuerExt
	seen **Claims
}

func (r *recordingIssuer) Record(c *Claims) (*token.Token, error) {
	*r.seen = c
	return r.testIssuerExt.Record(c)
}

func TestCacheIsBounded(t *testing.T) {
	clk := newTestClock()
	k := mustKey(t, AlgHS256)
	c, err := New(Config{Issuer: testIssuer, Audiences: []string{"api"}, CacheSize: 100, Now: clk.Now}, mustSet(t, k.ID(), k))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		mustParse(t, c, mustEncode(t, c, newRecord(clk.Now())))
	}
	// 64 shards of ceil(100/64) = 2 entries.
	if n := c.cache.len(); n > 128 || n < 64 {
		t.Errorf("cache holds %d entries after 1000 tokens, want at most 128 (size 100 over 64 shards)", n)
	}
}

// Large tokens (a trusted IdP's may carry kilobytes of claims) are fewer,
// not bigger in sum: the cache stays within its byte bound, its size × 2 KiB.
func TestCacheIsBoundedInBytes(t *testing.T) {
	clk := newTestClock()
	k := mustKey(t, AlgHS256)
	const size = 640
	c, err := New(Config{Issuer: testIssuer, Audiences: []string{"api"}, CacheSize: size, Now: clk.Now}, mustSet(t, k.ID(), k))
	if err != nil {
		t.Fatal(err)
	}
	var sc []string
	for i := range 60 {
		sc = append(sc, fmt.Sprintf("scope:%02d:%s", i, strings.Repeat("r", 70)))
	}
	scopes := strings.Join(sc, " ") // a text of about 6 KiB
	texts := 0
	for i := 0; i < 2000; i++ {
		rec := newRecord(clk.Now())
		rec.Scopes = token.Scopes(scopes)
		text := mustEncode(t, c, rec)
		texts = len(text)
		mustParse(t, c, text)
	}
	budget := size * 2 << 10
	held := 0
	for i := range c.cache.shards {
		for text := range c.cache.shards[i].m {
			held += 2*len(text) + 256
		}
	}
	if held > budget {
		t.Errorf("cache holds %d entries of %d-byte texts charged %d bytes, want at most %d (size %d × 2 KiB)",
			c.cache.len(), texts, held, budget, size)
	}
	if got := c.cache.bytes(); got != held {
		t.Errorf("cache tracks %d bytes of charges, holds %d", got, held)
	}
	if c.cache.len() == 0 {
		t.Error("cache holds no entry: a large token must still be cached")
	}
	// Small tokens still fill the cache up to its entry bound.
	for i := 0; i < 2000; i++ {
		mustParse(t, c, mustEncode(t, c, newRecord(clk.Now())))
	}
	if n := c.cache.len(); n < size/2 {
		t.Errorf("cache holds %d small entries, want about %d", n, size)
	}
}

func TestConfigValidate(t *testing.T) {
	ks := mustSet(t, "k-EdDSA", mustKey(t, AlgEdDSA))
	for _, cfg := range []Config{
		{Issuer: "", Audiences: []string{"api"}},
		{Issuer: testIssuer},
		{Issuer: testIssuer, Audiences: []string{"a b"}},
		{Issuer: testIssuer, Audiences: []string{"api"}, Leeway: 6 * time.Minute},
		{Issuer: testIssuer, Audiences: []string{"api"}, Leeway: -time.Second},
		{Issuer: testIssuer, Audiences: []string{"api"}, CacheSize: -1},
	} {
		if _, err := New(cfg, ks); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
	if _, err := New(Config{Issuer: testIssuer, Audiences: []string{"api"}}, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("New(no keys) = %v, want ErrConfig", err)
	}
	d := DefaultConfig()
	d.Issuer = testIssuer
	if err := d.Validate(); err != nil {
		t.Errorf("DefaultConfig() with an issuer: Validate = %v", err)
	}
}
