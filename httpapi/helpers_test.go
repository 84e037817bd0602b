package httpapi

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/tokencache/tokencache/token"
)

const testAdminToken = "adm_0123456789abcdefABCDEF-_xyz"

// testServer is a real fasthttp server on an in-memory listener.
type testServer struct {
	srv    *Server
	fake   *fakeTokens
	reg    *prometheus.Registry
	ln     *fasthttputil.InmemoryListener
	client *fasthttp.Client
}

// testConfig is DefaultConfig with the test admin token, no drain delay and
// a small body limit.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.AdminToken = testAdminToken
	cfg.DrainDelay = 0
	cfg.MaxBodyBytes = 4 << 10
	return cfg
}

func mustServer(t testing.TB, f *fakeTokens, mod func(*Config)) *testServer {
	t.Helper()
	cfg := testConfig()
	cfg.Now = func() time.Time { return f.now }
	if mod != nil {
		mod(&cfg)
	}
	ts := serveTest(t, cfg, f)
	ts.fake = f
	return ts
}

// serveTest starts a server with cfg over svc on an in-memory listener; a
// cleanup shuts it down.
func serveTest(t testing.TB, cfg Config, svc Tokens) *testServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(cfg, svc, testLogger(t), reg, reg)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	ln := fasthttputil.NewInmemoryListener()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	ts := &testServer{
		srv: s, reg: reg, ln: ln,
		client: &fasthttp.Client{
			Dial:                          func(string) (net.Conn, error) { return ln.Dial() },
			DisableHeaderNamesNormalizing: true, // send headers exactly as the test writes them
			DisablePathNormalizing:        true, // and paths too ("/../", "%2e")
			MaxResponseBodySize:           1 << 20,
		},
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown() = %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve() = %v", err)
		}
	})
	return ts
}

// req describes one request.
type req struct {
	method      string
	path        string
	headers     [][2]string // sent as given, repeats allowed
	contentType string
	body        string
	admin       bool // add the admin token
	bearer      string
}

// resp is an answer, copied out of fasthttp.
type resp struct {
	status  int
	body    string
	headers map[string][]string
}

// header returns the first value of a header (names are case-insensitive).
func (r *resp) header(name string) string {
	if v := r.headers[strings.ToLower(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (r *resp) has(name string) bool { _, ok := r.headers[strings.ToLower(name)]; return ok }

// json decodes the body into a generic value.
func (r *resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

func (ts *testServer) do(t testing.TB, rq req) *resp {
	t.Helper()
	fr := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(fr)
	fr.Header.DisableNormalizing()
	fr.SetRequestURI("http://tokencache" + rq.path)
	fr.URI().DisablePathNormalizing = true
	if rq.method == "" {
		rq.method = fasthttp.MethodGet
	}
	fr.Header.SetMethod(rq.method)
	if rq.admin {
		fr.Header.Add("Authorization", "Bearer "+testAdminToken)
	}
	if rq.bearer != "" {
		fr.Header.Add("Authorization", "Bearer "+rq.bearer)
	}
	for _, h := range rq.headers {
		fr.Header.Add(h[0], h[1])
	}
	if rq.contentType != "" {
		fr.Header.SetContentType(rq.contentType)
	}
	if rq.body != "" {
		fr.SetBodyString(rq.body)
	}
	fresp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(fresp)
	if err := ts.client.DoTimeout(fr, fresp, 5*time.Second); err != nil {
		t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	return copyResp(fresp)
}

func copyResp(fresp *fasthttp.Response) *resp {
	out := &resp{status: fresp.StatusCode(), body: string(fresp.Body()), headers: map[string][]string{}}
	for k, v := range fresp.Header.All() {
		name := strings.ToLower(string(k))
		out.headers[name] = append(out.headers[name], string(v))
	}
	return out
}

// raw sends bytes as they are on a new connection and reads one response.
func (ts *testServer) raw(t testing.TB, data string) *resp {
	t.Helper()
	c, err := ts.ln.Dial()
	if err != nil {
		t.Fatalf("Dial() = %v", err)
	}
	defer c.Close()
	go func() { _, _ = c.Write([]byte(data)) }()
	fresp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(fresp)
	if err := fresp.Read(bufio.NewReader(c)); err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	return copyResp(fresp)
}

// wantStatus fails unless r has status code.
func wantStatus(t testing.TB, what string, r *resp, code int) {
	t.Helper()
	if r.status != code {
		t.Fatalf("%s: status = %d, want %d (body %s)", what, r.status, code, r.body)
	}
}

// wantBody fails unless r's body is exactly body.
func wantBody(t testing.TB, what string, r *resp, body string) {
	t.Helper()
	if r.body != body {
		t.Errorf("%s: body =\n  %s\nwant\n  %s", what, r.body, body)
	}
}

// wantError fails unless r is status with {"error":code,…} and a message.
func wantError(t testing.TB, what string, r *resp, status int, code string) {
	t.Helper()
	wantStatus(t, what, r, status)
	m := r.json(t)
	if m["error"] != code {
		t.Errorf("%s: error = %v, want %q (body %s)", what, m["error"], code, r.body)
	}
	if msg, _ := m["message"].(string); msg == "" {
		t.Errorf("%s: no message in %s", what, r.body)
	}
	if len(m) != 2 {
		t.Errorf("%s: body %s has members besides error and message", what, r.body)
	}
	if ct := r.header("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type = %q, want application/json", what, ct)
	}
}

// wantNoWrites fails when the fake saw a write call.
func wantNoWrites(t testing.TB, what string, f *fakeTokens) {
	t.Helper()
	if w := f.writeLog(); len(w) != 0 {
		t.Errorf("%s: the service saw writes %v, want none", what, w)
	}
}

func wantEqual(t testing.TB, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// userToken is a valid user token record for tests.
func userToken(f *fakeTokens, scopes string) *token.Token {
	sc, err := token.ParseScopes(scopes)
	if err != nil {
		panic(err)
	}
	return &token.Token{
		Key:      token.NewKey(),
		Hash:     token.Hash{1},
		Created:  token.At(f.now.Add(-time.Minute)),
		Expires:  token.At(f.now.Add(time.Hour)),
		Username: "alice", Realm: "default", UID: 1001, HasUID: true,
		Scopes: sc, Type: token.TypeUser, Format: token.FormatOpaque,
	}
}

// expiresText is the RFC 3339 form of a record's expiry.
func expiresText(t *token.Token) string { return t.Expires.String() }

func containsAny(s string, subs ...string) string {
	for _, sub := range subs {
		if sub != "" && strings.Contains(s, sub) {
			return sub
		}
	}
	return ""
}

// counterValue reads a counter.
func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatalf("reading a counter: %v", err)
	}
	return m.GetCounter().GetValue()
}

func base64URL(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
