package token

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// KeySize is the size of a token key in bytes (128 bits).
const KeySize = 16

// keyLen is the length of a key in its base64url (unpadded) text form.
const keyLen = 22

// Key is the public identifier of a token: 16 random bytes, shown as 22
// base64url characters. A key is safe to log and to show in listings.
// The zero Key means "no key" (for example, a token without a parent).
type Key [KeySize]byte

// NewKey returns a random key from crypto/rand.
func NewKey() Key {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ panics
		// inside Read instead of returning an error).
		panic(fmt.Sprintf("token: cannot read random bytes: %v", err))
	}
	return k
}

// ParseKey parses the 22-character base64url form of a key. The zero key
// (which means "no key") is never a valid key.
func ParseKey(s string) (Key, error) {
	var k Key
	if !decodeKey(&k, s) {
		return Key{}, fmt.Errorf("%w: key must be %d base64url characters", ErrMalformed, keyLen)
	}
	return k, nil
}

// decodeKey decodes a 22-character base64url key without allocating.
func decodeKey[S string | []byte](k *Key, s S) bool {
	if len(s) != keyLen {
		return false
	}
	var buf [keyLen]byte
	copy(buf[:], s)
	n, err := base64.RawURLEncoding.Decode(k[:], buf[:])
	if err != nil || n != KeySize || k.IsZero() {
		return false
	}
	// The last character carries 2 bits of padding; reject non-canonical
	// encodings so that one key has exactly one text form.
	var again [keyLen]byte
	base64.RawURLEncoding.Encode(again[:], k[:])
	return again == buf
}

// String returns the base64url form of k, or "" for the zero key.
func (k Key) String() string {
	if k.IsZero() {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(k[:])
}

// AppendText appends the base64url form of k to b.
func (k Key) AppendText(b []byte) ([]byte, error) {
	if k.IsZero() {
		return b, nil
	}
	return base64.RawURLEncoding.AppendEncode(b, k[:]), nil
}

// MarshalText implements encoding.TextMarshaler.
func (k Key) MarshalText() ([]byte, error) { return k.AppendText(nil) }

// UnmarshalText implements encoding.TextUnmarshaler. An empty text is the zero key.
func (k *Key) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*k = Key{}
		return nil
	}
	if !decodeKey(k, b) {
		return fmt.Errorf("%w: key must be %d base64url characters", ErrMalformed, keyLen)
	}
	return nil
}

// IsZero reports whether k is the zero key.
func (k Key) IsZero() bool { return k == Key{} }

// Shard returns a well-spread 64-bit value derived from k, for choosing a
// cache shard or a SQL shard. Keys are random, so their first bytes are
// already uniform; this only fixes the byte order.
func (k Key) Shard() uint64 {
	return uint64(k[0]) | uint64(k[1])<<8 | uint64(k[2])<<16 | uint64(k[3])<<24 |
		uint64(k[4])<<32 | uint64(k[5])<<40 | uint64(k[6])<<48 | uint64(k[7])<<56
}
