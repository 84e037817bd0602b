package jwt

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/tokencache/tokencache/internal/fakeclock"
	"github.com/tokencache/tokencache/token"
)

// testIdP is an identity provider on loopback: it serves a JWKS that a
// test changes as it goes, and counts the fetches.
type testIdP struct {
	srv  *httptest.Server
	hits atomic.Int64

	mu     sync.Mutex
	body   []byte
	status int               // 0: 200
	header map[string]string // extra response headers
	etag   string            // when set: ETag and 304 on If-None-Match
}

func newTestIdP(tb testing.TB, keys ...*Key) *testIdP {
	tb.Helper()
	idp := &testIdP{}
	idp.setKeys(keys...)
	idp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idp.hits.Add(1)
		idp.mu.Lock()
		body, status, etag := idp.body, idp.status, idp.etag
		for k, v := range idp.header {
			w.Header().Set(k, v)
		}
		idp.mu.Unlock()
		if status != 0 {
			w.WriteHeader(status)
			return
		}
		if etag != "" {
			w.Header().Set("ETag", etag)
			if r.Header.Get("If-None-Match") == etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(body)
	}))
	tb.Cleanup(idp.srv.Close)
	return idp
}

func (idp *testIdP) url() string { return idp.srv.URL + "/.well-known/jwks.json" }

// setKeys serves the public JWKS of keys.
func (idp *testIdP) setKeys(keys ...*Key) { idp.setBody(marshalJWKS(keys)) }

func (idp *testIdP) setBody(b []byte) {
	idp.mu.Lock()
	idp.body = b
	idp.mu.Unlock()
}

func (idp *testIdP) setStatus(code int) {
	idp.mu.Lock()
	idp.status = code
	idp.mu.Unlock()
}

func (idp *testIdP) setHeader(k, v string) {
	idp.mu.Lock()
	if idp.header == nil {
		idp.header = map[string]string{}
	}
	idp.header[k] = v
	idp.mu.Unlock()
}

// newIdPKey generates an Ed25519 key of kid for an IdP.
func newIdPKey(tb testing.TB, alg, kid string) *Key {
	tb.Helper()
	k, err := GenerateKey(alg, kid)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

const testIss = "https://idp.test"

// testTrustedConfig is a trusted issuer that fetches idp's JWKS.
func testTrustedConfig(idp *testIdP) TrustedConfig {
	return TrustedConfig{Issuer: testIss, JWKSURL: idp.url(), Audiences: []string{"gateway"}}
}

// logBuffer is a slog handler target that tests read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func mustTrusted(tb testing.TB, cfg TrustedConfig, opts ...TrustedOption) (*Trusted, *logBuffer) {
	tb.Helper()
	logs := &logBuffer{}
	opts = append([]TrustedOption{WithLogger(slog.New(slog.NewTextHandler(logs, nil)))}, opts...)
	tr, err := NewTrusted(cfg, opts...)
	if err != nil {
		tb.Fatalf("NewTrusted: %v", err)
	}
	tb.Cleanup(func() { _ = tr.Close() })
	return tr, logs
}

// waitFor polls cond until it holds or 10s pass.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// mustStart starts tr's background refresh and waits for its first load.
func mustStart(tb testing.TB, tr *Trusted) {
	tb.Helper()
	if err := tr.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	waitFor(tb, "the first load", func() bool { return !tr.Status().NextRefresh.IsZero() })
}

func hasKid(tr *Trusted, kid string) bool { return slices.Contains(tr.Status().Kids, kid) }

