package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokencache/tokencache/token/jwt"
)

// writeKeysFile writes a keys file of new keys (the first active) with
// mode 0600 and returns its path.
func writeKeysFile(t *testing.T, algs ...string) string {
	t.Helper()
	var b []byte
	for i, alg := range algs {
		k, err := jwt.GenerateKey(alg, "k"+string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		var p []byte
		if i == 0 {
			p, err = k.MarshalActivePEM()
		} else {
			p, err = k.MarshalPEM()
		}
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, p...)
	}
	path := filepath.Join(t.TempDir(), "jwt-keys.pem")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigCheckJWT(t *testing.T) {
	keys := writeKeysFile(t, jwt.AlgEdDSA, jwt.AlgES256)
	jwks := writeFile(t, "idp.jwks", string(publicJWKS(t)))
	valid := writeFile(t, "jwt.yaml", `
node:
  id: n1
tokens:
  format: jwt
  jwt:
    issuer: https://auth.example.org
    keys_file: `+keys+`
    audiences: [api, web]
    leeway: 1m
    verified_cache: 1000
    trusted:
      - issuer: https://idp.example.org
        jwks_file: `+jwks+`
        audiences: ["*"]
        required_claims: [sub]
        username_claim: preferred_username
      - issuer: https://other.example.org
        jwks_url: https://other.example.org/jwks
        refresh: 10m
        audiences: [api]
`)
	invalid := writeFile(t, "bad-jwt.yaml", `
node:
  id: n1
tokens:
  format: paseto
  jwt:
    issuer: ""
    keys_file: `+keys+`
    audiences: ["*", api]
    leeway: 10m
    verified_cache: 0
    trusted:
      - jwks_file: /x
        jwks_url: https://x.example/jwks
        audiences: []
`)
	jwtNoKeys := writeFile(t, "jwt-no-keys.yaml", "node:\n  id: n1\ntokens:\n  format: jwt\n")
	noneNoJWT := writeFile(t, "none.yaml", "node:\n  id: n1\npersist:\n  store: none\n")
	noneJWT := writeFile(t, "none-jwt.yaml", "node:\n  id: n1\npersist:\n  store: none\ntokens:\n  jwt:\n    keys_file: "+keys+"\n")

	// A keys file others may read, and one that is not a keys file (its
	// content must not be echoed: it could be key material).
	open := writeKeysFile(t, jwt.AlgEdDSA)
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	os.WriteFile(garbage, []byte("-----BEGIN PRIVATE KEY-----\nkid: x\n\nU0VDUkVULU1BVEVSSUFM\n-----END PRIVATE KEY-----\n"), 0o600)
	openFile := writeFile(t, "open.yaml", "node:\n  id: n1\ntokens:\n  jwt:\n    keys_file: "+open+"\n")
	garbageFile := writeFile(t, "garbage.yaml", "node:\n  id: n1\ntokens:\n  jwt:\n    keys_file: "+garbage+"\n")
	trustedOnly := writeFile(t, "trusted-only.yaml", "node:\n  id: n1\ntokens:\n  jwt:\n    trusted:\n      - issuer: https://idp.example.org\n        jwks_file: "+jwks+"\n        audiences: [api]\n")
	missingFile := writeFile(t, "missing.yaml", "node:\n  id: n1\ntokens:\n  jwt:\n    keys_file: /nonexistent/keys.pem\n")

	for _, tt := range []struct {
		name    string
		file    string
		environ []string
		code    int
		stderr  []string
		never   []string
	}{
		{"valid", valid, nil, exitOK, nil, nil},
		{"every problem", invalid, nil, exitError, []string{
			`tokens.format: unknown value "paseto" (want opaque, jwt)`,
			"tokens.jwt.issuer: is required",
			`tokens.jwt.audiences: "*" (any audience) must be the only value`,
			"tokens.jwt.leeway: must be from 0s to 5m, got 10m",
			"tokens.jwt.verified_cache: must be positive",
			"tokens.jwt.trusted[0].issuer: is required",
			"tokens.jwt.trusted[0]: has both jwks_file and jwks_url",
			"tokens.jwt.trusted[0].audiences: is required",
		}, nil},
		{"jwt without keys", jwtNoKeys, nil, exitError, []string{"tokens.format: jwt needs signing keys: set tokens.jwt.keys_file"}, nil},
		{"store none without jwt", noneNoJWT, nil, exitError, []string{"persist.store: none stores no tokens, so only JWTs work"}, nil},
		{"store none with jwt", noneJWT, nil, exitOK, []string{"warning: tokens.format: is opaque, which persist.store none cannot issue"}, nil},
		{"keys file others can read", openFile, nil, exitError, []string{"tokens.jwt.keys_file: ", "chmod 600"}, nil},
		{"keys file of garbage", garbageFile, nil, exitError, []string{"tokens.jwt.keys_file: "}, []string{"U0VDUkVULU1BVEVSSUFM", "SECRET-MATERIAL"}},
		{"trusted without keys file (validate-only)", trustedOnly, nil, exitOK, nil, []string{"keys_file"}},
		{"missing keys file", missingFile, nil, exitError, []string{"tokens.jwt.keys_file: cannot read /nonexistent/keys.pem"}, nil},
		{"trusted from the environment", valid, []string{`TOKENCACHE_TOKENS_JWT_TRUSTED=[{"issuer":"https://e.example","jwks_url":"https://e.example/k","refresh":"1m","audiences":["a"]}]`}, exitOK, nil, nil},
		{"trusted environment not JSON", valid, []string{`TOKENCACHE_TOKENS_JWT_TRUSTED=https://e.example`}, exitError, []string{"TOKENCACHE_TOKENS_JWT_TRUSTED: must be a JSON list"}, nil},
		{"unknown trusted key", valid, []string{`TOKENCACHE_TOKENS_JWT_TRUSTED=[{"issuer":"https://e.example","jwks":"x","audiences":["a"]}]`}, exitError, []string{"unknown keys: jwks"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.environ, "", "config", "check", tt.file)
			if code != tt.code {
				t.Fatalf("config check %s: exit code = %d, want %d\nstdout: %s\nstderr: %s", tt.name, code, tt.code, stdout, stderr)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr = %q, want %q in it", stderr, s)
				}
			}
			for _, s := range tt.never {
				if strings.Contains(stdout+stderr, s) {
					t.Errorf("output quotes %q:\n%s%s", s, stdout, stderr)
				}
			}
		})
	}
}

