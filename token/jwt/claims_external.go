package jwt

import (
	"encoding/json"

	gojwt "github.com/golang-jwt/jwt/v5"
)

// UnmarshalJSON decodes the registered claims strictly, as golang-jwt does,
// and tokencache's own claims (scope, realm, uid, token_type, name) only
// when they have the type this package writes. An external issuer may use
// those names for other things: scope as an array of strings, uid as a
// string (Okta), name as a display name; its token must not be refused for
// it, and its claim mapping (Trusted.Record) reads such claims from Extra.
// A local token always has the types Encode wrote.
func (c *Claims) UnmarshalJSON(b []byte) error {
	var raw struct {
		gojwt.RegisteredClaims
		Scope json.RawMessage `json:"scope"`
		Realm json.RawMessage `json:"realm"`
		UID   json.RawMessage `json:"uid"`
		Type  json.RawMessage `json:"token_type"`
		Name  json.RawMessage `json:"name"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	extra := c.Extra
	*c = Claims{RegisteredClaims: raw.RegisteredClaims, Extra: extra}
	lenient := func(m json.RawMessage, v any) {
		if len(m) > 0 {
			_ = json.Unmarshal(m, v) // another type: left zero
		}
	}
	lenient(raw.Scope, &c.Scope)
	lenient(raw.Realm, &c.Realm)
	lenient(raw.Type, &c.Type)
	lenient(raw.Name, &c.Name)
	if len(raw.UID) > 0 && string(raw.UID) != "null" {
		var uid int64
		if json.Unmarshal(raw.UID, &uid) == nil {
			c.UID = &uid
		}
	}
	return nil
}
