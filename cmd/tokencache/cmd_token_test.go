package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// recorded is one request the fake API received.
type recorded struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   string
}

// fakeAPI records requests and answers each with the reply for its
// "METHOD path" (404 when there is none).
type fakeAPI struct {
	t       *testing.T
	mu      sync.Mutex
	reqs    []recorded
	replies map[string]reply
	srv     *httptest.Server
}

type reply struct {
	status int
	body   string
}

func newFakeAPI(t *testing.T, replies map[string]reply) *fakeAPI {
	f := &fakeAPI{t: t, replies: replies}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.EscapedPath(), r.URL.Query(), r.Header.Clone(), string(b)})
		f.mu.Unlock()
		rep, ok := replies[r.Method+" "+r.URL.EscapedPath()]
		if !ok {
			rep = reply{404, `{"error":"not_found","message":"no such route"}`}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.status)
		io.WriteString(w, rep.body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// requests returns the recorded requests.
func (f *fakeAPI) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// only returns the single recorded request.
func (f *fakeAPI) only() recorded {
	f.t.Helper()
	reqs := f.requests()
	if len(reqs) != 1 {
		f.t.Fatalf("server received %d requests, want 1: %+v", len(reqs), reqs)
	}
	return reqs[0]
}

const issuedBody = `{"token":"tc_AAAAAAAAAAAAAAAAAAAAAA.c2VjcmV0c2VjcmV0c2VjcmV0c2Vj","key":"AAAAAAAAAAAAAAAAAAAAAA","username":"alice","type":"user","scopes":["read","write"]}`

func TestTokenIssue(t *testing.T) {
	api := newFakeAPI(t, map[string]reply{"POST /v1/tokens": {201, issuedBody}})
	code, stdout, stderr := runCLI(t, nil, "", "token", "issue", "--addr", api.srv.URL, "--admin-token", "ADMIN-TOKEN",
		"--username", "alice", "--realm", "corp", "--uid", "1000000", "--name", "laptop", "--scope", "read", "--scope", "write",
		"--expires-in", "1h", "--parent", "PARENTKEY", "--service", "billing", "--idempotency-key", "retry-1")
	if code != exitOK {
		t.Fatalf("token issue: exit %d, stderr %s", code, stderr)
	}
	if want := "tc_AAAAAAAAAAAAAAAAAAAAAA.c2VjcmV0c2VjcmV0c2VjcmV0c2Vj\n"; stdout != want {
		t.Errorf("token issue printed %q, want only the token text %q", stdout, want)
	}
	r := api.only()
	if r.Method != "POST" || r.Path != "/v1/tokens" {
		t.Errorf("request = %s %s, want POST /v1/tokens", r.Method, r.Path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer ADMIN-TOKEN" {
		t.Errorf("Authorization = %q, want the admin token", got)
	}
	if got := r.Header.Get("Idempotency-Key"); got != "retry-1" {
		t.Errorf("Idempotency-Key = %q, want retry-1", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		t.Fatalf("body %q: %v", r.Body, err)
	}
	want := map[string]any{"username": "alice", "realm": "corp", "uid": 1e6, "type": "user", "name": "laptop",
		"scopes": []any{"read", "write"}, "expires_in": 3600.0, "parent": "PARENTKEY", "service": "billing"}
	if !reflect.DeepEqual(body, want) {
		t.Errorf("body = %v, want %v", body, want)
	}
}

func TestTokenIssueMinimalAndJSON(t *testing.T) {
	api := newFakeAPI(t, map[string]reply{"POST /v1/tokens": {201, issuedBody}})
	code, stdout, stderr := runCLI(t, []string{"TOKENCACHE_ADDR=" + api.srv.URL, "TOKENCACHE_ADMIN_TOKEN=ENV-ADMIN"}, "",
		"token", "issue", "--username", "bob", "--no-expire", "-o", "json")
	if code != exitOK {
		t.Fatalf("token issue: exit %d, stderr %s", code, stderr)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || out["key"] != "AAAAAAAAAAAAAAAAAAAAAA" || out["token"] == nil {
		t.Errorf("token issue -o json printed %q (%v), want the whole answer", stdout, err)
	}
	r := api.only()
	if r.Body != `{"username":"bob","type":"user","no_expire":true}` {
		t.Errorf("body = %s, want only username, type and no_expire", r.Body)
	}
	if r.Header.Get("Idempotency-Key") != "" {
		t.Errorf("Idempotency-Key sent without --idempotency-key")
	}
	if got := r.Header.Get("Authorization"); got != "Bearer ENV-ADMIN" {
		t.Errorf("Authorization = %q, want the TOKENCACHE_ADMIN_TOKEN value", got)
	}
}

func TestTokenIssueUsageErrors(t *testing.T) {
	api := newFakeAPI(t, nil)
	for _, args := range [][]string{
		{"--expires-in", "1h", "--no-expire", "--username", "a"},
		{"--scope", "read"},
		{"--username", "a", "--type", "robot"},
		{"--username", "a", "--scope", "has space"},
		{"--username", "a", "--expires-in", "1500ms"},
		{"--username", "a", "-o", "yaml"},
	} {
		args = append([]string{"token", "issue", "--addr", api.srv.URL, "--admin-token", "x"}, args...)
		if code, _, stderr := runCLI(t, nil, "", args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %s)", args, code, exitUsage, stderr)
		}
	}
	if n := len(api.requests()); n != 0 {
		t.Errorf("usage errors sent %d requests, want 0", n)
	}
}

func TestTokenValidate(t *testing.T) {
	const tok = "tc_AAAAAAAAAAAAAAAAAAAAAA.c2VjcmV0c2VjcmV0c2VjcmV0c2Vj"
	valid := `{"active":true,"key":"AAAAAAAAAAAAAAAAAAAAAA","username":"alice","realm":"default","uid":1000000,"type":"user","scopes":["read","write"],"expires":"2026-12-01T00:00:00Z"}`
	tests := []struct {
		name    string
		rep     reply
		args    []string
		stdin   string
		code    int
		stdout  []string
		environ []string
	}{
		{"valid", reply{200, valid}, []string{tok}, "", exitOK,
			[]string{"active    true", "username  alice", "uid       1000000", "scopes    read write"}, nil},
		{"valid from stdin, admin token in env", reply{200, valid}, []string{"-"}, tok + "\n", exitOK,
			[]string{"active    true"}, []string{"TOKENCACHE_ADMIN_TOKEN=ADMIN-SHOULD-NOT-BE-SENT"}},
		{"valid json", reply{200, valid}, []string{"-o", "json", tok}, "", exitOK, []string{`"active": true`, `"uid": 1000000`}, nil},
		{"expired", reply{401, `{"active":false,"error":"expired"}`}, []string{tok}, "", exitError,
			[]string{"active  false", "error   expired"}, nil},
		{"missing scope", reply{403, `{"active":false,"error":"insufficient_scope"}`}, []string{"--scope", "admin", tok}, "", exitError,
			[]string{"insufficient_scope"}, nil},
		{"not json", reply{200, `{"active":false}`}, []string{"-o", "json", tok}, "", exitError, []string{`"active": false`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, map[string]reply{"GET /v1/validate": tt.rep})
			args := append([]string{"token", "validate", "--addr", api.srv.URL, "--scope", "read", "--scope", "write"}, tt.args...)
			code, stdout, stderr := runCLI(t, tt.environ, tt.stdin, args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %s)", code, tt.code, stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout = %q, want %q in it", stdout, s)
				}
			}
			r := api.only()
			if got := r.Header.Get("Authorization"); got != "Bearer "+tok {
				t.Errorf("Authorization = %q, want the validated token", got)
			}
			if strings.Contains(r.Path+r.Query.Encode()+r.Body, "c2VjcmV0") {
				t.Errorf("the token's secret appears outside the Authorization header: %+v", r)
			}
			if got := r.Query["scope"]; len(got) < 2 || got[0] != "read" || got[1] != "write" {
				t.Errorf("scope parameters = %q, want read, write, ...", got)
			}
			if r.Method != "GET" || r.Path != "/v1/validate" {
				t.Errorf("request = %s %s, want GET /v1/validate", r.Method, r.Path)
			}
		})
	}
}

