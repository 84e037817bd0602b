package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/token/jwt"
)

// testIdP is an identity provider on loopback: it signs access tokens
// with its own key and serves its JWK set, as a real IdP's JWKS URL does.
type testIdP struct {
	issuer string
	codec  *jwt.Codec
	srv    *httptest.Server
	jwks   atomic.Pointer[[]byte]
}

func newTestIdP(t *testing.T, issuer, kid string) *testIdP {
	t.Helper()
	idp := &testIdP{issuer: issuer}
	idp.setKey(t, kid)
	idp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(*idp.jwks.Load())
	}))
	t.Cleanup(idp.srv.Close)
	return idp
}

// setKey makes a new key of kid the one the IdP signs with and publishes.
func (idp *testIdP) setKey(t *testing.T, kid string) {
	t.Helper()
	k, err := jwt.GenerateKey(jwt.AlgES256, kid)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := jwt.NewKeySet(kid, k)
	if err != nil {
		t.Fatal(err)
	}
	if idp.codec, err = jwt.New(jwt.Config{Issuer: idp.issuer, Audiences: []string{jwt.AnyAudience}}, ks); err != nil {
		t.Fatal(err)
	}
	set := ks.JWKS()
	idp.jwks.Store(&set)
}

func (idp *testIdP) jwksURL() string { return idp.srv.URL + "/jwks.json" }

// token returns an access token of the IdP for username, audience
// gateway, valid for an hour.
func (idp *testIdP) token(t *testing.T, username string) string {
	t.Helper()
	now := time.Now()
	rec := &token.Token{
		Key: token.NewKey(), Username: username, Realm: token.DefaultRealm, Scopes: "read",
		Created: token.At(now), Expires: token.At(now.Add(time.Hour)), Format: token.FormatJWT, Type: token.TypeUser,
	}
	rec.SetExtra(token.Extra{Audience: "gateway"})
	text, err := idp.codec.Encode(rec, "")
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// trustedEnv is tokens.jwt.trusted naming idps, as the environment sets it.
func trustedEnv(t *testing.T, idps ...*testIdP) string {
	t.Helper()
	var list []map[string]any
	for _, idp := range idps {
		list = append(list, map[string]any{"issuer": idp.issuer, "jwks_url": idp.jwksURL(), "audiences": []string{"gateway"}})
	}
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	return "TOKENCACHE_TOKENS_JWT_TRUSTED=" + string(b)
}

// TestJWTValidateOnlyNode runs a real node with tokens.jwt.trusted and no
// keys file (the sidecar that answers for an IdP's tokens), with the store
// on and with persist.store none: the IdP's token validates, is revoked by
// its text (RFC 7009 and `token revoke -`), a JWT issue is refused with 400
// and leaves no record, and the node publishes no keys or metadata.
func TestJWTValidateOnlyNode(t *testing.T) {
	idp := newTestIdP(t, "https://idp.e2e.example", "idp-1")
	for _, store := range []string{"sqlite", "none"} {
		t.Run(store, func(t *testing.T) {
			const admin = "e2e-validate-only-admin-0123456789"
			n := startNode(t, "", []string{
				"TOKENCACHE_ADMIN_TOKEN=" + admin,
				"TOKENCACHE_PERSIST_STORE=" + store,
				trustedEnv(t, idp),
			})
			byAPI, byCLI := idp.token(t, "erin"), idp.token(t, "frank")
			for _, tok := range []string{byAPI, byCLI} {
				if code, reason := n.validate(tok); code != 200 {
					t.Fatalf("validate(IdP token) on a validate-only node = %d %s, want 200", code, reason)
				}
			}
			other := newTestIdP(t, idp.issuer, "idp-1") // same iss and kid, another key
			if code, reason := n.validate(other.token(t, "mallory")); code != 401 || reason != "malformed" {
				t.Errorf("validate(forged IdP token) = %d %s, want 401 malformed", code, reason)
			}

			var errBody struct {
				Error   string `json:"error"`
				Message string `json:"message"`
			}
			code, _ := n.call("POST", "/v1/tokens", admin, map[string]any{"username": "alice", "format": "jwt"}, &errBody)
			if code != 400 || errBody.Error != "invalid_request" || !strings.Contains(errBody.Message, "no JWT signing key") {
				t.Errorf("POST /v1/tokens format jwt on a validate-only node = %d %+v, want 400 invalid_request naming the missing signing key", code, errBody)
			}
			if store != "none" {
				var list struct {
					Tokens []json.RawMessage `json:"tokens"`
				}
				if code, _ := n.call("GET", "/v1/tokens?username=alice", admin, nil, &list); code != 200 || len(list.Tokens) != 0 {
					t.Errorf("GET /v1/tokens?username=alice after a refused JWT issue = %d, %d tokens; want 200 and none", code, len(list.Tokens))
				}
				// Opaque tokens are issued as ever.
				if tok := n.issue(admin, map[string]any{"username": "alice"}); tok.Token == "" {
					t.Error("opaque issue on a validate-only node gave no token")
				}
			}
			for _, path := range []string{"/.well-known/jwks.json", "/.well-known/oauth-authorization-server"} {
				if code, _ := n.call("GET", path, "", nil, &errBody); code != 404 || errBody.Error != "not_found" {
					t.Errorf("GET %s on a validate-only node = %d %s, want 404 not_found", path, code, errBody.Error)
				}
			}
			var cl struct {
				JWTKeys      string `json:"jwt_keys"`
				JWTKeysAgree bool   `json:"jwt_keys_agree"`
			}
			if code, _ := n.call("GET", "/v1/cluster", admin, nil, &cl); code != 200 || cl.JWTKeys != "" || !cl.JWTKeysAgree {
				t.Errorf("GET /v1/cluster = %d %+v, want no keys digest and agreement", code, cl)
			}

			resp, err := http.PostForm(n.addr+"/v1/revoke", url.Values{"token": {byAPI}})
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("POST /v1/revoke of an IdP token = %v %v, want 200", resp, err)
			}
			resp.Body.Close()
			cmd := exec.Command(binary, "token", "revoke", "-", "--addr", n.addr, "--admin-token", admin)
			cmd.Stdin = strings.NewReader(byCLI + "\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("token revoke - (IdP token): %v\n%s", err, out)
			}
			for _, tok := range []string{byAPI, byCLI} {
				if code, reason := n.validate(tok); code != 401 || reason != "revoked" {
					t.Errorf("validate(revoked IdP token) = %d %s, want 401 revoked", code, reason)
				}
			}
			if code, reason := n.validate(idp.token(t, "erin")); code != 200 {
				t.Errorf("validate(another IdP token of erin) = %d %s, want 200 (revocation is by jti)", code, reason)
			}
		})
	}
}

