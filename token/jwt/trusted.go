package jwt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokencache/tokencache/token"
)

// Defaults and bounds of a trusted issuer (tokens.jwt.trusted).
const (
	// DefaultTrustedRefresh is how often a JWKS URL is fetched when the
	// configuration names no refresh.
	DefaultTrustedRefresh = 5 * time.Minute
	// MinTrustedRefresh is the shortest refresh allowed, and the shortest
	// time between two fetches of one JWKS for any reason (a schedule, a
	// Cache-Control max-age, an unknown kid): a stream of tokens with
	// forged kids cannot make tokencache hammer the issuer.
	MinTrustedRefresh = 10 * time.Second
	// MaxTrustedRefresh is the longest refresh allowed.
	MaxTrustedRefresh = 24 * time.Hour
	// DefaultUsernameClaim and DefaultScopesClaim are the claims mapped to
	// a record's username and scopes when the configuration names none.
	DefaultUsernameClaim = "sub"
	DefaultScopesClaim   = "scope"
	// trustedFilePoll is how often a JWKS file is checked for a change
	// (a stat; it is read again only when its mtime or size changed).
	trustedFilePoll = 5 * time.Second
)

// TrustedConfig is one external issuer whose JWTs tokencache accepts (one
// entry of tokens.jwt.trusted): an identity provider whose access tokens a
// gateway wants validated, and revocable by jti, through tokencache.
//
// Its keys come from a JWK set of public keys, read from a file or fetched
// from an https URL and refreshed in the background. Only asymmetric keys
// (EdDSA, ES256, RS256) are supported: a JWKS that holds a private key or a
// symmetric ("oct") key is refused, so an external issuer's HS256 shared
// secret cannot be trusted this way.
type TrustedConfig struct {
	// Issuer is the issuer's iss claim value, compared exactly. Required.
	Issuer string
	// JWKSFile is a file holding the issuer's JWK set; it is read again
	// when its mtime or size changes. Exactly one of JWKSFile and JWKSURL.
	JWKSFile string
	// JWKSURL is where the issuer publishes its JWK set. It must be https,
	// except on a loopback host (127.0.0.1, ::1, localhost).
	JWKSURL string
	// Refresh is the longest time between two fetches of JWKSURL; 0 means
	// DefaultTrustedRefresh. At least MinTrustedRefresh, at most
	// MaxTrustedRefresh. A shorter Cache-Control max-age from the issuer is
	// honoured down to max(Refresh/4, MinTrustedRefresh).
	Refresh time.Duration
	// Audiences is the allow-list for the aud claim; "*" alone accepts any
	// audience. Required: an IdP issues tokens for many services, and a
	// token meant for another one must not pass here.
	Audiences []string
	// RequiredClaims are claims a token must carry (with any non-null
	// value) to be accepted.
	RequiredClaims []string
	// UsernameClaim is the claim that becomes the record's username; ""
	// means DefaultUsernameClaim ("sub"). It must be a string that passes
	// token.ValidUsername.
	UsernameClaim string
	// ScopesClaim is the claim that becomes the record's scopes; "" means
	// DefaultScopesClaim ("scope"). Its value is a space-separated string
	// or an array of strings; a token without it has no scopes.
	ScopesClaim string
}

// withDefaults returns c with its zero fields set to their defaults.
func (c TrustedConfig) withDefaults() TrustedConfig {
	if c.Refresh == 0 {
		c.Refresh = DefaultTrustedRefresh
	}
	if c.UsernameClaim == "" {
		c.UsernameClaim = DefaultUsernameClaim
	}
	if c.ScopesClaim == "" {
		c.ScopesClaim = DefaultScopesClaim
	}
	return c
}

// Validate reports every problem of c (zero fields that have a default are
// fine), each wrapping ErrConfig.
func (c TrustedConfig) Validate() error {
	name := c.Issuer
	if name == "" {
		name = "(no issuer)"
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: trusted issuer %q: "+format, append([]any{ErrConfig, name}, args...)...))
	}
	if c.Issuer == "" {
		bad("issuer is required (the iss claim of its tokens)")
	}
	switch {
	case c.JWKSFile == "" && c.JWKSURL == "":
		bad("one of jwks_file and jwks_url is required")
	case c.JWKSFile != "" && c.JWKSURL != "":
		bad("jwks_file and jwks_url are both set; name exactly one")
	case c.JWKSURL != "":
		if err := validJWKSURL(c.JWKSURL); err != nil {
			bad("%v", err)
		}
	}
	if c.Refresh != 0 && (c.Refresh < MinTrustedRefresh || c.Refresh > MaxTrustedRefresh) {
		bad("refresh %s is outside [%s, %s]", c.Refresh, MinTrustedRefresh, MaxTrustedRefresh)
	}
	if len(c.Audiences) == 0 {
		bad("audiences is required (list the aud values to accept, or \"*\" for any)")
	}
	for _, a := range c.Audiences {
		if a == "" {
			bad("audiences holds an empty value")
		}
		if a == "*" && len(c.Audiences) > 1 {
			bad("audiences: \"*\" (any) must be the only value")
		}
	}
	for i, rc := range c.RequiredClaims {
		if rc == "" {
			bad("required_claims holds an empty claim name")
		} else if slices.Contains(c.RequiredClaims[:i], rc) {
			bad("required_claims names %q twice", rc)
		}
	}
	return errors.Join(errs...)
}

