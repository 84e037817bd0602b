package jwt

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var allAlgs = []string{AlgEdDSA, AlgES256, AlgRS256, AlgHS256}

var (
	testKeysOnce sync.Once
	testKeys     map[string]*Key // alg -> key of kid "k-<alg>"
)

// mustKey returns a private key of alg with kid "k-<alg>", generated once
// per test binary (RSA generation is slow).
func mustKey(tb testing.TB, alg string) *Key {
	tb.Helper()
	testKeysOnce.Do(func() {
		testKeys = map[string]*Key{}
		for _, a := range allAlgs {
			k, err := GenerateKey(a, "k-"+a)
			if err != nil {
				panic(err)
			}
			testKeys[a] = k
		}
	})
	return testKeys[alg]
}

func mustPEM(tb testing.TB, k *Key, active bool) []byte {
	tb.Helper()
	var b []byte
	var err error
	if active {
		b, err = k.MarshalActivePEM()
	} else {
		b, err = k.MarshalPEM()
	}
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// privateJWK writes k as a private JWK (tests only: the package never
// writes private JWKs).
func privateJWK(tb testing.TB, k *Key) map[string]any {
	tb.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	j := map[string]any{"kid": k.ID(), "alg": k.Alg()}
	switch s := k.sign.(type) {
	case ed25519.PrivateKey:
		j["kty"], j["crv"], j["x"], j["d"] = "OKP", "Ed25519", enc(s.Public().(ed25519.PublicKey)), enc(s.Seed())
	case *ecdsa.PrivateKey:
		pt, _ := s.PublicKey.Bytes()
		d, _ := s.Bytes()
		j["kty"], j["crv"], j["x"], j["y"], j["d"] = "EC", "P-256", enc(pt[1:33]), enc(pt[33:]), enc(d)
	case *rsa.PrivateKey:
		j["kty"], j["n"], j["e"], j["d"] = "RSA", enc(s.N.Bytes()), enc([]byte{1, 0, 1}), enc(s.D.Bytes())
		j["p"], j["q"] = enc(s.Primes[0].Bytes()), enc(s.Primes[1].Bytes())
	case []byte:
		j["kty"], j["k"] = "oct", enc(s)
	}
	return j
}

func TestParseKeySetPEM(t *testing.T) {
	var file []byte
	for _, a := range allAlgs {
		file = append(file, mustPEM(t, mustKey(t, a), a == AlgES256)...)
	}
	ks, err := ParseKeySet(file)
	if err != nil {
		t.Fatalf("ParseKeySet = %v", err)
	}
	if got := ks.Active().ID(); got != "k-ES256" {
		t.Errorf("Active() = %s, want k-ES256", got)
	}
	var kids []string
	for _, k := range ks.Keys() {
		kids = append(kids, k.ID())
		want := mustKey(t, k.Alg())
		if !k.sameMaterial(want) || !k.CanSign() {
			t.Errorf("key %s: material or CanSign differs after a PEM round trip", k)
		}
	}
	if got, want := strings.Join(kids, ","), "k-ES256,k-EdDSA,k-HS256,k-RS256"; got != want {
		t.Errorf("Keys() = %s, want %s", got, want)
	}
	if _, ok := ks.Key("k-RS256"); !ok {
		t.Errorf("Key(k-RS256) not found")
	}
	if _, ok := ks.Key("../k-RS256"); ok {
		t.Errorf("Key(../k-RS256) found")
	}
}

func TestParseKeySetJWK(t *testing.T) {
	var keys []any
	for _, a := range allAlgs {
		keys = append(keys, privateJWK(t, mustKey(t, a)))
	}
	data, _ := json.Marshal(map[string]any{"keys": keys, "active": "k-RS256"})
	ks, err := ParseKeySet(data)
	if err != nil {
		t.Fatalf("ParseKeySet(JWK set) = %v", err)
	}
	if ks.Active().ID() != "k-RS256" {
		t.Errorf("Active() = %s, want k-RS256", ks.Active())
	}
	for _, a := range allAlgs {
		k, _ := ks.Key("k-" + a)
		if k == nil || !k.sameMaterial(mustKey(t, a)) || !k.CanSign() {
			t.Errorf("key k-%s differs after a JWK round trip", a)
		}
	}
	// The same keys from PEM have the same digest.
	var file []byte
	for _, a := range allAlgs {
		file = append(file, mustPEM(t, mustKey(t, a), a == AlgRS256)...)
	}
	ks2, err := ParseKeySet(file)
	if err != nil {
		t.Fatal(err)
	}
	if ks.Digest() != ks2.Digest() {
		t.Errorf("Digest() of one set from JWK %s and from PEM %s differ", ks.Digest(), ks2.Digest())
	}
}

func TestParseKeySetOneSignerIsActive(t *testing.T) {
	pub, _ := publicOnly(t, mustKey(t, AlgEdDSA))
	file := append(mustPEM(t, mustKey(t, AlgES256), false), pub...)
	ks, err := ParseKeySet(file)
	if err != nil {
		t.Fatalf("ParseKeySet = %v", err)
	}
	if ks.Active().ID() != "k-ES256" {
		t.Errorf("Active() = %s, want the only signer k-ES256", ks.Active())
	}
	if k, _ := ks.Key("k-EdDSA"); k.CanSign() {
		t.Errorf("public key k-EdDSA CanSign")
	}
}

// publicOnly returns k's public key as a PEM block (and the key).
func publicOnly(tb testing.TB, k *Key) ([]byte, *Key) {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		tb.Fatal(err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"kid": k.ID()}, Bytes: der})
	pk, err := newKey(k.ID(), "", k.Public())
	if err != nil {
		tb.Fatal(err)
	}
	return b, pk
}

