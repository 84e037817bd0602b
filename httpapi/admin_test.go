package httpapi

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// adminRoutes is every admin endpoint with a request that would succeed
// with the admin token.
func adminRoutes(key string) []req {
	return []req{
		{method: "POST", path: "/v1/tokens", contentType: "application/json", body: `{"username":"bob"}`},
		{method: "GET", path: "/v1/tokens"},
		{method: "GET", path: "/v1/tokens/" + key},
		{method: "PATCH", path: "/v1/tokens/" + key, contentType: "application/json", body: `{"name":"x"}`},
		{method: "DELETE", path: "/v1/tokens/" + key},
		{method: "GET", path: "/v1/tokens/" + key + "/children"},
		{method: "POST", path: "/v1/tokens/" + key + "/internal", contentType: "application/json", body: `{"parent_token":"x","service":"s"}`},
		{method: "POST", path: "/v1/tokens/" + key + "/notebook", contentType: "application/json", body: `{"parent_token":"x"}`},
		{method: "GET", path: "/v1/stats"},
		{method: "GET", path: "/v1/admin/orphaned"},
		{method: "POST", path: "/v1/admin/purge"},
	}
}

func TestAdminAuth(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	rec := userToken(f, "admin")
	userTok := f.add(rec, token.StateValid) // a valid user token is not the admin token
	key := rec.Key.String()

	for _, rq := range adminRoutes(key) {
		what := rq.method + " " + rq.path
		for _, bad := range []struct {
			name      string
			headers   [][2]string
			challenge string
		}{
			{"missing", nil, `Bearer realm="tokencache admin"`},
			{"wrong", [][2]string{{"Authorization", "Bearer " + testAdminToken + "x"}}, `Bearer realm="tokencache admin", error="invalid_token"`},
			{"prefix", [][2]string{{"Authorization", "Bearer " + testAdminToken[:len(testAdminToken)-1]}}, `Bearer realm="tokencache admin", error="invalid_token"`},
			{"user token", [][2]string{{"Authorization", "Bearer " + userTok}}, `Bearer realm="tokencache admin", error="invalid_token"`},
			{"basic", [][2]string{{"Authorization", "Basic " + testAdminToken}}, `Bearer realm="tokencache admin", error="invalid_token"`},
			{"twice", [][2]string{{"Authorization", "Bearer " + testAdminToken}, {"Authorization", "Bearer " + testAdminToken}}, `Bearer realm="tokencache admin", error="invalid_token"`},
		} {
			r2 := rq
			r2.headers = bad.headers
			r := ts.do(t, r2)
			wantError(t, what+" "+bad.name, r, 401, "unauthorized")
			if got := r.header("WWW-Authenticate"); got != bad.challenge {
				t.Errorf("%s %s: WWW-Authenticate = %q, want %q", what, bad.name, got, bad.challenge)
			}
		}
	}
	wantNoWrites(t, "unauthenticated admin calls", f)

	// With the admin token, every route gets past authentication.
	for _, rq := range adminRoutes(key) {
		rq.admin = true
		r := ts.do(t, rq)
		if r.status == 401 {
			t.Errorf("%s %s with the admin token: 401 %s", rq.method, rq.path, r.body)
		}
	}
}