// Equal reports whether c and o configure the same issuer the same way
// (defaults filled in): a reload can keep a running Trusted, and its keys,
// when its entry did not change.
func (c TrustedConfig) Equal(o TrustedConfig) bool {
	c, o = c.withDefaults(), o.withDefaults()
	return c.Issuer == o.Issuer && c.JWKSFile == o.JWKSFile && c.JWKSURL == o.JWKSURL &&
		c.Refresh == o.Refresh && slices.Equal(c.Audiences, o.Audiences) &&
		slices.Equal(c.RequiredClaims, o.RequiredClaims) &&
		c.UsernameClaim == o.UsernameClaim && c.ScopesClaim == o.ScopesClaim
}

// validJWKSURL checks that raw is an absolute https URL, or http on a
// loopback host.
func validJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("jwks_url is not a URL")
	}
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("jwks_url %q is not an absolute http(s) URL", showURL(u))
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("jwks_url %q must use https: plain http is allowed only for a loopback host (127.0.0.1, ::1, localhost)", showURL(u))
	}
	return nil
}

// TrustedOption adjusts a Trusted built by NewTrusted.
type TrustedOption func(*trustedOptions)

type trustedOptions struct {
	log       *slog.Logger
	now       func() time.Time
	transport http.RoundTripper
	changed   func()
	keysOf    *Trusted
}

// WithKeysOf starts the issuer with prev's last good key set when both fetch
// the same JWKS URL (a reload that changed another of its settings): its
// tokens keep verifying while the first fetch runs, and while the IdP is
// down, instead of being refused until a fetch succeeds. A JWKS file is
// read at once anyway, so the option changes nothing for one.
func WithKeysOf(prev *Trusted) TrustedOption {
	return func(o *trustedOptions) { o.keysOf = prev }
}

// WithLogger sets the logger (default: slog.Default()); records are tagged
// component=jwt-trusted and issuer=<iss>.
func WithLogger(l *slog.Logger) TrustedOption {
	return func(o *trustedOptions) { o.log = l }
}

// WithNow sets the clock (default time.Now): it dates refreshes, rate
// limits early ones, and stands for iat in a token that has neither iat
// nor nbf.
func WithNow(now func() time.Time) TrustedOption {
	return func(o *trustedOptions) { o.now = now }
}

// WithTransport sets the HTTP transport a JWKS URL is fetched through (for
// a private CA or a proxy). The client around it keeps its bounds: the
// JWKSFetchTimeout, the MaxJWKSSize cap and same-host redirects only.
func WithTransport(rt http.RoundTripper) TrustedOption {
	return func(o *trustedOptions) { o.transport = rt }
}

// WithKeysChanged sets f to run after a load that dropped a kid or changed
// the material under one: what a codec's verified cache has to forget
// (wire it to Codec.SetTrusted, which forgets the tokens of issuers it no longer holds). It
// runs on the goroutine that loaded, holding no lock; keys added alone do
// not call it.
func WithKeysChanged(f func()) TrustedOption {
	return func(o *trustedOptions) { o.changed = f }
}

// Trusted is one external issuer: it implements Issuer for the codec with
// keys from the issuer's JWKS, kept fresh in the background (Start) and
// fetched early, at most once per MinTrustedRefresh, when a token names a
// kid it does not know. It is safe for concurrent use; Name, Audiences, Key
// and Record never block.
type Trusted struct {
	cfg     TrustedConfig
	src     jwksSource
	log     *slog.Logger
	now     func() time.Time
	changed func() // WithKeysChanged; nil when none

	set atomic.Pointer[trustedKeys] // last good key set; never nil

	// mu guards the fields below it; loads of src are serialised by
	// flight (one at a time).
	mu     sync.Mutex
	flight *refreshFlight // the refresh under way, nil when none
	stat   TrustedStatus  // Kids is filled in by Status
	// maxAge is the last Cache-Control max-age the source answered with
	// (-1: none).
	maxAge     time.Duration
	failures   int  // consecutive failed refreshes
	earlyAsked bool // an early fetch is asked for and not yet started
	started    bool
	closed     bool
	cancel     func()
	done       chan struct{}
	kick       chan struct{} // requestEarly to the loop; capacity 1
}

