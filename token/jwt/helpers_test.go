package jwt

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/tokencache/tokencache/internal/fakeclock"
	"github.com/tokencache/tokencache/token"
)

const testIssuer = "https://tokencache.test"

var testStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// mustSet returns the key set of keys with kid active.
func mustSet(tb testing.TB, active string, keys ...*Key) *KeySet {
	tb.Helper()
	ks, err := NewKeySet(active, keys...)
	if err != nil {
		tb.Fatalf("NewKeySet = %v", err)
	}
	return ks
}

// newTestCodec returns a codec for testIssuer, audiences api and web,
// leeway 30s, on a fake clock, signing with the test key of alg (the other
// test keys verify only).
func newTestCodec(tb testing.TB, alg string, trusted ...Issuer) (*Codec, *fakeclock.Clock) {
	tb.Helper()
	var keys []*Key
	for _, a := range allAlgs {
		keys = append(keys, mustKey(tb, a))
	}
	clk := fakeclock.New(testStart)
	c, err := New(Config{Issuer: testIssuer, Audiences: []string{"api", "web"}, Leeway: 30 * time.Second, CacheSize: 1024, Now: clk.Now},
		mustSet(tb, "k-"+alg, keys...), trusted...)
	if err != nil {
		tb.Fatalf("New = %v", err)
	}
	return c, clk
}

// newRecord returns a record as tokens.Issue writes it, issued at now for
// an hour.
func newRecord(now time.Time) *token.Token {
	t := &token.Token{
		Key:      token.NewKey(),
		Username: "alice",
		Realm:    "default",
		Scopes:   "read:all write",
		Created:  token.At(now),
		Expires:  token.At(now.Add(time.Hour)),
		Type:     token.TypeUser,
		UID:      4242,
		HasUID:   true,
		Format:   token.FormatJWT,
	}
	t.SetExtra(token.Extra{Name: "laptop", Audience: "api"})
	return t
}

func mustEncode(tb testing.TB, c *Codec, t *token.Token) string {
	tb.Helper()
	s, err := c.Encode(t, "")
	if err != nil {
		tb.Fatalf("Encode = %v", err)
	}
	return s
}

// claimsAt returns a valid claims set of testIssuer at now.
func claimsAt(now time.Time) gojwt.MapClaims {
	return gojwt.MapClaims{
		"iss": testIssuer, "sub": "alice", "aud": "api",
		"exp": now.Add(time.Hour).Unix(), "nbf": now.Unix(), "iat": now.Unix(),
		"jti": token.NewKey().String(),
	}
}

// signWith returns a token of claims signed with method and key under
// header members hdr (kid among them); golang-jwt does the signing.
func signWith(tb testing.TB, method gojwt.SigningMethod, key any, hdr map[string]any, claims gojwt.MapClaims) string {
	tb.Helper()
	t := gojwt.NewWithClaims(method, claims)
	for k, v := range hdr {
		t.Header[k] = v
	}
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatalf("SignedString = %v", err)
	}
	return s
}

// signKey signs claims with test key k under its kid (and extra header
// members).
func signKey(tb testing.TB, k *Key, claims gojwt.MapClaims, hdr ...any) string {
	tb.Helper()
	h := map[string]any{"kid": k.ID()}
	for i := 0; i+1 < len(hdr); i += 2 {
		h[hdr[i].(string)] = hdr[i+1]
	}
	return signWith(tb, k.method, k.sign, h, claims)
}

// rawToken assembles a token from a header and claims given as JSON text
// and a signature.
func rawToken(header, claims string, sig []byte) string {
	e := base64.RawURLEncoding
	return e.EncodeToString([]byte(header)) + "." + e.EncodeToString([]byte(claims)) + "." + e.EncodeToString(sig)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// segments splits a token into its three segments.
func segments(s string) [3]string {
	p := strings.Split(s, ".")
	return [3]string{p[0], p[1], p[2]}
}

// testIssuerExt is a trusted external issuer for tests.
type testIssuerExt struct {
	name string
	keys map[string]*Key
	auds []string
}

func (i *testIssuerExt) Name() string { return i.name }
func (i *testIssuerExt) Key(kid string) (*Key, bool) {
	k, ok := i.keys[kid]
	return k, ok
}
func (i *testIssuerExt) Audiences() []string { return i.auds }
func (i *testIssuerExt) Record(c *Claims) (*token.Token, error) {
	return recordOf(c, token.Key{})
}