func TestTrustedConfigValidate(t *testing.T) {
	ok := TrustedConfig{Issuer: "https://idp", JWKSURL: "https://idp/jwks", Audiences: []string{"a"}}
	for _, u := range []string{"https://idp.example/jwks", "http://127.0.0.1:8080/jwks", "http://[::1]/jwks", "http://localhost:1/jwks"} {
		c := ok
		c.JWKSURL = u
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(jwks_url %q) = %v, want nil", u, err)
		}
	}
	c := ok
	c.JWKSURL, c.JWKSFile, c.Audiences = "", "/etc/idp.jwks", []string{"*"}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate(jwks_file, audiences *) = %v, want nil", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*TrustedConfig)
		want []string
	}{
		{"no issuer", func(c *TrustedConfig) { c.Issuer = "" }, []string{"issuer is required"}},
		{"no source", func(c *TrustedConfig) { c.JWKSURL = "" }, []string{"one of jwks_file and jwks_url is required"}},
		{"both sources", func(c *TrustedConfig) { c.JWKSFile = "/x" }, []string{"name exactly one"}},
		{"plain http", func(c *TrustedConfig) { c.JWKSURL = "http://idp.example/jwks" }, []string{"must use https", "loopback"}},
		{"http on a look-alike host", func(c *TrustedConfig) { c.JWKSURL = "http://127.0.0.1.example/jwks" }, []string{"must use https"}},
		{"relative url", func(c *TrustedConfig) { c.JWKSURL = "/jwks" }, []string{"not an absolute http(s) URL"}},
		{"ftp", func(c *TrustedConfig) { c.JWKSURL = "ftp://idp/jwks" }, []string{"not an absolute http(s) URL"}},
		{"refresh too short", func(c *TrustedConfig) { c.Refresh = 5 * time.Second }, []string{"refresh 5s is outside"}},
		{"refresh too long", func(c *TrustedConfig) { c.Refresh = 48 * time.Hour }, []string{"refresh 48h0m0s is outside"}},
		{"no audiences", func(c *TrustedConfig) { c.Audiences = nil }, []string{"audiences is required"}},
		{"star and more", func(c *TrustedConfig) { c.Audiences = []string{"*", "a"} }, []string{`"*" (any) must be the only value`}},
		{"empty audience", func(c *TrustedConfig) { c.Audiences = []string{""} }, []string{"empty value"}},
		{"required claim twice", func(c *TrustedConfig) { c.RequiredClaims = []string{"email", "email"} }, []string{`names "email" twice`}},
		{"every problem", func(c *TrustedConfig) { c.Issuer, c.JWKSURL, c.Audiences = "", "", nil },
			[]string{"issuer is required", "one of jwks_file and jwks_url", "audiences is required"}},
	} {
		c := ok
		tc.edit(&c)
		err := c.Validate()
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Validate() = %v, want ErrConfig", tc.name, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: Validate() = %q, want it to say %q", tc.name, err, w)
			}
		}
		if _, err := NewTrusted(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: NewTrusted = %v, want ErrConfig", tc.name, err)
		}
	}
	// Credentials in a URL never reach an error.
	c = ok
	c.JWKSURL = "http://user:hunter2@idp.example/jwks?api_key=s3cret"
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Validate(url with credentials) = %v, want an error without them", err)
	}
}

func TestTrustedDefaults(t *testing.T) {
	idp := newTestIdP(t, newIdPKey(t, AlgEdDSA, "a"))
	tr, _ := mustTrusted(t, testTrustedConfig(idp))
	c := tr.Config()
	if c.Refresh != DefaultTrustedRefresh || c.UsernameClaim != "sub" || c.ScopesClaim != "scope" {
		t.Errorf("Config() = %+v, want refresh 5m, username claim sub, scopes claim scope", c)
	}
	if tr.Name() != testIss || !slices.Equal(tr.Audiences(), []string{"gateway"}) {
		t.Errorf("Name, Audiences = %q, %q", tr.Name(), tr.Audiences())
	}
	if idp.hits.Load() != 0 {
		t.Errorf("NewTrusted fetched the JWKS URL %d times, want 0 (Start or a first kid fetches)", idp.hits.Load())
	}
}

