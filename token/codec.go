package token

import (
	"fmt"
	"strings"
)

// Codec is one token Format: how a token's text is parsed, minted and
// verified. Package token holds the opaque codec (Opaque); another format (a
// signed JWT) is one more implementation registered with NewFormats. A Codec
// is safe for concurrent use.
//
// Validation runs in two steps so that a format can do its offline work
// before the record is looked up: Parse checks everything the text proves by
// itself (an opaque token's form; a JWT's signature, exp, nbf, iss and aud)
// and names the record's key, then Verify binds the presented text to that
// record. Issue runs Mint before the write (the secret stays on the
// receiving node; only its hash is replicated) and Encode after it, from the
// record as the log applied it (a JWT's claims come from the record).
type Codec interface {
	// Format is the format this codec implements, as stored in a record.
	Format() Format
	// Match reports whether raw is in this format's syntax, cheaply and
	// without allocating; Formats.Parse asks each codec in turn.
	Match(raw []byte) bool
	// Parse checks raw and returns what it presents. The result may alias
	// raw; raw is not retained. On the validate hot path it must not
	// allocate (a format whose check is costly keeps a cache of verified
	// texts keyed by the whole text, so that a forged variant misses).
	// Every failure wraps ErrMalformed.
	Parse(raw []byte) (Presented, error)
	// Verify reports, in constant time where a secret is compared, whether p
	// is the token whose record is t (t.Key == p.Key is the caller's).
	Verify(p Presented, t *Token) bool
	// Sum is the secret hash the record of p carries: what a revocation by
	// token text sends the leader to compare. Zero for a format without a
	// secret.
	Sum(p Presented) Hash
	// Mint returns a new secret for key k and its hash for the record. A
	// format without a secret returns "" and the zero Hash.
	Mint(k Key) (secret string, h Hash)
	// Encode returns the text handed to the client for record t, minted
	// with secret (Mint's, or one reopened from a sealed copy).
	Encode(t *Token, secret string) (string, error)
	// Fingerprint describes the settings of this format that every node
	// of a cluster must share (never a secret: digests only).
	Fingerprint() string
}

// Presented is what a token's text presents, as Parse found it.
type Presented struct {
	// Key is the key of the token's record (an opaque token's key, a JWT's
	// jti).
	Key Key
	// Secret is the secret part of the text, aliasing it; nil for a format
	// without one.
	Secret []byte
	// Claims is the record a self-contained token (a JWT) states in its own
	// text, verified by Parse: what a token without a record of its own here
	// (one from a trusted external issuer, or any JWT when the store is
	// disabled) is judged by. Nil for an opaque token. It is shared and
	// read-only: a codec's cache of verified texts hands the same one out
	// again.
	Claims *Token
	// External is set when the token comes from a trusted issuer other than
	// this server: it never has a record here, only, once revoked, a
	// revocation tombstone under Key (derived from its issuer and jti).
	External bool
}

// Formats is the set of token formats a server accepts, in the order Parse
// tries them. It is immutable and safe for concurrent use.
type Formats struct {
	codecs []Codec
	// opaque is codecs[0] when that is the opaque codec: Parse tries it
	// with static calls, which the validate hot path notices.
	opaque *Opaque
}

// NewFormats returns the formats cs, tried in that order. It refuses an
// empty set and two codecs of one format.
func NewFormats(cs ...Codec) (*Formats, error) {
	if len(cs) == 0 {
		return nil, fmt.Errorf("%w: no token format", ErrInvalid)
	}
	seen := map[Format]bool{}
	for _, c := range cs {
		if seen[c.Format()] {
			return nil, fmt.Errorf("%w: token format %s registered twice", ErrInvalid, c.Format())
		}
		seen[c.Format()] = true
	}
	f := &Formats{codecs: append([]Codec(nil), cs...)}
	f.opaque, _ = cs[0].(*Opaque)
	return f, nil
}

// errNoFormat is Parse's answer to a text no format recognises.
var errNoFormat = fmt.Errorf("%w: not a token of any accepted format", ErrMalformed)

// Parse finds the format of raw and parses it with that format's codec. It
// allocates nothing beyond what the codec does. Every failure wraps
// ErrMalformed.
func (f *Formats) Parse(raw []byte) (Codec, Presented, error) {
	rest := f.codecs
	if o := f.opaque; o != nil {
		if o.Match(raw) {
			p, err := o.Parse(raw)
			return o, p, err
		}
		rest = rest[1:] // asked already
	}
	for _, c := range rest {
		if c.Match(raw) {
			p, err := c.Parse(raw)
			return c, p, err
		}
	}
	return nil, Presented{}, errNoFormat
}

// Codec returns the codec of format fm, if it is accepted.
func (f *Formats) Codec(fm Format) (Codec, bool) {
	for _, c := range f.codecs {
		if c.Format() == fm {
			return c, true
		}
	}
	return nil, false
}

// Fingerprint joins the fingerprints of every format with "|", in order.
func (f *Formats) Fingerprint() string {
	parts := make([]string, len(f.codecs))
	for i, c := range f.codecs {
		parts[i] = c.Fingerprint()
	}
	return strings.Join(parts, "|")
}
