package httpapi

import (
	"slices"

	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/token"
)

// ANY /v1/authz and ANY /v1/authz/{path:*}: forward-auth, one handler for
// the three gateway contracts (research/ecosystem.md §3):
//
//   - NGINX auth_request: a subrequest (proxy_pass_request_body off) with
//     the client's headers and X-Original-URI: $request_uri;
//   - Traefik forwardAuth: GET with the client's headers plus
//     X-Forwarded-Method and X-Forwarded-Uri;
//   - Envoy ext_authz (HTTP service): the client's method, and the original
//     path appended to ours (path_prefix: /v1/authz).
//
// The decision is validate's: the token from Authorization (or, when there
// is none, the configured cookie), then the scopes the original path needs
// by the longest matching Config.Authz rule, plus every scope= of the
// request. 200 allows with the X-Token-* headers; 401 and 403 deny with
// WWW-Authenticate and X-Token-Error. A node that cannot decide denies with
// 401 and X-Token-Error (stale, store_unavailable, …): never a 5xx, which
// NGINX turns into a 500 and Envoy into status_on_error or, with
// failure_mode_allow, into an allow. An allow from the cache allocates
// nothing here.
//
// Where the original path comes from several places (the path after
// /v1/authz, X-Original-URI, X-Forwarded-Uri), each is matched, both as
// sent and normalised (percent-decoded, dot segments resolved, slashes
// merged), and the request needs the scopes of every rule matched. A client
// header that a gateway passes along can therefore only add requirements,
// and "/public/../admin" or "/%61dmin" cannot dodge the rule for "/admin".
// With no path at all, the path is "/". The original method (Envoy's, or
// Traefik's X-Forwarded-Method) does not enter the decision: rules are per
// path. Tokens never come from the URL here either; there is no 400 for a
// query token, because with Envoy the query is the client's.

// codeAmbiguousPath denies a request whose path sources match more rules
// than ruleSet holds.
const codeAmbiguousPath = "ambiguous_path"

const (
	hdrOriginalURI  = "X-Original-URI"  // NGINX: proxy_set_header X-Original-URI $request_uri
	hdrForwardedURI = "X-Forwarded-Uri" // Traefik
)

// authzRule is a compiled AuthzRule.
type authzRule struct {
	prefix string
	scopes []byte // space-separated, sorted
}

// compileRules turns validated rules into the form matched per request:
// longest prefix first, so that the first match is the longest.
func compileRules(rules []AuthzRule) []authzRule {
	out := make([]authzRule, 0, len(rules))
	for _, r := range rules {
		sc, _ := token.NewScopes(r.Scopes) // Config.Validate checked them
		out = append(out, authzRule{prefix: r.PathPrefix, scopes: []byte(sc)})
	}
	slices.SortStableFunc(out, func(a, b authzRule) int { return len(b.prefix) - len(a.prefix) })
	return out
}

// ruleSet collects the rules a request matched (at most one per candidate
// path form). It is bounded so that it lives on the stack; a request whose
// path sources match more rules than it holds (a client stuffing extra
// X-Original-URI headers to push the real rule out) is denied.
type ruleSet struct {
	idx      [8]int
	n        int
	overflow bool
}

func (rs *ruleSet) add(i int) {
	if i < 0 {
		return
	}
	for _, j := range rs.idx[:rs.n] {
		if j == i {
			return
		}
	}
	if rs.n == len(rs.idx) {
		rs.overflow = true
		return
	}
	rs.idx[rs.n] = i
	rs.n++
}

// match returns the index of the rule with the longest prefix of path, or -1.
func (s *Server) match(path []byte) int {
	for i := range s.rules {
		p := s.rules[i].prefix
		if len(path) >= len(p) && string(path[:len(p)]) == p {
			return i
		}
	}
	return -1
}

// matchTarget adds the rules matched by one original request target, as
// sent and normalised; buf is scratch space (reused, so that a longer path
// than it holds costs an allocation and nothing else).
func (s *Server) matchTarget(rs *ruleSet, target, buf []byte) {
	scratch := buf[:0]
	raw := rawPath(target)
	if len(raw) == 0 || raw[0] != '/' {
		scratch = append(scratch, '/')
		scratch = append(scratch, raw...)
		raw = scratch
		scratch = scratch[len(scratch):] // clean into what is left
	}
	rs.add(s.match(raw))
	rs.add(s.match(cleanPath(scratch, raw)))
}

