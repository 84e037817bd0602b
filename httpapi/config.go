package httpapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/token"
)

// Config configures a Server. Start from DefaultConfig; a zero value never
// means "unbounded" (MaxConnsPerIP, where 0 is documented as "off", is the
// only switch).
type Config struct {
	// Addr is the listen address (http.addr). Serve takes a listener, so
	// Addr is for the caller that opens it and for messages.
	Addr string
	// AdminToken is the resolved admin bearer token (http.admin_token); the
	// caller loads or generates it. Admin requests must present it as
	// Authorization: Bearer <token>. Required.
	AdminToken string

	// MaxBodyBytes bounds a request body; larger bodies answer 413.
	MaxBodyBytes int
	// MaxHeaderBytes is fasthttp's ReadBufferSize: the request line and
	// headers must fit in it, or the answer is 431.
	MaxHeaderBytes int
	// ReadTimeout bounds reading one request (headers and body),
	// WriteTimeout writing one response, IdleTimeout the wait for the next
	// request on a keep-alive connection.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
	// RequestTimeout bounds the service calls of one admin, introspect or
	// revoke request (their context deadline; 503 timeout when it passes).
	// Validate and authz pass the request context through unchanged: they
	// answer from memory, and the service bounds its own misses.
	RequestTimeout time.Duration
	// Concurrency is the maximum number of connections served at once.
	Concurrency int
	// MaxConnsPerIP limits connections from one IP; 0 turns the limit off
	// (the usual caller is the local gateway, one IP).
	MaxConnsPerIP int

	// Formats read the key of a parent token in delegation requests: the
	// token service's formats. nil is the opaque format with the default
	// prefix (tests; the daemon passes the service's formats).
	Formats *token.Formats
	// IssueFormat is the format of POST /v1/tokens when the body names none
	// (tokens.format). The service refuses a format it has no codec for.
	IssueFormat token.Format

	// Issuer is the iss of the JWTs this node signs (tokens.jwt.issuer);
	// "" = the JWT format is off, and /.well-known/oauth-authorization-server
	// answers 404.
	Issuer string
	// JWKS returns the JWK set of the public keys the local issuer verifies
	// with (JSON; never a secret), read per request so that a key reload
	// shows at once. nil, or a nil answer, means no keys:
	// /.well-known/jwks.json answers 404. It must be safe for concurrent use.
	JWKS func() []byte
	// JWKSMaxAge is the Cache-Control max-age of /.well-known/jwks.json and
	// of the metadata: how long relying parties may keep them. A new key
	// must be published at least this long before it signs (README, key
	// rotation).
	JWKSMaxAge time.Duration

	// Authz configures the forward-auth endpoint.
	Authz AuthzConfig

	// DrainDelay is how long Shutdown keeps serving after readiness has
	// turned off, so that load balancers and gateways stop sending first.
	DrainDelay time.Duration

	// LeaderCheck, when set, is consulted by /readyz?leader=required: it
	// fails while the node knows no cluster leader. Plain /readyz never
	// depends on a leader (a gateway pod must not leave service because the
	// cluster lost one).
	LeaderCheck func(ctx context.Context) error

	// Now is the clock (delegation's min_expires_in, PATCH bounds); nil
	// means time.Now.
	Now func() time.Time
}

// AuthzConfig configures ANY /v1/authz.
type AuthzConfig struct {
	// Cookie, when set, names a cookie that carries the token when the
	// request has no Authorization header.
	Cookie string
	// Rules give the scopes a request path needs. The rule with the
	// longest matching PathPrefix applies (a plain string prefix, as in
	// NGINX locations and Traefik PathPrefix); paths no rule matches need
	// only a valid token (plus any scope= of the request).
	Rules []AuthzRule
}

// AuthzRule requires Scopes for paths that start with PathPrefix.
type AuthzRule struct {
	PathPrefix string
	Scopes     []string
}

// maxTime is the last instant a token.Time holds (Unix nanoseconds in an
// int64, April 2262): a time or lifetime ending later is refused as
// unrepresentable. How long a token may live is the token service's to
// judge (tokens.max_lifetime, tokens.LifetimeCeiling).
var maxTime = time.Unix(0, math.MaxInt64).UTC()

// Limits of the API that are not configuration.
const (
	// maxTokenLen bounds a bearer token; longer ones are malformed without
	// a lookup (the header limit bounds them anyway).
	maxTokenLen = 4096
	// maxAuthzRules bounds Config.Authz.Rules (they are scanned per request).
	maxAuthzRules = 1024
)

