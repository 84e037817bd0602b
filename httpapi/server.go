package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fasthttp/router"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/internal/listener"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// Tokens is the token service as the API uses it. Implementations must be
// safe for concurrent use. Every method may block on the cluster or the
// store except Validate on a cache hit, which is the hot path.
//
// The ctx passed in is never the *fasthttp.RequestCtx (fasthttp recycles it
// when the handler returns, so deriving from it or keeping it is a data
// race): Validate gets the server's own context, which ends once the server
// has shut down; every other call a derived context with
// Config.RequestTimeout. Both are safe to derive from and to hand to other
// goroutines.
type Tokens interface {
	// Validate is the hot path: parse and judge raw (the bearer token bytes; it may alias the request).
	Validate(ctx context.Context, raw []byte) tokens.Validation
	Issue(ctx context.Context, req tokens.IssueRequest) (tokens.Issued, error)
	Info(ctx context.Context, k token.Key) (*token.Token, token.State, error)
	Modify(ctx context.Context, req tokens.ModifyRequest) (*token.Token, error)
	Revoke(ctx context.Context, k token.Key) ([]token.Key, error) // admin DELETE, with descendants; ErrNotFound for unknown
	RevokeToken(ctx context.Context, raw []byte) error            // RFC 7009: unknown/malformed tokens are not an error
	List(ctx context.Context, q tokens.ListQuery) ([]*token.Token, error)
	Children(ctx context.Context, k token.Key) ([]*token.Token, error) // breadth-first
	Delegate(ctx context.Context, req tokens.DelegateRequest) (tokens.Issued, error)
	Stats(ctx context.Context) (tokens.Stats, error)
	Orphaned(ctx context.Context) ([]*token.Token, error)
	Purge(ctx context.Context, includeExpired bool) ([]*token.Token, error)
	// Consistent returns once this node's state reflects every write acknowledged before the call (linearizable read barrier); used for ?consistency=consistent.
	Consistent(ctx context.Context) error
	// Ready reports whether the node can answer validations (nil = ready).
	Ready(ctx context.Context) error
}

// Server is the HTTP API. Create it with New, add routes with Handle before
// Serve, then Serve and finally Shutdown. Serve, Shutdown and SetReady are
// safe for concurrent use.
type Server struct {
	cfg      Config
	formats  *token.Formats // reads parent tokens (delegation)
	svc      Tokens
	log      *slog.Logger
	now      func() time.Time
	m        *metrics
	router   *router.Router
	srv      *fasthttp.Server
	adminSum [32]byte
	rules    []authzRule
	ready    atomic.Bool

	// base is the context of every service call; it ends when Shutdown
	// has finished (or given up) waiting for open requests.
	base       context.Context
	cancelBase context.CancelFunc

	// The two hot routes are dispatched before the router: the router's
	// catch-all parameter copies the path (an allocation per request), and
	// a string compare is all they need.
	validateRoute fasthttp.RequestHandler
	authzRoute    fasthttp.RequestHandler
	unparsed      *routeMetrics // requests fasthttp could not read (400/408/413/431)
}