func TestTokenRevoke(t *testing.T) {
	api := newFakeAPI(t, map[string]reply{"DELETE /v1/tokens/KEY1": {200, `{"revoked":["KEY1","CHILD1","CHILD2"]}`}})
	dataDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dataDir, "admin.token"), []byte("FILE-ADMIN\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, nil, "", "token", "revoke", "--addr", api.srv.URL, "--data-dir", dataDir, "KEY1")
	if code != exitOK {
		t.Fatalf("token revoke: exit %d, stderr %s", code, stderr)
	}
	if stdout != "KEY1\nCHILD1\nCHILD2\n" {
		t.Errorf("token revoke printed %q, want every revoked key", stdout)
	}
	r := api.only()
	if r.Method != "DELETE" || r.Path != "/v1/tokens/KEY1" || r.Header.Get("Authorization") != "Bearer FILE-ADMIN" {
		t.Errorf("request = %s %s with %q, want DELETE /v1/tokens/KEY1 with the admin token from the file",
			r.Method, r.Path, r.Header.Get("Authorization"))
	}

	// A whole token is refused: its secret would go into the URL.
	code, _, stderr = runCLI(t, nil, "", "token", "revoke", "--addr", api.srv.URL, "--admin-token", "x",
		"tc_AAAAAAAAAAAAAAAAAAAAAA.c2VjcmV0c2VjcmV0c2VjcmV0c2Vj")
	if code != exitUsage || !strings.Contains(stderr, "whole token") {
		t.Errorf("token revoke TOKEN: exit %d, stderr %q; want a usage error", code, stderr)
	}
	if n := len(api.requests()); n != 1 {
		t.Errorf("server received %d requests, want 1", n)
	}
}

