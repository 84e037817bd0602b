package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokencache/tokencache/internal/testport"
	"github.com/tokencache/tokencache/token/jwt"
)

// TestJWTKeygenRotation walks a key rotation with the CLI on a keys file:
// keygen creates it (the key active), appends a verify-only key, activate
// switches, remove drops the old key; every step leaves a 0600 file that
// loads, and nothing prints key material.
func TestJWTKeygenRotation(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.pem")
	run := func(want int, args ...string) string {
		t.Helper()
		code, stdout, stderr := runCLI(t, nil, "", args...)
		if code != want {
			t.Fatalf("tokencache %s = %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, stdout, stderr)
		}
		return stdout + stderr
	}
	load := func() *jwt.KeySet {
		t.Helper()
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("keys file mode = %04o, want 0600", fi.Mode().Perm())
		}
		ks, err := jwt.LoadKeySet(file)
		if err != nil {
			t.Fatalf("LoadKeySet after the CLI = %v", err)
		}
		return ks
	}
	material := func() []string {
		b, _ := os.ReadFile(file)
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if len(l) >= 16 && !strings.Contains(l, ":") && !strings.HasPrefix(l, "-----") {
				lines = append(lines, l)
			}
		}
		return lines
	}
	noMaterial := func(out string) {
		t.Helper()
		for _, l := range material() {
			if strings.Contains(out, l) {
				t.Fatalf("output holds key material:\n%s", out)
			}
		}
	}

	noMaterial(run(exitOK, "jwt", "keygen", "--kid", "a", "--out", file))
	if ks := load(); ks.Active().ID() != "a" || ks.Active().Alg() != jwt.AlgEdDSA {
		t.Fatalf("new keys file: active %s, want a (EdDSA)", ks.Active())
	}
	out := run(exitOK, "jwt", "keygen", "--kid", "b", "--alg", "ES256", "--out", file)
	noMaterial(out)
	if !strings.Contains(out, "jwt activate --keys-file "+file+" b") {
		t.Errorf("keygen of a second key does not say the next step:\n%s", out)
	}
	if ks := load(); ks.Active().ID() != "a" || len(ks.Keys()) != 2 {
		t.Fatalf("after adding b: active %s, %d keys; want a, 2", ks.Active(), len(ks.Keys()))
	}
	run(exitUsage, "jwt", "keygen", "--kid", "b", "--out", file) // the kid is taken
	run(exitUsage, "jwt", "keygen", "--alg", "none", "--out", file)

	out = run(exitOK, "jwt", "keys", "--keys-file", file)
	noMaterial(out)
	for _, want := range []string{"KID", "a    EdDSA  true    true", "b    ES256  false   true", "digest " + load().Digest()} {
		if !strings.Contains(out, want) {
			t.Errorf("jwt keys =\n%s\nwant %q in it", out, want)
		}
	}
	var listed struct {
		Digest string `json:"digest"`
		Keys   []struct {
			KID     string `json:"kid"`
			Active  bool   `json:"active"`
			CanSign bool   `json:"can_sign"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(run(exitOK, "jwt", "keys", "--keys-file", file, "-o", "json")), &listed); err != nil {
		t.Fatal(err)
	}
	if listed.Digest != load().Digest() || len(listed.Keys) != 2 || !listed.Keys[0].Active || !listed.Keys[1].CanSign {
		t.Errorf("jwt keys -o json = %+v", listed)
	}
	// --config reads tokens.jwt.keys_file.
	cfgFile := writeFile(t, "c.yaml", "tokens:\n  jwt:\n    keys_file: "+file+"\n")
	if out := run(exitOK, "jwt", "keys", "--config", cfgFile); !strings.Contains(out, "b    ES256") {
		t.Errorf("jwt keys --config = %s", out)
	}

	run(exitError, "jwt", "remove", "--keys-file", file, "a") // the active key
	noMaterial(run(exitOK, "jwt", "activate", "--keys-file", file, "b"))
	if ks := load(); ks.Active().ID() != "b" {
		t.Fatalf("after activate b: active %s", ks.Active())
	}
	run(exitUsage, "jwt", "activate", "--keys-file", file, "zz")
	noMaterial(run(exitOK, "jwt", "remove", "--keys-file", file, "a"))
	if ks := load(); len(ks.Keys()) != 1 || ks.Active().ID() != "b" {
		t.Fatalf("after remove a: %d keys, active %s", len(ks.Keys()), ks.Active())
	}
	// keygen --active: a new key that signs at once.
	run(exitOK, "jwt", "keygen", "--kid", "c", "--alg", "HS256", "--active", "--out", file)
	if ks := load(); ks.Active().ID() != "c" {
		t.Fatalf("after keygen --active c: active %s", ks.Active())
	}
	// Without --out the key is printed, for a keys file kept elsewhere.
	if out := run(exitOK, "jwt", "keygen", "--alg", "RS256"); !strings.Contains(out, "BEGIN PRIVATE KEY") || !strings.Contains(out, "alg: RS256") {
		t.Errorf("keygen to stdout = %s", out)
	}
	// A JWK set file is not edited by these commands.
	jwks := writeFile(t, "keys.json", `{"keys":[],"active":"x"}`)
	run(exitError, "jwt", "keygen", "--out", jwks)
}

// TestJWTServeCLI runs a real node with a keys file and drives it with the
// CLI: token issue --format jwt --audience, token validate of the JWT,
// the JWKS, and a key added to the file reaching the JWKS by itself.
func TestJWTServeCLI(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.pem")
	if code, _, stderr := runCLI(t, nil, "", "jwt", "keygen", "--kid", "a", "--out", keys); code != 0 {
		t.Fatal(stderr)
	}
	cfgFile := writeFile(t, "jwt.yaml", fmt.Sprintf(`
node:
  id: jwt-node
  data_dir: %s
http:
  addr: 127.0.0.1:0
  admin_token: jwt-test-admin-token-0123456789
cluster:
  gossip_addr: 127.0.0.1:%d
  raft_addr: 127.0.0.1:%d
  raft_store: memory
persist:
  store: memory
tokens:
  format: jwt
  jwt:
    issuer: https://auth.example.org
    keys_file: %s
    audiences: [api, web]
    trusted:
      - issuer: https://idp.example.org
        jwks_file: %s
        audiences: [api]
log:
  format: json
`, filepath.Join(dir, "data"), testport.Free(t), testport.Free(t), keys, writeFile(t, "idp.jwks", string(publicJWKS(t)))))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- runCLIContext(t, ctx, nil, "", &stdout, &stderr, "serve", "--config", cfgFile) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	addr := "http://" + waitHTTPAddr(t, &stderr, done)
	waitServeLog(t, &stderr, done, 20*time.Second, func(log string) bool { return strings.Contains(log, "tokencache is serving") })
	// Serving is not ready: until the node's first freshness check a
	// write answers stale (503), as a gateway would see through /readyz.
	waitReady(t, addr, 20*time.Second)
	env := []string{"TOKENCACHE_ADDR=" + addr, "TOKENCACHE_ADMIN_TOKEN=jwt-test-admin-token-0123456789"}

	code, tok, errOut := runCLI(t, env, "", "token", "issue", "--username", "alice", "--scope", "read", "--audience", "api")
	if code != 0 {
		t.Fatalf("token issue --audience api = %d: %s", code, errOut)
	}
	tok = strings.TrimSpace(tok)
	if strings.Count(tok, ".") != 2 || !strings.HasPrefix(tok, "eyJ") {
		t.Fatalf("token issue with tokens.format jwt printed %q, want a JWT", tok)
	}
	code, out, errOut := runCLI(t, env, tok+"\n", "token", "validate", "--scope", "read", "-")
	if code != 0 || !strings.Contains(out, "alice") {
		t.Fatalf("token validate of the JWT = %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, env, "", "token", "issue", "--username", "alice", "--format", "jwt", "--audience", "elsewhere")
	if code != exitError || !strings.Contains(errOut, "audience") {
		t.Errorf("token issue --audience elsewhere = %d %s, want 1 and a word about the audience", code, errOut)
	}
	code, out, _ = runCLI(t, env, "", "token", "issue", "--username", "bob", "--format", "opaque")
	if code != 0 || !strings.HasPrefix(strings.TrimSpace(out), "tc_") {
		t.Errorf("token issue --format opaque = %d %q, want an opaque token", code, out)
	}

	// /v1/cluster: this node's key digest, and the trusted issuer's refresh.
	req, _ := http.NewRequest("GET", addr+"/v1/cluster", nil)
	req.Header.Set("Authorization", "Bearer jwt-test-admin-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		JWTKeys      string `json:"jwt_keys"`
		JWTKeysAgree bool   `json:"jwt_keys_agree"`
		JWTTrusted   []struct {
			Issuer string   `json:"issuer"`
			Kids   []string `json:"kids"`
		} `json:"jwt_trusted"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	ks, _ := jwt.LoadKeySet(keys)
	if st.JWTKeys != ks.Digest() || !st.JWTKeysAgree || len(st.JWTTrusted) != 1 ||
		st.JWTTrusted[0].Issuer != "https://idp.example.org" || strings.Join(st.JWTTrusted[0].Kids, ",") != "idp-1" {
		t.Errorf("GET /v1/cluster = %+v, want jwt_keys %s, agreement and the trusted issuer with kid idp-1", st, ks.Digest())
	}

	jwksKids := func() []string {
		resp, err := http.Get(addr + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var set struct {
			Keys []struct {
				Kid string `json:"kid"`
			} `json:"keys"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(b, &set) != nil {
			t.Fatalf("GET /.well-known/jwks.json = %d %s", resp.StatusCode, b)
		}
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.Kid)
		}
		return kids
	}
	if kids := jwksKids(); strings.Join(kids, ",") != "a" {
		t.Fatalf("JWKS kids = %v, want [a]", kids)
	}
	if code, _, errOut := runCLI(t, nil, "", "jwt", "keygen", "--kid", "b", "--alg", "ES256", "--out", keys); code != 0 {
		t.Fatal(errOut)
	}
	deadline := time.Now().Add(15 * time.Second)
	for strings.Join(jwksKids(), ",") != "a,b" {
		if time.Now().After(deadline) {
			t.Fatalf("JWKS kids = %v 15s after b was added to the keys file, want [a b]\n%s", jwksKids(), stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The token signed with a still verifies.
	if code, out, errOut := runCLI(t, env, tok+"\n", "token", "validate", "-"); code != 0 {
		t.Fatalf("token validate after the reload = %d\n%s%s", code, out, errOut)
	}
	// Revoked by its text (its jti), read from stdin.
	if code, out, errOut := runCLI(t, env, tok+"\n", "token", "revoke", "-"); code != 0 || strings.TrimSpace(out) != "revoked" {
		t.Fatalf("token revoke - of the JWT = %d %q %s", code, out, errOut)
	}
	if code, out, _ := runCLI(t, env, tok+"\n", "token", "validate", "-"); code != exitError || !strings.Contains(out, "revoked") {
		t.Errorf("token validate of the revoked JWT = %d\n%s, want 1 and revoked", code, out)
	}
	// A whole token as KEY is refused before anything is sent.
	if code, _, errOut := runCLI(t, env, "", "token", "revoke", tok); code != exitUsage || !strings.Contains(errOut, "or - to read the whole token from stdin") {
		t.Errorf("token revoke <JWT> = %d %s, want a usage error", code, errOut)
	}
}

// waitReady polls addr's /readyz until it answers 200.
func waitReady(t *testing.T, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz not 200 after %s (last: %v)", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestJWTKeysFileThroughSymlinkKeepsOwner: a keys file reached through a
// symlink (a mounted secret) is rewritten where it lives, the link stays,
// and the new file keeps the old one's owner (the daemon may run as another
// user than the operator's command).
func TestJWTKeysFileThroughSymlinkKeepsOwner(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "secret", "keys.pem")
	if code, _, stderr := runCLI(t, nil, "", "jwt", "keygen", "--kid", "a", "--out", real); code != 0 {
		t.Fatal(stderr)
	}
	link := filepath.Join(dir, "keys.pem")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	const uid, gid = 4321, 4321 // not this process's: chown needs root, which the CI has
	chowned := os.Chown(real, uid, gid) == nil
	if code, _, stderr := runCLI(t, nil, "", "jwt", "keygen", "--kid", "b", "--out", link); code != 0 {
		t.Fatal(stderr)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("after keygen through the link: Lstat = %v, %v; want the symlink kept", fi, err)
	}
	ks, err := jwt.LoadKeySet(real)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ks.Key("b"); !ok {
		t.Fatalf("the file behind the link lacks key b: %v", ks.Keys())
	}
	fi, err := os.Stat(real)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); chowned && (st.Uid != uid || st.Gid != gid) {
		t.Errorf("rewritten keys file owned by %d:%d, want the old owner %d:%d", st.Uid, st.Gid, uid, gid)
	}
	if !chowned && os.Getuid() == 0 {
		t.Error("could not chown as root")
	}
}

// TestJWTKeysValidateOnly: jwt keys of a configuration with trusted
// issuers and no keys file says the node signs nothing, and succeeds.
func TestJWTKeysValidateOnly(t *testing.T) {
	jwks := writeFile(t, "idp.jwks", string(publicJWKS(t)))
	cfg := writeFile(t, "vo.yaml", "node:\n  id: n1\ntokens:\n  jwt:\n    trusted:\n      - issuer: https://idp.example.org\n        jwks_file: "+jwks+"\n        audiences: [api]\n")
	code, stdout, stderr := runCLI(t, nil, "", "jwt", "keys", "--config", cfg)
	if code != exitOK || !strings.Contains(stdout, "validate-only") {
		t.Errorf("jwt keys (validate-only config) = %d, %q, %q; want exit 0 saying validate-only", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, nil, "", "jwt", "keys", "--config", cfg, "-o", "json")
	var out struct {
		Keys         []any `json:"keys"`
		ValidateOnly bool  `json:"validate_only"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); code != exitOK || err != nil || !out.ValidateOnly || out.Keys == nil || len(out.Keys) != 0 {
		t.Errorf("jwt keys -o json (validate-only config) = %d, %q (%v), %q; want validate_only and no keys", code, stdout, err, stderr)
	}
}