func TestDigestChangesWithMaterialAndActive(t *testing.T) {
	a1, _ := GenerateKey(AlgEdDSA, "a")
	a2, _ := GenerateKey(AlgEdDSA, "a")
	b, _ := GenerateKey(AlgHS256, "b")
	s1, _ := NewKeySet("a", a1, b)
	s1again, _ := NewKeySet("a", b, a1)
	s2, _ := NewKeySet("a", a2, b)
	s3, _ := NewKeySet("b", a1, b)
	if s1.Digest() != s1again.Digest() {
		t.Errorf("Digest() depends on the order of keys")
	}
	if s1.Digest() == s2.Digest() {
		t.Errorf("Digest() same for two different keys under kid a")
	}
	if s1.Digest() == s3.Digest() {
		t.Errorf("Digest() same for two different active keys")
	}
	if strings.Contains(s1.Digest(), base64.RawURLEncoding.EncodeToString(b.sign.([]byte))) {
		t.Errorf("Digest() holds the secret")
	}
}

func TestParseKeySetRefuses(t *testing.T) {
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der1024, _ := x509.MarshalPKCS8PrivateKey(rsa1024)
	der384, _ := x509.MarshalPKCS8PrivateKey(p384)
	shortSecret := []byte("0123456789abcdef0123456789abcde") // 31 bytes
	block := func(typ string, der []byte, h ...string) []byte {
		hd := map[string]string{}
		for i := 0; i+1 < len(h); i += 2 {
			hd[h[i]] = h[i+1]
		}
		return pem.EncodeToMemory(&pem.Block{Type: typ, Headers: hd, Bytes: der})
	}
	ed := mustKey(t, AlgEdDSA)
	edDER, _ := x509.MarshalPKCS8PrivateKey(ed.sign)
	hs := mustKey(t, AlgHS256)
	edJWK := privateJWK(t, ed)
	jset := func(active string, keys ...map[string]any) []byte {
		b, _ := json.Marshal(map[string]any{"keys": keys, "active": active})
		return b
	}
	with := func(m map[string]any, k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range m {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	secrets := [][]byte{edDER, hs.sign.([]byte), der1024, shortSecret}
	tests := []struct {
		name string
		data []byte
		want string // in the error
	}{
		{"empty", nil, "neither PEM blocks nor a JWK set"},
		{"duplicate kid", append(block("PRIVATE KEY", edDER, "kid", "a", "active", "true"), block(pemSecretType, hs.sign.([]byte), "kid", "a")...), `kid "a" appears twice`},
		{"unknown alg", block("PRIVATE KEY", edDER, "kid", "a", "alg", "PS256"), `unknown alg "PS256"`},
		{"alg none", block("PRIVATE KEY", edDER, "kid", "a", "alg", "none"), `unknown alg "none"`},
		{"type does not fit alg", block("PRIVATE KEY", edDER, "kid", "a", "alg", "RS256"), "a EdDSA key cannot be used with alg RS256"},
		{"secret as RS256", block(pemSecretType, hs.sign.([]byte), "kid", "a", "alg", "RS256"), "a HS256 key cannot be used with alg RS256"},
		{"RSA 1024", block("PRIVATE KEY", der1024, "kid", "a"), "RSA key of 1024 bits; at least 2048"},
		{"P-384", block("PRIVATE KEY", der384, "kid", "a"), "only P-256"},
		{"short secret", block(pemSecretType, shortSecret, "kid", "a"), "HS256 secret of 31 bytes; at least 32"},
		{"no kid", block("PRIVATE KEY", edDER), `has no "kid" header`},
		{"kid with space", block("PRIVATE KEY", edDER, "kid", "a b"), "printable ASCII"},
		{"two active", append(block("PRIVATE KEY", edDER, "kid", "a", "active", "true"), block(pemSecretType, hs.sign.([]byte), "kid", "b", "active", "true")...), "both marked active"},
		{"two signers none active", append(block("PRIVATE KEY", edDER, "kid", "a"), block(pemSecretType, hs.sign.([]byte), "kid", "b")...), "none is marked active"},
		{"active public", block("PUBLIC KEY", mustDER(t, ed), "kid", "a", "active", "true"), "public key and cannot sign"},
		{"only public", block("PUBLIC KEY", mustDER(t, ed), "kid", "a"), "no key can sign"},
		{"garbage after blocks", append(block("PRIVATE KEY", edDER, "kid", "a"), "junk"...), "not a PEM block"},
		{"bad DER", block("PRIVATE KEY", []byte("not der at all"), "kid", "a"), "cannot decode"},
		{"jwk duplicate kid", jset("k-EdDSA", edJWK, edJWK), "appears twice"},
		{"jwk active missing", jset("nope", edJWK), `active kid "nope" names no key`},
		{"jwk unknown alg", jset("k-EdDSA", with(edJWK, "alg", "ES512")), `unknown alg "ES512"`},
		{"jwk alg none", jset("k-EdDSA", with(edJWK, "alg", "none")), `unknown alg "none"`},
		{"jwk type does not fit", jset("k-EdDSA", with(edJWK, "alg", "HS256")), "cannot be used with alg HS256"},
		{"jwk bad kty", jset("k-EdDSA", with(edJWK, "kty", "XYZ")), `key type "XYZ"`},
		{"jwk mismatched private", jset("k-EdDSA", with(edJWK, "x", privateJWK(t, mustGen(t, AlgEdDSA))["x"])), "do not match"},
		{"jwk short oct", jset("s", map[string]any{"kty": "oct", "kid": "s", "k": base64.RawURLEncoding.EncodeToString(shortSecret)}), "at least 32"},
		{"jwk bad json", []byte(`{"keys": [`), "not valid JSON"},
		{"jwk enc", jset("k-EdDSA", with(edJWK, "use", "enc")), `"use" is "enc"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, err := ParseKeySet(tt.data)
			if err == nil {
				t.Fatalf("ParseKeySet = %v, nil; want an error", ks)
			}
			if !errors.Is(err, ErrKeySet) {
				t.Errorf("ParseKeySet error %v does not wrap ErrKeySet", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseKeySet error %q, want it to say %q", err, tt.want)
			}
			assertNoMaterial(t, err.Error(), secrets...)
		})
	}
}

func mustDER(tb testing.TB, k *Key) []byte {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

// assertNoMaterial fails when s holds any of secrets in raw, base64 or
// base64url form (any 12-character run of it).
func assertNoMaterial(tb testing.TB, s string, secrets ...[]byte) {
	tb.Helper()
	for _, sec := range secrets {
		for _, form := range []string{string(sec), base64.StdEncoding.EncodeToString(sec), base64.RawURLEncoding.EncodeToString(sec)} {
			for i := 0; i+12 <= len(form); i += 6 {
				if strings.Contains(s, form[i:i+12]) {
					tb.Fatalf("%q quotes key material", s)
				}
			}
		}
	}
}

func TestLoadKeySetRefusesReadableFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.pem")
	if err := os.WriteFile(path, mustPEM(t, mustKey(t, AlgEdDSA), true), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeySet(path); err == nil || !strings.Contains(err.Error(), "unprotected") {
		t.Errorf("LoadKeySet(0640 file) = %v, want an unprotected-file error", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	ks, err := LoadKeySet(path)
	if err != nil {
		t.Fatalf("LoadKeySet(0600 file) = %v", err)
	}
	if ks.Active().ID() != "k-EdDSA" {
		t.Errorf("Active() = %s", ks.Active())
	}
	if _, err := LoadKeySet(dir); err == nil {
		t.Errorf("LoadKeySet(directory) = nil error")
	}
}

func TestJWKSPublishesPublicKeysOnly(t *testing.T) {
	var keys []*Key
	for _, a := range allAlgs {
		keys = append(keys, mustKey(t, a))
	}
	ks, err := NewKeySet("k-HS256", keys...)
	if err != nil {
		t.Fatal(err)
	}
	out := ks.JWKS()
	if !bytes.Equal(out, ks.JWKS()) {
		t.Errorf("JWKS() is not stable")
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(out, &set); err != nil {
		t.Fatalf("JWKS() is not JSON: %v", err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k["kid"].(string))
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[private]; ok {
				t.Errorf("JWKS() key %s has private member %q", k["kid"], private)
			}
		}
	}
	if got, want := strings.Join(kids, ","), "k-ES256,k-EdDSA,k-RS256"; got != want {
		t.Errorf("JWKS() kids = %s, want %s (sorted, no HS256)", got, want)
	}
	assertNoMaterial(t, string(out), mustKey(t, AlgHS256).sign.([]byte))
	parsed, err := ParseJWKSet(out)
	if err != nil {
		t.Fatalf("ParseJWKSet(JWKS()) = %v", err)
	}
	for _, p := range parsed {
		want, _ := ks.Key(p.ID())
		if !p.sameMaterial(want) || p.CanSign() {
			t.Errorf("ParseJWKSet(JWKS()) key %s: not the public key of the set", p)
		}
	}
}

func TestParseJWKSetSkipsEncryptionKeys(t *testing.T) {
	pub := json.RawMessage(mustKey(t, AlgEdDSA).publicJWK(t))
	enc := json.RawMessage(`{"kty":"RSA","kid":"e","use":"enc","n":"AQAB","e":"AQAB"}`)
	data, _ := json.Marshal(map[string]any{"keys": []any{pub, enc}})
	keys, err := ParseJWKSet(data)
	if err != nil || len(keys) != 1 || keys[0].ID() != "k-EdDSA" {
		t.Errorf("ParseJWKSet = %v, %v; want the one signature key", keys, err)
	}
}

// publicJWK returns k's entry of a JWKS.
func (k *Key) publicJWK(tb testing.TB) []byte {
	tb.Helper()
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(marshalJWKS([]*Key{k}), &set); err != nil || len(set.Keys) != 1 {
		tb.Fatalf("no public JWK for %s", k)
	}
	return set.Keys[0]
}

func TestGenerateKeyRefusesUnknownAlg(t *testing.T) {
	for _, alg := range []string{"none", "RS512", "hs256"} {
		if _, err := GenerateKey(alg, "x"); !errors.Is(err, ErrKeySet) {
			t.Errorf("GenerateKey(%q) = %v, want ErrKeySet", alg, err)
		}
	}
	k, err := GenerateKey("", "")
	if err != nil || k.Alg() != AlgEdDSA || k.ID() == "" {
		t.Errorf("GenerateKey(\"\", \"\") = %v, %v; want an EdDSA key with a random kid", k, err)
	}
}

func TestKeyNeverFormatsMaterial(t *testing.T) {
	k := mustKey(t, AlgHS256)
	for _, s := range []string{k.String(), k.GoString(), fmtAll(k)} {
		assertNoMaterial(t, s, k.sign.([]byte))
		if !strings.Contains(s, "k-HS256 (HS256)") {
			t.Errorf("formatted key %q does not name kid and alg", s)
		}
	}
}

func mustGen(tb testing.TB, alg string) *Key {
	tb.Helper()
	k, err := GenerateKey(alg, "")
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
