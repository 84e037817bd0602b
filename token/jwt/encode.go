package jwt

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/tokencache/tokencache/token"
)

// payload is the claims set Encode writes, in this order.
type payload struct {
	Iss   string `json:"iss"`
	Sub   string `json:"sub"`
	Aud   any    `json:"aud"` // a string, or an array when several
	Exp   int64  `json:"exp"`
	Nbf   int64  `json:"nbf"`
	Iat   int64  `json:"iat"`
	Jti   string `json:"jti"`
	Scope string `json:"scope,omitempty"`
	Realm string `json:"realm,omitempty"`
	UID   *int64 `json:"uid,omitempty"`
	Type  string `json:"token_type,omitempty"`
	Name  string `json:"name,omitempty"`
}

// Encode implements token.Codec: the JWT of record t (secret is unused),
// signed with the active key, header {"alg", "kid", "typ": "JWT"}. Claims:
// iss (the local issuer), sub (Username), aud (t's audience: a string, or
// an array when several; the default audience when t names none), exp,
// nbf and iat (Created, in whole seconds), jti (t's key), and scope,
// realm, uid, token_type and name when set. A record without an expiry
// cannot be a JWT (exp is required). A validate-only codec answers
// ErrNoSigningKey.
func (c *Codec) Encode(t *token.Token, _ string) (string, error) {
	st := c.st.Load()
	if st.keys == nil {
		return "", ErrNoSigningKey
	}
	if t.Expires.IsZero() {
		return "", fmt.Errorf("%w: a JWT needs an expiry", token.ErrInvalid)
	}
	p := payload{
		Iss:   c.cfg.Issuer,
		Sub:   t.Username,
		Exp:   int64(t.Expires) / 1e9,
		Iat:   int64(t.Created) / 1e9,
		Jti:   t.Key.String(),
		Scope: string(t.Scopes),
		Realm: t.Realm,
		Name:  t.Name(),
	}
	p.Nbf = p.Iat
	switch aud := splitAudience(audienceOf(t)); len(aud) {
	case 0:
		p.Aud = c.cfg.defaultAudience()
	case 1:
		p.Aud = aud[0]
	default:
		p.Aud = aud
	}
	if t.HasUID {
		uid := t.UID
		p.UID = &uid
	}
	if t.Type != token.TypeUnknown {
		p.Type = t.Type.String()
	}
	body, err := json.Marshal(&p)
	if err != nil {
		return "", fmt.Errorf("cannot encode JWT claims: %w", err)
	}
	k := st.keys.Active()
	n := len(st.header) + base64.RawURLEncoding.EncodedLen(len(body))
	buf := make([]byte, 0, n+1+base64.RawURLEncoding.EncodedLen(512))
	buf = append(buf, st.header...)
	buf = base64.RawURLEncoding.AppendEncode(buf, body)
	sig, err := k.method.Sign(string(buf), k.sign)
	if err != nil {
		return "", fmt.Errorf("cannot sign JWT with key %s: %w", k, err)
	}
	buf = append(buf, '.')
	buf = base64.RawURLEncoding.AppendEncode(buf, sig)
	return string(buf), nil
}

func audienceOf(t *token.Token) string {
	if t.Ext == nil {
		return ""
	}
	return t.Ext.Audience
}
