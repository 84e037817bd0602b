package jwt

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// jwk is one JSON Web Key (RFC 7517, RFC 7518 section 6, RFC 8037) as this
// package reads it. Unknown members are ignored; x5u, x5c and jku-like
// members are never followed.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
	N   string `json:"n"`
	E   string `json:"e"`
	P   string `json:"p"`
	Q   string `json:"q"`
	K   string `json:"k"`
}

// jwkSet is a JWK set with tokencache's "active" member (the kid that
// signs, for a keys file).
type jwkSet struct {
	Keys   []json.RawMessage `json:"keys"`
	Active string            `json:"active"`
}

// ParseJWKSet parses a JWK set {"keys": [...]}: public or private keys,
// each with a kid: OKP Ed25519 (EdDSA), EC P-256 (ES256), RSA of at least
// 2048 bits (RS256) and oct secrets of at least 32 bytes (HS256). A key
// whose "use" is "enc" is skipped (it does not sign); any other problem
// (a key type or algorithm this package does not verify, a weak key, a kid
// twice) fails the whole set. Errors never quote key material.
func ParseJWKSet(data []byte) ([]*Key, error) {
	keys, _, err := parseJWKSet(data, false)
	return keys, err
}

// ParseJWK parses one JWK (see ParseJWKSet); a caller that wants to skip
// keys it cannot use parses the set's members one by one.
func ParseJWK(data []byte) (*Key, error) {
	var j jwk
	if err := decodeJSON(data, &j); err != nil {
		return nil, fmt.Errorf("%w: a JWK %w", ErrKeySet, err)
	}
	return j.key()
}

// parseJWKSet parses a set; keysFile is set for the local keys file, where
// a key with "use": "enc" is an error rather than skipped.
func parseJWKSet(data []byte, keysFile bool) ([]*Key, string, error) {
	var set jwkSet
	if err := decodeJSON(data, &set); err != nil {
		return nil, "", fmt.Errorf("%w: the JWK set %w", ErrKeySet, err)
	}
	if set.Keys == nil {
		return nil, "", fmt.Errorf("%w: the JWK set has no \"keys\" member", ErrKeySet)
	}
	keys := make([]*Key, 0, len(set.Keys))
	seen := map[string]bool{}
	for i, raw := range set.Keys {
		var j jwk
		if err := decodeJSON(raw, &j); err != nil {
			return nil, "", fmt.Errorf("%w: JWK %d %w", ErrKeySet, i, err)
		}
		if j.Use == "enc" && !keysFile {
			continue
		}
		k, err := j.key()
		if err != nil {
			return nil, "", err
		}
		if seen[k.kid] {
			return nil, "", fmt.Errorf("%w: kid %q appears twice", ErrKeySet, k.kid)
		}
		seen[k.kid] = true
		keys = append(keys, k)
	}
	return keys, set.Active, nil
}

// decodeJSON unmarshals data into v; its error names the problem's offset,
// never the bytes around it.
func decodeJSON(data []byte, v any) error {
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("is not valid JSON (at byte %d)", se.Offset)
	case errors.As(err, &te):
		return fmt.Errorf("has a member %q of the wrong JSON type", te.Field)
	}
	return errors.New("is not a JSON object")
}

