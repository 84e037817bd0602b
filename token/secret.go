package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"sync"
)

// Secret sizes. A secret is base64url text; only its hash is kept anywhere.
const (
	// SecretSize is the number of random bytes in a generated secret (192 bits).
	SecretSize = 24
	// MinSecretLen and MaxSecretLen bound the text length of a secret that
	// Parse accepts: at least 16 random bytes, and a cap that keeps parsing
	// and hashing bounded.
	MinSecretLen = 22
	MaxSecretLen = 128
	// MaxPrefixLen bounds the configurable token prefix.
	MaxPrefixLen = 16
	// DefaultPrefix is the token prefix when none is configured.
	DefaultPrefix = "tc"
)

// HashSize is the size of a secret hash.
const HashSize = sha256.Size

// Hash is the SHA-256 (or HMAC-SHA-256 with a server pepper) of a token's
// key and secret. It is the only form of a secret that is stored, replicated
// or snapshotted.
type Hash [HashSize]byte

// IsZero reports whether h is the zero hash (JWT tokens have no secret).
func (h Hash) IsZero() bool { return h == Hash{} }

// NewSecret returns a fresh random secret in its text form.
func NewSecret() string {
	var b [SecretSize]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("token: cannot read random bytes: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ValidPrefix reports whether p can be used as a token prefix: 1 to 16
// characters, a lowercase letter first, then lowercase letters or digits.
func ValidPrefix(p string) bool {
	if len(p) == 0 || len(p) > MaxPrefixLen || p[0] < 'a' || p[0] > 'z' {
		return false
	}
	for i := 1; i < len(p); i++ {
		c := p[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Encode returns the token text <prefix>_<key>.<secret>.
func Encode(prefix string, k Key, secret string) string {
	b := make([]byte, 0, len(prefix)+1+keyLen+1+len(secret))
	b = append(b, prefix...)
	b = append(b, '_')
	b, _ = k.AppendText(b)
	b = append(b, '.')
	b = append(b, secret...)
	return string(b)
}

// Parse splits an opaque token <prefix>_<key>.<secret> into its key and
// secret. The returned secret aliases raw. Parse does not allocate; every
// failure wraps ErrMalformed.
func Parse(prefix string, raw []byte) (Key, []byte, error) {
	var k Key
	n := len(prefix)
	if len(raw) < n+1+keyLen+1+MinSecretLen || len(raw) > n+1+keyLen+1+MaxSecretLen {
		return k, nil, errBadLength
	}
	if string(raw[:n]) != prefix || raw[n] != '_' {
		return k, nil, errBadPrefix
	}
	rest := raw[n+1:]
	if rest[keyLen] != '.' || !decodeKey(&k, rest[:keyLen]) {
		return k, nil, errBadKey
	}
	secret := rest[keyLen+1:]
	for _, c := range secret {
		if !isBase64URL(c) {
			return k, nil, errBadSecret
		}
	}
	return k, secret, nil
}

// HasPrefix reports whether raw looks like an opaque token of this prefix
// (as opposed to a JWT). It does not validate the rest.
func HasPrefix(prefix string, raw []byte) bool {
	return len(raw) > len(prefix) && string(raw[:len(prefix)]) == prefix && raw[len(prefix)] == '_'
}

var (
	errBadLength = fmt.Errorf("%w: token has the wrong length", ErrMalformed)
	errBadPrefix = fmt.Errorf("%w: token has the wrong prefix", ErrMalformed)
	errBadKey    = fmt.Errorf("%w: token key is not valid", ErrMalformed)
	errBadSecret = fmt.Errorf("%w: token secret is not base64url", ErrMalformed)
)

func isBase64URL(c byte) bool {
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'
}

// Hasher computes secret hashes: SHA-256(key ‖ secret), or
// HMAC-SHA-256(pepper, key ‖ secret) when a server pepper is configured.
// Binding the key into the hash means a secret is only ever valid for the
// key it was issued with. A Hasher is safe for concurrent use and does not
// allocate in steady state.
type Hasher struct {
	pepper []byte
	pool   sync.Pool // of *hmacState, only with a pepper
}

// hmacState is a pooled HMAC with room for its sum, so that Sum does not
// allocate (a slice of a local array passed to hash.Hash.Sum would escape).
type hmacState struct {
	mac hash.Hash
	key Key
	sum [HashSize]byte
}

// NewHasher returns a Hasher. An empty pepper selects plain SHA-256.
func NewHasher(pepper []byte) *Hasher {
	h := &Hasher{pepper: append([]byte(nil), pepper...)}
	if len(h.pepper) > 0 {
		h.pool.New = func() any { return &hmacState{mac: hmac.New(sha256.New, h.pepper)} }
	}
	return h
}

// Sum returns the hash of the secret issued with key k.
func (h *Hasher) Sum(k Key, secret []byte) Hash {
	if len(h.pepper) == 0 {
		var buf [KeySize + MaxSecretLen]byte
		if len(secret) > MaxSecretLen {
			secret = secret[:MaxSecretLen] // Parse never lets this through
		}
		n := copy(buf[:], k[:])
		n += copy(buf[n:], secret)
		return sha256.Sum256(buf[:n])
	}
	st := h.pool.Get().(*hmacState)
	st.mac.Reset()
	st.key = k
	st.mac.Write(st.key[:])
	st.mac.Write(secret)
	st.mac.Sum(st.sum[:0])
	out := Hash(st.sum)
	h.pool.Put(st)
	return out
}

// Verify reports, in constant time, whether secret hashes to want under key k.
func (h *Hasher) Verify(k Key, secret []byte, want Hash) bool {
	got := h.Sum(k, secret)
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}
