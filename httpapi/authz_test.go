package httpapi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// authzRules: everything needs read:all, /admin needs admin too, and
// /admin/public needs only read:all again (longest prefix wins).
func authzRules(c *Config) {
	c.Authz = AuthzConfig{
		Cookie: "tc_session",
		Rules: []AuthzRule{
			{PathPrefix: "/", Scopes: []string{"read:all"}},
			{PathPrefix: "/admin", Scopes: []string{"admin", "read:all"}},
			{PathPrefix: "/admin/public", Scopes: []string{"read:all"}},
			{PathPrefix: "/open", Scopes: nil},
		},
	}
}

func wantAllow(t testing.TB, what string, r *resp, rec *token.Token) {
	t.Helper()
	wantStatus(t, what, r, 200)
	for name, v := range map[string]string{
		"X-Token-User": rec.Username, "X-Token-Key": rec.Key.String(),
		"X-Token-Scopes": string(rec.Scopes), "X-Token-Realm": rec.Realm,
		"X-Token-Type": rec.Type.String(), "Cache-Control": "no-store",
	} {
		if got := r.header(name); got != v {
			t.Errorf("%s: %s = %q, want %q", what, name, got, v)
		}
	}
	if r.has("X-Token-Error") {
		t.Errorf("%s: X-Token-Error on an allow", what)
	}
}

func wantDeny(t testing.TB, what string, r *resp, status int, code, challenge string) {
	t.Helper()
	wantStatus(t, what, r, status)
	if got := r.header("X-Token-Error"); got != code {
		t.Errorf("%s: X-Token-Error = %q, want %q", what, got, code)
	}
	if got := r.header("WWW-Authenticate"); got != challenge {
		t.Errorf("%s: WWW-Authenticate = %q, want %q", what, got, challenge)
	}
	if r.has("X-Token-User") {
		t.Errorf("%s: identity headers on a deny", what)
	}
	if m := r.json(t); m["active"] != false || m["error"] != code {
		t.Errorf("%s: body %s, want active false and error %q", what, r.body, code)
	}
}

func TestAuthzGatewayContracts(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, authzRules)
	reader := userToken(f, "read:all")
	readerTok := f.add(reader, token.StateValid)
	admin := userToken(f, "admin read:all")
	adminTok := f.add(admin, token.StateValid)

	for _, tc := range []struct {
		name string
		rq   func(tok string) req
	}{
		{"NGINX auth_request", func(tok string) req {
			return req{path: "/v1/authz", bearer: tok, headers: [][2]string{{"X-Original-URI", "/admin/users?page=2"}}}
		}},
		{"Traefik forwardAuth", func(tok string) req {
			return req{path: "/v1/authz", bearer: tok, headers: [][2]string{
				{"X-Forwarded-Method", "DELETE"}, {"X-Forwarded-Proto", "https"},
				{"X-Forwarded-Host", "api.example"}, {"X-Forwarded-Uri", "/admin/users?page=2"},
			}}
		}},
		{"Envoy ext_authz DELETE", func(tok string) req {
			return req{method: fasthttp.MethodDelete, path: "/v1/authz/admin/users?page=2", bearer: tok}
		}},
		{"Envoy ext_authz POST", func(tok string) req {
			return req{method: fasthttp.MethodPost, path: "/v1/authz/admin/users", bearer: tok,
				headers: [][2]string{{"Content-Length", "0"}}}
		}},
	} {
		r := ts.do(t, tc.rq(adminTok))
		wantAllow(t, tc.name+" admin", r, admin)
		want := fmt.Sprintf(`{"active":true,"key":"%s","username":"alice","realm":"default","uid":1001,"type":"user","scopes":["admin","read:all"],"expires":"%s"}`,
			admin.Key, expiresText(admin))
		wantBody(t, tc.name+" admin", r, want)

		r = ts.do(t, tc.rq(readerTok))
		wantDeny(t, tc.name+" reader", r, 403, "insufficient_scope", `Bearer error="insufficient_scope", scope="admin"`)
		wantBody(t, tc.name+" reader", r, `{"active":false,"error":"insufficient_scope","scope":"admin"}`)
	}

	// Longest prefix wins: /admin/public needs only read:all.
	r := ts.do(t, req{path: "/v1/authz", bearer: readerTok, headers: [][2]string{{"X-Original-URI", "/admin/public/logo.png"}}})
	wantAllow(t, "longest prefix", r, reader)
	r = ts.do(t, req{method: fasthttp.MethodGet, path: "/v1/authz/admin/public/x", bearer: readerTok})
	wantAllow(t, "longest prefix (Envoy)", r, reader)
}