// TestTrustedRotation: a kid the set does not know makes the background
// refresh fetch early, at most once per MinTrustedRefresh however many
// unknown kids arrive, so a new IdP key is accepted soon and forged kids
// cannot make us hammer the IdP. Key itself never blocks or fetches.
func TestTrustedRotation(t *testing.T) {
	a, b := newIdPKey(t, AlgEdDSA, "a"), newIdPKey(t, AlgES256, "b")
	idp := newTestIdP(t, a)
	clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tr, _ := mustTrusted(t, testTrustedConfig(idp), WithNow(clk.Now))

	// Before Start nothing is fetched, not even for an unknown kid.
	if _, ok := tr.Key("a"); ok || idp.hits.Load() != 0 {
		t.Fatalf("Key(a) before Start: ok=%v, %d IdP hits; want nothing, no fetch", ok, idp.hits.Load())
	}
	mustStart(t, tr)
	if k, ok := tr.Key("a"); !ok || k.ID() != "a" || k.CanSign() {
		t.Fatalf("Key(a) = %v, %v; want the public key a", k, ok)
	}
	if got := idp.hits.Load(); got != 1 {
		t.Fatalf("IdP hits after Start = %d, want 1", got)
	}

	// The IdP rotates: b appears. Within MinTrustedRefresh of the last
	// fetch, b is not fetched for.
	idp.setKeys(a, b)
	clk.Advance(MinTrustedRefresh - time.Second)
	if _, ok := tr.Key("b"); ok {
		t.Fatalf("Key(b) found before any refresh")
	}
	if st := tr.Status(); st.RateLimited != 1 || idp.hits.Load() != 1 {
		t.Fatalf("after Key(b) within the rate limit: %d rate limited, %d IdP hits; want 1 and 1", st.RateLimited, idp.hits.Load())
	}
	clk.Advance(time.Second)
	if _, ok := tr.Key("b"); ok {
		t.Fatalf("Key(b) found at once: Key must not fetch itself")
	}
	waitFor(t, "the early fetch to bring b", func() bool { return hasKid(tr, "b") })
	if k, ok := tr.Key("b"); !ok || k.Alg() != AlgES256 {
		t.Fatalf("Key(b) after the early fetch = %v, %v; want the ES256 key b", k, ok)
	}
	if got := idp.hits.Load(); got != 2 {
		t.Fatalf("IdP hits = %d, want 2", got)
	}

	// A flood of forged kids costs at most one fetch per interval.
	for round := int64(1); round <= 3; round++ {
		clk.Advance(MinTrustedRefresh)
		for i := 0; i < 200; i++ {
			if _, ok := tr.Key(fmt.Sprintf("forged-%d-%d", round, i)); ok {
				t.Fatal("a forged kid was found")
			}
		}
		waitFor(t, "the round's one fetch", func() bool { return idp.hits.Load() == 2+round })
	}
	time.Sleep(50 * time.Millisecond) // room for a fetch that should not happen
	if got := idp.hits.Load(); got != 5 {
		t.Errorf("IdP hits after 3 intervals of 200 forged kids = %d, want 5 (one per interval)", got)
	}
	if st := tr.Status(); st.RateLimited < 1 || st.Loads != 5 || !slices.Equal(st.Kids, []string{"a", "b"}) {
		t.Errorf("Status() = %+v, want the rate limited count kept, 5 loads, kids [a b]", st)
	}

	// The IdP drops a: a refresh forgets it.
	idp.setKeys(b)
	if err := tr.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := tr.Key("a"); ok {
		t.Errorf("Key(a) found after the IdP dropped it")
	}
}

// TestTrustedConcurrentMissesShareOneFetch: many verifications naming a
// new kid at once cause one fetch, not one each.
func TestTrustedConcurrentMissesShareOneFetch(t *testing.T) {
	a, b := newIdPKey(t, AlgEdDSA, "a"), newIdPKey(t, AlgEdDSA, "b")
	idp := newTestIdP(t, a)
	clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tr, _ := mustTrusted(t, testTrustedConfig(idp), WithNow(clk.Now))
	mustStart(t, tr)
	idp.setKeys(a, b)
	clk.Advance(MinTrustedRefresh)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				tr.Key("b")
			}
		}()
	}
	wg.Wait()
	waitFor(t, "b", func() bool { return hasKid(tr, "b") })
	time.Sleep(50 * time.Millisecond)
	if got := idp.hits.Load(); got != 2 {
		t.Errorf("IdP hits for 1000 concurrent lookups of a new kid = %d, want 2 (the first load and one early)", got)
	}
}

// TestTrustedServerDownKeepsLastGood: a failing IdP leaves the last good
// set in use, says why in Status, and logs without key material.
func TestTrustedServerDownKeepsLastGood(t *testing.T) {
	a := newIdPKey(t, AlgEdDSA, "a")
	idp := newTestIdP(t, a)
	tr, logs := mustTrusted(t, testTrustedConfig(idp))
	ctx := context.Background()
	if err := tr.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	good := tr.Status().LastRefresh

	idp.setStatus(http.StatusInternalServerError)
	err := tr.Refresh(ctx)
	if err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("Refresh against a 500 = %v, want an error naming the status", err)
	}
	if _, ok := tr.Key("a"); !ok {
		t.Fatal("Key(a) lost after a failed refresh")
	}
	idp.setStatus(0)
	idp.setBody([]byte(`{"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "z", "x": "not base64!"}]}`))
	if err := tr.Refresh(ctx); err == nil {
		t.Fatal("Refresh of a JWKS without a usable key succeeded")
	}
	idp.setBody([]byte(`<html>maintenance</html>`))
	if err := tr.Refresh(ctx); err == nil {
		t.Fatal("Refresh of an HTML page succeeded")
	}
	idp.srv.Close() // connection refused from now on
	if err := tr.Refresh(ctx); err == nil {
		t.Fatal("Refresh against a closed server succeeded")
	}
	if k, ok := tr.Key("a"); !ok || k.ID() != "a" {
		t.Fatal("Key(a) lost while the IdP is down")
	}
	st := tr.Status()
	if st.LastError == "" || st.Failures != 4 || !st.LastRefresh.Equal(good) || !slices.Equal(st.Kids, []string{"a"}) {
		t.Errorf("Status() = %+v, want the last error, 4 failures, the last good refresh time and kids [a]", st)
	}
	out := logs.String()
	if strings.Count(out, "cannot refresh the trusted issuer's keys") != 4 {
		t.Errorf("logs = %q, want one warning per failed refresh", out)
	}
	assertNoMaterial(t, out, a.Public().(ed25519.PublicKey))
	assertNoMaterial(t, st.LastError, a.Public().(ed25519.PublicKey))
}

