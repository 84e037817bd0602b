package httpapi

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

func TestValidateActive(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	rec := userToken(f, "read:all write:all")
	tok := f.add(rec, token.StateValid)

	r := ts.do(t, req{path: "/v1/validate", bearer: tok})
	wantStatus(t, "validate", r, 200)
	want := fmt.Sprintf(`{"active":true,"key":"%s","username":"alice","realm":"default","uid":1001,"type":"user","scopes":["read:all","write:all"],"expires":"%s"}`,
		rec.Key, expiresText(rec))
	wantBody(t, "validate", r, want)
	for name, v := range map[string]string{
		"X-Token-User":   "alice",
		"X-Token-Scopes": "read:all write:all",
		"X-Token-Key":    rec.Key.String(),
		"X-Token-Realm":  "default",
		"X-Token-Type":   "user",
		"Cache-Control":  "no-store",
		"Content-Type":   "application/json",
	} {
		if got := r.header(name); got != v {
			t.Errorf("validate: header %s = %q, want %q", name, got, v)
		}
	}
	if r.has("WWW-Authenticate") || r.has("Server") {
		t.Errorf("validate: unexpected WWW-Authenticate or Server header in %v", r.headers)
	}
}

func TestValidateNoUIDNeverExpires(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	rec := userToken(f, "")
	rec.HasUID, rec.UID, rec.Expires, rec.Username = false, 0, 0, `bob "the" <builder>`
	tok := f.add(rec, token.StateValid)

	r := ts.do(t, req{path: "/v1/validate", bearer: tok})
	wantStatus(t, "validate", r, 200)
	want := fmt.Sprintf(`{"active":true,"key":"%s","username":"bob \"the\" <builder>","realm":"default","type":"user","scopes":[],"expires":null}`, rec.Key)
	wantBody(t, "validate", r, want)
	if got := r.header("X-Token-Scopes"); got != "" {
		t.Errorf("X-Token-Scopes = %q, want empty", got)
	}
}

func TestValidateInactiveStates(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	for _, st := range []token.State{token.StateExpired, token.StateRevoked, token.StateIdle} {
		tok := f.add(userToken(f, "a"), st)
		r := ts.do(t, req{path: "/v1/validate", bearer: tok})
		wantStatus(t, st.String(), r, 401)
		wantBody(t, st.String(), r, `{"active":false,"error":"`+st.String()+`"}`)
		if got := r.header("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
			t.Errorf("%s: WWW-Authenticate = %q", st, got)
		}
		if r.has("X-Token-User") || r.has("X-Token-Error") {
			t.Errorf("%s: identity or X-Token-Error header on a validate deny: %v", st, r.headers)
		}
	}
	// Unknown (well-formed, never issued) and malformed (the service says so).
	unknown := token.Encode("tc", token.NewKey(), token.NewSecret())
	noteSecret(unknown)
	r := ts.do(t, req{path: "/v1/validate", bearer: unknown})
	wantStatus(t, "unknown", r, 401)
	wantBody(t, "unknown", r, `{"active":false,"error":"unknown"}`)
	r = ts.do(t, req{path: "/v1/validate", bearer: "xx_notatoken"})
	wantStatus(t, "malformed", r, 401)
	wantBody(t, "malformed", r, `{"active":false,"error":"malformed"}`)
}

func TestValidateValidWithoutRecordFailsClosed(t *testing.T) {
	f := newFake()
	f.fixed = &tokens.Validation{State: token.StateValid}
	ts := mustServer(t, f, nil)
	r := ts.do(t, req{path: "/v1/validate", bearer: "tc_whatever"})
	wantStatus(t, "valid without record", r, 401)
	wantBody(t, "valid without record", r, `{"active":false,"error":"unknown"}`)
}

