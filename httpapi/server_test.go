package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

func TestLimitsAnswerJSON(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)

	// 431: headers beyond MaxHeaderBytes.
	big := strings.Repeat("a", 9000)
	r := ts.raw(t, "GET /v1/validate HTTP/1.1\r\nHost: x\r\nX-Big: "+big+"\r\n\r\n")
	wantError(t, "big header", r, 431, "headers_too_large")

	// 413: a body over MaxBodyBytes, announced by Content-Length…
	body := `{"username":"` + strings.Repeat("b", 5000) + `"}`
	r = ts.raw(t, fmt.Sprintf("POST /v1/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		testAdminToken, len(body), body))
	wantError(t, "big body", r, 413, "body_too_large")
	// …or chunked.
	r = ts.raw(t, fmt.Sprintf("POST /v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(body), body))
	wantError(t, "big chunked body", r, 413, "body_too_large")

	// Request smuggling shapes and garbage are 400 in the same shape.
	for name, raw := range map[string]string{
		"garbage":          "HELLO\r\n\r\n",
		"two CL":           "POST /v1/revoke HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"two TE":           "POST /v1/revoke HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"TE gzip":          "POST /v1/revoke HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
		"bad chunk size":   "POST /v1/revoke HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
		"HTTP/1.1 no Host": "GET /healthz HTTP/1.1\r\n\r\n",
	} {
		r := ts.raw(t, raw)
		wantError(t, name, r, 400, "bad_request")
	}
	// Content-Length with Transfer-Encoding: fasthttp frames the body by
	// Transfer-Encoding and closes the connection after answering (RFC 9112
	// §6.3), so nothing can be smuggled behind it.
	r = ts.raw(t, "POST /v1/revoke HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
		"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	wantError(t, "TE and CL", r, 400, "invalid_request") // an empty form: no token
	if got := r.header("Connection"); got != "close" {
		t.Errorf("TE and CL: Connection = %q, want close", got)
	}
	wantNoWrites(t, "oversized requests", f)

	// Unknown routes: JSON 404, no redirect for a trailing slash.
	for _, p := range []string{"/nope", "/v1/tokens/", "/V1/VALIDATE", "/v1/validate/"} {
		r := ts.do(t, req{path: p, admin: true})
		wantError(t, p, r, 404, "not_found")
	}
}

func TestHandlePanicRecovery(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, func(c *Config) {})
	// Routes are added before Serve in real use; the router is only read
	// after this, by requests that happen after it.
	leaky := f.add(userToken(f, ""), token.StateValid) // noted: the log sink check looks for it
	ts.srv.Handle(fasthttp.MethodGet, "/v1/boom", func(*fasthttp.RequestCtx) {
		panic(fmt.Sprintf("kaboom while checking %s", leaky))
	}, false)
	ts.srv.Handle(fasthttp.MethodGet, "/v1/secret", func(ctx *fasthttp.RequestCtx) { writeRaw(ctx, 200, `{"ok":true}`) }, true)

	for i := 0; i < 3; i++ {
		r := ts.do(t, req{path: "/v1/boom"})
		wantError(t, "panic", r, 500, "internal")
		if r.json(t)["message"] != "internal error" {
			t.Errorf("panic: message %s reveals the panic", r.body)
		}
	}
	r := ts.do(t, req{path: "/healthz"})
	wantStatus(t, "healthz after panics", r, 200)

	r = ts.do(t, req{path: "/v1/secret"})
	wantError(t, "custom admin route without token", r, 401, "unauthorized")
	r = ts.do(t, req{path: "/v1/secret", admin: true})
	wantStatus(t, "custom admin route", r, 200)
}

func TestHealthAndReadiness(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)

	r := ts.do(t, req{path: "/healthz"})
	wantStatus(t, "healthz", r, 200)
	wantBody(t, "healthz", r, `{"status":"ok"}`)

	r = ts.do(t, req{path: "/readyz"})
	wantStatus(t, "readyz", r, 200)
	wantBody(t, "readyz", r, `{"status":"ok"}`)
	r = ts.do(t, req{path: "/readyz?verbose"})
	wantBody(t, "readyz verbose", r, `{"status":"ok","checks":[{"name":"draining","ok":true},{"name":"tokens","ok":true}]}`)

	f.readyErr = fmt.Errorf("warm start: %d of %d tokens loaded", 10, 100)
	r = ts.do(t, req{path: "/readyz"})
	wantStatus(t, "readyz warming", r, 503)
	wantBody(t, "readyz warming", r, `{"status":"unavailable","error":"not_ready","message":"warm start: 10 of 100 tokens loaded"}`)

	f.readyErr = tokens.ErrStale
	r = ts.do(t, req{path: "/readyz"})
	wantStatus(t, "readyz stale", r, 503)
	if r.json(t)["error"] != "stale" {
		t.Errorf("readyz stale: %s", r.body)
	}

	f.readyErr = nil
	ts.srv.SetReady(false)
	r = ts.do(t, req{path: "/readyz?verbose"})
	wantStatus(t, "readyz draining", r, 503)
	wantBody(t, "readyz draining", r, `{"status":"unavailable","error":"draining","message":"the node is shutting down or draining","checks":[{"name":"draining","ok":false,"error":"draining","message":"the node is shutting down or draining"},{"name":"tokens","ok":true}]}`)
	r = ts.do(t, req{path: "/healthz"})
	wantStatus(t, "healthz while draining", r, 200)
	ts.srv.SetReady(true)
	r = ts.do(t, req{path: "/readyz"})
	wantStatus(t, "readyz again", r, 200)
}

func TestMetricsEndpoint(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, authzRules)
	tok := f.add(userToken(f, "read:all"), token.StateValid)
	ts.do(t, req{path: "/v1/validate", bearer: tok})
	ts.do(t, req{path: "/v1/validate"})
	ts.do(t, req{path: "/v1/authz/x", bearer: tok})
	ts.do(t, req{path: "/v1/tokens/" + token.NewKey().String(), admin: true})
	ts.do(t, req{path: "/nowhere"})

	r := ts.do(t, req{path: "/metrics"})
	wantStatus(t, "metrics", r, 200)
	for _, line := range []string{
		`tokencache_http_requests_total{code="200",route="/v1/validate"} 1`,
		`tokencache_http_requests_total{code="401",route="/v1/validate"} 1`,
		`tokencache_http_requests_total{code="200",route="/v1/authz"} 1`,
		`tokencache_http_requests_total{code="404",route="/v1/tokens/{key}"} 1`,
		`tokencache_http_requests_total{code="404",route="unmatched"} 1`,
		`tokencache_http_request_duration_seconds_count{route="/v1/validate"} 2`,
		`tokencache_authz_decisions_total{result="allow"} 1`,
		`tokencache_authz_decisions_total{result="deny_scope"} 0`,
	} {
		if !strings.Contains(r.body, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	if strings.Contains(r.body, tok) {
		t.Errorf("/metrics shows a token")
	}
}

func TestNewErrors(t *testing.T) {
	f := newFake()
	reg := prometheus.NewRegistry()
	cfg := testConfig()
	if _, err := New(cfg, f, nil, reg, reg); err != nil {
		t.Fatalf("New() = %v", err)
	}
	if _, err := New(cfg, f, nil, reg, reg); err == nil {
		t.Errorf("New() twice on one registry = nil, want an error")
	}
	if _, err := New(cfg, nil, nil, nil, nil); err == nil {
		t.Errorf("New(nil service) = nil, want an error")
	}
	cfg.AdminToken = ""
	if _, err := New(cfg, f, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "http.admin_token") {
		t.Errorf("New(no admin token) = %v, want an error naming http.admin_token", err)
	}
}

// TestServeAndShutdown runs the server on real TCP and checks the drain:
// readiness turns off at once, requests keep being answered during
// DrainDelay, and Serve returns after Shutdown.
func TestServeAndShutdown(t *testing.T) {
	f := newFake()
	cfg := testConfig()
	cfg.DrainDelay = 300 * time.Millisecond
	s, err := New(cfg, f, testLogger(t), prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen() = %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	addr := ln.Addr().String()
	get := func(path string) int {
		code, _, err := fasthttp.GetTimeout(nil, "http://"+addr+path, 2*time.Second)
		if err != nil {
			return -1
		}
		return code
	}
	if code := get("/readyz"); code != 200 {
		t.Fatalf("GET /readyz = %d, want 200", code)
	}
	if code := get("/metrics"); code != 404 {
		t.Errorf("GET /metrics without a gatherer = %d, want 404", code)
	}

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	deadline := time.Now().Add(2 * time.Second)
	for s.ready.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if code := get("/readyz"); code != 503 {
		t.Errorf("GET /readyz while draining = %d, want 503", code)
	}
	if code := get("/healthz"); code != 200 {
		t.Errorf("GET /healthz while draining = %d, want 200", code)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown() = %v", err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve() = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Serve did not return after Shutdown")
	}
	if code := get("/healthz"); code != -1 {
		t.Errorf("GET /healthz after shutdown = %d, want a connection error", code)
	}
}

func TestErrorStatus(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
		msg    string
	}{
		{tokens.ErrNotFound, 404, "not_found", "token not found"},
		{fmt.Errorf("cannot read: %w", tokens.ErrNotFound), 404, "not_found", "token not found"},
		{tokens.ErrParentNotFound, 404, "parent_not_found", ""},
		{tokens.ErrParentNotValid, 409, "parent_not_valid", ""},
		{tokens.ErrDuplicateName, 409, "duplicate_name", ""},
		{tokens.ErrIdempotencyConflict, 409, "idempotency_conflict", ""},
		{tokens.ErrStoreUnavailable, 503, "store_unavailable", ""},
		{fmt.Errorf("query tokens at db.internal: %w", tokens.ErrStoreUnavailable), 503, "store_unavailable", "token store unavailable"},
		{tokens.ErrStale, 503, "stale", ""},
		{tokens.ErrOverloaded, 503, "overloaded", ""},
		{tokens.ErrNoLeader, 503, "no_leader", ""},
		{tokens.ErrIndeterminate, 503, "indeterminate", "write outcome unknown: retry with the same Idempotency-Key"},
		{fmt.Errorf("apply: %w (%w)", tokens.ErrIndeterminate, context.DeadlineExceeded), 503, "indeterminate", ""},
		{tokens.ErrShuttingDown, 503, "shutting_down", ""},
		{fmt.Errorf("%w: no record of x is kept", tokens.ErrStoreDisabled), 501, "store_disabled", tokens.ErrStoreDisabled.Error()},
		{context.DeadlineExceeded, 503, "timeout", ""},
		{fmt.Errorf("wait: %w", context.Canceled), 503, "shutting_down", ""},
		{fmt.Errorf("%w: scope %q is bad", token.ErrInvalid, "x y"), 400, "invalid_request", `invalid: scope "x y" is bad`},
		{fmt.Errorf("%w: key", token.ErrMalformed), 400, "invalid_request", "malformed: key"},
		{errors.New("mysql: dial db.internal:3306: refused"), 500, "internal", "internal error"},
	} {
		status, code, msg := errorStatus(tc.err)
		if status != tc.status || code != tc.code || (tc.msg != "" && msg != tc.msg) {
			t.Errorf("errorStatus(%v) = %d, %q, %q, want %d, %q, %q", tc.err, status, code, msg, tc.status, tc.code, tc.msg)
		}
		if strings.Contains(msg, "db.internal") {
			t.Errorf("errorStatus(%v) message %q shows internals", tc.err, msg)
		}
	}
}

func TestRedactLong(t *testing.T) {
	tok := token.Encode("tc", token.NewKey(), token.NewSecret())
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"index out of range [3] with length 2", "index out of range [3] with length 2"},
		{"bad token " + tok + " here", "bad token [redacted] here"},
		{tok, "[redacted]"},
		{"a=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl;", "a=[redacted];"},
		{"short_ones.are/ok path=/v1/x", "short_ones.are/ok path=/v1/x"},
	} {
		if got := redactLong(tc.in); got != tc.want {
			t.Errorf("redactLong(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