func TestAuthzRequiredScopes(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, authzRules)
	none := userToken(f, "other")
	noneTok := f.add(none, token.StateValid)

	// No path at all is "/": read:all.
	r := ts.do(t, req{path: "/v1/authz", bearer: noneTok})
	wantDeny(t, "no path", r, 403, "insufficient_scope", `Bearer error="insufficient_scope", scope="read:all"`)
	// A rule without scopes needs only a valid token.
	r = ts.do(t, req{path: "/v1/authz/open/x", bearer: noneTok})
	wantAllow(t, "rule without scopes", r, none)
	// scope= adds to the rule's scopes.
	r = ts.do(t, req{path: "/v1/authz/open/x?scope=exec:notebook&scope=other", bearer: noneTok})
	wantDeny(t, "scope param", r, 403, "insufficient_scope", `Bearer error="insufficient_scope", scope="exec:notebook"`)
	r = ts.do(t, req{path: "/v1/authz?scope=a+b", bearer: noneTok, headers: [][2]string{{"X-Original-URI", "/admin"}}})
	wantDeny(t, "rule and params", r, 403, "insufficient_scope", `Bearer error="insufficient_scope", scope="admin read:all a b"`)
	// An invalid scope= is a deny that echoes nothing.
	r = ts.do(t, req{path: "/v1/authz/open?scope=a%22b", bearer: noneTok})
	wantDeny(t, "invalid scope", r, 403, "invalid_scope", "")
}

// TestAuthzPathTricks: the rule for /admin cannot be dodged with dot
// segments, encodings or doubled slashes, and a second path source can only
// add requirements.
func TestAuthzPathTricks(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, authzRules)
	reader := userToken(f, "read:all")
	readerTok := f.add(reader, token.StateValid)

	for _, uri := range []string{
		"/admin",
		"/admin/",
		"/public/../admin/users",
		"/public/%2e%2e/admin",
		"/public/%2E%2E%2Fadmin",
		"/%61dmin/users",
		"//admin",
		"/./admin",
		"/admin/public/../../admin/x",
		"/admin/public/%2e%2e/secret",
		"/adminstuff",
		"https://api.example/admin/x",
		"admin/x",
	} {
		for _, rq := range []req{
			{path: "/v1/authz", bearer: readerTok, headers: [][2]string{{"X-Original-URI", uri}}},
			{path: "/v1/authz", bearer: readerTok, headers: [][2]string{{"X-Forwarded-Uri", uri}}},
		} {
			r := ts.do(t, rq)
			wantDeny(t, fmt.Sprintf("%s via %s", uri, rq.headers[0][0]), r, 403, "insufficient_scope", `Bearer error="insufficient_scope", scope="admin"`)
		}
		if strings.HasPrefix(uri, "/") && !strings.HasPrefix(uri, "//") {
			r := ts.do(t, req{path: "/v1/authz" + uri, bearer: readerTok})
			wantDeny(t, uri+" via Envoy path", r, 403, "insufficient_scope", `Bearer error="insufficient_scope", scope="admin"`)
		}
	}
	// A client header next to the gateway's path adds, never removes.
	r := ts.do(t, req{path: "/v1/authz/admin/x", bearer: readerTok, headers: [][2]string{{"X-Original-URI", "/admin/public/x"}}})
	wantDeny(t, "spoofed X-Original-URI", r, 403, "insufficient_scope", `Bearer error="insufficient_scope", scope="admin"`)
	r = ts.do(t, req{path: "/v1/authz", bearer: readerTok, headers: [][2]string{{"X-Original-URI", "/admin/public/x"}, {"X-Forwarded-Uri", "/admin/x"}}})
	wantDeny(t, "two headers", r, 403, "insufficient_scope", `Bearer error="insufficient_scope", scope="admin"`)
	// Stuffing path headers to crowd out the real rule is a deny.
	var many [][2]string
	for i := 0; i < 12; i++ {
		many = append(many, [2]string{"X-Original-URI", fmt.Sprintf("/r%d/x", i)})
	}
	ts2 := mustServer(t, f, func(c *Config) {
		authzRules(c)
		for i := 0; i < 12; i++ {
			c.Authz.Rules = append(c.Authz.Rules, AuthzRule{PathPrefix: fmt.Sprintf("/r%d", i)})
		}
	})
	r = ts2.do(t, req{path: "/v1/authz/admin/x", bearer: readerTok, headers: many})
	wantDeny(t, "stuffed headers", r, 403, "ambiguous_path", "")
	// Harmless paths stay allowed.
	for _, uri := range []string{"/", "/docs/../index.html", "/admin/public/a/./b", "/x?next=/admin"} {
		r := ts.do(t, req{path: "/v1/authz", bearer: readerTok, headers: [][2]string{{"X-Original-URI", uri}}})
		wantAllow(t, uri, r, reader)
	}
}

