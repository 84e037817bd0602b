package httpapi

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokencache/tokencache/token"
)

const testJWKS = `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","alg":"EdDSA","use":"sig","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`

func TestJWKSNotConfigured(t *testing.T) {
	ts := mustServer(t, newFake(), nil)
	r := ts.do(t, req{path: "/.well-known/jwks.json"})
	wantError(t, "jwks without keys", r, 404, "not_found")
	if !strings.Contains(r.body, "tokens.jwt.keys_file") {
		t.Errorf("jwks without keys: body %s does not say which setting is missing", r.body)
	}
	r = ts.do(t, req{path: "/.well-known/oauth-authorization-server"})
	wantError(t, "metadata without issuer", r, 404, "not_found")

	// A JWKS func that has no keys (trusted issuers only) is 404 too.
	ts = mustServer(t, newFake(), func(c *Config) { c.JWKS = func() []byte { return nil }; c.Issuer = "tokencache" })
	wantError(t, "jwks with no local keys", ts.do(t, req{path: "/.well-known/jwks.json"}), 404, "not_found")
}

func TestJWKSServedAndReloaded(t *testing.T) {
	var set atomic.Pointer[string]
	s := testJWKS
	set.Store(&s)
	ts := mustServer(t, newFake(), func(c *Config) {
		c.JWKS = func() []byte { return []byte(*set.Load()) }
		c.JWKSMaxAge = 300 * time.Second
	})
	r := ts.do(t, req{path: "/.well-known/jwks.json"})
	wantStatus(t, "jwks", r, 200)
	wantBody(t, "jwks", r, testJWKS)
	if got := r.header("Cache-Control"); got != "public, max-age=300" {
		t.Errorf("jwks Cache-Control = %q, want public, max-age=300", got)
	}
	if got := r.header("Content-Type"); got != "application/json" {
		t.Errorf("jwks Content-Type = %q, want application/json", got)
	}
	// No admin token needed, and a reload is served at once.
	s2 := `{"keys":[]}`
	set.Store(&s2)
	wantBody(t, "jwks after reload", ts.do(t, req{path: "/.well-known/jwks.json"}), s2)
	wantStatus(t, "jwks POST", ts.do(t, req{method: "POST", path: "/.well-known/jwks.json"}), 405)
}

func TestAuthorizationServerMetadata(t *testing.T) {
	for _, tc := range []struct {
		issuer, base string
		keys         bool
	}{
		{"https://auth.example.org", "https://auth.example.org", true},
		{"https://auth.example.org/", "https://auth.example.org", true},
		{"tokencache", "http://tokencache", true}, // not a URL: the request's Host
		{"https://idp.example.org", "https://idp.example.org", false},
	} {
		ts := mustServer(t, newFake(), func(c *Config) {
			c.Issuer = tc.issuer
			if tc.keys {
				c.JWKS = func() []byte { return []byte(testJWKS) }
			}
		})
		r := ts.do(t, req{path: "/.well-known/oauth-authorization-server"})
		wantStatus(t, "metadata "+tc.issuer, r, 200)
		var md map[string]any
		if err := json.Unmarshal([]byte(r.body), &md); err != nil {
			t.Fatalf("metadata %s: %v", r.body, err)
		}
		want := map[string]any{
			"issuer":                 tc.issuer,
			"introspection_endpoint": tc.base + "/v1/introspect",
			"revocation_endpoint":    tc.base + "/v1/revoke",
		}
		if tc.keys {
			want["jwks_uri"] = tc.base + "/.well-known/jwks.json"
		}
		for k, v := range want {
			if md[k] != v {
				t.Errorf("metadata(%s)[%s] = %v, want %v", tc.issuer, k, md[k], v)
			}
		}
		if _, ok := md["jwks_uri"]; ok != tc.keys {
			t.Errorf("metadata(%s) has jwks_uri: %v, want %v", tc.issuer, ok, tc.keys)
		}
		if _, ok := md["token_endpoint"]; ok {
			t.Errorf("metadata(%s) names a token_endpoint, which tokencache does not have", tc.issuer)
		}
		if got := r.header("Cache-Control"); got != "public, max-age=300" {
			t.Errorf("metadata Cache-Control = %q, want public, max-age=300", got)
		}
	}
}

func TestIssueFormatAndAudience(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, func(c *Config) { c.IssueFormat = token.FormatJWT })
	issue := func(body string) *resp {
		return ts.do(t, req{method: "POST", path: "/v1/tokens", admin: true, contentType: "application/json", body: body})
	}
	// No format: the configured default (tokens.format).
	wantStatus(t, "issue default format", issue(`{"username":"alice"}`), 201)
	if f.lastIssue.Format != token.FormatJWT {
		t.Errorf("issue without format: Format = %v, want jwt", f.lastIssue.Format)
	}
	wantStatus(t, "issue opaque", issue(`{"username":"alice","format":"opaque"}`), 201)
	if f.lastIssue.Format != token.FormatOpaque {
		t.Errorf("issue format opaque: Format = %v, want opaque", f.lastIssue.Format)
	}
	// One audience or several.
	wantStatus(t, "issue aud string", issue(`{"username":"alice","format":"jwt","audience":"api"}`), 201)
	if f.lastIssue.Audience != "api" {
		t.Errorf("audience string: Audience = %q, want api", f.lastIssue.Audience)
	}
	wantStatus(t, "issue aud list", issue(`{"username":"alice","audience":["api","https://x.example/"]}`), 201)
	if f.lastIssue.Audience != "api https://x.example/" {
		t.Errorf("audience list: Audience = %q", f.lastIssue.Audience)
	}
	f.mu.Lock()
	f.writes = nil
	f.mu.Unlock()
	for name, body := range map[string]string{
		"bad format":      `{"username":"alice","format":"paseto"}`,
		"aud number":      `{"username":"alice","audience":5}`,
		"aud space":       `{"username":"alice","audience":"a b"}`,
		"aud empty":       `{"username":"alice","audience":[""]}`,
		"aud on opaque":   `{"username":"alice","format":"opaque","audience":"api"}`,
		"too many aud":    `{"username":"alice","audience":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"]}`,
		"aud with quotes": `{"username":"alice","audience":"a\"b"}`,
	} {
		wantError(t, name, issue(body), 400, "invalid_request")
	}
	wantNoWrites(t, "bad issue bodies", f)
}

func TestAudienceInTokenFields(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	rec := userToken(f, "read")
	rec.Format = token.FormatJWT
	rec.SetExtra(token.Extra{Audience: "api web"})
	f.add(rec, token.StateValid)
	r := ts.do(t, req{path: "/v1/tokens/" + rec.Key.String(), admin: true})
	wantStatus(t, "info", r, 200)
	if !strings.Contains(r.body, `"format":"jwt"`) || !strings.Contains(r.body, `"audience":["api","web"]`) {
		t.Errorf("info of a JWT record = %s, want format jwt and its audience", r.body)
	}
}