func TestIssue(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	parent := userToken(f, "read:all")
	f.add(parent, token.StateValid)

	body := fmt.Sprintf(`{"username":"bob","realm":"lab","uid":42,"type":"service","name":"ci-bot",
		"scopes":["write:all","read:all"],"expires_in":3600,"parent":"%s","service":"builder",
		"client_id":"portal","format":"opaque","credentials":{"aws_key":"AKIA-SECRET-VALUE"}}`, parent.Key)
	r := ts.do(t, req{method: "POST", path: "/v1/tokens", admin: true, contentType: "application/json", body: body,
		headers: [][2]string{{"Idempotency-Key", "req-123"}}})
	wantStatus(t, "issue", r, 201)

	got := f.lastIssue
	wantEqual(t, "IssueRequest", got, tokens.IssueRequest{
		Username: "bob", Realm: "lab", UID: 42, HasUID: true, Type: token.TypeService, Name: "ci-bot",
		Scopes: "read:all write:all", ExpiresIn: time.Hour, Parent: parent.Key, Service: "builder",
		ClientID: "portal", Format: token.FormatOpaque,
		Credentials: map[string]string{"aws_key": "AKIA-SECRET-VALUE"}, IdempotencyKey: "req-123",
	})

	m := r.json(t)
	text, _ := m["token"].(string)
	if !strings.HasPrefix(text, "tc_") {
		t.Fatalf("issue: token = %q, want the token text", text)
	}
	rec := f.byText[text].rec
	want := fmt.Sprintf(`{"token":"%s","key":"%s","username":"bob","realm":"lab","uid":42,"type":"service","format":"opaque","name":"ci-bot","service":"builder","client_id":"portal","parent":"%s","scopes":["read:all","write:all"],"created":"%s","expires":"%s","last_used":null,"revoked_at":null,"has_credentials":true}`,
		text, rec.Key, parent.Key, rec.Created, rec.Expires)
	wantBody(t, "issue", r, want)
	if loc := r.header("Location"); loc != "/v1/tokens/"+rec.Key.String() {
		t.Errorf("Location = %q", loc)
	}
	if r.has("Idempotent-Replayed") {
		t.Errorf("Idempotent-Replayed on a first issue")
	}
	if leak := containsAny(r.body, "AKIA-SECRET-VALUE", "sealed-credentials-blob"); leak != "" {
		t.Errorf("issue answer shows %q", leak)
	}

	// Defaults: no uid, type and format left to the service, no expiry given.
	r = ts.do(t, req{method: "POST", path: "/v1/tokens", admin: true, contentType: "application/json", body: `{"username":"carol","no_expire":true}`})
	wantStatus(t, "issue minimal", r, 201)
	wantEqual(t, "minimal IssueRequest", f.lastIssue, tokens.IssueRequest{Username: "carol", NoExpire: true})
	if m := r.json(t); m["expires"] != nil || m["uid"] != nil || m["has_credentials"] != false {
		t.Errorf("issue minimal: body %s, want expires null, no uid, has_credentials false", r.body)
	}
}

func TestIssueIdempotentReplay(t *testing.T) {
	f := newFake()
	rec := userToken(f, "")
	f.issueFn = func(tokens.IssueRequest) (tokens.Issued, error) {
		return tokens.Issued{Token: "tc_first", Record: rec, Reused: true}, nil
	}
	ts := mustServer(t, f, nil)
	r := ts.do(t, req{method: "POST", path: "/v1/tokens", admin: true, contentType: "application/json",
		body: `{"username":"alice"}`, headers: [][2]string{{"Idempotency-Key", "k1"}}})
	wantStatus(t, "replay", r, 201)
	if r.header("Idempotent-Replayed") != "true" {
		t.Errorf("Idempotent-Replayed = %q, want true", r.header("Idempotent-Replayed"))
	}
	if r.json(t)["token"] != "tc_first" {
		t.Errorf("replay: body %s, want the first token", r.body)
	}
}