func (s *Server) handleAuthz(ctx *fasthttp.RequestCtx) {
	raw, st := bearer(&ctx.Request.Header)
	if st == credMissing && s.cfg.Authz.Cookie != "" {
		if c := ctx.Request.Header.Cookie(s.cfg.Authz.Cookie); len(c) > 0 {
			raw, st = c, credOK
			if !validBearer(c) {
				st = credMalformed
			}
		}
	}
	if st != credOK {
		s.m.decisions[decisionDenyToken].Inc()
		writeDeny(ctx, fasthttp.StatusUnauthorized, stateMalformed, challengeFor(st), true)
		return
	}

	args := ctx.QueryArgs()
	for k, v := range args.All() {
		if string(k) == "scope" && !validScopeParam(v) {
			// No token can hold it: deny, without echoing it into a header.
			s.m.decisions[decisionDenyScope].Inc()
			writeDeny(ctx, fasthttp.StatusForbidden, codeInvalidScope, nil, true)
			return
		}
	}

	var rs ruleSet
	if len(s.rules) > 0 {
		var buf [1024]byte
		found := false
		if p := ctx.Request.URI().PathOriginal(); len(p) > len(routeAuthz) {
			s.matchTarget(&rs, p[len(routeAuthz):], buf[:])
			found = true
		}
		for _, h := range [...]string{hdrOriginalURI, hdrForwardedURI} {
			for _, v := range ctx.Request.Header.PeekAll(h) {
				s.matchTarget(&rs, v, buf[:])
				found = true
			}
		}
		if !found {
			rs.add(s.match(slashRoot))
		}
		if rs.overflow {
			s.m.decisions[decisionDenyScope].Inc()
			writeDeny(ctx, fasthttp.StatusForbidden, codeAmbiguousPath, nil, true)
			return
		}
	}

	v := s.svc.Validate(s.base, raw)
	if v.Err != nil {
		s.m.decisions[decisionUndecidable].Inc()
		s.writeUndecided(ctx, v.Err, true)
		return
	}
	if v.State != token.StateValid || v.Token == nil {
		s.m.decisions[decisionDenyToken].Inc()
		writeDeny(ctx, fasthttp.StatusUnauthorized, inactiveCode(v.State), challengeInvalid, true)
		return
	}
	var mb [256]byte
	missing := mb[:0]
	for _, i := range rs.idx[:rs.n] {
		missing = appendMissing(missing, v.Token.Scopes, s.rules[i].scopes)
	}
	missing = appendMissingParams(missing, v.Token.Scopes, args)
	if len(missing) > 0 {
		s.m.decisions[decisionDenyScope].Inc()
		writeForbidden(ctx, codeInsufficientScope, missing, true)
		return
	}
	s.m.decisions[decisionAllow].Inc()
	writeActive(ctx, v.Token)
}

// rawPath returns the path of a request target as sent: without query and
// fragment, and without scheme and authority when absolute-form. The
// caller roots it when it does not start with '/'.
func rawPath(target []byte) []byte {
	for i, c := range target {
		if c == '?' || c == '#' {
			target = target[:i]
			break
		}
	}
	if len(target) > 0 && target[0] != '/' {
		// absolute-form: scheme "://" authority path
		for i := 0; i+2 < len(target); i++ {
			if target[i] == ':' && target[i+1] == '/' && target[i+2] == '/' {
				rest := target[i+3:]
				target = nil
				for j, c := range rest {
					if c == '/' {
						target = rest[j:]
						break
					}
				}
				break
			}
		}
	}
	return target
}

var slashRoot = []byte{'/'}

// cleanPath appends to dst the normalised form of a rooted path p:
// percent-decoded (once, as an upstream server decodes it), consecutive
// slashes merged, "." and ".." segments resolved (never above the root),
// and a trailing slash kept. It allocates only when dst is too small.
func cleanPath(dst, p []byte) []byte {
	start := len(dst)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) {
			if h, ok := unhex(p[i+1]); ok {
				if l, ok := unhex(p[i+2]); ok {
					c = h<<4 | l
					i += 2
				}
			}
		}
		dst = append(dst, c)
	}
	out := clean(dst[start:])
	return dst[:start+len(out)]
}

// clean normalises a rooted path in place (path.Clean's algorithm, keeping
// a trailing slash) and returns the result, a prefix of b.
func clean(b []byte) []byte {
	n := len(b)
	if n == 0 || b[0] != '/' {
		return b
	}
	w, r := 1, 1 // write and read positions; w <= r
	for r < n {
		switch {
		case b[r] == '/':
			r++
		case b[r] == '.' && (r+1 == n || b[r+1] == '/'):
			r++
		case b[r] == '.' && b[r+1] == '.' && (r+2 == n || b[r+2] == '/'):
			r += 2
			if w > 1 {
				w--
				for w > 1 && b[w-1] != '/' {
					w--
				}
				if w > 1 {
					w-- // drop the separator before the removed segment
				}
			}
		default:
			if w > 1 {
				b[w] = '/'
				w++
			}
			for ; r < n && b[r] != '/'; r++ {
				b[w] = b[r]
				w++
			}
		}
	}
	if w > 1 && (b[n-1] == '/' || (b[n-1] == '.' && (b[n-2] == '/' || (b[n-2] == '.' && n > 2 && b[n-3] == '/')))) {
		b[w] = '/'
		w++
	}
	return b[:w]
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
