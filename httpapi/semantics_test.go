package httpapi

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/tokens"
)

// Token semantics through a real server over the real service: what a
// client sees of idempotency, delegation and a child's rights.

// issueJSON posts an issue and returns the answer.
func (ts *testServer) issueJSON(t testing.TB, body string, headers ...[2]string) *resp {
	t.Helper()
	return ts.do(t, req{method: "POST", path: "/v1/tokens", admin: true, contentType: "application/json", body: body, headers: headers})
}

// issued posts an issue that must answer 201 and returns its token and key.
func (ts *testServer) issued(t testing.TB, body string) (tok, key string) {
	t.Helper()
	r := ts.issueJSON(t, body)
	wantStatus(t, "issue "+body, r, 201)
	m := r.json(t)
	return m["token"].(string), m["key"].(string)
}

func (ts *testServer) validateAs(t testing.TB, tok, query string) *resp {
	t.Helper()
	return ts.do(t, req{path: "/v1/validate" + query, bearer: tok})
}

func TestHTTPIdempotencyKeyFreeAfterRefusal(t *testing.T) {
	ts, _ := mustRealServer(t, nil)
	k1 := [2]string{"Idempotency-Key", "k1"}
	r := ts.issueJSON(t, `{"username":"alice","credentials":{"k":"v"}}`, k1)
	wantError(t, "issue with credentials", r, 400, "invalid_request")
	r = ts.issueJSON(t, `{"username":"alice"}`, k1)
	wantStatus(t, "corrected issue, same Idempotency-Key", r, 201)

	ts.issued(t, `{"username":"alice","name":"laptop"}`)
	k2 := [2]string{"Idempotency-Key", "k2"}
	r = ts.issueJSON(t, `{"username":"alice","name":"laptop"}`, k2)
	wantError(t, "issue with a duplicate name", r, 409, "duplicate_name")
	first := ts.issueJSON(t, `{"username":"alice","name":"desktop"}`, k2)
	wantStatus(t, "issue with another name, same Idempotency-Key", first, 201)
	again := ts.issueJSON(t, `{"username":"alice","name":"desktop"}`, k2)
	wantStatus(t, "replay", again, 201)
	if again.json(t)["token"] != first.json(t)["token"] || again.header("Idempotent-Replayed") != "true" {
		t.Errorf("replay = %s (Idempotent-Replayed %q), want the first token again", again.body, again.header("Idempotent-Replayed"))
	}
	r = ts.issueJSON(t, `{"username":"alice","name":"tablet"}`, k2)
	wantError(t, "another request, used Idempotency-Key", r, 409, "idempotency_conflict")
}

func TestHTTPDelegateBesideIssuedChild(t *testing.T) {
	ts, clk := mustRealServer(t, nil)
	ptok, pkey := ts.issued(t, `{"username":"alice","scopes":["read","write"],"expires_in":600}`)
	ts.issued(t, `{"username":"alice","type":"internal","parent":"`+pkey+`","service":"svc","scopes":["read"]}`)
	ts.issued(t, `{"username":"alice","type":"notebook","parent":"`+pkey+`","scopes":["read","write"]}`)

	internal := `{"parent_token":"` + ptok + `","service":"svc","scopes":["read"]}`
	notebook := `{"parent_token":"` + ptok + `"}`
	for _, c := range []struct{ path, body string }{
		{"/v1/tokens/" + pkey + "/internal", internal},
		{"/v1/tokens/" + pkey + "/notebook", notebook},
	} {
		r := ts.do(t, req{method: "POST", path: c.path, admin: true, contentType: "application/json", body: c.body})
		wantStatus(t, "delegate beside an issued child "+c.path, r, 201)
		wantStatus(t, "validate the delegated child", ts.validateAs(t, r.json(t)["token"].(string), ""), 200)
		r = ts.do(t, req{method: "POST", path: c.path, admin: true, contentType: "application/json", body: c.body})
		wantStatus(t, "delegate again "+c.path, r, 200)
	}

	clk.Advance(11 * time.Minute)
	for _, c := range []struct{ path, body string }{
		{"/v1/tokens/" + pkey + "/internal", `{"parent_token":"` + ptok + `","service":"new","scopes":["read"]}`},
		{"/v1/tokens/" + pkey + "/notebook", notebook},
	} {
		r := ts.do(t, req{method: "POST", path: c.path, admin: true, contentType: "application/json", body: c.body})
		wantError(t, "delegate from an expired parent "+c.path, r, 409, "parent_not_valid")
	}
}

