package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"

	gojwt "github.com/golang-jwt/jwt/v5"
)

// Algorithms: each key has exactly one, pinned (RFC 8725 section 3.1): a
// token is verified only with the algorithm of the key its kid names.
const (
	AlgEdDSA = "EdDSA" // Ed25519 (RFC 8037); the default
	AlgES256 = "ES256" // ECDSA on P-256 with SHA-256
	AlgRS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256, keys of at least 2048 bits
	AlgHS256 = "HS256" // HMAC-SHA-256 with a secret of at least 32 bytes
)

// Key limits.
const (
	// MinRSABits is the smallest RSA modulus accepted (RFC 7518 section 3.3).
	MinRSABits = 2048
	// MinSecretLen is the smallest HS256 secret accepted, in bytes: the size
	// of the hash output (RFC 7518 section 3.2).
	MinSecretLen = 32
	// MaxKIDLen is the longest kid accepted.
	MaxKIDLen = 256
)

// pemSecretType is the PEM block type of an HS256 secret.
const pemSecretType = "TOKENCACHE HS256 SECRET"

// Key is one key: a kid, its pinned algorithm, and its material (a private
// key that can sign, a public key that only verifies, or an HS256 secret,
// which does both). A Key is immutable and safe for concurrent use.
type Key struct {
	kid    string
	alg    string
	method gojwt.SigningMethod
	// sign is what method.Sign takes (nil for a public key): an
	// ed25519.PrivateKey, *ecdsa.PrivateKey, *rsa.PrivateKey or []byte.
	sign any
	// verify is what method.Verify takes: an ed25519.PublicKey,
	// *ecdsa.PublicKey, *rsa.PublicKey or []byte.
	verify any
	// pub is the public key (nil for HS256).
	pub crypto.PublicKey
	// id identifies the key's algorithm and material without revealing it:
	// SHA-256 over the alg and the public key's DER (or a SHA-256 of the
	// secret). Two keys with one kid and different material differ here.
	id [32]byte
}

// ID returns the key's kid.
func (k *Key) ID() string { return k.kid }

// Alg returns the key's pinned algorithm.
func (k *Key) Alg() string { return k.alg }

// CanSign reports whether the key holds private material (or a secret).
func (k *Key) CanSign() bool { return k.sign != nil }

// Public returns the public key, or nil for an HS256 secret.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// String returns "kid (alg)"; never key material.
func (k *Key) String() string { return k.kid + " (" + k.alg + ")" }

// GoString keeps key material out of %#v.
func (k *Key) GoString() string { return "jwt.Key(" + k.String() + ")" }

// Format keeps key material out of every fmt verb.
func (k *Key) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// sameMaterial reports whether k and o are the same kid, algorithm and
// material.
func (k *Key) sameMaterial(o *Key) bool {
	return o != nil && k.kid == o.kid && k.id == o.id
}

// validKID checks a kid: 1 to MaxKIDLen printable ASCII characters (no
// space). A kid is only ever a map key here, never a path or a URL.
func validKID(kid string) error {
	if kid == "" {
		return fmt.Errorf("%w: a key has no kid", ErrKeySet)
	}
	if len(kid) > MaxKIDLen {
		return fmt.Errorf("%w: a kid is longer than %d bytes", ErrKeySet, MaxKIDLen)
	}
	for i := 0; i < len(kid); i++ {
		if c := kid[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("%w: kid %q holds a character other than printable ASCII", ErrKeySet, kid)
		}
	}
	return nil
}