// key builds the Key of j.
func (j *jwk) key() (*Key, error) {
	if err := validKID(j.Kid); err != nil {
		return nil, err
	}
	if j.Use != "" && j.Use != "sig" {
		return nil, fmt.Errorf("%w: key %q: \"use\" is %q; only signature keys are accepted", ErrKeySet, j.Kid, j.Use)
	}
	bad := func(member string) error {
		return fmt.Errorf("%w: key %q: member %q is missing or not base64url", ErrKeySet, j.Kid, member)
	}
	var m any
	switch j.Kty {
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("%w: key %q: OKP curve %q; only Ed25519 is accepted", ErrKeySet, j.Kid, j.Crv)
		}
		x, ok := b64(j.X, ed25519.PublicKeySize)
		if !ok {
			return nil, bad("x")
		}
		if j.D == "" {
			m = ed25519.PublicKey(x)
			break
		}
		d, ok := b64(j.D, ed25519.SeedSize)
		if !ok {
			return nil, bad("d")
		}
		priv := ed25519.NewKeyFromSeed(d)
		clear(d)
		if subtle.ConstantTimeCompare(priv.Public().(ed25519.PublicKey), x) != 1 {
			return nil, fmt.Errorf("%w: key %q: its private and public parts do not match", ErrKeySet, j.Kid)
		}
		m = priv
	case "EC":
		if j.Crv != "P-256" {
			return nil, fmt.Errorf("%w: key %q: EC curve %q; only P-256 is accepted", ErrKeySet, j.Kid, j.Crv)
		}
		x, ok := b64(j.X, 32)
		if !ok {
			return nil, bad("x")
		}
		y, ok := b64(j.Y, 32)
		if !ok {
			return nil, bad("y")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: not a point of P-256", ErrKeySet, j.Kid)
		}
		if j.D == "" {
			m = pub
			break
		}
		d, ok := b64(j.D, 32)
		if !ok {
			return nil, bad("d")
		}
		priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
		clear(d)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: not a P-256 private key", ErrKeySet, j.Kid)
		}
		if !priv.PublicKey.Equal(pub) {
			return nil, fmt.Errorf("%w: key %q: its private and public parts do not match", ErrKeySet, j.Kid)
		}
		m = priv
	case "RSA":
		n, ok := b64(j.N, -1)
		if !ok {
			return nil, bad("n")
		}
		e, ok := b64(j.E, -1)
		if !ok || len(e) > 4 {
			return nil, bad("e")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.E < 3 || pub.E%2 == 0 {
			return nil, fmt.Errorf("%w: key %q: bad RSA public exponent", ErrKeySet, j.Kid)
		}
		if j.D == "" {
			m = pub
			break
		}
		d, ok1 := b64(j.D, -1)
		p, ok2 := b64(j.P, -1)
		q, ok3 := b64(j.Q, -1)
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("%w: key %q: an RSA private key needs d, p and q in base64url", ErrKeySet, j.Kid)
		}
		priv := &rsa.PrivateKey{PublicKey: *pub, D: new(big.Int).SetBytes(d),
			Primes: []*big.Int{new(big.Int).SetBytes(p), new(big.Int).SetBytes(q)}}
		if priv.N.BitLen() >= MinRSABits {
			if err := priv.Validate(); err != nil {
				return nil, fmt.Errorf("%w: key %q: not a consistent RSA private key", ErrKeySet, j.Kid)
			}
			priv.Precompute()
		}
		m = priv
	case "oct":
		k, ok := b64(j.K, -1)
		if !ok {
			return nil, bad("k")
		}
		m = k
	case "":
		return nil, fmt.Errorf("%w: key %q has no \"kty\"", ErrKeySet, j.Kid)
	default:
		return nil, fmt.Errorf("%w: key %q: key type %q is not accepted (want OKP, EC, RSA or oct)", ErrKeySet, j.Kid, j.Kty)
	}
	return newKey(j.Kid, j.Alg, m)
}

// b64 decodes unpadded base64url; size >= 0 requires that many bytes.
func b64(s string, size int) ([]byte, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 || (size >= 0 && len(b) != size) {
		return nil, false
	}
	return b, true
}

// publicJWK is a public JWK as JWKS writes it, members in a stable order.
type publicJWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// marshalJWKS returns the JWK set of the public parts of keys, in order,
// leaving out HS256 secrets.
func marshalJWKS(keys []*Key) []byte {
	set := struct {
		Keys []publicJWK `json:"keys"`
	}{Keys: []publicJWK{}}
	enc := base64.RawURLEncoding.EncodeToString
	for _, k := range keys {
		j := publicJWK{Kid: k.kid, Alg: k.alg, Use: "sig"}
		switch pub := k.pub.(type) {
		case ed25519.PublicKey:
			j.Kty, j.Crv, j.X = "OKP", "Ed25519", enc(pub)
		case *ecdsa.PublicKey:
			pt, err := pub.Bytes()
			if err != nil {
				continue // newKey accepted only P-256 points
			}
			j.Kty, j.Crv, j.X, j.Y = "EC", "P-256", enc(pt[1:33]), enc(pt[33:65])
		case *rsa.PublicKey:
			j.Kty, j.N, j.E = "RSA", enc(pub.N.Bytes()), enc(big.NewInt(int64(pub.E)).Bytes())
		default:
			continue // HS256: a secret is never published
		}
		set.Keys = append(set.Keys, j)
	}
	var buf bytes.Buffer
	enc2 := json.NewEncoder(&buf)
	enc2.SetEscapeHTML(false)
	_ = enc2.Encode(set) // strings and slices only: cannot fail
	return bytes.TrimRight(buf.Bytes(), "\n")
}