func TestHTTPChildNeverExceedsAncestors(t *testing.T) {
	ts, clk := mustRealServer(t, nil)
	ptok, pkey := ts.issued(t, `{"username":"alice","scopes":["read","write"],"expires_in":14400}`)
	r := ts.do(t, req{method: "POST", path: "/v1/tokens/" + pkey + "/internal", admin: true, contentType: "application/json",
		body: `{"parent_token":"` + ptok + `","service":"svc","scopes":["read","write"]}`})
	wantStatus(t, "delegate", r, 201)
	ctok, ckey := r.json(t)["token"].(string), r.json(t)["key"].(string)
	wantStatus(t, "validate child with write", ts.validateAs(t, ctok, "?scope=write"), 200)

	soon := clk.Now().Add(30 * time.Minute).UTC().Format(time.RFC3339)
	r = ts.do(t, req{method: "PATCH", path: "/v1/tokens/" + pkey, admin: true, contentType: "application/json",
		body: `{"scopes":["read"],"expires":"` + soon + `"}`})
	wantStatus(t, "narrow the parent", r, 200)

	r = ts.validateAs(t, ctok, "?scope=write")
	wantStatus(t, "validate child with the scope its parent lost", r, 403)
	r = ts.validateAs(t, ctok, "")
	wantStatus(t, "validate child", r, 200)
	if got := r.header("X-Token-Scopes"); got != "read" {
		t.Errorf("child X-Token-Scopes = %q, want %q", got, "read")
	}
	if m := r.json(t); m["expires"] != soon {
		t.Errorf("child expires = %v, want the parent's %s", m["expires"], soon)
	}
	r = ts.do(t, req{path: "/v1/tokens/" + ckey, admin: true})
	if wantStatus(t, "info child", r, 200); strings.Contains(r.body, "write") {
		t.Errorf("info child = %s, want no write scope", r.body)
	}
	r = ts.do(t, req{method: "POST", path: "/v1/tokens/" + ckey + "/internal", admin: true, contentType: "application/json",
		body: `{"parent_token":"` + ctok + `","service":"other","scopes":["write"]}`})
	wantError(t, "grandchild with the lost scope", r, 400, "invalid_request")

	clk.Advance(31 * time.Minute)
	r = ts.validateAs(t, ctok, "")
	if wantStatus(t, "validate child after its parent expired", r, 401); r.json(t)["error"] != "expired" {
		t.Errorf("child after its parent expired = %s, want expired", r.body)
	}
	r = ts.do(t, req{method: "POST", path: "/v1/tokens/" + ckey + "/notebook", admin: true, contentType: "application/json",
		body: `{"parent_token":"` + ctok + `"}`})
	wantError(t, "grandchild of an expired parent", r, 409, "parent_not_valid")
}

func TestHTTPMaxLifetimeBoundsEveryToken(t *testing.T) {
	ts, _ := mustRealServer(t, nil)
	r := ts.issueJSON(t, `{"username":"alice","no_expire":true}`)
	if wantError(t, "issue no_expire under tokens.max_lifetime", r, 400, "invalid_request"); !strings.Contains(r.body, "tokens.max_lifetime") {
		t.Errorf("issue no_expire: %s, want the message to name tokens.max_lifetime", r.body)
	}
	_, key := ts.issued(t, `{"username":"alice"}`)
	r = ts.do(t, req{method: "PATCH", path: "/v1/tokens/" + key, admin: true, contentType: "application/json", body: `{"no_expire":true}`})
	if wantError(t, "PATCH no_expire under tokens.max_lifetime", r, 400, "invalid_request"); !strings.Contains(r.body, "tokens.max_lifetime") {
		t.Errorf("PATCH no_expire: %s, want the message to name tokens.max_lifetime", r.body)
	}

	free, _ := mustRealServer(t, func(c *tokens.Config) { c.MaxLifetime = tokens.NoMaxLifetime })
	r = free.issueJSON(t, `{"username":"alice","no_expire":true}`)
	if wantStatus(t, "issue no_expire with no limit", r, 201); r.json(t)["expires"] != nil {
		t.Errorf("issue no_expire with no limit: %s, want expires null", r.body)
	}
}

// With tokens.max_lifetime -1 the HTTP API still refuses a lifetime beyond
// 100 years with 400 invalid_request and says so: the token service judges
// it (tokens.LifetimeCeiling), the API only refuses what a token.Time cannot
// hold.
func TestHTTPLifetimeCeiling(t *testing.T) {
	free, clk := mustRealServer(t, func(c *tokens.Config) { c.MaxLifetime = tokens.NoMaxLifetime })
	r := free.issueJSON(t, fmt.Sprintf(`{"username":"alice","expires_in":%d}`, int64((tokens.LifetimeCeiling+time.Hour)/time.Second)))
	if wantError(t, "issue beyond 100 years", r, 400, "invalid_request"); !strings.Contains(r.body, "100 years") {
		t.Errorf("issue beyond 100 years: %s, want the message to say 100 years", r.body)
	}
	_, key := free.issued(t, `{"username":"alice"}`)
	far := clk.Now().Add(tokens.LifetimeCeiling + 24*time.Hour).UTC().Format(time.RFC3339)
	r = free.do(t, req{method: "PATCH", path: "/v1/tokens/" + key, admin: true, contentType: "application/json", body: `{"expires":"` + far + `"}`})
	if wantError(t, "PATCH beyond 100 years", r, 400, "invalid_request"); !strings.Contains(r.body, "100 years") {
		t.Errorf("PATCH beyond 100 years: %s, want the message to say 100 years", r.body)
	}
	r = free.do(t, req{method: "PATCH", path: "/v1/tokens/" + key, admin: true, contentType: "application/json", body: `{"expires":"2300-01-01T00:00:00Z"}`})
	wantError(t, "PATCH beyond token.Time", r, 400, "invalid_request")
}

// A listing's limit is judged by the token service (tokens.Config
// MaxListLimit): over the real service a limit above it answers 400
// invalid_request, the largest one 200, and none the default.
func TestHTTPListLimitFromService(t *testing.T) {
	ts, _ := mustRealServer(t, nil)
	ts.issued(t, `{"username":"alice"}`)
	max := tokens.DefaultConfig().MaxListLimit
	r := ts.do(t, req{path: fmt.Sprintf("/v1/tokens?limit=%d", max+1), admin: true})
	wantError(t, "list above the largest limit", r, 400, "invalid_request")
	r = ts.do(t, req{path: fmt.Sprintf("/v1/tokens?limit=%d", max), admin: true})
	wantStatus(t, "list at the largest limit", r, 200)
	r = ts.do(t, req{path: "/v1/tokens", admin: true})
	wantStatus(t, "list with the default limit", r, 200)
	if n := len(r.json(t)["tokens"].([]any)); n != 1 {
		t.Errorf("list with the default limit: %d tokens, want 1: %s", n, r.body)
	}
}