// newKey builds a Key from parsed material: a private or public key of
// crypto's types, or a []byte secret. alg "" means the default algorithm of
// the key type. It checks that the material fits the algorithm and is
// strong enough; errors name the kid, never the material.
func newKey(kid, alg string, material any) (*Key, error) {
	if err := validKID(kid); err != nil {
		return nil, err
	}
	k := &Key{kid: kid}
	var pubDER []byte
	switch m := material.(type) {
	case ed25519.PrivateKey:
		if len(m) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("%w: key %q: bad Ed25519 private key size", ErrKeySet, kid)
		}
		k.alg, k.sign, k.verify = AlgEdDSA, m, m.Public()
	case ed25519.PublicKey:
		if len(m) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: key %q: bad Ed25519 public key size", ErrKeySet, kid)
		}
		k.alg, k.verify = AlgEdDSA, m
	case *ecdsa.PrivateKey:
		if m.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: key %q: EC key on curve %s; only P-256 (ES256) is accepted", ErrKeySet, kid, m.Curve.Params().Name)
		}
		k.alg, k.sign, k.verify = AlgES256, m, &m.PublicKey
	case *ecdsa.PublicKey:
		if m.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: key %q: EC key on curve %s; only P-256 (ES256) is accepted", ErrKeySet, kid, m.Curve.Params().Name)
		}
		k.alg, k.verify = AlgES256, m
	case *rsa.PrivateKey:
		if bits := m.N.BitLen(); bits < MinRSABits {
			return nil, fmt.Errorf("%w: key %q: RSA key of %d bits; at least %d are required", ErrKeySet, kid, bits, MinRSABits)
		}
		k.alg, k.sign, k.verify = AlgRS256, m, &m.PublicKey
	case *rsa.PublicKey:
		if bits := m.N.BitLen(); bits < MinRSABits {
			return nil, fmt.Errorf("%w: key %q: RSA key of %d bits; at least %d are required", ErrKeySet, kid, bits, MinRSABits)
		}
		k.alg, k.verify = AlgRS256, m
	case []byte:
		if len(m) < MinSecretLen {
			return nil, fmt.Errorf("%w: key %q: HS256 secret of %d bytes; at least %d are required", ErrKeySet, kid, len(m), MinSecretLen)
		}
		s := append([]byte(nil), m...)
		k.alg, k.sign, k.verify = AlgHS256, s, s
	default:
		return nil, fmt.Errorf("%w: key %q: unsupported key type %T", ErrKeySet, kid, material)
	}
	if alg != "" && alg != k.alg {
		switch alg {
		case AlgEdDSA, AlgES256, AlgRS256, AlgHS256:
			return nil, fmt.Errorf("%w: key %q: a %s key cannot be used with alg %s", ErrKeySet, kid, k.alg, alg)
		}
		return nil, fmt.Errorf("%w: key %q: unknown alg %q (want EdDSA, ES256, RS256 or HS256)", ErrKeySet, kid, alg)
	}
	k.method = gojwt.GetSigningMethod(k.alg)
	h := sha256.New()
	h.Write([]byte(k.alg))
	h.Write([]byte{0})
	if k.alg == AlgHS256 {
		s := sha256.Sum256(k.verify.([]byte))
		h.Write(s[:])
	} else {
		k.pub = k.verify
		var err error
		if pubDER, err = x509.MarshalPKIXPublicKey(k.verify); err != nil {
			return nil, fmt.Errorf("%w: key %q: cannot encode the public key: %w", ErrKeySet, kid, err)
		}
		h.Write(pubDER)
	}
	h.Sum(k.id[:0])
	return k, nil
}

// GenerateKey returns a new private key (or secret) for alg; kid "" means a
// random one.
func GenerateKey(alg, kid string) (*Key, error) {
	if kid == "" {
		var b [9]byte
		rand.Read(b[:])
		kid = base64.RawURLEncoding.EncodeToString(b[:])
	}
	var m any
	var err error
	switch alg {
	case AlgEdDSA, "":
		_, m, err = ed25519.GenerateKey(rand.Reader)
	case AlgES256:
		m, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgRS256:
		m, err = rsa.GenerateKey(rand.Reader, MinRSABits)
	case AlgHS256:
		s := make([]byte, MinSecretLen)
		rand.Read(s)
		m = s
	default:
		return nil, fmt.Errorf("%w: unknown alg %q (want EdDSA, ES256, RS256 or HS256)", ErrKeySet, alg)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot generate a %s key: %w", alg, err)
	}
	return newKey(kid, alg, m)
}

// MarshalPEM returns the key as one PEM block with "kid" and "alg" headers:
// a PKCS #8 "PRIVATE KEY" for a private key, a PKIX "PUBLIC KEY" for a
// public one, and a "TOKENCACHE HS256 SECRET" block for a secret. This is
// what `tokencache jwt keygen` writes and what ParseKeySet reads; add an
// "active: true" header to the block of the signing key.
func (k *Key) MarshalPEM() ([]byte, error) { return k.marshalPEM(false) }

// MarshalActivePEM is MarshalPEM with the header "active: true".
func (k *Key) MarshalActivePEM() ([]byte, error) { return k.marshalPEM(true) }

func (k *Key) marshalPEM(active bool) ([]byte, error) {
	b := &pem.Block{Headers: map[string]string{"kid": k.kid, "alg": k.alg}}
	if active {
		b.Headers["active"] = "true"
	}
	var err error
	switch {
	case k.alg == AlgHS256:
		b.Type, b.Bytes = pemSecretType, append([]byte(nil), k.sign.([]byte)...)
	case k.sign != nil:
		b.Type = "PRIVATE KEY"
		if b.Bytes, err = x509.MarshalPKCS8PrivateKey(k.sign); err != nil {
			return nil, fmt.Errorf("cannot encode key %q: %w", k.kid, err)
		}
	default:
		b.Type = "PUBLIC KEY"
		if b.Bytes, err = x509.MarshalPKIXPublicKey(k.pub); err != nil {
			return nil, fmt.Errorf("cannot encode key %q: %w", k.kid, err)
		}
	}
	return pem.EncodeToMemory(b), nil
}