// publicJWKS returns a JWK set of one new public key, as an IdP publishes.
func publicJWKS(t *testing.T) []byte {
	t.Helper()
	k, err := jwt.GenerateKey(jwt.AlgES256, "idp-1")
	if err != nil {
		t.Fatal(err)
	}
	ks, err := jwt.NewKeySet("", k)
	if err != nil {
		t.Fatal(err)
	}
	return ks.JWKS()
}

// TestConfigShowTrusted: config show prints the trusted issuers in the
// file's own form.
func TestConfigShowTrusted(t *testing.T) {
	f := writeFile(t, "t.yaml", `
node:
  id: n1
tokens:
  jwt:
    keys_file: `+writeKeysFile(t, jwt.AlgEdDSA)+`
    trusted:
      - issuer: https://idp.example.org
        jwks_url: https://idp.example.org/jwks
        refresh: 90s
        audiences: [api]
`)
	code, stdout, stderr := runCLI(t, nil, "", "config", "show", "--config", f)
	if code != exitOK {
		t.Fatalf("config show = %d\n%s", code, stderr)
	}
	for _, want := range []string{"trusted:", "issuer: https://idp.example.org", "jwks_url: https://idp.example.org/jwks", "refresh: 90s", "- api"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("config show = %s\nwant %q in it", stdout, want)
		}
	}
}
