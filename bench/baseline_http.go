package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/token"
)

// BaselineServer is a bare fasthttp server that speaks the gateway and
// admin subset of tokencache's API from a Go map: no cache policy, no
// hashing, no Raft, no SQL. Its validate answer has the same status,
// headers and body size as tokencache's, so that driving it measures the
// HTTP ceiling of the machine (client, loopback and fasthttp) that a
// tokencache node cannot beat. Tests also use it as a tokencache stand-in.
//
// A BaselineServer is safe for concurrent use; Close stops it.
type BaselineServer struct {
	ln     net.Listener
	srv    *fasthttp.Server
	admin  string
	prefix string
	done   chan error
	seed   maphash.Seed
	shards [64]baselineShard
}

type baselineShard struct {
	mu     sync.RWMutex
	tokens map[string]*baselineEntry // token text → entry
	keys   map[string]string         // key → token text
}

// baselineEntry is a token with its pre-rendered validate answer.
type baselineEntry struct {
	key, user, scopes []byte
	body              []byte
}

// StartBaselineServer listens on addr (e.g. "127.0.0.1:0") and serves until
// Close. adminToken authorises issue and revoke; prefix is the token prefix.
func StartBaselineServer(addr, adminToken, prefix string) (*BaselineServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen for the baseline server: %w", err)
	}
	s := &BaselineServer{ln: ln, admin: "Bearer " + adminToken, prefix: prefix, done: make(chan error, 1), seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].tokens = map[string]*baselineEntry{}
		s.shards[i].keys = map[string]string{}
	}
	s.srv = &fasthttp.Server{
		Handler:               s.handle,
		Name:                  "baseline",
		NoDefaultDate:         true,
		NoDefaultContentType:  true,
		ReadTimeout:           time.Minute,
		IdleTimeout:           time.Minute,
		MaxRequestBodySize:    64 << 10,
		CloseOnShutdown:       true,
		DisableKeepalive:      false,
		TCPKeepalive:          true,
		ReduceMemoryUsage:     false,
		NoDefaultServerHeader: true,
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// URL is the server's base URL, http://127.0.0.1:PORT.
func (s *BaselineServer) URL() string { return "http://" + s.ln.Addr().String() }

// Len is the number of tokens the server holds.
func (s *BaselineServer) Len() int {
	n := 0
	for i := range s.shards {
		s.shards[i].mu.RLock()
		n += len(s.shards[i].tokens)
		s.shards[i].mu.RUnlock()
	}
	return n
}

// Close stops the server and waits for it.
func (s *BaselineServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.ShutdownWithContext(ctx)
	if serr := <-s.done; serr != nil && !errors.Is(serr, net.ErrClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

func (s *BaselineServer) shard(tok []byte) *baselineShard {
	return &s.shards[maphash.Bytes(s.seed, tok)%uint64(len(s.shards))]
}

var (
	hdrXTokenUser   = []byte("X-Token-User")
	hdrXTokenScopes = []byte("X-Token-Scopes")
	hdrXTokenKey    = []byte("X-Token-Key")
	hdrXTokenRealm  = []byte("X-Token-Realm")
	hdrXTokenType   = []byte("X-Token-Type")
	valDefault      = []byte("default")
	valUser         = []byte("user")
	ctJSON          = []byte("application/json")
	bodyUnknown     = []byte(`{"active":false,"error":"unknown"}`)
	bodyInactive    = []byte(`{"active":false}`)
	challenge       = []byte(`Bearer error="invalid_token"`)
)

func (s *BaselineServer) handle(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	switch {
	case string(path) == "/v1/validate" || string(path) == "/v1/authz" || strings.HasPrefix(string(path), "/v1/authz/"):
		raw, ok := bytesCutPrefix(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization), bearerPrefix)
		s.answer(ctx, raw, ok, true)
	case string(path) == "/v1/introspect" && ctx.IsPost():
		s.answer(ctx, ctx.PostArgs().Peek("token"), true, false)
	case string(path) == "/v1/tokens" && ctx.IsPost():
		if s.authorized(ctx) {
			s.issue(ctx)
		}
	case strings.HasPrefix(string(path), "/v1/tokens/") && ctx.IsDelete():
		if s.authorized(ctx) {
			s.revoke(ctx, string(path[len("/v1/tokens/"):]))
		}
	case string(path) == "/healthz" || string(path) == "/readyz":
		ctx.SetBodyString("ok")
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetBodyString(`{"error":"not_found","message":"no such endpoint"}`)
	}
}

// answer writes the validate (gateway) or introspect answer for token raw.
func (s *BaselineServer) answer(ctx *fasthttp.RequestCtx, raw []byte, ok, gateway bool) {
	var e *baselineEntry
	if ok {
		sh := s.shard(raw)
		sh.mu.RLock()
		e = sh.tokens[string(raw)]
		sh.mu.RUnlock()
	}
	ctx.Response.Header.SetContentTypeBytes(ctJSON)
	if e == nil {
		if !gateway {
			ctx.SetBody(bodyInactive)
			return
		}
		ctx.SetStatusCode(fasthttp.StatusUnauthorized)
		ctx.Response.Header.SetBytesKV(hdrWWWAuth, challenge)
		ctx.SetBody(bodyUnknown)
		return
	}
	if gateway {
		h := &ctx.Response.Header
		h.SetBytesKV(hdrXTokenUser, e.user)
		h.SetBytesKV(hdrXTokenScopes, e.scopes)
		h.SetBytesKV(hdrXTokenKey, e.key)
		h.SetBytesKV(hdrXTokenRealm, valDefault)
		h.SetBytesKV(hdrXTokenType, valUser)
	}
	ctx.SetBody(e.body)
}

var hdrWWWAuth = []byte(fasthttp.HeaderWWWAuthenticate)

func (s *BaselineServer) authorized(ctx *fasthttp.RequestCtx) bool {
	if string(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)) == s.admin {
		return true
	}
	ctx.SetStatusCode(fasthttp.StatusUnauthorized)
	ctx.SetBodyString(`{"error":"unauthorized","message":"admin token required"}`)
	return false
}

// issue creates a token, as POST /v1/tokens.
func (s *BaselineServer) issue(ctx *fasthttp.RequestCtx) {
	var in struct {
		Username  string   `json:"username"`
		Scopes    []string `json:"scopes"`
		ExpiresIn int64    `json:"expires_in"`
	}
	if err := json.Unmarshal(ctx.PostBody(), &in); err != nil || in.Username == "" {
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.SetBodyString(`{"error":"invalid_request","message":"want a JSON body with a username"}`)
		return
	}
	if in.ExpiresIn <= 0 {
		in.ExpiresIn = 3600
	}
	key := token.NewKey()
	text := token.Encode(s.prefix, key, token.NewSecret())
	expires := time.Now().Add(time.Duration(in.ExpiresIn) * time.Second).UTC().Format(time.RFC3339)
	keyText := key.String()
	e := &baselineEntry{key: []byte(keyText), user: []byte(in.Username), scopes: []byte(strings.Join(in.Scopes, " "))}
	e.body = fmt.Appendf(nil, `{"active":true,"key":%q,"username":%q,"realm":"default","uid":null,"type":"user","scopes":%s,"expires":%q}`,
		keyText, in.Username, mustJSON(in.Scopes), expires)
	sh := s.shard([]byte(text))
	sh.mu.Lock()
	sh.tokens[text] = e
	sh.mu.Unlock()
	ks := s.shard(e.key)
	ks.mu.Lock()
	ks.keys[keyText] = text
	ks.mu.Unlock()
	ctx.SetStatusCode(fasthttp.StatusCreated)
	ctx.Response.Header.SetContentTypeBytes(ctJSON)
	ctx.SetBody(fmt.Appendf(nil, `{"token":%q,"key":%q,"username":%q,"type":"user","expires":%q}`, text, keyText, in.Username, expires))
}

// revoke deletes a token by key, as DELETE /v1/tokens/{key}.
func (s *BaselineServer) revoke(ctx *fasthttp.RequestCtx, key string) {
	ks := s.shard([]byte(key))
	ks.mu.Lock()
	text, ok := ks.keys[key]
	delete(ks.keys, key)
	ks.mu.Unlock()
	if !ok {
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetBodyString(`{"error":"not_found","message":"no such token"}`)
		return
	}
	sh := s.shard([]byte(text))
	sh.mu.Lock()
	delete(sh.tokens, text)
	sh.mu.Unlock()
	ctx.Response.Header.SetContentTypeBytes(ctJSON)
	ctx.SetBodyString(`{"revoked":[` + strconv.Quote(key) + `]}`)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func bytesCutPrefix(b, prefix []byte) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != string(prefix) {
		return nil, false
	}
	return b[len(prefix):], true
}

// newBaselineTarget starts a BaselineServer in this process and returns
// the HTTP target that drives it.
func newBaselineTarget(c *Config) (*httpTarget, error) {
	admin := token.NewSecret()
	srv, err := StartBaselineServer("127.0.0.1:0", admin, c.Prefix)
	if err != nil {
		return nil, err
	}
	return baselineTarget(c, srv.URL(), admin, srv.Close, "in-process bare fasthttp server")
}