// TestIssueBadInput: every bad body is a 4xx and reaches no write. (An
// oversized body is in TestLimitsAnswerJSON: the server answers 413 before
// the client has sent it, which a client sees as a broken pipe.)
func TestIssueBadInput(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	for _, tc := range []struct {
		name        string
		contentType string
		body        string
		headers     [][2]string
		status      int
		code        string
	}{
		{"malformed JSON", "application/json", `{"username":`, nil, 400, "invalid_request"},
		{"not JSON", "application/json", `username=bob`, nil, 400, "invalid_request"},
		{"array", "application/json", `[{"username":"bob"}]`, nil, 400, "invalid_request"},
		{"null", "application/json", `null`, nil, 400, "invalid_request"},
		{"empty body", "application/json", ``, nil, 400, "invalid_request"},
		{"unknown field", "application/json", `{"username":"bob","admin":true}`, nil, 400, "invalid_request"},
		{"trailing data", "application/json", `{"username":"bob"} {"username":"eve"}`, nil, 400, "invalid_request"},
		{"trailing garbage", "application/json", `{"username":"bob"}x`, nil, 400, "invalid_request"},
		{"wrong type", "application/json", `{"username":"bob","expires_in":"1h"}`, nil, 400, "invalid_request"},
		{"fractional seconds", "application/json", `{"username":"bob","expires_in":1.5}`, nil, 400, "invalid_request"},
		{"text/plain", "text/plain", `{"username":"bob"}`, nil, 415, "unsupported_media_type"},
		{"form", "application/x-www-form-urlencoded", `username=bob`, nil, 415, "unsupported_media_type"},
		{"no content type", "", `{"username":"bob"}`, nil, 415, "unsupported_media_type"},
		{"negative expires_in", "application/json", `{"username":"bob","expires_in":-1}`, nil, 400, "invalid_request"},
		{"zero expires_in", "application/json", `{"username":"bob","expires_in":0}`, nil, 400, "invalid_request"},
		{"huge expires_in", "application/json", `{"username":"bob","expires_in":9223372036854775807}`, nil, 400, "invalid_request"},
		{"overflowing expires_in", "application/json", `{"username":"bob","expires_in":1e30}`, nil, 400, "invalid_request"},
		{"no_expire and expires_in", "application/json", `{"username":"bob","no_expire":true,"expires_in":60}`, nil, 400, "invalid_request"},
		{"unknown type", "application/json", `{"username":"bob","type":"superuser"}`, nil, 400, "invalid_request"},
		{"unknown format", "application/json", `{"username":"bob","format":"saml"}`, nil, 400, "invalid_request"},
		{"scope with space", "application/json", `{"username":"bob","scopes":["read all"]}`, nil, 400, "invalid_request"},
		{"duplicate scope", "application/json", `{"username":"bob","scopes":["a","a"]}`, nil, 400, "invalid_request"},
		{"empty scope", "application/json", `{"username":"bob","scopes":[""]}`, nil, 400, "invalid_request"},
		{"missing username", "application/json", `{"realm":"x"}`, nil, 400, "invalid_request"},
		{"control character", "application/json", `{"username":"bo\u0000b"}`, nil, 400, "invalid_request"},
		{"negative uid", "application/json", `{"username":"bob","uid":-5}`, nil, 400, "invalid_request"},
		{"bad parent", "application/json", `{"username":"bob","parent":"nope"}`, nil, 400, "invalid_request"},
		{"empty credential name", "application/json", `{"username":"bob","credentials":{"":"x"}}`, nil, 400, "invalid_request"},
		{"bad idempotency key", "application/json", `{"username":"bob"}`, [][2]string{{"Idempotency-Key", strings.Repeat("k", 256)}}, 400, "invalid_request"},
	} {
		r := ts.do(t, req{method: "POST", path: "/v1/tokens", admin: true, contentType: tc.contentType, body: tc.body, headers: tc.headers})
		wantError(t, tc.name, r, tc.status, tc.code)
	}
	wantNoWrites(t, "bad issue input", f)
}

func TestIssueServiceErrors(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{tokens.ErrDuplicateName, 409, "duplicate_name"},
		{tokens.ErrParentNotFound, 404, "parent_not_found"},
		{tokens.ErrParentNotValid, 409, "parent_not_valid"},
		{tokens.ErrIdempotencyConflict, 409, "idempotency_conflict"},
		{fmt.Errorf("cannot issue: %w", tokens.ErrIndeterminate), 503, "indeterminate"},
		{tokens.ErrOverloaded, 503, "overloaded"},
		{fmt.Errorf("%w: an internal token needs a service", token.ErrInvalid), 400, "invalid_request"},
		{errors.New("mysql: connection refused to db.internal:3306"), 500, "internal"},
	} {
		f := newFake()
		f.err = tc.err
		ts := mustServer(t, f, nil)
		r := ts.do(t, req{method: "POST", path: "/v1/tokens", admin: true, contentType: "application/json", body: `{"username":"bob"}`})
		wantError(t, tc.code, r, tc.status, tc.code)
		if strings.Contains(r.body, "db.internal") {
			t.Errorf("%s: the answer shows the internal error: %s", tc.code, r.body)
		}
		if (tc.status == 503) != (r.header("Retry-After") == "1") {
			t.Errorf("%s: Retry-After = %q", tc.code, r.header("Retry-After"))
		}
	}
}

