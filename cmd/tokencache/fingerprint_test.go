package main

import (
	"testing"

	"github.com/tokencache/tokencache/persist"
)

// TestFingerprintPinned: nodes of one cluster on old and new binaries must
// agree, so the fingerprint of given settings never changes between
// releases. The values are those of the binaries before the token formats
// had a seam.
func TestFingerprintPinned(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"defaults", func(*Config) {}, "5fb493fe915c28b5"},
		{"prefix and pepper", func(c *Config) { c.Tokens.Prefix, c.Tokens.Pepper = "ab", "pepper-0123456789" }, "117ebf20d863ad95"},
	} {
		c := Default()
		tc.mod(c)
		if got := fingerprintOf(t, c); got != tc.want {
			t.Errorf("%s: fingerprint() = %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestFingerprintCoversFormat: every setting the opaque format judges by
// changes the fingerprint.
func TestFingerprintCoversFormat(t *testing.T) {
	base := fingerprintOf(t, Default())
	for name, mod := range map[string]func(*Config){
		"prefix": func(c *Config) { c.Tokens.Prefix = "xy" },
		"pepper": func(c *Config) { c.Tokens.Pepper = "pepper-0123456789" },
		"shared": func(c *Config) { c.Persist.Store = persist.StoreMySQL },
		"store none": func(c *Config) {
			// Against a node that stores tokens (sqlite, the default),
			// which shares no database with it either.
			c.Persist.Store = persist.StoreNone
		},
	} {
		c := Default()
		mod(c)
		if got := fingerprintOf(t, c); got == base {
			t.Errorf("fingerprint() with another %s = %s, the default's", name, got)
		}
	}
}

// fingerprintOf is the fingerprint of c with the token formats serve builds
// from it.
func fingerprintOf(t *testing.T, c *Config) string {
	t.Helper()
	jf, err := newJWTFormat(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer jf.close()
	formats, err := tokenFormats(c, jf)
	if err != nil {
		t.Fatal(err)
	}
	return fingerprint(c, formats)
}

// TestFingerprintValidateOnly: a validate-only node (tokens.jwt.trusted
// without a keys file) never shares a fingerprint with a node that signs
// JWTs, nor with one without JWTs; the trusted issuers themselves are not
// part of it (each node reads its own JWKS).
func TestFingerprintValidateOnly(t *testing.T) {
	jwks := writeFile(t, "idp.jwks", string(publicJWKS(t)))
	trusted := []TrustedIssuer{{Issuer: "https://idp.example.org", JWKSFile: jwks, Audiences: []string{"api"}}}
	vo := Default()
	vo.Tokens.JWT.Trusted = trusted
	signing := Default()
	signing.Tokens.JWT.KeysFile = writeKeysFile(t, "EdDSA")
	signing.Tokens.JWT.Trusted = trusted
	other := Default()
	other.Tokens.JWT.Trusted = []TrustedIssuer{{Issuer: "https://other.example.org", JWKSFile: jwks, Audiences: []string{"*"}}}
	fv, fs, fo, fd := fingerprintOf(t, vo), fingerprintOf(t, signing), fingerprintOf(t, other), fingerprintOf(t, Default())
	if fv == fs || fv == fd {
		t.Errorf("validate-only fingerprint %s equals a signing node's (%s) or one without JWTs (%s)", fv, fs, fd)
	}
	if fv != fo {
		t.Errorf("validate-only fingerprints differ with the trusted issuers: %s, %s", fv, fo)
	}
}