func TestValidateScopes(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	tok := f.add(userToken(f, "exec:admin read:all read:image"), token.StateValid)

	for _, tc := range []struct {
		query   string
		status  int
		missing string
	}{
		{"scope=read:all", 200, ""},
		{"scope=read:all&scope=exec:admin", 200, ""},
		{"scope=read:all+read:image", 200, ""}, // space-separated in one parameter
		{"scope=read:all%20exec:admin", 200, ""},
		{"scope=write:all", 403, "write:all"},
		{"scope=read:all&scope=write:all&scope=admin:token", 403, "write:all admin:token"},
		{"scope=write:all&scope=write:all", 403, "write:all"},
		{"consistency=default&scope=read:all", 200, ""},
	} {
		r := ts.do(t, req{path: "/v1/validate?" + tc.query, bearer: tok})
		wantStatus(t, tc.query, r, tc.status)
		if tc.status != 403 {
			continue
		}
		wantBody(t, tc.query, r, `{"active":false,"error":"insufficient_scope","scope":"`+tc.missing+`"}`)
		if got, want := r.header("WWW-Authenticate"), `Bearer error="insufficient_scope", scope="`+tc.missing+`"`; got != want {
			t.Errorf("%s: WWW-Authenticate = %q, want %q", tc.query, got, want)
		}
	}
}

func TestValidateBadQuery(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	tok := f.add(userToken(f, "a"), token.StateValid)
	for _, q := range []string{
		"scope=",
		"scope=%20",
		"scope=a%22b",
		"scope=a%5Cb",
		"scope=" + strings.Repeat("x", token.MaxScopeLen+1),
		"scope=caf%C3%A9",
		"consistency=strong",
	} {
		before := f.validates.Load()
		r := ts.do(t, req{path: "/v1/validate?" + q, bearer: tok})
		wantError(t, q, r, 400, "invalid_request")
		if n := f.validates.Load() - before; n != 0 {
			t.Errorf("%s: %d lookups, want none", q, n)
		}
	}
}

func TestValidateTokenInURLOrForm(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	tok := f.add(userToken(f, "a"), token.StateValid)
	for _, rq := range []req{
		{path: "/v1/validate?access_token=" + url.QueryEscape(tok)},
		{path: "/v1/validate?token=" + url.QueryEscape(tok)},
		{path: "/v1/validate?access_token=" + url.QueryEscape(tok), bearer: tok},
		{path: "/v1/validate", contentType: "application/x-www-form-urlencoded", body: "access_token=" + url.QueryEscape(tok)},
	} {
		r := ts.do(t, rq)
		wantError(t, rq.path+" "+rq.body, r, 400, "invalid_request")
		if !strings.Contains(r.json(t)["message"].(string), "never go in URLs") {
			t.Errorf("%s: message %q does not say tokens never go in URLs", rq.path, r.body)
		}
	}
	if n := f.validates.Load(); n != 0 {
		t.Errorf("Validate called %d times, want 0", n)
	}
}

// TestValidateAuthorizationHeader: anything but exactly one
// "Bearer <b64token>" is 401 malformed without a lookup.
func TestValidateAuthorizationHeader(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	tok := f.add(userToken(f, "a"), token.StateValid)

	for _, tc := range []struct {
		name    string
		headers [][2]string
		missing bool
	}{
		{"missing", nil, true},
		{"empty", [][2]string{{"Authorization", ""}}, false},
		{"scheme only", [][2]string{{"Authorization", "Bearer"}}, false},
		{"scheme and space", [][2]string{{"Authorization", "Bearer "}}, false},
		{"no scheme", [][2]string{{"Authorization", tok}}, false},
		{"basic", [][2]string{{"Authorization", "Basic " + tok}}, false},
		{"bearerx", [][2]string{{"Authorization", "Bearerx " + tok}}, false},
		{"two spaces", [][2]string{{"Authorization", "Bearer  " + tok}}, false},
		{"tab", [][2]string{{"Authorization", "Bearer\t" + tok}}, false},
		{"two tokens", [][2]string{{"Authorization", "Bearer " + tok + " " + tok}}, false},
		{"comma list", [][2]string{{"Authorization", "Bearer " + tok + ", Bearer " + tok}}, false},
		{"two headers", [][2]string{{"Authorization", "Bearer " + tok}, {"Authorization", "Bearer " + tok}}, false},
		{"non-UTF-8", [][2]string{{"Authorization", "Bearer tc_\xff\xfe"}}, false},
		{"quote", [][2]string{{"Authorization", `Bearer "` + tok + `"`}}, false},
		{"padding in the middle", [][2]string{{"Authorization", "Bearer ab=cd"}}, false},
		{"only padding", [][2]string{{"Authorization", "Bearer ==="}}, false},
		{"too long", [][2]string{{"Authorization", "Bearer " + strings.Repeat("a", maxTokenLen+1)}}, false},
	} {
		r := ts.do(t, req{path: "/v1/validate", headers: tc.headers})
		wantStatus(t, tc.name, r, 401)
		wantBody(t, tc.name, r, `{"active":false,"error":"malformed"}`)
		wantChallenge := `Bearer error="invalid_token"`
		if tc.missing {
			wantChallenge = `Bearer` // RFC 6750 §3.1: no error code without credentials
		}
		if got := r.header("WWW-Authenticate"); got != wantChallenge {
			t.Errorf("%s: WWW-Authenticate = %q, want %q", tc.name, got, wantChallenge)
		}
	}
	// fasthttp itself refuses NUL and other control characters in a header
	// value: 400 in the API's JSON error shape, before any handler.
	for _, v := range []string{"Bearer " + tok + "\x00", "Bearer tc_\x01abc", "Bearer tc_abc\x1b", "Bearer tc_abc\x7f"} {
		r := ts.do(t, req{path: "/v1/validate", headers: [][2]string{{"Authorization", v}}})
		wantError(t, fmt.Sprintf("%q", v), r, 400, "bad_request")
	}
	if n := f.validates.Load(); n != 0 {
		t.Errorf("Validate called %d times for malformed headers, want 0", n)
	}

	// The scheme is case-insensitive.
	for _, scheme := range []string{"bearer", "BEARER", "BeArEr"} {
		r := ts.do(t, req{path: "/v1/validate", headers: [][2]string{{"Authorization", scheme + " " + tok}}})
		wantStatus(t, scheme, r, 200)
	}
}