func TestInfo(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	rec := userToken(f, "read:all")
	rec.LastUsed = rec.Created + 5
	f.add(rec, token.StateValid)

	r := ts.do(t, req{path: "/v1/tokens/" + rec.Key.String(), admin: true})
	wantStatus(t, "info", r, 200)
	want := fmt.Sprintf(`{"key":"%s","username":"alice","realm":"default","uid":1001,"type":"user","format":"opaque","scopes":["read:all"],"created":"%s","expires":"%s","last_used":"%s","revoked_at":null,"state":"valid","has_credentials":false}`,
		rec.Key, rec.Created, rec.Expires, rec.LastUsed)
	wantBody(t, "info", r, want)

	r = ts.do(t, req{path: "/v1/tokens/" + rec.Key.String() + "?consistency=consistent", admin: true})
	wantStatus(t, "consistent info", r, 200)
	if f.consistent.Load() != 1 {
		t.Errorf("Consistent called %d times, want 1", f.consistent.Load())
	}
	r = ts.do(t, req{path: "/v1/tokens/" + rec.Key.String() + "?consistency=linear", admin: true})
	wantError(t, "bad consistency", r, 400, "invalid_request")

	r = ts.do(t, req{path: "/v1/tokens/" + token.NewKey().String(), admin: true})
	wantError(t, "unknown key", r, 404, "not_found")
	for _, bad := range []string{"abc", strings.Repeat("A", 23), "AAAAAAAAAAAAAAAAAAAAA%2B", rec.Key.String()[:21] + "="} {
		r = ts.do(t, req{path: "/v1/tokens/" + bad, admin: true})
		wantError(t, "bad key "+bad, r, 400, "invalid_request")
	}
}

func TestModify(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	rec := userToken(f, "read:all")
	f.add(rec, token.StateValid)
	path := "/v1/tokens/" + rec.Key.String()

	r := ts.do(t, req{method: "PATCH", path: path, admin: true, contentType: "application/json",
		body: `{"name":"laptop","scopes":["b","a"],"expires":"2026-06-01T00:00:00+02:00"}`})
	wantStatus(t, "modify", r, 200)
	m := f.lastModify
	wantEqual(t, "name", *m.Name, "laptop")
	wantEqual(t, "scopes", *m.Scopes, token.Scopes("a b"))
	wantEqual(t, "expires", *m.Expires, time.Date(2026, 5, 31, 22, 0, 0, 0, time.UTC))
	if got := r.json(t); got["name"] != "laptop" || got["expires"] != "2026-05-31T22:00:00Z" {
		t.Errorf("modify: body %s", r.body)
	}

	r = ts.do(t, req{method: "PATCH", path: path, admin: true, contentType: "application/json", body: `{"no_expire":true}`})
	wantStatus(t, "modify no_expire", r, 200)
	if r.json(t)["expires"] != nil {
		t.Errorf("modify no_expire: body %s, want expires null", r.body)
	}

	f.mu.Lock()
	f.writes = nil
	f.mu.Unlock()
	for _, tc := range []struct{ name, body string }{
		{"nothing", `{}`},
		{"both", `{"expires":"2027-01-01T00:00:00Z","no_expire":true}`},
		{"bad time", `{"expires":"tomorrow"}`},
		{"before 1970", `{"expires":"1969-12-31T00:00:00Z"}`},
		{"beyond 100 years", `{"expires":"2300-01-01T00:00:00Z"}`},
		{"bad scope", `{"scopes":["a\"b"]}`},
		{"unknown field", `{"realm":"x"}`},
		{"name with control", `{"name":"a\u0007"}`},
	} {
		r := ts.do(t, req{method: "PATCH", path: path, admin: true, contentType: "application/json", body: tc.body})
		wantError(t, "modify "+tc.name, r, 400, "invalid_request")
	}
	r = ts.do(t, req{method: "PATCH", path: "/v1/tokens/bad", admin: true, contentType: "application/json", body: `{"name":"x"}`})
	wantError(t, "modify bad key", r, 400, "invalid_request")
	wantNoWrites(t, "bad modify input", f)

	r = ts.do(t, req{method: "PATCH", path: "/v1/tokens/" + token.NewKey().String(), admin: true, contentType: "application/json", body: `{"name":"x"}`})
	wantError(t, "modify unknown", r, 404, "not_found")
}