func TestTrustedOversizedJWKSRefused(t *testing.T) {
	a := newIdPKey(t, AlgEdDSA, "a")
	big := marshalJWKS([]*Key{a})
	big = append(big[:len(big)-1], []byte(`,"pad":"`+strings.Repeat("x", MaxJWKSSize)+`"}`)...)
	if err := json.Unmarshal(big, new(any)); err != nil {
		t.Fatal(err)
	}
	for _, chunked := range []bool{false, true} {
		var hits atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			if !chunked {
				w.Header().Set("Content-Length", strconv.Itoa(len(big)))
				_, _ = w.Write(big)
				return
			}
			// No Content-Length: the body is streamed in chunks.
			for b := big; len(b) > 0; {
				n := min(len(b), 64<<10)
				_, _ = w.Write(b[:n])
				w.(http.Flusher).Flush()
				b = b[n:]
			}
		}))
		tr, _ := mustTrusted(t, TrustedConfig{Issuer: testIss, JWKSURL: srv.URL, Audiences: []string{"*"}})
		err := tr.Refresh(context.Background())
		if err == nil || !strings.Contains(err.Error(), "more than") || !errors.Is(err, err) {
			t.Errorf("chunked=%v: Refresh of a %d-byte JWKS = %v, want a size refusal", chunked, len(big), err)
		}
		if _, ok := tr.Key("a"); ok {
			t.Errorf("chunked=%v: a key from an oversized JWKS is in use", chunked)
		}
		srv.Close()
	}
	// A file too.
	path := filepath.Join(t.TempDir(), "big.jwks")
	if err := os.WriteFile(path, big, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewTrusted(TrustedConfig{Issuer: testIss, JWKSFile: path, Audiences: []string{"*"}}); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("NewTrusted(oversized JWKS file) = %v, want a size refusal", err)
	}
}

// TestTrustedRefusesSecretsInJWKS: a JWKS that holds a private key or an
// HS256 secret is refused whole (the last good set stays), and the
// refusal never quotes the material.
func TestTrustedRefusesSecretsInJWKS(t *testing.T) {
	for _, alg := range []string{AlgEdDSA, AlgES256, AlgRS256, AlgHS256} {
		k := mustKey(t, alg)
		good := newIdPKey(t, AlgEdDSA, "good")
		priv := privateJWK(t, k)
		var pub map[string]any
		if err := json.Unmarshal(good.publicJWK(t), &pub); err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"keys": []any{pub, priv}})

		idp := newTestIdP(t, good)
		tr, logs := mustTrusted(t, testTrustedConfig(idp))
		if err := tr.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		idp.setBody(body)
		err := tr.Refresh(context.Background())
		want := "is a private key"
		if alg == AlgHS256 {
			want = "HS256 shared secret is not supported"
		}
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, ErrKeySet) {
			t.Errorf("%s: Refresh of a JWKS with a private key = %v, want ErrKeySet saying %q", alg, err, want)
		}
		if !slices.Equal(tr.Status().Kids, []string{"good"}) {
			t.Errorf("%s: kids after the refusal = %v, want the last good [good]", alg, tr.Status().Kids)
		}
		var secret []byte // base64url already
		if alg == AlgHS256 {
			secret = []byte(priv["k"].(string))
		} else {
			secret = []byte(priv["d"].(string))
		}
		for _, s := range []string{err.Error(), logs.String(), fmt.Sprint(tr.Status())} {
			if bytes.Contains([]byte(s), secret[:12]) {
				t.Errorf("%s: %q quotes the private material", alg, s)
			}
		}

		// The same set in a file fails NewTrusted.
		path := filepath.Join(t.TempDir(), "idp.jwks")
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := NewTrusted(TrustedConfig{Issuer: testIss, JWKSFile: path, Audiences: []string{"*"}}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: NewTrusted(JWKS file with a private key) = %v, want %q", alg, err, want)
		}
	}
}