func TestAdminTokenPrecedence(t *testing.T) {
	dataDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dataDir, "admin.token"), []byte("  FROM-FILE \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		flag    []string
		environ []string
		want    string
	}{
		{"flag", []string{"--admin-token", "FROM-FLAG"}, []string{"TOKENCACHE_ADMIN_TOKEN=FROM-ENV"}, "FROM-FLAG"},
		{"env", nil, []string{"TOKENCACHE_ADMIN_TOKEN=FROM-ENV"}, "FROM-ENV"},
		{"file", nil, nil, "FROM-FILE"},
	}
	for _, tt := range tests {
		api := newFakeAPI(t, map[string]reply{"GET /v1/tokens/K": {200, `{"key":"K"}`}})
		args := append([]string{"token", "info", "--addr", api.srv.URL, "--data-dir", dataDir, "K"}, tt.flag...)
		if code, _, stderr := runCLI(t, tt.environ, "", args...); code != exitOK {
			t.Fatalf("%s: exit %d, stderr %s", tt.name, code, stderr)
		}
		if got := api.only().Header.Get("Authorization"); got != "Bearer "+tt.want {
			t.Errorf("%s: Authorization = %q, want Bearer %s", tt.name, got, tt.want)
		}
	}

	// No token anywhere: an error before any request.
	api := newFakeAPI(t, nil)
	code, _, stderr := runCLI(t, nil, "", "token", "list", "--addr", api.srv.URL, "--data-dir", t.TempDir())
	if code != exitError || !strings.Contains(stderr, "error: no admin token") {
		t.Errorf("token list without an admin token: exit %d, stderr %q", code, stderr)
	}
	if n := len(api.requests()); n != 0 {
		t.Errorf("server received %d requests, want 0", n)
	}
}

func TestTokenInfo(t *testing.T) {
	body := `{"key":"K","username":"alice","type":"user","scopes":["a","b"],"created":"2026-11-01T10:00:00Z","expires":null,"uid":42,"extra_field":{"x":1}}`
	api := newFakeAPI(t, map[string]reply{"GET /v1/tokens/K": {200, body}})
	code, stdout, stderr := runCLI(t, nil, "", "token", "info", "--addr", api.srv.URL, "--admin-token", "A", "K")
	if code != exitOK {
		t.Fatalf("token info: exit %d, stderr %s", code, stderr)
	}
	want := "key          K\ntype         user\nusername     alice\nuid          42\nscopes       a b\n" +
		"created      2026-11-01T10:00:00Z\nexpires      never\nextra_field  {\"x\":1}\n"
	if stdout != want {
		t.Errorf("token info printed\n%s\nwant\n%s", stdout, want)
	}
	code, stdout, _ = runCLI(t, nil, "", "token", "info", "--addr", api.srv.URL, "--admin-token", "A", "-o", "json", "K")
	var m map[string]any
	if code != exitOK || json.Unmarshal([]byte(stdout), &m) != nil || m["username"] != "alice" {
		t.Errorf("token info -o json: exit %d, %q", code, stdout)
	}
}