func TestRevokeKey(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	rec := userToken(f, "")
	f.add(rec, token.StateValid)
	child := userToken(f, "")
	child.SetExtra(token.Extra{Parent: rec.Key})
	f.add(child, token.StateValid)

	r := ts.do(t, req{method: "DELETE", path: "/v1/tokens/" + rec.Key.String(), admin: true})
	wantStatus(t, "delete", r, 200)
	wantBody(t, "delete", r, fmt.Sprintf(`{"revoked":["%s","%s"]}`, rec.Key, child.Key))

	r = ts.do(t, req{method: "DELETE", path: "/v1/tokens/" + token.NewKey().String(), admin: true})
	wantError(t, "delete unknown", r, 404, "not_found")
}

func TestList(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	a := userToken(f, "a")
	f.add(a, token.StateValid)
	b := userToken(f, "")
	b.Created++
	b.Username = "bob"
	b.Type = token.TypeSession
	b.SetExtra(token.Extra{Parent: a.Key, Name: "n"})
	f.add(b, token.StateValid)

	r := ts.do(t, req{path: "/v1/tokens", admin: true})
	wantStatus(t, "list", r, 200)
	wantEqual(t, "default limit", f.lastList, tokens.ListQuery{Limit: 100})
	list := r.json(t)["tokens"].([]any)
	if len(list) != 2 {
		t.Fatalf("list: %d tokens, want 2: %s", len(list), r.body)
	}
	if _, ok := list[0].(map[string]any)["parent"]; ok {
		t.Errorf("list: parent shown for a token without one: %s", r.body)
	}
	if list[1].(map[string]any)["parent"] != a.Key.String() {
		t.Errorf("list: child's parent missing: %s", r.body)
	}

	r = ts.do(t, req{path: "/v1/tokens?username=bob&type=session&limit=5&with_parents=true", admin: true})
	wantStatus(t, "audit list", r, 200)
	wantEqual(t, "query", f.lastList, tokens.ListQuery{Username: "bob", Type: token.TypeSession, Limit: 5})
	r = ts.do(t, req{path: "/v1/tokens?with_parents=true", admin: true})
	for _, e := range r.json(t)["tokens"].([]any) {
		if _, ok := e.(map[string]any)["parent"]; !ok {
			t.Errorf("audit list: an entry without \"parent\": %s", r.body)
		}
	}
	if !strings.Contains(r.body, `"parent":null`) {
		t.Errorf("audit list: no \"parent\":null for the root token: %s", r.body)
	}

	for _, q := range []string{"limit=0", "limit=-1", "limit=10001", "limit=ten", "limit=", "type=root", "with_parents=yes", "usrname=bob", "consistency=strong"} {
		r := ts.do(t, req{path: "/v1/tokens?" + q, admin: true})
		wantError(t, "list "+q, r, 400, "invalid_request")
	}
	r = ts.do(t, req{path: "/v1/tokens?limit=10000", admin: true})
	wantStatus(t, "max limit", r, 200)
}

func TestChildren(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	rec := userToken(f, "")
	f.add(rec, token.StateValid)
	child := userToken(f, "")
	child.SetExtra(token.Extra{Parent: rec.Key})
	f.add(child, token.StateValid)

	r := ts.do(t, req{path: "/v1/tokens/" + rec.Key.String() + "/children", admin: true})
	wantStatus(t, "children", r, 200)
	kids := r.json(t)["children"].([]any)
	if len(kids) != 1 || kids[0].(map[string]any)["key"] != child.Key.String() {
		t.Errorf("children: %s", r.body)
	}
	r = ts.do(t, req{path: "/v1/tokens/" + child.Key.String() + "/children", admin: true})
	wantBody(t, "no children", r, `{"children":[]}`)
	r = ts.do(t, req{path: "/v1/tokens/" + token.NewKey().String() + "/children", admin: true})
	wantError(t, "children of unknown", r, 404, "not_found")
}

