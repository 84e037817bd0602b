package jwt

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"slices"
	"strings"
)

// MaxKeySetFile is the largest keys file LoadKeySet reads.
const MaxKeySetFile = 1 << 20

// KeySet is the local issuer's keys (tokens.jwt.keys_file): several keys,
// exactly one of them active for signing, the others verify only (so that a
// key is rotated by adding the new one, switching the active kid, and
// removing the old one once the longest lifetime has passed). A KeySet is
// immutable and safe for concurrent use; a reload makes a new one.
type KeySet struct {
	keys   []*Key // sorted by kid
	byKID  map[string]*Key
	active *Key
	digest string
	jwks   []byte
}

// newKeySet checks keys (no duplicate kid; exactly one active key, which can
// sign) and builds the set. active "" means: the only key that can sign.
func newKeySet(keys []*Key, active string) (*KeySet, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key", ErrKeySet)
	}
	ks := &KeySet{keys: slices.Clone(keys), byKID: make(map[string]*Key, len(keys))}
	slices.SortFunc(ks.keys, func(a, b *Key) int { return strings.Compare(a.kid, b.kid) })
	for _, k := range ks.keys {
		if ks.byKID[k.kid] != nil {
			return nil, fmt.Errorf("%w: kid %q appears twice", ErrKeySet, k.kid)
		}
		ks.byKID[k.kid] = k
	}
	if active == "" {
		for _, k := range ks.keys {
			if !k.CanSign() {
				continue
			}
			if ks.active != nil {
				return nil, fmt.Errorf("%w: several keys can sign (%q, %q) and none is marked active", ErrKeySet, ks.active.kid, k.kid)
			}
			ks.active = k
		}
		if ks.active == nil {
			return nil, fmt.Errorf("%w: no key can sign (a private key or HS256 secret is needed, marked active)", ErrKeySet)
		}
	} else {
		ks.active = ks.byKID[active]
		if ks.active == nil {
			return nil, fmt.Errorf("%w: the active kid %q names no key of the set", ErrKeySet, active)
		}
		if !ks.active.CanSign() {
			return nil, fmt.Errorf("%w: the active key %q is a public key and cannot sign", ErrKeySet, active)
		}
	}
	ks.digest = digest(ks.keys, ks.active)
	ks.jwks = marshalJWKS(ks.keys)
	return ks, nil
}

// NewKeySet returns the set of keys with the key of kid active ("" means
// the only key that can sign).
func NewKeySet(active string, keys ...*Key) (*KeySet, error) { return newKeySet(keys, active) }

// ParseKeySet parses a keys file: either PEM blocks, each with a "kid"
// header (and optionally "alg"; "active: true" on the signing key), or a
// JWK set {"keys": [...], "active": "<kid>"}. PEM block types: "PRIVATE
// KEY" (PKCS #8), "EC PRIVATE KEY" (SEC 1), "RSA PRIVATE KEY" (PKCS #1),
// "PUBLIC KEY" (PKIX, verify only) and "TOKENCACHE HS256 SECRET" (raw
// bytes). When no key is marked active, the only key that can sign is.
// Errors never quote key material.
func ParseKeySet(data []byte) (*KeySet, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		keys, active, err := parseJWKSet(trimmed, true)
		if err != nil {
			return nil, err
		}
		return newKeySet(keys, active)
	}
	return parsePEMKeySet(trimmed)
}

func parsePEMKeySet(data []byte) (*KeySet, error) {
	var keys []*Key
	active := ""
	rest := data
	for n := 1; ; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		kid := b.Headers["kid"]
		if kid == "" {
			return nil, fmt.Errorf("%w: PEM block %d (%s) has no \"kid\" header", ErrKeySet, n, b.Type)
		}
		k, err := parsePEMBlock(b, kid)
		if err != nil {
			return nil, err
		}
		switch v := b.Headers["active"]; v {
		case "", "false":
		case "true":
			if active != "" {
				return nil, fmt.Errorf("%w: keys %q and %q are both marked active", ErrKeySet, active, kid)
			}
			active = kid
		default:
			return nil, fmt.Errorf("%w: key %q: header \"active\" must be true or false", ErrKeySet, kid)
		}
		keys = append(keys, k)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: after %d PEM blocks the file holds something that is not a PEM block", ErrKeySet, len(keys))
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: neither PEM blocks nor a JWK set", ErrKeySet)
	}
	return newKeySet(keys, active)
}

// parsePEMBlock decodes one block's material. x509's errors describe the
// encoding, never the bytes.
func parsePEMBlock(b *pem.Block, kid string) (*Key, error) {
	var m any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		m, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		m, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		m, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "PUBLIC KEY":
		m, err = x509.ParsePKIXPublicKey(b.Bytes)
	case pemSecretType:
		m = b.Bytes
	default:
		return nil, fmt.Errorf("%w: key %q: unsupported PEM block type %q", ErrKeySet, kid, b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: key %q: cannot decode its %s block: %w", ErrKeySet, kid, b.Type, err)
	}
	return newKey(kid, b.Headers["alg"], m)
}

// LoadKeySet reads and parses the keys file at path. Like the admin token
// file it holds private keys, so it refuses a file that is not regular or
// that its group or others may access.
func LoadKeySet(path string) (*KeySet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read JWT keys file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read JWT keys file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: keys file %s is not a regular file", ErrKeySet, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: keys file %s is unprotected: its permissions %04o let others read it; run `chmod 600 %s`",
			ErrKeySet, path, perm, path)
	}
	if fi.Size() > MaxKeySetFile {
		return nil, fmt.Errorf("%w: keys file %s is larger than %d bytes", ErrKeySet, path, MaxKeySetFile)
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return nil, fmt.Errorf("cannot read JWT keys file: %w", err)
	}
	ks, err := ParseKeySet(data)
	clear(data)
	if err != nil {
		return nil, fmt.Errorf("cannot load JWT keys file %s: %w", path, err)
	}
	return ks, nil
}

// Active returns the key that signs.
func (ks *KeySet) Active() *Key { return ks.active }

// Key returns the key of kid.
func (ks *KeySet) Key(kid string) (*Key, bool) {
	k, ok := ks.byKID[kid]
	return k, ok
}

// Keys returns every key, sorted by kid.
func (ks *KeySet) Keys() []*Key { return slices.Clone(ks.keys) }

// Digest returns a short hex digest of the set's kids, algorithms, public
// material (an HS256 secret enters only as a SHA-256 of it) and active kid:
// what nodes compare to find one that holds other keys.
func (ks *KeySet) Digest() string { return ks.digest }

// JWKS returns the JSON JWK set of the public keys of every asymmetric key,
// sorted by kid (RFC 7517); never an HS256 secret nor a private part.
func (ks *KeySet) JWKS() []byte { return slices.Clone(ks.jwks) }

func digest(keys []*Key, active *Key) string {
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s|", len(k.kid), k.kid)
		h.Write(k.id[:])
	}
	fmt.Fprintf(h, "|active=%s", active.kid)
	return hex.EncodeToString(h.Sum(nil)[:8])
}
