package token

import (
	"fmt"
	"time"
)

// Token is the record kept for one token. It never holds the secret, only
// its hash. A *Token reachable from the cache or from a log command is
// immutable: to change a token, copy it (Clone), change the copy and write it.
//
// The layout is kept small on purpose (the cache holds up to a million of
// them): fields that most tokens leave empty live behind Ext.
type Token struct {
	Key   Key
	Hash  Hash   // zero for JWT tokens, which carry no secret
	Index uint64 // log index of the write that last changed this record

	Created   Time
	Expires   Time // zero: never expires
	LastUsed  Time // zero: never used (as far as the replicated state knows)
	RevokedAt Time // zero: not revoked

	UID      int64 // meaningful only when HasUID
	Username string
	Realm    string
	Scopes   Scopes

	Ext *Extra // optional fields; nil when all of them are empty

	Format Format
	Type   Type
	HasUID bool
}

// Extra holds the fields of a token that most tokens leave empty.
type Extra struct {
	Name     string // unique per user among live tokens
	Service  string // for internal tokens
	ClientID string
	Parent   Key // zero: no parent
	// Credentials is an opaque sealed blob (AES-256-GCM under a key derived
	// from tokens.safe_password); this package never looks inside.
	Credentials []byte
	// Sealed is the token's own secret sealed under a key derived from its
	// parent's secret, so that a delegated child can be handed out again to
	// a holder of the parent (see Delegation). Nil for other tokens.
	Sealed []byte
	// Audience is the space-separated audience a JWT was issued for (its
	// aud claim); empty for other tokens.
	Audience string
}

// Name returns the token's name, or "".
func (t *Token) Name() string {
	if t.Ext == nil {
		return ""
	}
	return t.Ext.Name
}

// Service returns the service of an internal token, or "".
func (t *Token) Service() string {
	if t.Ext == nil {
		return ""
	}
	return t.Ext.Service
}

// ClientID returns the OAuth client id, or "".
func (t *Token) ClientID() string {
	if t.Ext == nil {
		return ""
	}
	return t.Ext.ClientID
}

// Audience returns the space-separated audience of a JWT, or "".
func (t *Token) Audience() string {
	if t.Ext == nil {
		return ""
	}
	return t.Ext.Audience
}

// IsTombstone reports whether t is a revocation tombstone: the record of a
// revoked self-contained token (a JWT) kept so that its text, which proves
// itself until its exp, answers revoked. A revoked JWT record that was
// issued here is one too; an opaque record never is.
func (t *Token) IsTombstone() bool { return t.Format == FormatJWT && t.RevokedAt != 0 }

// Parent returns the parent key; the zero key means no parent.
func (t *Token) Parent() Key {
	if t.Ext == nil {
		return Key{}
	}
	return t.Ext.Parent
}

// Clone returns a deep copy of t that the caller may change.
func (t *Token) Clone() *Token {
	c := *t
	if t.Ext != nil {
		e := *t.Ext
		e.Credentials = append([]byte(nil), t.Ext.Credentials...)
		e.Sealed = append([]byte(nil), t.Ext.Sealed...)
		c.Ext = &e
	}
	return &c
}

// SetExtra replaces t.Ext, storing nil when e has no non-empty field.
// Call it only on a token you own (a Clone or a new record).
func (t *Token) SetExtra(e Extra) {
	if e.Name == "" && e.Service == "" && e.ClientID == "" && e.Parent.IsZero() &&
		len(e.Credentials) == 0 && len(e.Sealed) == 0 && e.Audience == "" {
		t.Ext = nil
		return
	}
	t.Ext = &e
}

// Type is the kind of a token.
type Type uint8

// Token types (Gafaelfawr's, plus service and oauth).
const (
	TypeUnknown Type = iota
	TypeSession
	TypeUser
	TypeNotebook
	TypeInternal
	TypeService
	TypeOAuth
)

var typeNames = [...]string{"", "session", "user", "notebook", "internal", "service", "oauth"}

// String returns the API name of the type.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// ParseType parses an API type name.
func ParseType(s string) (Type, error) {
	for i := 1; i < len(typeNames); i++ {
		if typeNames[i] == s {
			return Type(i), nil
		}
	}
	return TypeUnknown, fmt.Errorf("%w: unknown token type %q (want session, user, notebook, internal, service or oauth)", ErrInvalid, s)
}

// MarshalText implements encoding.TextMarshaler.
func (t Type) MarshalText() ([]byte, error) {
	if t == TypeUnknown || int(t) >= len(typeNames) {
		return nil, fmt.Errorf("%w: no such token type %d", ErrInvalid, uint8(t))
	}
	return []byte(typeNames[t]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *Type) UnmarshalText(b []byte) error {
	v, err := ParseType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Format is how a token is presented: an opaque string or a signed JWT.
type Format uint8

// Token formats.
const (
	FormatOpaque Format = iota
	FormatJWT
)

// String returns the API name of the format.
func (f Format) String() string {
	switch f {
	case FormatOpaque:
		return "opaque"
	case FormatJWT:
		return "jwt"
	}
	return fmt.Sprintf("format(%d)", uint8(f))
}

// HasSecret reports whether a token of format f carries a secret, whose hash
// its record keeps (opaque), rather than proving itself by a signature (JWT).
func (f Format) HasSecret() bool { return f == FormatOpaque }

// ParseFormat parses an API format name; "" means opaque.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "", "opaque":
		return FormatOpaque, nil
	case "jwt":
		return FormatJWT, nil
	}
	return 0, fmt.Errorf("%w: unknown token format %q (want opaque or jwt)", ErrInvalid, s)
}

// MarshalText implements encoding.TextMarshaler.
func (f Format) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *Format) UnmarshalText(b []byte) error {
	v, err := ParseFormat(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// Time is an instant as Unix nanoseconds (UTC); zero means "not set".
// Records carry Time rather than time.Time to stay small and to make the
// "absent" case explicit.
type Time int64

// At converts a time.Time; the zero time.Time becomes the zero Time.
func At(t time.Time) Time {
	if t.IsZero() {
		return 0
	}
	return Time(t.UnixNano())
}

// IsZero reports whether t is unset.
func (t Time) IsZero() bool { return t == 0 }

// Time converts to time.Time in UTC; the zero Time becomes the zero time.Time.
func (t Time) Time() time.Time {
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(t)).UTC()
}

// Add returns t+d. Adding to the zero Time keeps it zero.
func (t Time) Add(d time.Duration) Time {
	if t == 0 {
		return 0
	}
	return t + Time(d)
}

// AppendRFC3339 appends t in RFC 3339 form (fractional seconds only when
// present) to b.
func (t Time) AppendRFC3339(b []byte) []byte {
	return t.Time().AppendFormat(b, time.RFC3339Nano)
}

// String returns the RFC 3339 form of t, or "" when unset.
func (t Time) String() string {
	if t == 0 {
		return ""
	}
	return string(t.AppendRFC3339(nil))
}
