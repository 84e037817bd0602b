package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// httpTarget drives tokencache's HTTP API (DESIGN §5) on one or more nodes,
// round-robin, through one fasthttp client per node. baseline-http is the
// same target pointed at an in-process bare server.
type httpTarget struct {
	info      TargetInfo
	bases     []string // http://host:port
	hosts     []string // host:port
	doers     []doer
	admin     []byte // "Bearer <admin token>"
	prefix    string
	timeout   time.Duration
	expiresIn int // seconds, of issued tokens
	conns     int

	cluster *LocalCluster // spawned nodes, stopped by Close

	closeOnce sync.Once
	closers   []func() error // run in reverse order by Close
	closeErr  error
}

var _ Target = (*httpTarget)(nil)

// doer is what fasthttp.HostClient and fasthttp.PipelineClient share.
type doer interface {
	DoTimeout(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration) error
}

// newHTTPTarget returns the target of the tokencache base URLs urls.
func newHTTPTarget(c *Config, urls []string, kind string) (*httpTarget, error) {
	t := &httpTarget{
		info:    TargetInfo{Kind: kind, Endpoints: urls, Nodes: len(urls)},
		prefix:  c.Prefix,
		timeout: c.Timeout,
		conns:   c.Connections,
		// Seeded tokens must outlive warm-up, run and a margin.
		expiresIn: max(3600, int((c.Warmup+c.Duration).Seconds())+600),
	}
	if c.AdminToken != "" {
		t.admin = []byte("Bearer " + c.AdminToken)
	}
	for _, u := range urls {
		host, ok := strings.CutPrefix(strings.TrimRight(u, "/"), "http://")
		if !ok || host == "" || strings.Contains(host, "/") {
			return nil, fmt.Errorf("cannot use target %q: want http://host:port", u)
		}
		t.bases = append(t.bases, "http://"+host)
		t.hosts = append(t.hosts, host)
		if c.Pipeline > 1 {
			t.doers = append(t.doers, &fasthttp.PipelineClient{
				Addr:                          host,
				MaxConns:                      c.Connections,
				MaxPendingRequests:            c.Pipeline,
				ReadTimeout:                   c.Timeout,
				WriteTimeout:                  c.Timeout,
				NoDefaultUserAgentHeader:      true,
				DisableHeaderNamesNormalizing: true,
			})
			continue
		}
		t.doers = append(t.doers, t.hostClient(host, c.Connections))
	}
	t.info.Notes = "validate/authz: GET with a hot token; validate-miss: GET walking the cold tokens; " +
		"unknown: GET with a random token (401 expected); introspect: POST form; issue: POST /v1/tokens; revoke: DELETE /v1/tokens/{key}"
	if c.Pipeline > 1 {
		t.info.Notes += fmt.Sprintf("; HTTP pipelining, %d requests per connection", c.Pipeline)
	}
	return t, nil
}

// hostClient returns a keep-alive client of host without retries, so that
// every failure is counted.
func (t *httpTarget) hostClient(host string, conns int) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                          host,
		MaxConns:                      conns,
		MaxConnWaitTimeout:            t.timeout,
		ReadTimeout:                   t.timeout,
		WriteTimeout:                  t.timeout,
		MaxIdemponentCallAttempts:     1,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		RetryIfErr:                    func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
	}
}

func (t *httpTarget) Info() TargetInfo { return t.info }

func (t *httpTarget) Supports(w Workload) bool {
	switch w {
	case Validate, ValidateMiss, Unknown, Issue, Revoke, Introspect, Authz:
		return true
	case ValidateJWT, IssueJWT:
		// The bare baseline server issues opaque tokens only.
		return t.info.Kind == kindTokencache
	}
	return false
}

// onClose registers f to run at Close (last registered, first run).
func (t *httpTarget) onClose(f func() error) { t.closers = append(t.closers, f) }

