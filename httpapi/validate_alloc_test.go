package httpapi

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// The hot path allocates nothing: a validate or an authz allow answered
// from the cache runs the whole handler chain (dispatch, metrics, panic
// guard, header parsing, scope checks, JSON, headers) without one
// allocation. The fake returns a fixed Validation, as a cache hit does.

// hotServer is a Server that is not serving, with production logging
// (Info: no access log) and a fixed validation answer.
func hotServer(tb testing.TB, mod func(*Config)) (*Server, *token.Token, string) {
	tb.Helper()
	f := newFake()
	rec := userToken(f, "admin exec:notebook read:all")
	tok := f.add(rec, token.StateValid)
	f.fixed = &tokens.Validation{State: token.StateValid, Token: rec}
	cfg := testConfig()
	if mod != nil {
		mod(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(&logSink), &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg := prometheus.NewRegistry()
	s, err := New(cfg, f, log, reg, reg)
	if err != nil {
		tb.Fatalf("New() = %v", err)
	}
	return s, rec, tok
}

// hotCtx is a real RequestCtx holding one request, reused across runs as
// fasthttp reuses it across requests on a connection. KeepBodyBuffer keeps
// the response body buffer attached, as the server's pooled contexts do.
func hotCtx(method, uri string, headers ...[2]string) *fasthttp.RequestCtx {
	var r fasthttp.Request
	r.Header.SetMethod(method)
	r.SetRequestURI(uri)
	for _, h := range headers {
		r.Header.Add(h[0], h[1])
	}
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&r, nil, nil)
	ctx.Response.KeepBodyBuffer = true
	return ctx
}

func TestHotPathAllocs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mod     func(*Config)
		method  string
		uri     string
		headers func(tok string) [][2]string
	}{
		{"validate", nil, "GET", "/v1/validate", func(tok string) [][2]string {
			return [][2]string{{"Authorization", "Bearer " + tok}}
		}},
		{"validate with scopes", nil, "GET", "/v1/validate?scope=read:all&scope=exec:notebook+admin", func(tok string) [][2]string {
			return [][2]string{{"Authorization", "Bearer " + tok}}
		}},
		{"authz NGINX", authzRules, "GET", "/v1/authz", func(tok string) [][2]string {
			return [][2]string{{"Authorization", "Bearer " + tok}, {"X-Original-URI", "/admin/users/../groups?page=2"}}
		}},
		{"authz Traefik", authzRules, "GET", "/v1/authz", func(tok string) [][2]string {
			return [][2]string{{"Authorization", "Bearer " + tok}, {"X-Forwarded-Method", "POST"}, {"X-Forwarded-Uri", "/admin/x"}}
		}},
		{"authz Envoy", authzRules, "POST", "/v1/authz/admin/public/%2e%2e/x?scope=exec:notebook", func(tok string) [][2]string {
			return [][2]string{{"Authorization", "Bearer " + tok}}
		}},
		{"authz cookie", authzRules, "GET", "/v1/authz/open", func(tok string) [][2]string {
			return [][2]string{{"Cookie", "a=b; tc_session=" + tok}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, rec, tok := hotServer(t, tc.mod)
			h := s.Handler()
			ctx := hotCtx(tc.method, tc.uri, tc.headers(tok)...)
			run := func() {
				ctx.Response.Reset()
				h(ctx)
			}
			run()
			if got := ctx.Response.StatusCode(); got != 200 {
				t.Fatalf("%s: status = %d, want 200 (body %s)", tc.name, got, ctx.Response.Body())
			}
			if got := string(ctx.Response.Header.Peek("X-Token-Key")); got != rec.Key.String() {
				t.Fatalf("%s: X-Token-Key = %q, want %q", tc.name, got, rec.Key)
			}
			if allocs := testing.AllocsPerRun(1000, run); allocs != 0 {
				t.Errorf("%s: %v allocations per request, want 0", tc.name, allocs)
			}
		})
	}
}

// TestDenyAllocsBounded: denies are not the hot path, but a flood of bad
// tokens must not cost much either.
func TestDenyAllocsBounded(t *testing.T) {
	s, _, _ := hotServer(t, authzRules)
	h := s.Handler()
	for _, tc := range []struct {
		name string
		ctx  *fasthttp.RequestCtx
	}{
		{"validate malformed", hotCtx("GET", "/v1/validate", [2]string{"Authorization", "Basic abc"})},
		{"authz no token", hotCtx("GET", "/v1/authz/admin")},
		{"authz long garbage", hotCtx("GET", "/v1/authz", [2]string{"Authorization", "Bearer " + strings.Repeat("a", 5000)})},
	} {
		run := func() {
			tc.ctx.Response.Reset()
			h(tc.ctx)
		}
		run()
		if got := tc.ctx.Response.StatusCode(); got != 401 {
			t.Fatalf("%s: status = %d, want 401", tc.name, got)
		}
		if allocs := testing.AllocsPerRun(1000, run); allocs != 0 {
			t.Errorf("%s: %v allocations per request, want 0", tc.name, allocs)
		}
	}
}