func TestDelegate(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	parent := userToken(f, "read:all exec:notebook")
	parentTok := f.add(parent, token.StateValid)
	path := "/v1/tokens/" + parent.Key.String()

	r := ts.do(t, req{method: "POST", path: path + "/internal", admin: true, contentType: "application/json",
		body: fmt.Sprintf(`{"parent_token":%q,"service":"portal","scopes":["read:all"],"min_expires_in":300,"expires_in":3600}`, parentTok)})
	wantStatus(t, "internal minted", r, 201)
	d := f.lastDelegate
	wantEqual(t, "DelegateRequest", d, tokens.DelegateRequest{
		ParentToken: parentTok,
		Delegation: token.Delegation{Type: token.TypeInternal, Service: "portal", Scopes: "read:all",
			MinExpires: token.At(f.now.Add(5 * time.Minute))},
		ExpiresIn: time.Hour,
	})
	m := r.json(t)
	if m["type"] != "internal" || m["parent"] != parent.Key.String() || !strings.HasPrefix(m["token"].(string), "tc_") {
		t.Errorf("internal: body %s", r.body)
	}

	f.reuse = true
	r = ts.do(t, req{method: "POST", path: path + "/notebook", admin: true, contentType: "application/json",
		body: fmt.Sprintf(`{"parent_token":%q}`, parentTok)})
	wantStatus(t, "notebook reused", r, 200)
	wantEqual(t, "notebook delegation", f.lastDelegate.Delegation,
		token.Delegation{Type: token.TypeNotebook, MinExpires: token.At(f.now)})

	f.mu.Lock()
	f.writes = nil
	f.mu.Unlock()
	other := token.NewKey().String()
	for _, tc := range []struct{ name, path, body string }{
		{"key mismatch", "/v1/tokens/" + other + "/internal", fmt.Sprintf(`{"parent_token":%q,"service":"s"}`, parentTok)},
		{"no parent_token", path + "/internal", `{"service":"s"}`},
		{"parent_token not a token", path + "/notebook", `{"parent_token":"hello"}`},
		{"no service", path + "/internal", fmt.Sprintf(`{"parent_token":%q}`, parentTok)},
		{"bad scope", path + "/internal", fmt.Sprintf(`{"parent_token":%q,"service":"s","scopes":["a b"]}`, parentTok)},
		{"negative min", path + "/notebook", fmt.Sprintf(`{"parent_token":%q,"min_expires_in":-1}`, parentTok)},
		{"expires below min", path + "/notebook", fmt.Sprintf(`{"parent_token":%q,"min_expires_in":600,"expires_in":60}`, parentTok)},
		{"notebook with service", path + "/notebook", fmt.Sprintf(`{"parent_token":%q,"service":"s"}`, parentTok)},
		{"bad path key", "/v1/tokens/xyz/notebook", fmt.Sprintf(`{"parent_token":%q}`, parentTok)},
	} {
		r := ts.do(t, req{method: "POST", path: tc.path, admin: true, contentType: "application/json", body: tc.body})
		wantError(t, tc.name, r, 400, "invalid_request")
	}
	wantNoWrites(t, "bad delegation input", f)
}

// TestTokenKeyOfJWT: a JWT's jti was once read here without checking its
// signature. No JWT format is registered yet, so a JWT is not a token: its
// claims are not read, whatever its jti.
func TestTokenKeyOfJWT(t *testing.T) {
	formats := mustFormats(t, "tc")
	k := token.NewKey()
	payload := base64URL(fmt.Sprintf(`{"sub":"alice","jti":"%s"}`, k))
	jwt := "eyJhbGciOiJFUzI1NiJ9." + payload + ".c2ln"
	if got, ok := tokenKey(formats, jwt); ok {
		t.Errorf("tokenKey(jwt) = %v, %v, want failure (no JWT format)", got, ok)
	}
	for _, bad := range []string{"a.b", "a.!!.c", "a." + base64URL(`{"jti":"short"}`) + ".c", "a." + base64URL(`[1]`) + ".c"} {
		if _, ok := tokenKey(formats, bad); ok {
			t.Errorf("tokenKey(%q) succeeded, want failure", bad)
		}
	}
	opaque := token.Encode("tc", k, token.NewSecret())
	if got, ok := tokenKey(formats, opaque); !ok || got != k {
		t.Errorf("tokenKey(opaque) = %v, %v, want %v, true", got, ok, k)
	}
	if _, ok := tokenKey(mustFormats(t, "tx"), opaque); ok {
		t.Errorf("tokenKey(opaque of another prefix) succeeded, want failure")
	}
}

