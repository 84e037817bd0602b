package main

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/token/jwt"
)

// idpFile is an IdP whose JWKS is a file: its signing key and the file.
type idpFile struct {
	issuer string
	key    *jwt.Key
	jwks   string
}

func newIdPFile(t *testing.T, issuer, kid string) idpFile {
	t.Helper()
	k, err := jwt.GenerateKey(jwt.AlgES256, kid)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := jwt.NewKeySet(kid, k)
	if err != nil {
		t.Fatal(err)
	}
	return idpFile{issuer: issuer, key: k, jwks: writeFile(t, kid+".jwks", string(ks.JWKS()))}
}

func (i idpFile) entry() TrustedIssuer {
	return TrustedIssuer{Issuer: i.issuer, JWKSFile: i.jwks, Audiences: []string{"gateway"}}
}

// token is an access token of the IdP, signed with its key.
func (i idpFile) token(t *testing.T) []byte {
	t.Helper()
	ks, err := jwt.NewKeySet(i.key.ID(), i.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := jwt.New(jwt.Config{Issuer: i.issuer, Audiences: []string{"gateway"}}, ks)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s, err := c.Encode(&token.Token{Key: token.NewKey(), Username: "erin", Created: token.At(now), Expires: token.At(now.Add(time.Hour))}, "")
	if err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}

// TestReloadTrusted: jwtFormat.reloadTrusted swaps the codec's trusted
// issuers, keeps an unchanged one running (same object, same keys), and
// changes nothing when the new list cannot be used; on a node that signs,
// as on a validate-only one.
func TestReloadTrusted(t *testing.T) {
	a, b := newIdPFile(t, "https://a.example", "a-1"), newIdPFile(t, "https://b.example", "b-1")
	for _, signs := range []bool{false, true} {
		cfg := Default()
		if signs {
			cfg.Tokens.JWT.KeysFile = writeKeysFile(t, jwt.AlgEdDSA)
		}
		cfg.Tokens.JWT.Trusted = []TrustedIssuer{a.entry()}
		f, err := newJWTFormat(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer f.close()
		if err := f.start(context.Background()); err != nil {
			t.Fatal(err)
		}
		valid := func(what string, tok []byte, want bool) {
			t.Helper()
			_, err := f.codec.Parse(tok)
			if (err == nil) != want {
				t.Errorf("signs=%t: %s: Parse = %v, want valid %t", signs, what, err, want)
			}
		}
		tokA, tokB := a.token(t), b.token(t)
		valid("A before", tokA, true)
		valid("B before", tokB, false)
		before := f.trustedIssuers()

		ch, err := f.reloadTrusted([]TrustedIssuer{a.entry(), b.entry()})
		if err != nil || !slices.Equal(ch.added, []string{b.issuer}) || !slices.Equal(ch.kept, []string{a.issuer}) || len(ch.removed) != 0 {
			t.Fatalf("signs=%t: reloadTrusted(A, B) = %+v, %v; want B added, A kept", signs, ch, err)
		}
		if after := f.trustedIssuers(); len(after) != 2 || after[0] != before[0] {
			t.Errorf("signs=%t: the unchanged issuer A was rebuilt", signs)
		}
		valid("A with A, B", tokA, true)
		valid("B with A, B", tokB, true)

		// Unusable lists change nothing.
		broken := b.entry()
		broken.JWKSFile = writeFile(t, "broken.jwks", "{not json")
		local := a.entry()
		local.Issuer = cfg.Tokens.JWT.Issuer
		for name, list := range map[string][]TrustedIssuer{
			"JWKS file that does not load": {broken},
			"the local issuer's name":      {a.entry(), local},
		} {
			if signs != (name == "the local issuer's name") {
				continue // a validate-only node has no local issuer
			}
			if _, err := f.reloadTrusted(list); err == nil {
				t.Errorf("signs=%t: reloadTrusted(%s) = nil, want an error", signs, name)
			}
			valid("A after a refused reload", tokA, true)
			valid("B after a refused reload", tokB, true)
		}
		ch, err = f.reloadTrusted(nil)
		if signs {
			if err != nil || len(ch.removed) != 2 {
				t.Errorf("signs=true: reloadTrusted(none) = %+v, %v; want both removed", ch, err)
			}
			valid("A after removal", tokA, false)
		} else if !errors.Is(err, jwt.ErrConfig) {
			t.Errorf("signs=false: reloadTrusted(none) = %+v, %v; want ErrConfig (a validate-only node would accept nothing)", ch, err)
		}

		ch, err = f.reloadTrusted([]TrustedIssuer{b.entry()})
		if err != nil {
			t.Fatalf("signs=%t: reloadTrusted(B) = %v", signs, err)
		}
		valid("A removed", tokA, false)
		valid("B alone", tokB, true)
	}
}