func TestAuthzTokenSources(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, authzRules)
	rec := userToken(f, "read:all")
	tok := f.add(rec, token.StateValid)

	r := ts.do(t, req{path: "/v1/authz", headers: [][2]string{{"Cookie", "theme=dark; tc_session=" + tok}}})
	wantAllow(t, "cookie", r, rec)
	// Authorization wins over the cookie.
	r = ts.do(t, req{path: "/v1/authz", bearer: "tc_bogus", headers: [][2]string{{"Cookie", "tc_session=" + tok}}})
	wantDeny(t, "header before cookie", r, 401, "unknown", `Bearer error="invalid_token"`)
	// A malformed Authorization does not fall back to the cookie.
	r = ts.do(t, req{path: "/v1/authz", headers: [][2]string{{"Authorization", "Basic x"}, {"Cookie", "tc_session=" + tok}}})
	wantDeny(t, "malformed header", r, 401, "malformed", `Bearer error="invalid_token"`)
	r = ts.do(t, req{path: "/v1/authz", headers: [][2]string{{"Cookie", "tc_session=a b"}}})
	wantDeny(t, "malformed cookie", r, 401, "malformed", `Bearer error="invalid_token"`)
	r = ts.do(t, req{path: "/v1/authz"})
	wantDeny(t, "no token", r, 401, "malformed", `Bearer`)
	// Another cookie name is not a token; tokens never come from the URL.
	r = ts.do(t, req{path: "/v1/authz?access_token=" + tok, headers: [][2]string{{"Cookie", "session=" + tok}}})
	wantDeny(t, "other cookie", r, 401, "malformed", `Bearer`)

	// Without a configured cookie, cookies are ignored.
	f2 := newFake()
	ts2 := mustServer(t, f2, nil)
	tok2 := f2.add(userToken(f2, ""), token.StateValid)
	r = ts2.do(t, req{path: "/v1/authz", headers: [][2]string{{"Cookie", "tc_session=" + tok2}}})
	wantDeny(t, "no cookie configured", r, 401, "malformed", `Bearer`)
}