// TestTrustedSkipsKeysItCannotUse: an encryption key, or a key type we do
// not verify, is left out of the set (and named in Status) without hiding
// the IdP's usable keys.
func TestTrustedSkipsKeysItCannotUse(t *testing.T) {
	a := newIdPKey(t, AlgRS256, "rsa")
	var pub map[string]any
	if err := json.Unmarshal(a.publicJWK(t), &pub); err != nil {
		t.Fatal(err)
	}
	enc := map[string]any{"kty": "RSA", "kid": "enc-1", "use": "enc", "n": pub["n"], "e": pub["e"]}
	p384 := map[string]any{"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AAAA", "y": "AAAA"}
	noKid := map[string]any{"kty": "RSA", "n": pub["n"], "e": pub["e"]}
	body, _ := json.Marshal(map[string]any{"keys": []any{enc, p384, pub, noKid}})
	idp := newTestIdP(t)
	idp.setBody(body)
	tr, _ := mustTrusted(t, testTrustedConfig(idp))
	if err := tr.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := tr.Status()
	if !slices.Equal(st.Kids, []string{"rsa"}) || len(st.Skipped) != 3 {
		t.Fatalf("Status() = %+v, want kids [rsa] and 3 skipped", st)
	}
	for i, w := range []string{"enc-1", "p384", "#3"} {
		if !strings.HasPrefix(st.Skipped[i], w+": ") {
			t.Errorf("Skipped[%d] = %q, want it to name %q", i, st.Skipped[i], w)
		}
	}
	// Only unusable keys: an error, not an empty set.
	body, _ = json.Marshal(map[string]any{"keys": []any{enc, p384}})
	idp.setBody(body)
	if err := tr.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "no usable signature key") {
		t.Errorf("Refresh of a JWKS with no usable key = %v", err)
	}
	if _, ok := tr.Key("rsa"); !ok {
		t.Error("the last good key was dropped")
	}
}

func TestTrustedETagNotModified(t *testing.T) {
	a := newIdPKey(t, AlgEdDSA, "a")
	idp := newTestIdP(t, a)
	idp.mu.Lock()
	idp.etag = `"v1"`
	idp.mu.Unlock()
	tr, _ := mustTrusted(t, testTrustedConfig(idp))
	for i := 0; i < 3; i++ {
		if err := tr.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := tr.Key("a"); !ok || idp.hits.Load() != 3 {
		t.Errorf("after 3 refreshes (two 304): Key(a) ok=%v, hits %d; want the key and 3 hits", ok, idp.hits.Load())
	}
}

func TestTrustedRedirects(t *testing.T) {
	a := newIdPKey(t, AlgEdDSA, "a")
	idp := newTestIdP(t, a)
	other := httptest.NewServer(http.RedirectHandler(idp.url(), http.StatusFound))
	defer other.Close()
	tr, _ := mustTrusted(t, TrustedConfig{Issuer: testIss, JWKSURL: other.URL, Audiences: []string{"*"}})
	if err := tr.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "another host") {
		t.Errorf("Refresh through a redirect to another host = %v, want a refusal", err)
	}
	if idp.hits.Load() != 0 {
		t.Errorf("the redirect was followed (%d hits)", idp.hits.Load())
	}

	// A redirect on the same host is followed.
	mux := http.NewServeMux()
	mux.Handle("/old", http.RedirectHandler("/new", http.StatusMovedPermanently))
	mux.HandleFunc("/new", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(marshalJWKS([]*Key{a})) })
	same := httptest.NewServer(mux)
	defer same.Close()
	tr2, _ := mustTrusted(t, TrustedConfig{Issuer: testIss, JWKSURL: same.URL + "/old", Audiences: []string{"*"}})
	if err := tr2.Refresh(context.Background()); err != nil {
		t.Errorf("Refresh through a same-host redirect = %v", err)
	}
}

// TestTrustedSchedule: the background refresh honours a shorter
// Cache-Control max-age within [max(Refresh/4, 10s), Refresh] and backs off
// after failures.
func TestTrustedSchedule(t *testing.T) {
	a := newIdPKey(t, AlgEdDSA, "a")
	idp := newTestIdP(t, a)
	tr, _ := mustTrusted(t, testTrustedConfig(idp)) // Refresh 5m
	ctx := context.Background()
	for _, tc := range []struct {
		cc   string
		want time.Duration
	}{
		{"", 5 * time.Minute},
		{"public, max-age=120", 120 * time.Second},
		{"max-age=60", 75 * time.Second}, // floor Refresh/4
		{"max-age=86400", 5 * time.Minute},
		{"no-store", 75 * time.Second},
		{"max-age=bogus", 5 * time.Minute},
	} {
		idp.setHeader("Cache-Control", tc.cc)
		if err := tr.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if got := tr.nextDelay(); got != tc.want {
			t.Errorf("Cache-Control %q: next refresh in %v, want %v", tc.cc, got, tc.want)
		}
	}
	idp.setStatus(http.StatusServiceUnavailable)
	for _, want := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute} {
		_ = tr.Refresh(ctx)
		if got := tr.nextDelay(); got != want {
			t.Errorf("after %d failures: next refresh in %v, want %v", tr.Status().Failures, got, want)
		}
	}
	idp.setStatus(0)
	idp.setHeader("Cache-Control", "")
	if err := tr.Refresh(ctx); err != nil || tr.nextDelay() != 5*time.Minute {
		t.Errorf("after recovery: %v, next refresh in %v, want 5m", err, tr.nextDelay())
	}
}

