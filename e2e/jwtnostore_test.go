package e2e

import (
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestJWTStoreNone runs a real node with persist.store none and the JWT
// format: JWTs are issued, validated and revoked by jti; what needs a
// stored token answers 501 store_disabled; the discovery endpoints answer.
func TestJWTStoreNone(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys.pem")
	if out, err := exec.Command(binary, "jwt", "keygen", "--out", keys).CombinedOutput(); err != nil {
		t.Fatalf("jwt keygen: %v\n%s", err, out)
	}
	const admin = "e2e-store-none-admin-0123456789"
	n := startNode(t, "", []string{
		"TOKENCACHE_ADMIN_TOKEN=" + admin,
		"TOKENCACHE_PERSIST_STORE=none",
		"TOKENCACHE_TOKENS_FORMAT=jwt",
		"TOKENCACHE_TOKENS_JWT_ISSUER=https://nostore.e2e.example",
		"TOKENCACHE_TOKENS_JWT_KEYS_FILE=" + keys,
	})
	tok := n.issue(admin, map[string]any{"username": "alice", "scopes": []string{"read"}})
	if code, reason := n.validate(tok.Token); code != 200 {
		t.Fatalf("validate(JWT) with store none = %d %s, want 200", code, reason)
	}
	var errBody struct {
		Error string `json:"error"`
	}
	for _, c := range []struct{ method, path string }{
		{"POST", "/v1/tokens"}, {"GET", "/v1/tokens"}, {"GET", "/v1/tokens/" + tok.Key + "/children"},
	} {
		var body any
		if c.method == "POST" {
			body = map[string]any{"username": "bob", "format": "opaque"}
		}
		if code, _ := n.call(c.method, c.path, admin, body, &errBody); code != 501 || errBody.Error != "store_disabled" {
			t.Errorf("%s %s with store none = %d %s, want 501 store_disabled", c.method, c.path, code, errBody.Error)
		}
	}
	for _, path := range []string{"/.well-known/jwks.json", "/.well-known/oauth-authorization-server"} {
		resp, err := http.Get(n.addr + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s = %v %v, want 200", path, resp, err)
		}
		resp.Body.Close()
	}
	resp, err := http.PostForm(n.addr+"/v1/revoke", url.Values{"token": {tok.Token}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /v1/revoke of a JWT with store none = %v %v", resp, err)
	}
	resp.Body.Close()
	if code, reason := n.validate(tok.Token); code != 401 || reason != "revoked" {
		t.Errorf("validate(revoked JWT) with store none = %d %s, want 401 revoked", code, reason)
	}
}
