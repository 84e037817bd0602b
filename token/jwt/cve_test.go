package jwt

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/tokencache/tokencache/token"
)

// CVE-2020-26160 (jwt-go): an aud given as an array was not checked
// (its check only handled a string), so any audience passed. aud must be
// present and non-empty, and, whether a string or an array, at least one
// of its values must be allowed (RFC 7519 section 4.1.3).
func TestCVE_2020_26160_AudienceArray(t *testing.T) {
	c, clk := newTestCodec(t, AlgEdDSA)
	k := mustKey(t, AlgEdDSA)
	tests := []struct {
		aud  any // nil: no aud claim
		want bool
	}{
		{"api", true},
		{[]string{"api"}, true},
		{[]string{"api", "web"}, true},
		{[]string{"api", "evil"}, true}, // meant for api too: api accepts it
		{[]string{"evil", "api"}, true},
		{[]string{"evil", "other"}, false},
		{[]string{"api", ""}, false},
		{[]string{"evil"}, false},
		{"evil", false},
		{[]string{}, false},
		{"", false},
		{[]string{""}, false},
		{nil, false},
		{[]any{"api", 7}, false},
		{map[string]string{"api": "api"}, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.aud), func(t *testing.T) {
			cl := claimsAt(clk.Now())
			if tt.aud == nil {
				delete(cl, "aud")
			} else {
				cl["aud"] = tt.aud
			}
			s := signKey(t, k, cl)
			if tt.want {
				mustParse(t, c, s)
				return
			}
			wantRefused(t, c, s, nil)
		})
	}
	// "*" accepts any audience, never none.
	star, err := New(Config{Issuer: testIssuer, Audiences: []string{AnyAudience}, Now: clk.Now}, c.KeySet())
	if err != nil {
		t.Fatal(err)
	}
	for _, aud := range []any{"x", []string{"x", "y"}} {
		cl := claimsAt(clk.Now())
		cl["aud"] = aud
		mustParse(t, star, signKey(t, k, cl))
	}
	for _, aud := range []any{nil, []string{}, ""} {
		cl := claimsAt(clk.Now())
		cl["aud"] = aud
		if aud == nil {
			delete(cl, "aud")
		}
		wantRefused(t, star, signKey(t, k, cl), ErrAudience)
	}
}

// CVE-2024-51744 (golang-jwt < 4.5.1): ParseWithClaims returned both a
// signature error and an expiry error, and a caller that checked only for
// "expired" treated a forged token as merely expired. A token with a bad
// signature that is also expired must fail as a signature failure, and
// any error at all must refuse.
func TestCVE_2024_51744_BadSignatureAndExpired(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			c, clk := newTestCodec(t, alg)
			ours := mustKey(t, alg)
			forger, err := GenerateKey(alg, ours.ID())
			if err != nil {
				t.Fatal(err)
			}
			cl := claimsAt(clk.Now().Add(-2 * time.Hour)) // expired an hour ago
			s := signKey(t, forger, cl)
			wantRefused(t, c, s, ErrSignature)
			if _, err := c.Parse([]byte(s)); errors.Is(err, ErrExpired) {
				t.Errorf("Parse(forged and expired) = %v: reported as expired", err)
			}
			// golang-jwt's own error chain: the signature failure, and
			// no claims verdict at all.
			st := c.st.Load()
			tok, gerr := st.parser.ParseWithClaims(s, &parsed{v: verification{st: st}}, keyfunc)
			if !errors.Is(gerr, gojwt.ErrTokenSignatureInvalid) {
				t.Errorf("golang-jwt error = %v, want ErrTokenSignatureInvalid", gerr)
			}
			if errors.Is(gerr, gojwt.ErrTokenExpired) || errors.Is(gerr, gojwt.ErrTokenInvalidClaims) {
				t.Errorf("golang-jwt error = %v, judges claims of a forged token", gerr)
			}
			if tok != nil && tok.Valid {
				t.Errorf("golang-jwt token Valid with an error")
			}
		})
	}
	// Our mapping judges the signature first, whatever else a joined error
	// holds, and never maps an error (or a missing one) to success.
	joined := fmt.Errorf("%w: %w", gojwt.ErrTokenExpired, fmt.Errorf("%w", gojwt.ErrTokenSignatureInvalid))
	if got := mapError(joined); !errors.Is(got, ErrSignature) || errors.Is(got, ErrExpired) {
		t.Errorf("mapError(expired + bad signature) = %v, want ErrSignature", got)
	}
	for _, err := range []error{nil, errors.New("anything"), gojwt.ErrTokenInvalidClaims, gojwt.ErrTokenRequiredClaimMissing} {
		if got := mapError(err); got == nil || !errors.Is(got, token.ErrMalformed) {
			t.Errorf("mapError(%v) = %v, want a refusal", err, got)
		}
	}
}

