package token

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Field limits.
const (
	MaxUsernameLen = 256
	MaxRealmLen    = 128
	MaxNameLen     = 256
	MaxServiceLen  = 256
	MaxClientIDLen = 256
	// MaxAudienceLen bounds a JWT's space-separated audience.
	MaxAudienceLen = 1024
	// DefaultRealm is the realm of a token that names none.
	DefaultRealm = "default"
)

// ValidText checks a free-text identifier field: non-empty when required,
// valid UTF-8, no control characters, at most max bytes.
func ValidText(field, s string, max int, required bool) error {
	if s == "" {
		if required {
			return fmt.Errorf("%w: %s is required", ErrInvalid, field)
		}
		return nil
	}
	if len(s) > max {
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalid, field, max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, field)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%w: %s contains a control character", ErrInvalid, field)
		}
	}
	return nil
}

// ValidUsername checks a username. A username travels to the gateway in the
// X-Token-User header and into the logs and audit trails behind it, so it
// may only hold characters that mean the same to every reader: 1 to
// MaxUsernameLen bytes of valid UTF-8, each character a letter or a
// combining mark (Unicode categories L and M), a decimal digit (Nd), or one
// of '.', '_', '-', '@' and '+'. That leaves out spaces, commas (a list
// separator in HTTP headers), quotes, control characters, bidirectional
// controls and other invisible format characters. It judges a new username
// (an issue: tokens.Service.Issue); records written before the rule keep
// the looser one of Validate, so that they stay readable and revocable.
func ValidUsername(s string) error {
	if s == "" {
		return fmt.Errorf("%w: username is required", ErrInvalid)
	}
	if len(s) > MaxUsernameLen {
		return fmt.Errorf("%w: username is longer than %d bytes", ErrInvalid, MaxUsernameLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: username is not valid UTF-8", ErrInvalid)
	}
	for i, r := range s {
		switch {
		case r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '.' || r == '_' || r == '-' || r == '@' || r == '+'):
		case r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsMark(r) || unicode.Is(unicode.Nd, r)):
		default:
			return fmt.Errorf("%w: username holds %U at byte %d; allowed are letters, digits, combining marks and . _ - @ +", ErrInvalid, r, i)
		}
	}
	return nil
}

// Validate checks every field of a record that is about to be written and
// reports the first problem. It does not judge times against a clock.
func (t *Token) Validate() error {
	if t.Key.IsZero() {
		return fmt.Errorf("%w: key is required", ErrInvalid)
	}
	if t.Type == TypeUnknown || int(t.Type) >= len(typeNames) {
		return fmt.Errorf("%w: unknown token type", ErrInvalid)
	}
	if t.Format != FormatOpaque && t.Format != FormatJWT {
		return fmt.Errorf("%w: unknown token format", ErrInvalid)
	}
	if t.Format.HasSecret() && t.Hash.IsZero() {
		return fmt.Errorf("%w: an opaque token needs a secret hash", ErrInvalid)
	}
	// A stored record keeps the looser rule it was written under; a new
	// username is judged by ValidUsername where it is first accepted.
	if err := ValidText("username", t.Username, MaxUsernameLen, true); err != nil {
		return err
	}
	if err := ValidText("realm", t.Realm, MaxRealmLen, true); err != nil {
		return err
	}
	if t.HasUID && t.UID < 0 {
		return fmt.Errorf("%w: uid must not be negative", ErrInvalid)
	}
	if canon, err := ParseScopes(string(t.Scopes)); err != nil {
		return err
	} else if canon != t.Scopes {
		return fmt.Errorf("%w: scopes must be sorted, single-space separated", ErrInvalid)
	}
	if t.Created == 0 {
		return fmt.Errorf("%w: created is required", ErrInvalid)
	}
	if t.Expires != 0 && t.Expires <= t.Created {
		return fmt.Errorf("%w: expires must be after created", ErrInvalid)
	}
	if err := ValidText("name", t.Name(), MaxNameLen, false); err != nil {
		return err
	}
	if err := ValidText("service", t.Service(), MaxServiceLen, false); err != nil {
		return err
	}
	if err := ValidText("client_id", t.ClientID(), MaxClientIDLen, false); err != nil {
		return err
	}
	if err := ValidText("audience", t.Audience(), MaxAudienceLen, false); err != nil {
		return err
	}
	if t.Type == TypeInternal && t.Service() == "" {
		return fmt.Errorf("%w: an internal token needs a service", ErrInvalid)
	}
	if (t.Type == TypeInternal || t.Type == TypeNotebook) && t.Parent().IsZero() {
		return fmt.Errorf("%w: %s tokens need a parent", ErrInvalid, t.Type)
	}
	if p := t.Parent(); !p.IsZero() && p == t.Key {
		return fmt.Errorf("%w: a token cannot be its own parent", ErrInvalid)
	}
	return nil
}