// New returns a Server for cfg that answers from svc, logs to log (tagged
// component=httpapi; nil discards), registers its metrics with reg (nil:
// not registered) and serves /metrics from gather (nil: no /metrics).
func New(cfg Config, svc Tokens, log *slog.Logger, reg prometheus.Registerer, gather prometheus.Gatherer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cannot create HTTP API: invalid configuration:\n%w", err)
	}
	if svc == nil {
		return nil, errors.New("cannot create HTTP API: no token service")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	formats := cfg.Formats
	if formats == nil {
		if formats, err = token.NewFormats(token.NewOpaque(token.DefaultPrefix, token.NewHasher(nil))); err != nil {
			return nil, fmt.Errorf("cannot create HTTP API: %w", err)
		}
	}
	s := &Server{
		cfg:      cfg,
		formats:  formats,
		svc:      svc,
		log:      log.With(slog.String("component", "httpapi")),
		now:      cfg.Now,
		m:        m,
		adminSum: adminDigest([]byte(cfg.AdminToken)),
		rules:    compileRules(cfg.Authz.Rules),
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	s.ready.Store(true)
	s.unparsed = m.route("unparsed")

	r := router.New()
	r.RedirectTrailingSlash = false // an API answers 404, it does not redirect
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.HandleOPTIONS = false
	r.NotFound = s.wrap("unmatched", notFound, false, false)
	r.MethodNotAllowed = s.wrap("unmatched", methodNotAllowed, false, false)
	r.PanicHandler = func(ctx *fasthttp.RequestCtx, p any) { s.recovered(ctx, "unmatched", false, p) }
	s.router = r
	s.routes(gather)

	s.srv = &fasthttp.Server{
		Handler:                       s.serve,
		ErrorHandler:                  s.requestError,
		Logger:                        fasthttpLogger{s.log},
		Concurrency:                   cfg.Concurrency,
		ReadBufferSize:                cfg.MaxHeaderBytes,
		MaxRequestBodySize:            cfg.MaxBodyBytes,
		ReadTimeout:                   cfg.ReadTimeout,
		WriteTimeout:                  cfg.WriteTimeout,
		IdleTimeout:                   cfg.IdleTimeout,
		MaxConnsPerIP:                 cfg.MaxConnsPerIP,
		NoDefaultServerHeader:         true,
		SecureErrorLogMessage:         true,
		DisableHeaderNamesNormalizing: false,
		DisablePreParseMultipartForm:  true, // no endpoint takes multipart
		CloseOnShutdown:               true,
	}
	return s, nil
}

// Handle adds a route: method and path as fasthttp/router takes them
// ("/v1/cluster", "/v1/tokens/{key}"), with metrics, panic recovery and
// the access log; admin routes require the admin token first. Call it
// before Serve (the router is not safe for concurrent changes).
func (s *Server) Handle(method, path string, h fasthttp.RequestHandler, admin bool) {
	s.router.Handle(method, path, s.wrap(path, h, admin, false))
}

// Handler returns the request handler (for tests and for callers that run
// their own fasthttp.Server).
func (s *Server) Handler() fasthttp.RequestHandler { return s.serve }

// Serve serves HTTP on ln until Shutdown, then returns nil. Accept errors
// that pass (out of file descriptors, say) are retried with a backoff (see
// internal/listener); any other one ends Serve with that error, and the caller
// should treat it as fatal. It blocks.
func (s *Server) Serve(ln net.Listener) error {
	return s.srv.Serve(listener.NewRetrying(ln, s.log, s.now))
}

// SetReady sets whether /readyz may report ready. Shutdown turns it off;
// callers turn it off when the node starts to drain for other reasons.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Shutdown turns readiness off, keeps serving for Config.DrainDelay (or
// until ctx is done) so that gateways and load balancers stop sending,
// then stops accepting connections and waits for open requests to finish
// (fasthttp ShutdownWithContext) until ctx is done; service calls still
// running then are cancelled. It blocks.
func (s *Server) Shutdown(ctx context.Context) error {
	s.SetReady(false)
	if d := s.cfg.DrainDelay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	err := s.srv.ShutdownWithContext(ctx)
	s.cancelBase()
	if err != nil {
		return fmt.Errorf("cannot shut down the HTTP API: %w", err)
	}
	return nil
}

// serve is the top-level handler: the hot routes first, then the router.
func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	path := ctx.Request.URI().PathOriginal()
	const authzPath = "/v1/authz"
	if len(path) >= len(authzPath) && string(path[:len(authzPath)]) == authzPath &&
		(len(path) == len(authzPath) || path[len(authzPath)] == '/') {
		s.authzRoute(ctx)
		return
	}
	if string(path) == "/v1/validate" && ctx.IsGet() {
		s.validateRoute(ctx)
		return
	}
	s.router.Handler(ctx)
}

// wrap adds metrics, panic recovery, the access log and (admin) the admin
// check to h. A forward-auth route answers a panic with a deny, never 5xx.
func (s *Server) wrap(label string, h fasthttp.RequestHandler, admin, forwardAuth bool) fasthttp.RequestHandler {
	rm := s.m.route(label)
	return func(ctx *fasthttp.RequestCtx) {
		defer s.finish(ctx, rm, forwardAuth, time.Now())
		if admin && !s.checkAdmin(ctx) {
			return
		}
		h(ctx)
	}
}