// TestTrustedStartClose: the background loop fetches at once, reports
// its next refresh, and stops on Close.
func TestTrustedStartClose(t *testing.T) {
	a := newIdPKey(t, AlgEdDSA, "a")
	idp := newTestIdP(t, a)
	tr, _ := mustTrusted(t, testTrustedConfig(idp))
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(context.Background()); err == nil {
		t.Error("a second Start succeeded")
	}
	waitFor(t, "the first load", func() bool { return !tr.Status().NextRefresh.IsZero() })
	if st := tr.Status(); !slices.Equal(st.Kids, []string{"a"}) || st.Loads != 1 {
		t.Errorf("Status() after Start = %+v, want kids [a] and 1 load", st)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if !tr.Status().NextRefresh.IsZero() {
		t.Error("NextRefresh still set after Close")
	}
	if _, ok := tr.Key("a"); !ok {
		t.Error("Key(a) lost after Close")
	}
	hits := idp.hits.Load()
	if _, ok := tr.Key("new"); ok || idp.hits.Load() != hits || tr.Start(context.Background()) == nil {
		t.Error("an unknown kid fetched after Close, or Start after Close succeeded")
	}
}

// TestTrustedFileReload: a JWKS file is read again when it changes.
func TestTrustedFileReload(t *testing.T) {
	a, b := newIdPKey(t, AlgEdDSA, "a"), newIdPKey(t, AlgEdDSA, "b")
	path := filepath.Join(t.TempDir(), "idp.jwks")
	write := func(keys []*Key, mtime time.Time) {
		if err := os.WriteFile(path, marshalJWKS(keys), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now().Add(-time.Hour)
	write([]*Key{a}, t0)
	clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tr, _ := mustTrusted(t, TrustedConfig{Issuer: testIss, JWKSFile: path, Audiences: []string{"*"}}, WithNow(clk.Now))
	if _, ok := tr.Key("a"); !ok {
		t.Fatal("Key(a) not loaded from the file")
	}
	// Same size and mtime: not read again (a changed body would show).
	write([]*Key{b}, t0)
	if err := tr.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tr.Status().Kids, []string{"a"}) {
		t.Errorf("an unchanged file (same mtime and size) was read again: kids %v", tr.Status().Kids)
	}
	// Changed: an unknown kid makes the running refresh look at once.
	mustStart(t, tr)
	write([]*Key{a, b}, t0.Add(time.Minute))
	clk.Advance(MinTrustedRefresh)
	tr.Key("b")
	waitFor(t, "b from the changed file", func() bool { return hasKid(tr, "b") })
	// A broken file keeps the last good set.
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := tr.Refresh(context.Background()); err == nil {
		t.Error("Refresh of a broken file succeeded")
	}
	if !slices.Equal(tr.Status().Kids, []string{"a", "b"}) {
		t.Errorf("kids after a broken file = %v, want the last good [a b]", tr.Status().Kids)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := tr.Refresh(context.Background()); err == nil {
		t.Error("Refresh of a missing file succeeded")
	}
	if _, ok := tr.Key("a"); !ok {
		t.Error("Key(a) lost when the file went missing")
	}
}

// testClaims decodes claims as they arrive in a token.
func testClaims(tb testing.TB, m map[string]any) *Claims {
	tb.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	c := &Claims{}
	if err := json.Unmarshal(b, &c.RegisteredClaims); err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(b, &c.Extra); err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestTrustedRecord(t *testing.T) {
	iat := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	base := func() map[string]any {
		return map[string]any{
			"iss": testIss, "sub": "alice", "aud": []string{"gateway", "other"}, "jti": "j-1",
			"iat": iat.Unix(), "exp": iat.Add(time.Hour).Unix(),
		}
	}
	idp := newTestIdP(t)
	tr, _ := mustTrusted(t, testTrustedConfig(idp))

	rec, err := tr.Record(testClaims(t, base()))
	if err != nil {
		t.Fatal(err)
	}
	want := &token.Token{
		Key: ExternalKey(testIss, "j-1"), Created: token.At(iat), Expires: token.At(iat.Add(time.Hour)),
		Username: "alice", Realm: token.DefaultRealm, Format: token.FormatJWT, Type: token.TypeOAuth,
		Ext: &token.Extra{Audience: "gateway other"},
	}
	if !reflect.DeepEqual(rec, want) {
		t.Errorf("Record() = %+v %+v\nwant       %+v %+v", rec, *rec.Ext, want, *want.Ext)
	}

	for _, tc := range []struct {
		name   string
		edit   func(map[string]any)
		scopes token.Scopes
	}{
		{"scope string", func(m map[string]any) { m["scope"] = "write:x  read:x" }, "read:x write:x"},
		{"scope array", func(m map[string]any) { m["scope"] = []string{"write:x", "read:x"} }, "read:x write:x"},
		{"scope absent", func(m map[string]any) {}, ""},
	} {
		m := base()
		tc.edit(m)
		rec, err := tr.Record(testClaims(t, m))
		if err != nil || rec.Scopes != tc.scopes {
			t.Errorf("%s: Record() = %v, %v; want scopes %q", tc.name, rec, err, tc.scopes)
		}
	}

	// Mapping other claims: username from preferred_username, scopes from
	// an scp array, client_id from azp, required claims.
	cfg := testTrustedConfig(idp)
	cfg.UsernameClaim, cfg.ScopesClaim, cfg.RequiredClaims = "preferred_username", "scp", []string{"email", "tid"}
	tr2, _ := mustTrusted(t, cfg)
	m := base()
	m["preferred_username"], m["scp"], m["azp"], m["email"], m["tid"] = "bob@example.org", []string{"b", "a"}, "web-app", "bob@example.org", "t1"
	m["nbf"], m["iat"] = iat.Add(time.Minute).Unix(), nil
	rec, err = tr2.Record(testClaims(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Username != "bob@example.org" || rec.Scopes != "a b" || rec.ClientID() != "web-app" || rec.Created != token.At(iat.Add(time.Minute)) {
		t.Errorf("Record() = %+v %+v, want username bob@example.org, scopes \"a b\", client web-app, created nbf", rec, *rec.Ext)
	}

	for _, tc := range []struct {
		name string
		tr   *Trusted
		edit func(map[string]any)
		want string
	}{
		{"required claim missing", tr2, func(m map[string]any) { delete(m, "email") }, `claim "email" is required`},
		{"required claim null", tr2, func(m map[string]any) { m["tid"] = nil }, `claim "tid" is required`},
		{"username claim missing", tr2, func(m map[string]any) { delete(m, "preferred_username") }, `username claim "preferred_username" is missing`},
		{"username not a valid username", tr, func(m map[string]any) { m["sub"] = "alice smith" }, "not a valid username"},
		{"username not a string", tr2, func(m map[string]any) { m["preferred_username"] = 42 }, "not a valid username"},
		{"scopes array with a number", tr2, func(m map[string]any) { m["scp"] = []any{"a", 1} }, "not a string"},
		{"scopes object", tr, func(m map[string]any) { m["scope"] = map[string]any{"a": 1} }, "neither a string nor an array"},
		{"scope with a quote", tr, func(m map[string]any) { m["scope"] = `a"b` }, "scope-token"},
		{"no jti", tr, func(m map[string]any) { delete(m, "jti") }, "needs a jti"},
		{"no exp", tr, func(m map[string]any) { delete(m, "exp") }, "needs an exp"},
		{"exp before iat", tr, func(m map[string]any) { m["exp"] = iat.Add(-time.Second).Unix() }, "exp is not after iat"},
		{"other issuer", tr, func(m map[string]any) { m["iss"] = "https://evil.test" }, "not from trusted issuer"},
	} {
		m := base()
		m["preferred_username"], m["scp"], m["email"], m["tid"] = "bob", "a", "bob@example.org", "t1"
		tc.edit(m)
		_, err := tc.tr.Record(testClaims(t, m))
		if !errors.Is(err, ErrClaims) || !errors.Is(err, token.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Record() = %v, want ErrClaims saying %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "alice smith") {
			t.Errorf("%s: Record() error %q quotes the username", tc.name, err)
		}
	}
}

func TestExternalKey(t *testing.T) {
	k := ExternalKey("https://a", "j1")
	if k != ExternalKey("https://a", "j1") || k.IsZero() {
		t.Fatal("ExternalKey is not stable")
	}
	distinct := map[token.Key]string{}
	for _, p := range [][2]string{{"https://a", "j1"}, {"https://b", "j1"}, {"https://a", "j2"}, {"https://a\x00j", "1"}, {"https://a", "\x00j1"}, {"", "https://aj1"}} {
		k := ExternalKey(p[0], p[1])
		if prev, dup := distinct[k]; dup {
			t.Errorf("ExternalKey(%q, %q) = ExternalKey of %s", p[0], p[1], prev)
		}
		distinct[k] = fmt.Sprintf("%q", p)
	}
	// Pinned: the key is what every node and every stored tombstone use.
	if got := ExternalKey("https://idp.test", "abc").String(); got != externalKeyGolden {
		t.Errorf("ExternalKey(https://idp.test, abc) = %s, want %s", got, externalKeyGolden)
	}
}

// signTestJWT signs claims with k as an IdP would.
func signTestJWT(tb testing.TB, k *Key, claims gojwt.MapClaims) string {
	tb.Helper()
	tok := gojwt.NewWithClaims(k.method, claims)
	tok.Header["kid"] = k.ID()
	s, err := tok.SignedString(k.sign)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// externalKeyGolden is the first 16 bytes of
// SHA-256("tokencache-jti\x00https://idp.test\x00abc"), base64url, computed
// outside Go.
const externalKeyGolden = "TgZD5xp71fM2X5gPOZVdjQ"

func TestTrustedConfigEqual(t *testing.T) {
	a := TrustedConfig{Issuer: "i", JWKSURL: "https://i/jwks", Audiences: []string{"x"}}
	b := a
	b.Refresh, b.UsernameClaim, b.ScopesClaim = DefaultTrustedRefresh, "sub", "scope"
	if !a.Equal(b) {
		t.Error("a config and the same with its defaults written out differ")
	}
	b.Audiences = []string{"x", "y"}
	if a.Equal(b) {
		t.Error("configs with other audiences are Equal")
	}
}

// TestTrustedHTTPS: a JWKS URL over TLS, through a transport that trusts
// the test CA (WithTransport), keeps the client's bounds.
func TestTrustedHTTPS(t *testing.T) {
	a := newIdPKey(t, AlgEdDSA, "a")
	var hits atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/elsewhere" {
			http.Redirect(w, r, "https://localhost:1/jwks", http.StatusFound)
			return
		}
		_, _ = w.Write(marshalJWKS([]*Key{a}))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	srv.StartTLS()
	defer srv.Close()
	tr, _ := mustTrusted(t, TrustedConfig{Issuer: testIss, JWKSURL: srv.URL + "/jwks", Audiences: []string{"*"}}, WithTransport(srv.Client().Transport))
	if err := tr.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := tr.Key("a"); !ok {
		t.Error("Key(a) not loaded over https")
	}
	tr2, _ := mustTrusted(t, TrustedConfig{Issuer: testIss, JWKSURL: srv.URL + "/elsewhere", Audiences: []string{"*"}}, WithTransport(srv.Client().Transport))
	if err := tr2.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "another host") {
		t.Errorf("Refresh through an https redirect to another host = %v, want a refusal", err)
	}
	// Without the test CA the certificate is refused.
	tr3, _ := mustTrusted(t, TrustedConfig{Issuer: testIss, JWKSURL: srv.URL + "/jwks", Audiences: []string{"*"}})
	if err := tr3.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Refresh from a server with an unknown CA = %v, want a certificate error", err)
	}
}

// TestTrustedCloseDuringFetch: Close while the IdP hangs returns at once
// and is not logged as a failed refresh.
func TestTrustedCloseDuringFetch(t *testing.T) {
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	defer srv.Close()
	tr, logs := mustTrusted(t, TrustedConfig{Issuer: testIss, JWKSURL: srv.URL, Audiences: []string{"*"}})
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-arrived
	start := time.Now()
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close during a hanging fetch took %v", d)
	}
	if out := logs.String(); strings.Contains(out, "cannot refresh") {
		t.Errorf("Close was logged as a failed refresh: %s", out)
	}
	if st := tr.Status(); st.Failures != 0 {
		t.Errorf("Status().Failures = %d after Close, want 0", st.Failures)
	}
}

// A reload that changes a URL issuer's other settings builds a new issuer;
// started with the old one's keys, it verifies the issuer's tokens at once,
// even while the IdP is down, instead of refusing them until a fetch works.
func TestTrustedWithKeysOfKeepsKeysAcrossReload(t *testing.T) {
	a := newIdPKey(t, AlgEdDSA, "a")
	idp := newTestIdP(t, a)
	cfg := testTrustedConfig(idp)
	prev, _ := mustTrusted(t, cfg)
	if err := prev.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	idp.srv.Close() // the IdP is down during the reload
	changed := cfg
	changed.Audiences = append(slices.Clone(cfg.Audiences), "another")
	next, err := NewTrusted(changed, WithKeysOf(prev))
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := next.Key("a"); !ok || k.ID() != "a" {
		t.Fatal("Key(a) of the reloaded issuer = not found, want the previous issuer's key")
	}
	// Another URL is another source: its keys are its own.
	other := changed
	other.JWKSURL = cfg.JWKSURL + "/other"
	fresh, err := NewTrusted(other, WithKeysOf(prev))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fresh.Key("a"); ok {
		t.Fatal("an issuer with another JWKS URL started with the previous one's keys")
	}
}