func TestValidateUndecided(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
	}{
		{tokens.ErrStoreUnavailable, "store_unavailable"},
		{fmt.Errorf("cannot load key: %w", tokens.ErrStale), "stale"},
		{tokens.ErrShuttingDown, "shutting_down"},
	} {
		f := newFake()
		f.validateErr = tc.err
		ts := mustServer(t, f, nil)
		r := ts.do(t, req{path: "/v1/validate", bearer: "tc_x"})
		wantStatus(t, tc.code, r, 503)
		wantBody(t, tc.code, r, `{"active":false,"error":"`+tc.code+`"}`)
		if got := r.header("Retry-After"); got != "1" {
			t.Errorf("%s: Retry-After = %q, want 1", tc.code, got)
		}
	}
}

func TestValidateConsistent(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	tok := f.add(userToken(f, "a"), token.StateValid)

	r := ts.do(t, req{path: "/v1/validate?consistency=consistent", bearer: tok})
	wantStatus(t, "consistent", r, 200)
	if n := f.consistent.Load(); n != 1 {
		t.Errorf("Consistent called %d times, want 1", n)
	}
	r = ts.do(t, req{path: "/v1/validate", bearer: tok})
	wantStatus(t, "default", r, 200)
	if n := f.consistent.Load(); n != 1 {
		t.Errorf("Consistent called %d times after a default read, want 1", n)
	}

	f.consistentErr = tokens.ErrNoLeader
	before := f.validates.Load()
	r = ts.do(t, req{path: "/v1/validate?consistency=consistent", bearer: tok})
	wantStatus(t, "consistent without leader", r, 503)
	wantBody(t, "consistent without leader", r, `{"active":false,"error":"no_leader"}`)
	if f.validates.Load() != before {
		t.Errorf("Validate called after a failed read barrier")
	}
}

func TestValidateMethodNotAllowed(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	r := ts.do(t, req{method: fasthttp.MethodPost, path: "/v1/validate"})
	wantError(t, "POST /v1/validate", r, 405, "method_not_allowed")
	if allow := r.header("Allow"); !strings.Contains(allow, "GET") {
		t.Errorf("Allow = %q, want it to list GET", allow)
	}
}

func TestValidatePanicRecovered(t *testing.T) {
	f := newFake()
	f.validatePanic = errors.New("boom")
	ts := mustServer(t, f, nil)
	r := ts.do(t, req{path: "/v1/validate", bearer: "tc_x"})
	wantError(t, "panicking validate", r, 500, "internal")
	// The process (and the server) lives on.
	f.validatePanic = nil
	r = ts.do(t, req{path: "/healthz"})
	wantStatus(t, "healthz after panic", r, 200)
	tok := f.add(userToken(f, "a"), token.StateValid)
	r = ts.do(t, req{path: "/v1/validate", bearer: tok})
	wantStatus(t, "validate after panic", r, 200)
}
