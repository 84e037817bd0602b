package httpapi

import (
	"errors"
	"fmt"
	"net/url"
	"testing"

	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

func form(tok string) string {
	return "token=" + url.QueryEscape(tok) + "&token_type_hint=access_token"
}

func TestIntrospectActive(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	rec := userToken(f, "read:all write:all")
	rec.SetExtra(token.Extra{ClientID: "portal", Name: "ci"})
	tok := f.add(rec, token.StateValid)

	r := ts.do(t, req{method: "POST", path: "/v1/introspect", contentType: "application/x-www-form-urlencoded", body: form(tok)})
	wantStatus(t, "introspect", r, 200)
	want := fmt.Sprintf(`{"active":true,"scope":"read:all write:all","client_id":"portal","username":"alice","token_type":"Bearer","exp":%d,"iat":%d,"sub":"alice","jti":"%s","realm":"default","uid":1001}`,
		rec.Expires.Time().Unix(), rec.Created.Time().Unix(), rec.Key)
	wantBody(t, "introspect", r, want)
	if got := r.header("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}

	// No client id, no uid, never expires; charset parameter accepted.
	rec2 := userToken(f, "")
	rec2.HasUID, rec2.Expires = false, 0
	tok2 := f.add(rec2, token.StateValid)
	r = ts.do(t, req{method: "POST", path: "/v1/introspect", contentType: "application/x-www-form-urlencoded; charset=UTF-8", body: form(tok2)})
	wantStatus(t, "introspect minimal", r, 200)
	want = fmt.Sprintf(`{"active":true,"scope":"","username":"alice","token_type":"Bearer","iat":%d,"sub":"alice","jti":"%s","realm":"default"}`,
		rec2.Created.Time().Unix(), rec2.Key)
	wantBody(t, "introspect minimal", r, want)
}

func TestIntrospectInactiveIsExactlyActiveFalse(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	unknown := token.Encode("tc", token.NewKey(), token.NewSecret())
	noteSecret(unknown)
	cases := map[string]string{
		"unknown":   unknown,
		"malformed": "not-a-token",
		"empty":     "",
		"garbage":   "a b\"c",
	}
	for _, st := range []token.State{token.StateExpired, token.StateRevoked, token.StateIdle} {
		cases[st.String()] = f.add(userToken(f, "a"), st)
	}
	for name, tok := range cases {
		r := ts.do(t, req{method: "POST", path: "/v1/introspect", contentType: "application/x-www-form-urlencoded", body: form(tok)})
		wantStatus(t, name, r, 200)
		wantBody(t, name, r, `{"active":false}`)
	}
	wantNoWrites(t, "introspect", f)
}

func TestIntrospectUndecided(t *testing.T) {
	f := newFake()
	f.validateErr = tokens.ErrStale
	ts := mustServer(t, f, nil)
	r := ts.do(t, req{method: "POST", path: "/v1/introspect", contentType: "application/x-www-form-urlencoded", body: form("tc_x")})
	wantError(t, "introspect stale", r, 503, "stale")
	if r.header("Retry-After") != "1" {
		t.Errorf("Retry-After = %q, want 1", r.header("Retry-After"))
	}
}

func TestIntrospectAndRevokeBadInput(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	tok := f.add(userToken(f, "a"), token.StateValid)
	for _, path := range []string{"/v1/introspect", "/v1/revoke"} {
		for _, tc := range []struct {
			name        string
			path        string
			contentType string
			body        string
			status      int
			code        string
		}{
			{"no token", path, "application/x-www-form-urlencoded", "token_type_hint=access_token", 400, "invalid_request"},
			{"two tokens", path, "application/x-www-form-urlencoded", form(tok) + "&token=x", 400, "invalid_request"},
			{"JSON", path, "application/json", `{"token":"x"}`, 415, "unsupported_media_type"},
			{"no content type", path, "", form(tok), 415, "unsupported_media_type"},
			{"token in query", path + "?token=" + url.QueryEscape(tok), "application/x-www-form-urlencoded", form(tok), 400, "invalid_request"},
		} {
			before := f.validates.Load()
			r := ts.do(t, req{method: "POST", path: tc.path, contentType: tc.contentType, body: tc.body})
			wantError(t, path+" "+tc.name, r, tc.status, tc.code)
			if f.validates.Load() != before {
				t.Errorf("%s %s: the token was looked up", path, tc.name)
			}
		}
		r := ts.do(t, req{method: "GET", path: path})
		wantError(t, "GET "+path, r, 405, "method_not_allowed")
	}
	wantNoWrites(t, "bad introspect/revoke input", f)
}

func TestRevoke(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	tok := f.add(userToken(f, "a"), token.StateValid)

	r := ts.do(t, req{method: "POST", path: "/v1/revoke", contentType: "application/x-www-form-urlencoded", body: form(tok)})
	wantStatus(t, "revoke", r, 200)
	wantBody(t, "revoke", r, "")
	wantEqual(t, "revoked tokens", f.revokedRaw, []string{tok})

	// Unknown and malformed tokens are not an error (RFC 7009 §2.2).
	unknown := token.Encode("tc", token.NewKey(), token.NewSecret())
	noteSecret(unknown)
	for _, tk := range []string{unknown, "nonsense", "a b"} {
		r = ts.do(t, req{method: "POST", path: "/v1/revoke", contentType: "application/x-www-form-urlencoded", body: form(tk)})
		wantStatus(t, "revoke "+tk, r, 200)
		wantBody(t, "revoke "+tk, r, "")
	}
	// "a b" is not a bearer token at all: no call.
	wantEqual(t, "revoked tokens", f.revokedRaw, []string{tok, unknown, "nonsense"})
}

func TestRevokeErrorIs503(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
	}{
		{tokens.ErrNoLeader, "no_leader"},
		{tokens.ErrIndeterminate, "indeterminate"},
		{tokens.ErrOverloaded, "overloaded"},
		{errors.New("raft: something odd"), "internal"},
	} {
		f := newFake()
		f.err = tc.err
		ts := mustServer(t, f, nil)
		tok := f.add(userToken(f, "a"), token.StateValid)
		r := ts.do(t, req{method: "POST", path: "/v1/revoke", contentType: "application/x-www-form-urlencoded", body: form(tok)})
		wantError(t, tc.code, r, 503, tc.code)
		if r.header("Retry-After") != "1" {
			t.Errorf("%s: Retry-After = %q, want 1", tc.code, r.header("Retry-After"))
		}
	}
}