// TestJWTTrustedReloadOnSIGHUP: SIGHUP re-reads tokens.jwt.trusted from
// the configuration file. A newly trusted issuer's token becomes valid, a
// removed issuer's token is refused (also one verified before, which sat in
// the verified cache), and a section that does not pass the start-up checks
// keeps the issuers in use and is logged. Here on a validate-only node.
func TestJWTTrustedReloadOnSIGHUP(t *testing.T) {
	a := newTestIdP(t, "https://idp-a.e2e.example", "a-1")
	b := newTestIdP(t, "https://idp-b.e2e.example", "b-1")
	cfgFile := filepath.Join(t.TempDir(), "tokencache.yaml")
	writeConfig := func(body string) {
		t.Helper()
		tmp := cfgFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfgFile); err != nil {
			t.Fatal(err)
		}
	}
	trustedYAML := func(idps ...*testIdP) string {
		s := "tokens:\n  jwt:\n    trusted:\n"
		for _, idp := range idps {
			s += "      - issuer: " + idp.issuer + "\n        jwks_url: " + idp.jwksURL() + "\n        audiences: [gateway]\n"
		}
		return s
	}
	writeConfig(trustedYAML(a))
	const admin = "e2e-trusted-reload-admin-0123456789"
	n := startNode(t, "", []string{"TOKENCACHE_ADMIN_TOKEN=" + admin}, "--config", cfgFile)
	tokA, tokB := a.token(t, "erin"), b.token(t, "frank")
	if code, reason := n.validate(tokA); code != 200 {
		t.Fatalf("validate(A's token) = %d %s, want 200", code, reason)
	}
	if code, reason := n.validate(tokB); code != 401 || reason != "malformed" {
		t.Fatalf("validate(B's token) before B is trusted = %d %s, want 401 malformed", code, reason)
	}

	hup := func() {
		t.Helper()
		if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig(trustedYAML(b))
	hup()
	waitFor(t, 30*time.Second, "B's token to be valid after the reload", func() bool {
		code, _ := n.validate(tokB)
		return code == 200
	})
	if code, reason := n.validate(tokA); code != 401 || reason != "malformed" {
		t.Errorf("validate(A's token) after A was removed = %d %s, want 401 malformed", code, reason)
	}
	var st struct {
		JWTTrusted []struct {
			Issuer string `json:"issuer"`
		} `json:"jwt_trusted"`
	}
	if code, _ := n.call("GET", "/v1/cluster", admin, nil, &st); code != 200 || len(st.JWTTrusted) != 1 || st.JWTTrusted[0].Issuer != b.issuer {
		t.Errorf("GET /v1/cluster jwt_trusted = %d %+v, want B alone", code, st.JWTTrusted)
	}

	// A section start-up would refuse (no audiences) changes nothing.
	writeConfig("tokens:\n  jwt:\n    trusted:\n      - issuer: " + a.issuer + "\n        jwks_url: " + a.jwksURL() + "\n")
	hup()
	waitFor(t, 30*time.Second, "the refused reload to be logged", func() bool {
		return strings.Contains(n.logs.String(), "cannot reload tokens.jwt.trusted")
	})
	if code, reason := n.validate(tokB); code != 200 {
		t.Errorf("validate(B's token) after a refused reload = %d %s, want 200", code, reason)
	}
	if code, reason := n.validate(tokA); code != 401 {
		t.Errorf("validate(A's token) after a refused reload = %d %s, want 401", code, reason)
	}
	if !n.running() {
		t.Fatal("the node stopped after a refused reload")
	}
}