// DefaultConfig returns the defaults: 127.0.0.1:8080, 64 KiB bodies, 8 KiB
// headers, 5s read and write timeouts, 60s idle timeout, 10s request
// timeout, 2s drain delay,
// opaque tokens by default, JWKS cacheable for 5 minutes.
// AdminToken is left empty: the caller must set it.
func DefaultConfig() Config {
	return Config{
		Addr:           "127.0.0.1:8080",
		MaxBodyBytes:   64 << 10,
		MaxHeaderBytes: 8 << 10,
		ReadTimeout:    5 * time.Second,
		WriteTimeout:   5 * time.Second,
		IdleTimeout:    60 * time.Second,
		RequestTimeout: 10 * time.Second,
		Concurrency:    fasthttp.DefaultConcurrency,
		DrainDelay:     2 * time.Second,
		JWKSMaxAge:     5 * time.Minute,
	}
}

// Validate reports every problem with c, one per line.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("http.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr", "%q is not host:port", c.Addr)
	}
	if c.AdminToken == "" {
		bad("admin_token", "is required")
	} else if !validBearer([]byte(c.AdminToken)) {
		bad("admin_token", "must be at most %d characters from A-Z a-z 0-9 - . _ ~ + / (then optional '='), the bearer token syntax of RFC 6750", maxTokenLen)
	}
	if c.MaxBodyBytes <= 0 {
		bad("max_body_bytes", "must be positive, got %d", c.MaxBodyBytes)
	}
	if c.MaxHeaderBytes < 1024 {
		bad("max_header_bytes", "must be at least 1024, got %d", c.MaxHeaderBytes)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"read_timeout", c.ReadTimeout}, {"write_timeout", c.WriteTimeout},
		{"idle_timeout", c.IdleTimeout}, {"request_timeout", c.RequestTimeout},
	} {
		if d.v <= 0 {
			bad(d.key, "must be positive, got %s", d.v)
		}
	}
	if c.Concurrency <= 0 {
		bad("concurrency", "must be positive, got %d", c.Concurrency)
	}
	if c.MaxConnsPerIP < 0 {
		bad("max_conns_per_ip", "must not be negative (0 = off), got %d", c.MaxConnsPerIP)
	}
	if c.DrainDelay < 0 {
		bad("drain_delay", "must not be negative, got %s", c.DrainDelay)
	}
	if c.JWKSMaxAge < 0 {
		bad("jwks_max_age", "must not be negative, got %s", c.JWKSMaxAge)
	}
	if c.IssueFormat != token.FormatOpaque && c.IssueFormat != token.FormatJWT {
		bad("issue_format", "unknown token format %s", c.IssueFormat)
	}
	errs = append(errs, c.Authz.validate()...)
	return errors.Join(errs...)
}

func (a *AuthzConfig) validate() []error {
	var errs []error
	if a.Cookie != "" && !validCookieName(a.Cookie) {
		errs = append(errs, fmt.Errorf("authz.cookie: %q is not a valid cookie name", a.Cookie))
	}
	if len(a.Rules) > maxAuthzRules {
		errs = append(errs, fmt.Errorf("authz.rules: at most %d rules, got %d", maxAuthzRules, len(a.Rules)))
	}
	seen := make(map[string]int, len(a.Rules))
	for i, r := range a.Rules {
		key := fmt.Sprintf("authz.rules[%d]", i)
		if !strings.HasPrefix(r.PathPrefix, "/") {
			errs = append(errs, fmt.Errorf("%s.path_prefix: %q must start with '/'", key, r.PathPrefix))
		} else if strings.ContainsAny(r.PathPrefix, "?#%") || hasCTL(r.PathPrefix) {
			errs = append(errs, fmt.Errorf("%s.path_prefix: %q must be a decoded path without '?', '#', '%%' or control characters", key, r.PathPrefix))
		}
		if j, dup := seen[r.PathPrefix]; dup {
			errs = append(errs, fmt.Errorf("%s.path_prefix: %q repeats rules[%d]", key, r.PathPrefix, j))
		}
		seen[r.PathPrefix] = i
		if _, err := token.NewScopes(r.Scopes); err != nil {
			errs = append(errs, fmt.Errorf("%s.scopes: %w", key, err))
		}
	}
	return errs
}

// validCookieName reports whether s is an RFC 6265 cookie-name (an RFC 7230
// token).
func validCookieName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