func TestTokenList(t *testing.T) {
	rows := `[{"key":"K1","type":"user","username":"alice","name":"laptop","scopes":["a"],"created":"2026-11-01T10:00:00Z","expires":"2026-11-02T10:00:00Z"},
	          {"key":"K2","type":"session","username":"alice","scopes":[],"created":"2026-11-01T09:00:00Z"}]`
	for _, body := range []string{rows, `{"tokens":` + rows + `}`} {
		api := newFakeAPI(t, map[string]reply{"GET /v1/tokens": {200, body}})
		code, stdout, stderr := runCLI(t, nil, "", "token", "list", "--addr", api.srv.URL, "--admin-token", "A",
			"--username", "alice", "--type", "user", "--limit", "10")
		if code != exitOK {
			t.Fatalf("token list: exit %d, stderr %s", code, stderr)
		}
		want := "KEY  TYPE     USERNAME  NAME    SCOPES  CREATED               EXPIRES\n" +
			"K1   user     alice     laptop  a       2026-11-01T10:00:00Z  2026-11-02T10:00:00Z\n" +
			"K2   session  alice     -       -       2026-11-01T09:00:00Z  never\n"
		if stdout != want {
			t.Errorf("token list printed\n%s\nwant\n%s", stdout, want)
		}
		r := api.only()
		if q := r.Query; q.Get("username") != "alice" || q.Get("type") != "user" || q.Get("limit") != "10" {
			t.Errorf("query = %v, want username, type and limit", q)
		}
	}
	api := newFakeAPI(t, map[string]reply{"GET /v1/tokens": {200, rows}})
	code, stdout, _ := runCLI(t, nil, "", "token", "list", "--addr", api.srv.URL, "--admin-token", "A", "-o", "json")
	var list []map[string]any
	if code != exitOK || json.Unmarshal([]byte(stdout), &list) != nil || len(list) != 2 {
		t.Errorf("token list -o json: exit %d, %q", code, stdout)
	}
	if q := api.only().Query; len(q) != 0 {
		t.Errorf("query = %v, want none without filters", q)
	}
}

func TestAPIErrors(t *testing.T) {
	tests := []struct {
		name string
		rep  reply
		want string
	}{
		{"json error", reply{409, `{"error":"duplicate_name","message":"the user already has a live token with that name"}`},
			"error: duplicate_name: the user already has a live token with that name\n"},
		{"unauthorized", reply{401, `{"error":"unauthorized","message":"admin token required"}`},
			"error: unauthorized: admin token required\n"},
		{"not json", reply{502, "bad gateway"}, "error: http_502: bad gateway\n"},
		{"empty", reply{503, ""}, "error: http_503: Service Unavailable\n"},
	}
	for _, tt := range tests {
		api := newFakeAPI(t, map[string]reply{"POST /v1/tokens": tt.rep})
		code, stdout, stderr := runCLI(t, nil, "", "token", "issue", "--addr", api.srv.URL, "--admin-token", "A", "--username", "a")
		if code != exitError || stderr != tt.want || stdout != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and %q", tt.name, code, stdout, stderr, tt.want)
		}
	}

	// A 5xx from validate is an error, not an answer.
	api := newFakeAPI(t, map[string]reply{"GET /v1/validate": {503, `{"error":"stale","message":"node is out of contact with the cluster leader"}`}})
	code, _, stderr := runCLI(t, nil, "", "token", "validate", "--addr", api.srv.URL, "tok")
	if code != exitError || stderr != "error: stale: node is out of contact with the cluster leader\n" {
		t.Errorf("validate on 503: exit %d, stderr %q", code, stderr)
	}

	// Nobody listening.
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	code, _, stderr = runCLI(t, nil, "", "token", "validate", "--addr", strings.TrimPrefix(addr, "http://"), "tok")
	if code != exitError || !strings.Contains(stderr, "error: cannot reach tokencache at "+addr) {
		t.Errorf("validate with no server: exit %d, stderr %q", code, stderr)
	}
}

func TestNormalizeAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
		{"https://tc.example", "https://tc.example"},
	}
	for _, tt := range tests {
		if got := normalizeAddr(tt.in); got != tt.want {
			t.Errorf("normalizeAddr(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
