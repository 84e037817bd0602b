// Package jwttest builds JWT codecs for the tests of other packages: a
// server's codec (local issuer Local, allow-listed audiences) that also
// trusts an external identity provider (External), and that provider's own
// codec, which signs the external tokens a test presents. Only tests import
// it.
package jwttest

import (
	"testing"
	"time"

	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/token/jwt"
)

// Issuer names of the two sides.
const (
	Local    = "https://tokencache.test"
	External = "https://idp.test"
)

// Audiences is the local issuer's allow-list.
var Audiences = []string{"api", "billing"}

// Setup is a server's codec and an external provider whose tokens it
// trusts.
type Setup struct {
	// Codec is the server's JWT format (register it with token.NewFormats).
	Codec *jwt.Codec
	// IdP signs tokens as External.
	IdP *jwt.Codec

	keys, idpKeys *jwt.KeySet
	now           func() time.Time
}

// New builds a Setup on clock now (nil: time.Now), with one EdDSA key on
// each side.
func New(tb testing.TB, now func() time.Time) *Setup {
	tb.Helper()
	s := &Setup{keys: keySet(tb, "local-1"), idpKeys: keySet(tb, "idp-1"), now: now}
	idp, err := jwt.New(jwt.Config{Issuer: External, Audiences: []string{jwt.AnyAudience}, Now: now}, s.idpKeys)
	if err != nil {
		tb.Fatal(err)
	}
	s.IdP = idp
	s.Codec = s.NewCodec(tb)
	return s
}

// NewCodec returns another codec of the same server (same keys, issuer,
// audiences and trusted provider, a verified cache of its own): what each
// node of a cluster runs.
func (s *Setup) NewCodec(tb testing.TB) *jwt.Codec {
	tb.Helper()
	c, err := jwt.New(jwt.Config{Issuer: Local, Audiences: Audiences, Now: s.now}, s.keys, &trusted{keys: s.idpKeys})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// NewVerifyOnly returns the codec of a validate-only server: no keys of
// its own (tokens.jwt.keys_file unset, tokens.jwt.issuer Local all the
// same), trusting the same provider. It verifies ExternalToken's tokens
// and mints none.
func (s *Setup) NewVerifyOnly(tb testing.TB) *jwt.Codec {
	tb.Helper()
	c, err := jwt.New(jwt.Config{Issuer: Local, Audiences: Audiences, Now: s.now}, nil, &trusted{keys: s.idpKeys})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func keySet(tb testing.TB, kid string) *jwt.KeySet {
	tb.Helper()
	k, err := jwt.GenerateKey(jwt.AlgEdDSA, kid)
	if err != nil {
		tb.Fatal(err)
	}
	ks, err := jwt.NewKeySet(kid, k)
	if err != nil {
		tb.Fatal(err)
	}
	return ks
}

// ExternalToken returns a token the provider issued to username, valid
// from created until expires, and the key it is known by on the server
// (jwt.ExternalKey of its issuer and jti).
func (s *Setup) ExternalToken(tb testing.TB, username string, created, expires time.Time) (string, token.Key) {
	tb.Helper()
	t := &token.Token{
		Key: token.NewKey(), Username: username, Realm: token.DefaultRealm, Scopes: "read",
		Created: token.At(created), Expires: token.At(expires), Format: token.FormatJWT, Type: token.TypeUser,
	}
	text, err := s.IdP.Encode(t, "")
	if err != nil {
		tb.Fatal(err)
	}
	return text, jwt.ExternalKey(External, t.Key.String())
}

// trusted is the provider as the server sees it: its public keys, any
// audience, and the plain mapping of sub and scope.
type trusted struct{ keys *jwt.KeySet }

func (t *trusted) Name() string                    { return External }
func (t *trusted) Key(kid string) (*jwt.Key, bool) { return t.keys.Key(kid) }
func (t *trusted) Audiences() []string             { return []string{jwt.AnyAudience} }

func (t *trusted) Record(c *jwt.Claims) (*token.Token, error) {
	sc, err := token.ParseScopes(c.Scope)
	if err != nil {
		return nil, err
	}
	r := &token.Token{Username: c.Subject, Realm: c.Realm, Scopes: sc, Type: token.TypeUser}
	if c.ExpiresAt != nil {
		r.Expires = token.At(c.ExpiresAt.Time)
	}
	if c.IssuedAt != nil {
		r.Created = token.At(c.IssuedAt.Time)
	}
	return r, nil
}