// finish runs after every routed request: it recovers a panic, counts the
// request and writes the access log (Debug only).
func (s *Server) finish(ctx *fasthttp.RequestCtx, rm *routeMetrics, forwardAuth bool, start time.Time) {
	if p := recover(); p != nil {
		s.recovered(ctx, rm.label, forwardAuth, p)
	}
	elapsed := time.Since(start)
	status := ctx.Response.StatusCode()
	rm.observe(status, elapsed.Seconds())
	if s.log.Enabled(s.base, slog.LevelDebug) {
		// Never the path, the query or a header: they may carry a token.
		s.log.LogAttrs(s.base, slog.LevelDebug, "http request",
			slog.String("method", string(ctx.Method())),
			slog.String("route", rm.label),
			slog.Int("status", status),
			slog.Duration("duration", elapsed),
			slog.String("remote_ip", ctx.RemoteIP().String()))
	}
}

// recovered answers a request whose handler panicked: 500 internal (a
// forward-auth request: a 401 deny with X-Token-Error: internal, because a
// gateway turns a 5xx into an error page or an allow). The process lives.
func (s *Server) recovered(ctx *fasthttp.RequestCtx, route string, forwardAuth bool, p any) {
	s.log.LogAttrs(s.base, slog.LevelError, "handler panic",
		slog.String("route", route), slog.String("panic", redactLong(fmt.Sprint(p))),
		slog.String("stack", string(debug.Stack())))
	ctx.Response.Reset()
	if forwardAuth {
		s.m.decisions[decisionUndecidable].Inc()
		writeDeny(ctx, fasthttp.StatusUnauthorized, codeInternal, challengeUndecided, true)
		return
	}
	writeError(ctx, fasthttp.StatusInternalServerError, codeInternal, "internal error")
}

// redactLong hides every run of 20 or more token characters (RFC 6750
// b64token) in s: a panic message is arbitrary text, and an opaque token,
// a JWT or a secret is such a run. Keys are hidden too; a stack trace still
// says where the panic happened.
func redactLong(s string) string {
	const minRun = 20
	var b []byte
	run := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && b64tokenChar[s[i]] {
			run++
			continue
		}
		if run >= minRun {
			if b == nil {
				b = []byte(s[:i-run])
			}
			b = append(b, "[redacted]"...)
		} else if b != nil {
			b = append(b, s[i-run:i]...)
		}
		if b != nil && i < len(s) {
			b = append(b, s[i])
		}
		run = 0
	}
	if b == nil {
		return s
	}
	return string(b)
}

// requestError answers requests fasthttp could not read, in the API's JSON
// error shape.
func (s *Server) requestError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.As(err, &small):
		writeError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, codeHeadersTooLarge,
			fmt.Sprintf("the request line and headers must fit in %d bytes", s.cfg.MaxHeaderBytes))
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, codeBodyTooLarge,
			fmt.Sprintf("the request body must be at most %d bytes", s.cfg.MaxBodyBytes))
	case errors.As(err, &netErr) && netErr.Timeout():
		writeError(ctx, fasthttp.StatusRequestTimeout, codeRequestTimeout, "the request was not received in time")
	default:
		writeError(ctx, fasthttp.StatusBadRequest, codeBadRequest, "the request is not valid HTTP/1.1")
	}
	s.unparsed.count(ctx.Response.StatusCode())
}

func notFound(ctx *fasthttp.RequestCtx) {
	writeError(ctx, fasthttp.StatusNotFound, codeNotFound, "no such endpoint")
}

func methodNotAllowed(ctx *fasthttp.RequestCtx) {
	// The router has set the Allow header; it lists OPTIONS, which this API
	// does not answer, so drop it.
	var allow []string
	for _, m := range strings.Split(string(ctx.Response.Header.Peek(fasthttp.HeaderAllow)), ",") {
		if m = strings.TrimSpace(m); m != "" && m != fasthttp.MethodOptions {
			allow = append(allow, m)
		}
	}
	ctx.Response.Header.Set(fasthttp.HeaderAllow, strings.Join(allow, ", "))
	writeError(ctx, fasthttp.StatusMethodNotAllowed, codeMethodNotAllowed, "method not allowed on this endpoint (see the Allow header)")
}

// fasthttpLogger sends fasthttp's own messages (connection errors) to slog
// at Debug, redacted: only the format and the kinds of its arguments.
// fasthttp puts request bytes in some errors even with
// SecureErrorLogMessage (an invalid header value is quoted whole, token
// included), so no argument is ever printed.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	if !l.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	kinds := make([]string, len(args))
	for i, a := range args {
		kinds[i] = fmt.Sprintf("%T", a)
	}
	l.log.Debug("fasthttp: "+format, slog.String("source", "fasthttp"), slog.Any("arg_types", kinds))
}