// trustedKeys is one JWK set, immutable.
type trustedKeys struct {
	byKid   map[string]*Key
	kids    []string // sorted
	skipped []string
}

var _ Issuer = (*Trusted)(nil)

// NewTrusted checks cfg and returns the issuer. A JWKS file is read now,
// and an error in it is returned; a JWKS URL is first fetched by Start (or
// Refresh), so an issuer that is down when tokencache starts only delays
// its own tokens. Until a set is loaded, Key finds nothing. Call Start to
// keep the set fresh and Close to stop.
func NewTrusted(cfg TrustedConfig, opts ...TrustedOption) (*Trusted, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Audiences = slices.Clone(cfg.Audiences)
	cfg.RequiredClaims = slices.Clone(cfg.RequiredClaims)
	o := trustedOptions{log: slog.Default(), now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	t := &Trusted{
		cfg:     cfg,
		log:     o.log.With("component", "jwt-trusted", "issuer", cfg.Issuer),
		now:     o.now,
		changed: o.changed,
		maxAge:  -1,
		kick:    make(chan struct{}, 1),
	}
	t.set.Store(&trustedKeys{byKid: map[string]*Key{}})
	if prev := o.keysOf; prev != nil && cfg.JWKSURL != "" && prev.cfg.JWKSURL == cfg.JWKSURL {
		t.set.Store(prev.set.Load()) // immutable: shared
	}
	if cfg.JWKSFile != "" {
		t.src = &fileSource{path: cfg.JWKSFile}
	} else {
		src, err := newURLSource(cfg.JWKSURL, o.transport)
		if err != nil {
			return nil, fmt.Errorf("%w: trusted issuer %q: %w", ErrConfig, cfg.Issuer, err)
		}
		t.src = src
	}
	t.stat = TrustedStatus{Issuer: cfg.Issuer, Source: t.src.String()}
	if cfg.JWKSFile != "" {
		if err := t.refresh(context.Background(), refreshInitial); err != nil {
			return nil, fmt.Errorf("%w: trusted issuer %q: %w", ErrConfig, cfg.Issuer, err)
		}
	}
	return t, nil
}

// Config returns the configuration in effect (defaults filled in).
func (t *Trusted) Config() TrustedConfig {
	c := t.cfg
	c.Audiences = slices.Clone(c.Audiences)
	c.RequiredClaims = slices.Clone(c.RequiredClaims)
	return c
}

// Name returns the issuer (the iss claim value).
func (t *Trusted) Name() string { return t.cfg.Issuer }

// Audiences returns the allow-list for aud ("*" alone: any). The caller
// must not change it.
func (t *Trusted) Audiences() []string { return t.cfg.Audiences }

// Key returns the issuer's verify key kid from the last good JWKS, from
// memory only: it never blocks and never fetches. A kid not in the set asks
// the background refresh (Start) to fetch the JWKS early, unless a fetch
// started less than MinTrustedRefresh ago: a key the issuer has just
// rotated in is found a moment later, and a stream of forged kids costs
// the issuer at most one fetch per MinTrustedRefresh.
func (t *Trusted) Key(kid string) (*Key, bool) {
	if k, ok := t.set.Load().byKid[kid]; ok {
		return k, true
	}
	t.requestEarly()
	return nil, false
}

// Record maps the verified claims of one of this issuer's tokens to the
// record it states (Presented.Claims):
//
//   - Key: ExternalKey(iss, jti) (the codec sets the same). A token
//     without jti is refused: it could not be revoked.
//   - Username: the UsernameClaim (a string passing token.ValidUsername).
//   - Scopes: the ScopesClaim, a space-separated string or an array of
//     strings, parsed as token.NewScopes does; none when absent.
//   - Expires: exp (required). Created: iat, else nbf, else now.
//   - Type: token.TypeOAuth (an access token from an OAuth issuer);
//     Realm: token.DefaultRealm; Format: token.FormatJWT.
//   - Audience: the aud values, space separated; ClientID: the client_id
//     claim (RFC 9068), else azp, when it is a valid client id.
//
// It fails, wrapping ErrClaims, when a RequiredClaims claim is
// missing or a mapped claim has the wrong form. Errors name claims; they
// never quote the token or the username.
func (t *Trusted) Record(c *Claims) (*token.Token, error) {
	iss := t.cfg.Issuer
	if c.Issuer != iss {
		return nil, fmt.Errorf("%w: token is not from trusted issuer %q", ErrClaims, iss)
	}
	for _, name := range t.cfg.RequiredClaims {
		if _, ok := claimValue(c, name); !ok {
			return nil, fmt.Errorf("%w: claim %q is required by trusted issuer %q", ErrClaims, name, iss)
		}
	}
	if c.ID == "" {
		return nil, fmt.Errorf("%w: a token from trusted issuer %q needs a jti claim (it could not be revoked otherwise)", ErrClaims, iss)
	}
	uv, ok := claimValue(c, t.cfg.UsernameClaim)
	if !ok {
		return nil, fmt.Errorf("%w: username claim %q is missing", ErrClaims, t.cfg.UsernameClaim)
	}
	username, ok := uv.(string)
	if !ok || token.ValidUsername(username) != nil {
		return nil, fmt.Errorf("%w: username claim %q is not a valid username", ErrClaims, t.cfg.UsernameClaim)
	}
	scopes, err := scopesClaim(c, t.cfg.ScopesClaim)
	if err != nil {
		return nil, err
	}
	if c.ExpiresAt == nil {
		return nil, fmt.Errorf("%w: a token from trusted issuer %q needs an exp claim", ErrClaims, iss)
	}
	var created token.Time
	switch {
	case c.IssuedAt != nil:
		created = token.At(c.IssuedAt.Time)
	case c.NotBefore != nil:
		created = token.At(c.NotBefore.Time)
	default:
		created = token.At(t.now())
	}
	expires := token.At(c.ExpiresAt.Time)
	if expires <= created {
		return nil, fmt.Errorf("%w: exp is not after iat", ErrClaims)
	}
	rec := &token.Token{
		Key:      ExternalKey(iss, c.ID),
		Created:  created,
		Expires:  expires,
		Username: username,
		Realm:    token.DefaultRealm,
		Scopes:   scopes,
		Format:   token.FormatJWT,
		Type:     token.TypeOAuth,
	}
	ext := token.Extra{Audience: strings.Join(c.Audience, " ")}
	for _, name := range []string{"client_id", "azp"} {
		if v, ok := claimValue(c, name); ok {
			if s, ok := v.(string); ok && token.ValidText("client_id", s, token.MaxClientIDLen, true) == nil {
				ext.ClientID = s
				break
			}
		}
	}
	rec.SetExtra(ext)
	if err := rec.Validate(); err != nil {
		return nil, fmt.Errorf("%w: the claims of a token from trusted issuer %q do not make a valid record: %w", ErrClaims, iss, err)
	}
	return rec, nil
}

// claimValue returns the value of claim name and whether it is present
// (and not null).
func claimValue(c *Claims, name string) (any, bool) {
	if c.Extra != nil {
		v, ok := c.Extra[name]
		return v, ok && v != nil
	}
	// Without the map of every claim, the registered ones are all there is.
	switch name {
	case "sub":
		return c.Subject, c.Subject != ""
	case "jti":
		return c.ID, c.ID != ""
	case "iss":
		return c.Issuer, c.Issuer != ""
	case "aud":
		return []string(c.Audience), len(c.Audience) > 0
	case "exp":
		return c.ExpiresAt, c.ExpiresAt != nil
	case "iat":
		return c.IssuedAt, c.IssuedAt != nil
	case "nbf":
		return c.NotBefore, c.NotBefore != nil
	case "scope":
		return c.Scope, c.Scope != ""
	}
	return nil, false
}

// scopesClaim parses the scopes claim name: a space-separated string or an
// array of strings.
func scopesClaim(c *Claims, name string) (token.Scopes, error) {
	v, ok := claimValue(c, name)
	if !ok {
		return "", nil
	}
	var list []string
	switch v := v.(type) {
	case string:
		list = strings.Fields(v)
	case []string:
		list = v
	case []any:
		list = make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return "", fmt.Errorf("%w: scopes claim %q holds a value that is not a string", ErrClaims, name)
			}
			list = append(list, s)
		}
	default:
		return "", fmt.Errorf("%w: scopes claim %q is neither a string nor an array of strings", ErrClaims, name)
	}
	s, err := token.NewScopes(list)
	if err != nil {
		return "", fmt.Errorf("%w: scopes claim %q: %w", ErrClaims, name, err)
	}
	return s, nil
}
