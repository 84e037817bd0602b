package token

import (
	"crypto/sha256"
	"fmt"
)

// Opaque is the opaque token format, <prefix>_<key>.<secret>: a random
// secret whose hash (under the server's pepper, see Hasher) is all a record
// keeps. It is safe for concurrent use and allocates nothing on Parse and
// Verify.
type Opaque struct {
	prefix string
	hasher *Hasher
	fp     string
}

var _ Codec = (*Opaque)(nil)

// NewOpaque returns the opaque format with prefix (see ValidPrefix) whose
// secrets hash under h.
func NewOpaque(prefix string, h *Hasher) *Opaque {
	pepper := sha256.Sum256(h.pepper)
	return &Opaque{
		prefix: prefix,
		hasher: h,
		// The prefix, and a digest of the pepper: a token hashed under one
		// pepper is unknown under another.
		fp: fmt.Sprintf("prefix=%s|pepper=%x", prefix, pepper[:8]),
	}
}

// Format implements Codec.
func (o *Opaque) Format() Format { return FormatOpaque }

// Match implements Codec: raw starts with the prefix and '_'.
func (o *Opaque) Match(raw []byte) bool { return HasPrefix(o.prefix, raw) }

// Parse implements Codec (see the package function Parse).
func (o *Opaque) Parse(raw []byte) (Presented, error) {
	k, secret, err := Parse(o.prefix, raw)
	return Presented{Key: k, Secret: secret}, err
}

// Verify implements Codec: t is an opaque record and p's secret hashes to
// its hash.
func (o *Opaque) Verify(p Presented, t *Token) bool {
	return t.Format == FormatOpaque && o.hasher.Verify(p.Key, p.Secret, t.Hash)
}

// Sum implements Codec.
func (o *Opaque) Sum(p Presented) Hash { return o.hasher.Sum(p.Key, p.Secret) }

// Mint implements Codec: a fresh random secret and its hash.
func (o *Opaque) Mint(k Key) (string, Hash) {
	secret := NewSecret()
	return secret, o.hasher.Sum(k, []byte(secret))
}

// Encode implements Codec.
func (o *Opaque) Encode(t *Token, secret string) (string, error) {
	return Encode(o.prefix, t.Key, secret), nil
}

// Fingerprint implements Codec.
func (o *Opaque) Fingerprint() string { return o.fp }
