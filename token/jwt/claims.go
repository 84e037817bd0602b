package jwt

import (
	"crypto/sha256"
	"fmt"
	"strings"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/tokencache/tokencache/token"
)

// Claims are the claims of a token as golang-jwt decodes them: the
// registered claims (RFC 7519 section 4.1) plus tokencache's own, named
//
//	scope       space-separated scopes (RFC 8693 section 4.2)
//	realm       the token's realm
//	uid         the numeric user id
//	token_type  session, user, notebook, internal, service or oauth
//	name        the token's name
//
// It implements gojwt.Claims. Extra holds every claim of a token from a
// trusted external issuer (for claim mapping and required claims); it is
// nil for a local token.
type Claims struct {
	gojwt.RegisteredClaims
	Scope string         `json:"scope,omitempty"`
	Realm string         `json:"realm,omitempty"`
	UID   *int64         `json:"uid,omitempty"`
	Type  string         `json:"token_type,omitempty"`
	Name  string         `json:"name,omitempty"`
	Extra map[string]any `json:"-"`
}

// Issuer is one issuer whose tokens the codec accepts: the local one (New
// builds it from the KeySet) or a trusted external one. Its methods are
// called concurrently.
type Issuer interface {
	// Name is the iss claim value.
	Name() string
	// Key returns the verify key of kid; its algorithm is pinned on the
	// key. It must look in memory only: never fetch on a miss (a kid is
	// attacker-chosen text).
	Key(kid string) (*Key, bool)
	// Audiences is the aud allow-list; AnyAudience accepts any.
	Audiences() []string
	// Record maps verified claims to the record the token states
	// (Presented.Claims): Username, Scopes, Expires, Created (iat), Realm,
	// UID, Type, Name, Audience. The codec sets Key, Format and, for an
	// external issuer, the key derived from iss and jti.
	Record(c *Claims) (*token.Token, error)
}

// localIssuer is this server: its keys, its name, its audiences.
type localIssuer struct {
	name string
	auds []string
	keys *KeySet
}

func (l *localIssuer) Name() string                { return l.name }
func (l *localIssuer) Key(kid string) (*Key, bool) { return l.keys.Key(kid) }
func (l *localIssuer) Audiences() []string         { return l.auds }

// Record implements Issuer: the claims Encode wrote, back into a record.
// The jti must be a token key.
func (l *localIssuer) Record(c *Claims) (*token.Token, error) {
	k, err := token.ParseKey(c.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: jti is not a token key", ErrClaims)
	}
	return recordOf(c, k)
}

// DefaultRecord is the record c states under the default mapping: sub is
// the username, scope the scopes, realm, uid, token_type and name as Encode
// writes them, exp and iat the expiry and creation times, aud the
// audience. Its Key is zero: the codec sets it. An external Issuer may
// use it and then override what its claim mapping says.
func DefaultRecord(c *Claims) (*token.Token, error) { return recordOf(c, token.Key{}) }

// recordOf builds the record c states under key k.
func recordOf(c *Claims, k token.Key) (*token.Token, error) {
	b := &struct {
		t   token.Token
		ext token.Extra
	}{}
	if err := fillRecord(c, k, &b.t, &b.ext); err != nil {
		return nil, err
	}
	return &b.t, nil
}

// fillRecord writes the record c states under key k into t, with ext as
// its Extra when that has a field set (one allocation for both, the
// caller's).
func fillRecord(c *Claims, k token.Key, t *token.Token, ext *token.Extra) error {
	if c.Subject == "" {
		return fmt.Errorf("%w: no sub", ErrClaims)
	}
	if err := token.ValidText("sub", c.Subject, token.MaxUsernameLen, true); err != nil {
		return fmt.Errorf("%w: %w", ErrClaims, err)
	}
	sc, ok := canonicalScopes(c.Scope)
	if !ok {
		var err error
		if sc, err = token.ParseScopes(c.Scope); err != nil {
			return fmt.Errorf("%w: %w", ErrClaims, err)
		}
	}
	*t = token.Token{
		Key:      k,
		Username: c.Subject,
		Realm:    c.Realm,
		Scopes:   sc,
		Format:   token.FormatJWT,
	}
	if c.ExpiresAt != nil {
		t.Expires = token.At(c.ExpiresAt.Time)
	}
	if c.IssuedAt != nil {
		t.Created = token.At(c.IssuedAt.Time)
	}
	if c.UID != nil {
		t.UID, t.HasUID = *c.UID, true
	}
	if c.Type != "" {
		var err error
		if t.Type, err = token.ParseType(c.Type); err != nil {
			return fmt.Errorf("%w: %w", ErrClaims, err)
		}
	}
	*ext = token.Extra{Name: c.Name, Audience: strings.Join(c.Audience, " ")}
	if ext.Name != "" || ext.Audience != "" {
		t.Ext = ext
	}
	return nil
}

// ExternalKey is the key under which a token of external issuer iss with
// jti is known here (its revocation tombstone): the first 16 bytes of
// SHA-256("tokencache-jti\x00" + iss + "\x00" + jti).
func ExternalKey(iss, jti string) token.Key {
	h := sha256.New()
	h.Write([]byte("tokencache-jti\x00"))
	h.Write([]byte(iss))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var sum [32]byte
	h.Sum(sum[:0])
	var k token.Key
	copy(k[:], sum[:token.KeySize])
	return k
}

// canonicalScopes returns s as a scope set when it already is one in
// canonical form (valid scopes, sorted, unique, single spaces, at most
// token.MaxScopes), as Encode writes it: without allocating.
func canonicalScopes(s string) (token.Scopes, bool) {
	if s == "" {
		return "", true
	}
	n, prev := 0, ""
	for rest := s; ; {
		sc, after, more := strings.Cut(rest, " ")
		if n++; n > token.MaxScopes || sc == "" || sc <= prev || token.ValidScope(sc) != nil {
			return "", false
		}
		prev = sc
		if !more {
			return token.Scopes(s), true
		}
		rest = after
	}
}