func TestAuthzDenies(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, authzRules)
	for _, st := range []token.State{token.StateExpired, token.StateRevoked, token.StateIdle} {
		tok := f.add(userToken(f, "read:all admin"), st)
		r := ts.do(t, req{path: "/v1/authz/x", bearer: tok})
		wantDeny(t, st.String(), r, 401, st.String(), `Bearer error="invalid_token"`)
		wantBody(t, st.String(), r, `{"active":false,"error":"`+st.String()+`"}`)
	}
	unknown := token.Encode("tc", token.NewKey(), token.NewSecret())
	noteSecret(unknown)
	r := ts.do(t, req{path: "/v1/authz/x", bearer: unknown})
	wantDeny(t, "unknown", r, 401, "unknown", `Bearer error="invalid_token"`)
}

// TestAuthzNeverFiveHundred: a node that cannot decide, and a handler that
// panics, deny with 401 and X-Token-Error.
func TestAuthzNeverFiveHundred(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
	}{
		{tokens.ErrStale, "stale"},
		{tokens.ErrStoreUnavailable, "store_unavailable"},
		{tokens.ErrShuttingDown, "shutting_down"},
		{fmt.Errorf("disk on fire"), "internal"},
	} {
		f := newFake()
		f.validateErr = tc.err
		ts := mustServer(t, f, authzRules)
		for _, m := range []string{fasthttp.MethodGet, fasthttp.MethodPost, fasthttp.MethodHead} {
			r := ts.do(t, req{method: m, path: "/v1/authz/x", bearer: "tc_x"})
			wantStatus(t, tc.code+" "+m, r, 401)
			if got := r.header("X-Token-Error"); got != tc.code {
				t.Errorf("%s %s: X-Token-Error = %q, want %q", tc.code, m, got, tc.code)
			}
			if r.has("Retry-After") {
				t.Errorf("%s %s: Retry-After on a deny", tc.code, m)
			}
		}
	}

	f := newFake()
	f.validatePanic = "boom"
	ts := mustServer(t, f, nil)
	r := ts.do(t, req{path: "/v1/authz", bearer: "tc_x"})
	wantDeny(t, "panic", r, 401, "internal", string(challengeUndecided))
	if got := counterValue(t, ts.srv.m.decisions[decisionUndecidable]); got != 1 {
		t.Errorf("deny_unavailable decisions = %v, want 1", got)
	}
}

func TestAuthzDecisionMetrics(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, authzRules)
	tok := f.add(userToken(f, "read:all"), token.StateValid)
	ts.do(t, req{path: "/v1/authz/x", bearer: tok})
	ts.do(t, req{path: "/v1/authz/x", bearer: tok})
	ts.do(t, req{path: "/v1/authz/admin", bearer: tok})
	ts.do(t, req{path: "/v1/authz/x"})
	f.validateErr = tokens.ErrStale
	ts.do(t, req{path: "/v1/authz/x", bearer: tok})
	for d, want := range map[decision]float64{decisionAllow: 2, decisionDenyScope: 1, decisionDenyToken: 1, decisionUndecidable: 1} {
		if got := counterValue(t, ts.srv.m.decisions[d]); got != want {
			t.Errorf("tokencache_authz_decisions_total{result=%q} = %v, want %v", decisionNames[d], got, want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/", "/"},
		{"/a", "/a"},
		{"/a/", "/a/"},
		{"//a//b", "/a/b"},
		{"/a/./b", "/a/b"},
		{"/a/b/../c", "/a/c"},
		{"/a/b/..", "/a/"},
		{"/a/..", "/"},
		{"/..", "/"},
		{"/../../a", "/a"},
		{"/a/.", "/a/"},
		{"/.a/..b/...", "/.a/..b/..."},
		{"/%2e%2e/a", "/a"},
		{"/a%2Fb", "/a/b"},
		{"/%61", "/a"},
		{"/%zz/%4", "/%zz/%4"},
		{"/a%00b", "/a\x00b"},
	} {
		if got := string(cleanPath(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("cleanPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"/a?b=/c", "/a"},
		{"/a#frag", "/a"},
		{"http://h/a/b?x", "/a/b"},
		{"https://h", ""},
		{"a/b", "a/b"},
	} {
		if got := string(rawPath([]byte(tc.in))); got != tc.want {
			t.Errorf("rawPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