// CVE-2025-30204 (golang-jwt < 5.2.2): a header of many '.' made the
// splitter allocate O(n) per request. Match refuses such text without
// parsing (a length bound, at most two dots, base64url only), and Parse
// allocates nothing to refuse it.
func TestCVE_2025_30204_HeaderParsingCost(t *testing.T) {
	c, clk := newTestCodec(t, AlgEdDSA)
	good := mustEncode(t, c, newRecord(clk.Now()))
	mb := 1 << 20
	inputs := map[string][]byte{
		"Bearer + 1 MB of dots":    []byte("Bearer " + strings.Repeat(".", mb)),
		"eyJ + 1 MB of dots":       []byte("eyJ" + strings.Repeat(".", mb)),
		"many segments":            []byte(strings.Repeat("eyJhbGciOi.", mb/11)),
		"short with many segments": []byte("eyJh." + strings.Repeat("a.", 1000)),
		"valid token + 1 MB":       []byte(good + strings.Repeat("A", mb)),
		"four segments":            []byte(good + ".eyJ"),
	}
	for name, raw := range inputs {
		t.Run(name, func(t *testing.T) {
			if c.Match(raw) {
				t.Fatalf("Match = true")
			}
			if _, err := c.Parse(raw); !errors.Is(err, ErrSyntax) {
				t.Errorf("Parse = %v, want ErrSyntax", err)
			}
			if n := testing.AllocsPerRun(20, func() { c.Parse(raw) }); n != 0 {
				t.Errorf("Parse allocates %v times to refuse it, want 0", n)
			}
		})
	}
	// The scan stops at the third dot: a dot-flood costs no more than a
	// short text.
	flood := inputs["short with many segments"]
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Parse(flood)
		}
	})
	if res.AllocedBytesPerOp() != 0 {
		t.Errorf("Parse(dot flood) allocates %d bytes/op, want 0", res.AllocedBytesPerOp())
	}
}

// alg "none" in any spelling is refused, with or without a signature.
func TestAlgNone(t *testing.T) {
	c, clk := newTestCodec(t, AlgEdDSA)
	claims := mustJSON(claimsAt(clk.Now()))
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		hdr := mustJSON(map[string]string{"alg": alg, "kid": "k-EdDSA", "typ": "JWT"})
		for _, sig := range [][]byte{nil, []byte("x"), make([]byte, 64)} {
			s := rawToken(hdr, claims, sig)
			p, err := c.Parse([]byte(s))
			if err == nil || !errors.Is(err, token.ErrMalformed) {
				t.Errorf("Parse(alg %s, %d-byte signature) = %+v, %v; want refused", alg, len(sig), p, err)
			}
		}
	}
	// golang-jwt's own unsecured token, through the parser directly.
	s := signWith(t, gojwt.SigningMethodNone, gojwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": "k-EdDSA"}, claimsAt(clk.Now()))
	st := c.st.Load()
	pc := &parsed{v: verification{st: st}}
	if _, err := st.parser.ParseWithClaims(s, pc, keyfunc); err == nil {
		t.Errorf("parser accepted alg none")
	}
	if pc.v.key != nil {
		t.Errorf("keyfunc ran for alg none")
	}
}

// An HS256 token whose secret is the public key of an RS256, ES256 or
// EdDSA key (as PEM, DER or raw bytes) names that key's kid: the kid pins
// its own algorithm, so the token is refused before any HMAC is computed
// with the public key.
func TestKeyConfusionHS256WithPublicKey(t *testing.T) {
	for _, alg := range []string{AlgRS256, AlgES256, AlgEdDSA} {
		t.Run(alg, func(t *testing.T) {
			k := mustKey(t, alg)
			// A codec whose keys are all asymmetric, and one that also
			// holds an HS256 key.
			clk := newTestClock()
			only := mustCodec(t, clk, mustSet(t, k.ID(), k))
			mixed, _ := newTestCodec(t, alg)
			der, _ := x509.MarshalPKIXPublicKey(k.Public())
			secrets := [][]byte{der, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
			if alg == AlgEdDSA {
				secrets = append(secrets, []byte(k.Public().(ed25519.PublicKey)))
			}
			for _, sec := range secrets {
				s := signWith(t, gojwt.SigningMethodHS256, sec, map[string]any{"kid": k.ID()}, claimsAt(clk.Now()))
				wantRefused(t, only, s, ErrHeader)
				wantRefused(t, mixed, s, ErrHeader)
			}
		})
	}
}