func mustFormats(tb testing.TB, prefix string) *token.Formats {
	tb.Helper()
	f, err := token.NewFormats(token.NewOpaque(prefix, token.NewHasher(nil)))
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// TestHTTPDelegateJWTParent: a delegation whose parent_token is a JWT naming
// the parent's key as its jti (unsigned, or signed by anyone) answers 400
// invalid_request and creates nothing, as it always did through the real
// service.
func TestHTTPDelegateJWTParent(t *testing.T) {
	ts, _ := mustRealServer(t, nil)
	_, pkey := ts.issued(t, `{"username":"alice","scopes":["read"],"expires_in":600}`)
	payload := base64URL(fmt.Sprintf(`{"sub":"alice","jti":"%s"}`, pkey))
	for _, jwt := range []string{
		"eyJhbGciOiJub25lIn0." + payload + ".",
		"eyJhbGciOiJFUzI1NiJ9." + payload + ".c2ln",
	} {
		for _, route := range []string{"/notebook", "/internal"} {
			body := fmt.Sprintf(`{"parent_token":%q,"service":"s"}`, jwt)
			if route == "/notebook" {
				body = fmt.Sprintf(`{"parent_token":%q}`, jwt)
			}
			r := ts.do(t, req{method: "POST", path: "/v1/tokens/" + pkey + route, admin: true,
				contentType: "application/json", body: body})
			wantError(t, "delegate with a JWT parent "+route, r, 400, "invalid_request")
		}
	}
	r := ts.do(t, req{path: "/v1/tokens/" + pkey + "/children", admin: true})
	wantStatus(t, "children", r, 200)
	if kids, _ := r.json(t)["children"].([]any); len(kids) != 0 {
		t.Errorf("children after refused delegations = %s, want none", r.body)
	}
}

func TestStatsOrphanedPurge(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	orphan := userToken(f, "")
	orphan.SetExtra(token.Extra{Parent: token.NewKey()})
	f.add(orphan, token.StateValid)

	r := ts.do(t, req{path: "/v1/stats", admin: true})
	wantStatus(t, "stats", r, 200)
	if m := r.json(t); m["tokens"] != 1.0 || m["cache_hit_rate"] != 0.75 || m["unique_sessions"] != 1.0 {
		t.Errorf("stats: %s", r.body)
	}

	r = ts.do(t, req{path: "/v1/admin/orphaned", admin: true})
	wantStatus(t, "orphaned", r, 200)
	list := r.json(t)["orphaned"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["key"] != orphan.Key.String() {
		t.Errorf("orphaned: %s", r.body)
	}

	r = ts.do(t, req{method: "POST", path: "/v1/admin/purge?include_expired=true", admin: true})
	wantStatus(t, "purge", r, 200)
	wantBody(t, "purge", r, `{"purged":[]}`)
	if !f.lastPurge {
		t.Errorf("Purge(includeExpired) = false, want true")
	}
	r = ts.do(t, req{method: "POST", path: "/v1/admin/purge", admin: true})
	wantStatus(t, "purge", r, 200)
	if f.lastPurge {
		t.Errorf("Purge(includeExpired) = true without the parameter")
	}
	before := len(f.writeLog())
	r = ts.do(t, req{method: "POST", path: "/v1/admin/purge?include_expired=maybe", admin: true})
	wantError(t, "purge bad flag", r, 400, "invalid_request")
	if len(f.writeLog()) != before {
		t.Errorf("a bad purge request reached the service")
	}

	f.err = tokens.ErrStoreUnavailable
	r = ts.do(t, req{path: "/v1/stats", admin: true})
	wantError(t, "stats unavailable", r, 503, "store_unavailable")
}
