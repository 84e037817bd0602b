package jwt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Bounds on fetching a trusted issuer's JWKS. A JWKS is a few kilobytes;
// the bounds keep a broken or hostile endpoint from costing more than that.
const (
	// MaxJWKSSize is the largest JWKS document accepted, from a file or a
	// URL; a larger one is refused and the last good set is kept.
	MaxJWKSSize = 1 << 20
	// MaxJWKSKeys is the most keys one JWKS may hold.
	MaxJWKSKeys = 100
	// JWKSFetchTimeout bounds one fetch of a JWKS URL: connecting, TLS,
	// redirects and reading the body.
	JWKSFetchTimeout = 10 * time.Second
	// maxJWKSRedirects is how many redirects a fetch follows (same host
	// only).
	maxJWKSRedirects = 3
)

// jwksSource is where a trusted issuer's JWKS comes from: a file or a URL.
// A source is used by one goroutine at a time (Trusted serialises loads).
type jwksSource interface {
	// load returns the source's keys. unchanged reports that the document
	// is the one loaded last time (a file with the same mtime and size, a
	// 304 Not Modified), in which case keys is nil. maxAge is the
	// Cache-Control max-age a URL answered with, or -1.
	load(ctx context.Context) (r jwksLoad, err error)
	// String names the source for logs and Status, without credentials.
	String() string
}

// jwksLoad is what one load of a source found.
type jwksLoad struct {
	keys      []*Key
	skipped   []string // "kid: reason" of each key that was left out
	unchanged bool
	maxAge    time.Duration // -1: the source said nothing
}

// fileSource reads a JWKS file, again only when its mtime or size changed.
type fileSource struct {
	path    string
	modTime time.Time
	size    int64
	loaded  bool
}

func (s *fileSource) String() string { return s.path }

func (s *fileSource) load(context.Context) (jwksLoad, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return jwksLoad{}, fmt.Errorf("cannot read JWKS file: %w", err)
	}
	if s.loaded && fi.ModTime().Equal(s.modTime) && fi.Size() == s.size {
		return jwksLoad{unchanged: true, maxAge: -1}, nil
	}
	if fi.Size() > MaxJWKSSize {
		return jwksLoad{}, fmt.Errorf("cannot load JWKS file %s: it is %d bytes, more than the %d allowed", s.path, fi.Size(), MaxJWKSSize)
	}
	f, err := os.Open(s.path)
	if err != nil {
		return jwksLoad{}, fmt.Errorf("cannot read JWKS file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxJWKSSize+1))
	if err != nil {
		return jwksLoad{}, fmt.Errorf("cannot read JWKS file %s: %w", s.path, err)
	}
	if len(data) > MaxJWKSSize {
		return jwksLoad{}, fmt.Errorf("cannot load JWKS file %s: it is more than the %d bytes allowed", s.path, MaxJWKSSize)
	}
	keys, skipped, err := parseExternalJWKS(data)
	if err != nil {
		return jwksLoad{}, fmt.Errorf("cannot load JWKS file %s: %w", s.path, err)
	}
	s.modTime, s.size, s.loaded = fi.ModTime(), fi.Size(), true
	return jwksLoad{keys: keys, skipped: skipped, maxAge: -1}, nil
}

// urlSource fetches a JWKS URL with a bounded client and remembers the
// ETag of the last good answer, so an unchanged set costs a 304.
type urlSource struct {
	url    string
	shown  string // url without credentials or query, for logs
	client *http.Client
	etag   string
}

func newURLSource(raw string, rt http.RoundTripper) (*urlSource, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("cannot parse JWKS URL: %w", err)
	}
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = JWKSFetchTimeout
		t.MaxResponseHeaderBytes = 64 << 10
		rt = t
	}
	return &urlSource{
		url:   raw,
		shown: showURL(u),
		client: &http.Client{
			Transport:     rt,
			Timeout:       JWKSFetchTimeout,
			CheckRedirect: sameHostRedirect,
		},
	}, nil
}

// showURL is u without its password and query (either may hold a
// credential).
func showURL(u *url.URL) string {
	c := *u
	if c.RawQuery != "" {
		c.RawQuery = "redacted"
	}
	c.Fragment = ""
	return c.Redacted()
}

// sameHostRedirect follows at most maxJWKSRedirects redirects, each to the
// host (and port) the fetch started at, never from https to http: the
// issuer's keys come from the place the operator named.
func sameHostRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxJWKSRedirects {
		return fmt.Errorf("stopped after %d redirects", maxJWKSRedirects)
	}
	first := via[0].URL
	if req.URL.Host != first.Host {
		return fmt.Errorf("refused a redirect to another host (%s)", req.URL.Host)
	}
	if first.Scheme == "https" && req.URL.Scheme != "https" {
		return errors.New("refused a redirect from https to http")
	}
	return nil
}

func (s *urlSource) String() string { return s.shown }