func (t *httpTarget) Close() error {
	t.closeOnce.Do(func() {
		for _, d := range t.doers {
			if hc, ok := d.(*fasthttp.HostClient); ok {
				hc.CloseIdleConnections()
			}
		}
		var errs []error
		for i := len(t.closers) - 1; i >= 0; i-- {
			errs = append(errs, t.closers[i]())
		}
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}

// Seed issues n tokens through POST /v1/tokens, conc at a time, spread over
// the nodes.
func (t *httpTarget) Seed(ctx context.Context, n, conc int, progress func()) ([]Seeded, error) {
	return t.seed(ctx, n, conc, false, progress)
}

// SeedJWT implements JWTSeeder: Seed with "format":"jwt".
func (t *httpTarget) SeedJWT(ctx context.Context, n, conc int, progress func()) ([]Seeded, error) {
	return t.seed(ctx, n, conc, true, progress)
}

func (t *httpTarget) seed(ctx context.Context, n, conc int, jwt bool, progress func()) ([]Seeded, error) {
	if n == 0 {
		return nil, nil
	}
	if len(t.admin) == 0 {
		return nil, errors.New("cannot seed tokens: no admin token (--admin-token or TOKENCACHE_ADMIN_TOKEN)")
	}
	clients := make([]*fasthttp.HostClient, len(t.hosts))
	for i, h := range t.hosts {
		clients[i] = t.hostClient(h, conc)
	}
	defer func() {
		for _, hc := range clients {
			hc.CloseIdleConnections()
		}
	}()
	return SeedParallel(ctx, n, conc, progress, func(i int) (Seeded, error) {
		node := i % len(clients)
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		t.buildIssue(req, node, i, jwt)
		if err := clients[node].DoTimeout(req, resp, t.timeout); err != nil {
			return Seeded{}, fmt.Errorf("cannot issue token %d on %s: %w", i, t.bases[node], err)
		}
		if sc := resp.StatusCode(); sc != fasthttp.StatusCreated && sc != fasthttp.StatusOK {
			return Seeded{}, fmt.Errorf("cannot issue token %d on %s: HTTP %d: %s", i, t.bases[node], sc, snippet(resp.Body()))
		}
		var out struct {
			Token string `json:"token"`
			Key   string `json:"key"`
		}
		if err := json.Unmarshal(resp.Body(), &out); err != nil || out.Token == "" || out.Key == "" {
			return Seeded{}, fmt.Errorf("cannot read issued token %d from %s: %q", i, t.bases[node], snippet(resp.Body()))
		}
		return Seeded{Token: out.Token, Key: out.Key}, nil
	})
}

// buildIssue fills req with POST /v1/tokens on node for user number u, as
// a JWT when jwt is set.
func (t *httpTarget) buildIssue(req *fasthttp.Request, node, u int, jwt bool) {
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(t.bases[node] + "/v1/tokens")
	req.Header.SetBytesV(fasthttp.HeaderAuthorization, t.admin)
	req.Header.SetContentType("application/json")
	var num [20]byte
	req.AppendBodyString(`{"username":"bench-`)
	req.AppendBody(strconv.AppendInt(num[:0], int64(u%1000), 10))
	req.AppendBodyString(`","type":"user","scopes":["read","write"],"expires_in":`)
	req.AppendBody(strconv.AppendInt(num[:0], int64(t.expiresIn), 10))
	if jwt {
		req.AppendBodyString(`,"format":"jwt"`)
	}
	req.AppendBodyString(`}`)
}

// SeedBatches writes keys in parts of batch, conc parts at a time, with
// write, and returns them as seeded tokens (the key is the token) in
// completion order, calling progress once per key.
func SeedBatches(ctx context.Context, keys []string, batch, conc int, progress func(), write func(part []string, first int) error) ([]Seeded, error) {
	var mu sync.Mutex
	out := make([]Seeded, 0, len(keys))
	_, err := SeedParallel(ctx, (len(keys)+batch-1)/batch, conc, nil, func(b int) (Seeded, error) {
		part := keys[b*batch : min((b+1)*batch, len(keys))]
		if err := write(part, b*batch); err != nil {
			return Seeded{}, err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, k := range part {
			out = append(out, Seeded{Token: k, Key: k})
			if progress != nil {
				progress()
			}
		}
		return Seeded{}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SeedParallel calls create(i) for i in [0, n) with conc goroutines and
// returns the results in completion order. The first error stops it.
func SeedParallel(ctx context.Context, n, conc int, progress func(), create func(i int) (Seeded, error)) ([]Seeded, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu   sync.Mutex
		out  = make([]Seeded, 0, n)
		next = make(chan int)
		wg   sync.WaitGroup
	)
	for range min(conc, n) {
		wg.Go(func() {
			for i := range next {
				s, err := create(i)
				if err != nil {
					cancel(err)
					return
				}
				mu.Lock()
				out = append(out, s)
				mu.Unlock()
				if progress != nil {
					progress()
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

// snippet shortens a response body for an error message.
func snippet(b []byte) string {
	const maxLen = 200
	if len(b) > maxLen {
		return string(b[:maxLen]) + "…"
	}
	return string(b)
}

// NewClient returns the client of one worker; workers start the
// round-robin at different nodes.
func (t *httpTarget) NewClient(worker int, pop *Population) Client {
	return &httpClient{t: t, pop: pop, rr: worker}
}

// httpClient is one worker's connection slot: a request and a response it
// reuses, so that a hot-path request allocates nothing but what fasthttp
// does.
type httpClient struct {
	t    *httpTarget
	pop  *Population
	rr   int
	req  fasthttp.Request
	resp fasthttp.Response
	auth []byte // "Bearer <token>"
	path []byte
}

var (
	bearerPrefix  = []byte("Bearer ")
	activeTrue    = []byte(`"active":true`)
	formToken     = []byte("token=")
	hdrAuthzBytes = []byte(fasthttp.HeaderAuthorization)
)

// Do sends one request of workload w.
func (c *httpClient) Do(_ context.Context, w Workload, rng *rand.Rand) error {
	t := c.t
	node := c.rr % len(t.doers)
	c.rr++
	req, resp := &c.req, &c.resp
	req.Reset()
	resp.Reset()
	want := fasthttp.StatusOK
	switch w {
	case Validate, ValidateMiss, Unknown, Authz, ValidateJWT:
		path := "/v1/validate"
		if w == Authz {
			path = "/v1/authz"
		}
		c.auth = append(c.auth[:0], bearerPrefix...)
		switch w {
		case ValidateMiss:
			c.auth = append(c.auth, c.pop.NextCold().Token...)
		case Unknown:
			c.auth = appendRandomToken(c.auth, t.prefix, rng)
			want = fasthttp.StatusUnauthorized
		case ValidateJWT:
			c.auth = append(c.auth, c.pop.JWT(rng.Uint64()).Token...)
		default:
			c.auth = append(c.auth, c.pop.Hot(rng.Uint64()).Token...)
		}
		c.setURI(node, path)
		req.Header.SetBytesKV(hdrAuthzBytes, c.auth)
	case Introspect:
		req.Header.SetMethod(fasthttp.MethodPost)
		c.setURI(node, "/v1/introspect")
		req.Header.SetContentType("application/x-www-form-urlencoded")
		req.AppendBody(formToken)
		req.AppendBodyString(c.pop.Hot(rng.Uint64()).Token) // base64url, '_' and '.': form-safe
	case Issue, IssueJWT:
		t.buildIssue(req, node, int(rng.Uint32()), w == IssueJWT)
		want = fasthttp.StatusCreated
	case Revoke:
		key, ok := c.pop.TakeRevocable()
		if !ok {
			return ErrExhausted
		}
		req.Header.SetMethod(fasthttp.MethodDelete)
		c.setURI(node, "/v1/tokens/"+key)
		req.Header.SetBytesV(fasthttp.HeaderAuthorization, t.admin)
	default:
		return ErrUnsupported
	}
	if err := t.doers[node].DoTimeout(req, resp, t.timeout); err != nil {
		return err
	}
	code := resp.StatusCode()
	switch {
	case (w == Issue || w == IssueJWT) && (code == fasthttp.StatusCreated || code == fasthttp.StatusOK):
		if key := issuedKey(resp.Body()); key != "" {
			c.pop.AddRevocable(key)
		}
		return nil
	case w == Revoke && code >= 200 && code < 300:
		return nil
	case code != want:
		return statusError(code)
	case w == Introspect && !bytes.Contains(resp.Body(), activeTrue):
		return ErrInactive
	}
	return nil
}

// setURI sets the request URI to path on node without allocating.
func (c *httpClient) setURI(node int, path string) {
	c.path = append(append(c.path[:0], c.t.bases[node]...), path...)
	c.req.SetRequestURIBytes(c.path)
}

// issuedKey extracts the "key" field of an issue answer.
func issuedKey(body []byte) string {
	var out struct {
		Key string `json:"key"`
	}
	if json.Unmarshal(body, &out) != nil {
		return ""
	}
	return out.Key
}

// appendRandomToken appends a well-formed token that was never issued:
// prefix, a random 16-byte key and a random 24-byte secret, from rng (not
// crypto/rand: these only have to miss).
func appendRandomToken(b []byte, prefix string, rng *rand.Rand) []byte {
	var raw [16 + 24]byte
	for i := 0; i < len(raw); i += 8 {
		binary.LittleEndian.PutUint64(raw[i:], rng.Uint64())
	}
	b = append(b, prefix...)
	b = append(b, '_')
	b = base64.RawURLEncoding.AppendEncode(b, raw[:16])
	b = append(b, '.')
	return base64.RawURLEncoding.AppendEncode(b, raw[16:])
}