func (s *urlSource) load(ctx context.Context) (jwksLoad, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return jwksLoad{}, fmt.Errorf("cannot fetch JWKS from %s: %w", s.shown, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	req.Header.Set("User-Agent", "tokencache")
	if s.etag != "" {
		req.Header.Set("If-None-Match", s.etag)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return jwksLoad{}, fmt.Errorf("cannot fetch JWKS from %s: %w", s.shown, redactURLError(err))
	}
	defer resp.Body.Close()
	maxAge := parseMaxAge(resp.Header.Values("Cache-Control"))
	switch {
	case resp.StatusCode == http.StatusNotModified && s.etag != "":
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return jwksLoad{unchanged: true, maxAge: maxAge}, nil
	case resp.StatusCode != http.StatusOK:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return jwksLoad{}, fmt.Errorf("cannot fetch JWKS from %s: it answered %s", s.shown, resp.Status)
	}
	if resp.ContentLength > MaxJWKSSize {
		return jwksLoad{}, fmt.Errorf("cannot fetch JWKS from %s: its answer is %d bytes, more than the %d allowed", s.shown, resp.ContentLength, MaxJWKSSize)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSSize+1))
	if err != nil {
		return jwksLoad{}, fmt.Errorf("cannot fetch JWKS from %s: %w", s.shown, redactURLError(err))
	}
	if len(data) > MaxJWKSSize {
		return jwksLoad{}, fmt.Errorf("cannot fetch JWKS from %s: its answer is more than the %d bytes allowed", s.shown, MaxJWKSSize)
	}
	keys, skipped, err := parseExternalJWKS(data)
	if err != nil {
		return jwksLoad{}, fmt.Errorf("cannot load JWKS from %s: %w", s.shown, err)
	}
	s.etag = resp.Header.Get("ETag")
	return jwksLoad{keys: keys, skipped: skipped, maxAge: maxAge}, nil
}

// redactURLError drops the URL (which may carry a credential in its query)
// from a *url.Error; the caller names the source itself.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// parseMaxAge returns the max-age of Cache-Control header values, 0 for
// no-store or no-cache (fetch as often as allowed), or -1 when there is
// none.
func parseMaxAge(values []string) time.Duration {
	d := time.Duration(-1)
	for _, v := range values {
		for dir := range strings.SplitSeq(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(dir), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return 0
			case "max-age":
				n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
				if err != nil || n < 0 {
					continue
				}
				if n > int64(365*24*time.Hour/time.Second) {
					n = int64(365 * 24 * time.Hour / time.Second)
				}
				d = time.Duration(n) * time.Second
			}
		}
	}
	return d
}

// jwkHeader is what parseExternalJWKS reads of a JWK before handing it to
// ParseJWKSet: enough to refuse secrets and skip keys not meant for
// signatures, never the key material.
type jwkHeader struct {
	Kty string          `json:"kty"`
	Kid string          `json:"kid"`
	Use string          `json:"use"`
	Alg string          `json:"alg"`
	D   json.RawMessage `json:"d"`
	K   json.RawMessage `json:"k"`
}

// parseExternalJWKS parses the JWKS of an external issuer. It refuses the
// whole set when it holds a private or a symmetric key: an issuer that
// publishes those has leaked them, and an external issuer's HS256 shared
// secret is not supported. Keys that are not for signatures (use other
// than "sig") or that ParseJWKSet does not support (an algorithm we do not
// verify, a short RSA key) are skipped and named in skipped, so that one
// odd key in an IdP's set does not hide the others. Errors name kids and
// key types, never key material.
func parseExternalJWKS(data []byte) (keys []*Key, skipped []string, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("%w: not a JWK set: not a JSON object with a \"keys\" array", ErrKeySet)
	}
	if doc.Keys == nil {
		return nil, nil, fmt.Errorf("%w: not a JWK set: no \"keys\" array", ErrKeySet)
	}
	if len(doc.Keys) > MaxJWKSKeys {
		return nil, nil, fmt.Errorf("%w: the JWK set has %d keys, more than the %d allowed", ErrKeySet, len(doc.Keys), MaxJWKSKeys)
	}
	seen := map[string]bool{}
	for i, raw := range doc.Keys {
		var h jwkHeader
		if err := json.Unmarshal(raw, &h); err != nil {
			return nil, nil, fmt.Errorf("%w: key %d of the JWK set is not a JSON object", ErrKeySet, i)
		}
		name := h.Kid
		if name == "" {
			name = fmt.Sprintf("#%d", i)
		}
		if h.Kty == "oct" || len(h.K) > 0 {
			return nil, nil, fmt.Errorf("%w: key %q is a symmetric (oct) key: a trusted issuer's JWKS must publish public keys only (an external HS256 shared secret is not supported)", ErrKeySet, name)
		}
		if len(h.D) > 0 {
			return nil, nil, fmt.Errorf("%w: key %q is a private key: a trusted issuer's JWKS must publish public keys only", ErrKeySet, name)
		}
		if h.Use != "" && h.Use != "sig" {
			skipped = append(skipped, fmt.Sprintf("%s: use %q is not sig", name, h.Use))
			continue
		}
		if h.Kid == "" {
			skipped = append(skipped, name+": no kid")
			continue
		}
		if seen[h.Kid] {
			return nil, nil, fmt.Errorf("%w: kid %q appears twice in the JWK set", ErrKeySet, h.Kid)
		}
		seen[h.Kid] = true
		k, err := ParseJWK(raw)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		if k.CanSign() || k.Alg() == AlgHS256 || k.Public() == nil {
			return nil, nil, fmt.Errorf("%w: key %q is not a public key: a trusted issuer's JWKS must publish public keys only", ErrKeySet, name)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		if len(skipped) > 0 {
			return nil, skipped, fmt.Errorf("%w: the JWK set has no usable signature key (skipped %s)", ErrKeySet, strings.Join(skipped, "; "))
		}
		return nil, nil, fmt.Errorf("%w: the JWK set has no keys", ErrKeySet)
	}
	slices.SortFunc(keys, func(a, b *Key) int { return strings.Compare(a.ID(), b.ID()) })
	return keys, skipped, nil
}

// isLoopbackHost reports whether host (without port) names the loopback
// interface: "localhost" or a loopback IP address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
