package httpapi

import (
	"log/slog"
	"strconv"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/token"
)

// GET /v1/validate: is the bearer token valid, for whom, with which scopes?
//
//	200 {"active":true,"key","username","realm","uid","type","scopes","expires"}
//	    + X-Token-User, X-Token-Scopes, X-Token-Key, X-Token-Realm, X-Token-Type
//	401 {"active":false,"error":"expired|revoked|idle|unknown|malformed"}
//	    + WWW-Authenticate: Bearer error="invalid_token"
//	403 {"active":false,"error":"insufficient_scope","scope":"<missing>"}
//	503 {"active":false,"error":"store_unavailable|stale|shutting_down|…"}
//
// Every repeated scope= (each may also hold several space-separated scopes)
// is required. The token comes from the Authorization header only: a token
// in the query string or a form is refused with 400, because URLs end up in
// access logs. A cache hit allocates nothing here.

// Pre-built header names and values of the gateway answers.
var (
	hdrWWWAuthenticate = []byte(fasthttp.HeaderWWWAuthenticate)
	hdrTokenUser       = []byte("X-Token-User")
	hdrTokenScopes     = []byte("X-Token-Scopes")
	hdrTokenKey        = []byte("X-Token-Key")
	hdrTokenRealm      = []byte("X-Token-Realm")
	hdrTokenType       = []byte("X-Token-Type")
	hdrTokenError      = []byte("X-Token-Error")
	hdrRetryAfter      = []byte(fasthttp.HeaderRetryAfter)
	valOne             = []byte("1")

	// RFC 6750 §3: no error code when the request carried no credentials.
	challengeMissing = []byte(`Bearer`)
	challengeInvalid = []byte(`Bearer error="invalid_token"`)
	// A node that cannot decide does not call the token invalid.
	challengeUndecided = []byte(`Bearer error_description="the token cannot be verified right now, retry"`)
	challengeScopePfx  = `Bearer error="insufficient_scope", scope="`
)

const (
	codeInsufficientScope = "insufficient_scope"
	codeInvalidScope      = "invalid_scope"
	msgTokenInURL         = "tokens never go in URLs or forms (they end up in access logs): send Authorization: Bearer <token>"
)

func (s *Server) handleValidate(ctx *fasthttp.RequestCtx) {
	args := ctx.QueryArgs()
	consistent := false
	for k, v := range args.All() {
		switch string(k) {
		case "scope":
			if !validScopeParam(v) {
				writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest,
					"scope= must hold RFC 6749 scope-tokens (printable ASCII without space, '\"' or '\\', at most "+
						strconv.Itoa(token.MaxScopeLen)+" bytes each)")
				return
			}
		case "access_token", "token":
			writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, msgTokenInURL)
			return
		case "consistency":
			ok := true
			if consistent, ok = parseConsistency(v); !ok {
				writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, msgBadConsistency)
				return
			}
		}
	}
	if len(ctx.Request.Body()) > 0 {
		if post := ctx.PostArgs(); post.Has("access_token") || post.Has("token") {
			writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, msgTokenInURL)
			return
		}
	}

	raw, st := bearer(&ctx.Request.Header)
	if st != credOK {
		writeDeny(ctx, fasthttp.StatusUnauthorized, stateMalformed, challengeFor(st), false)
		return
	}
	if consistent {
		rctx, cancel := s.requestContext()
		err := s.svc.Consistent(rctx)
		cancel()
		if err != nil {
			s.writeUndecided(ctx, err, false)
			return
		}
	}
	v := s.svc.Validate(s.base, raw)
	if v.Err != nil {
		s.writeUndecided(ctx, v.Err, false)
		return
	}
	if v.State != token.StateValid || v.Token == nil {
		writeDeny(ctx, fasthttp.StatusUnauthorized, inactiveCode(v.State), challengeInvalid, false)
		return
	}
	var scratch [256]byte
	if missing := appendMissingParams(scratch[:0], v.Token.Scopes, args); len(missing) > 0 {
		writeForbidden(ctx, codeInsufficientScope, missing, false)
		return
	}
	writeActive(ctx, v.Token)
}

const stateMalformed = "malformed"

// inactiveCode is the error code of a 401 for state st.
func inactiveCode(st token.State) string {
	switch st {
	case token.StateExpired, token.StateRevoked, token.StateIdle, token.StateMalformed:
		return st.String()
	}
	return "unknown" // also a valid state without a record: fail closed
}

func challengeFor(st credStatus) []byte {
	if st == credMissing {
		return challengeMissing
	}
	return challengeInvalid
}

const msgBadConsistency = `consistency= must be "default" or "consistent"`

// parseConsistency reads ?consistency=: "consistent" asks for a
// linearizable read; "" and "default" for a local one.
func parseConsistency(v []byte) (consistent, ok bool) {
	switch string(v) {
	case "consistent":
		return true, true
	case "", "default":
		return false, true
	}
	return false, false
}

// validScopeParam reports whether a scope= value holds one or more
// space-separated RFC 6749 scope-tokens (token.ValidScope, without
// allocating).
func validScopeParam(v []byte) bool {
	n := 0
	for len(v) > 0 {
		var seg []byte
		seg, v = nextScope(v)
		if len(seg) == 0 {
			continue
		}
		if len(seg) > token.MaxScopeLen {
			return false
		}
		for _, c := range seg {
			if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
				return false
			}
		}
		n++
	}
	return n > 0
}

// nextScope splits the first space-separated scope off v.
func nextScope(v []byte) (seg, rest []byte) {
	for i, c := range v {
		if c == ' ' {
			return v[:i], v[i+1:]
		}
	}
	return v, nil
}

// appendMissing appends to missing (space-separated, without duplicates)
// each scope of want (space-separated) that have lacks.
func appendMissing(missing []byte, have token.Scopes, want []byte) []byte {
	v := want
	for len(v) > 0 {
		var seg []byte
		seg, v = nextScope(v)
		if len(seg) == 0 || token.Has(have, seg) || hasScope(missing, seg) {
			continue
		}
		if len(missing) > 0 {
			missing = append(missing, ' ')
		}
		missing = append(missing, seg...)
	}
	return missing
}

// appendMissingParams appends the scopes named by the scope= arguments that
// have lacks.
func appendMissingParams(missing []byte, have token.Scopes, args *fasthttp.Args) []byte {
	for k, v := range args.All() {
		if string(k) == "scope" {
			missing = appendMissing(missing, have, v)
		}
	}
	return missing
}

// hasScope reports whether the space-separated list contains scope.
func hasScope(list, scope []byte) bool {
	for len(list) > 0 {
		var seg []byte
		seg, list = nextScope(list)
		if string(seg) == string(scope) {
			return true
		}
	}
	return false
}

// writeActive answers 200 for a valid token with the validation JSON and
// the X-Token-* headers.
func writeActive(ctx *fasthttp.RequestCtx, t *token.Token) {
	h := &ctx.Response.Header
	var kb [32]byte
	key, _ := t.Key.AppendText(kb[:0])
	h.SetCanonical(hdrTokenKey, key)
	h.SetCanonical(hdrTokenUser, readOnlyBytes(t.Username))
	h.SetCanonical(hdrTokenRealm, readOnlyBytes(t.Realm))
	h.SetCanonical(hdrTokenType, readOnlyBytes(t.Type.String()))
	h.SetCanonical(hdrTokenScopes, readOnlyBytes(string(t.Scopes)))

	ctx.SetStatusCode(fasthttp.StatusOK)
	b := beginBody(ctx)
	b = append(b, `{"active":true,"key":"`...)
	b = append(b, key...)
	b = append(b, `","username":`...)
	b = appendString(b, t.Username)
	b = append(b, `,"realm":`...)
	b = appendString(b, t.Realm)
	if t.HasUID {
		b = append(b, `,"uid":`...)
		b = strconv.AppendInt(b, t.UID, 10)
	}
	b = append(b, `,"type":`...)
	b = appendString(b, t.Type.String())
	b = append(b, `,"scopes":`...)
	b = appendScopes(b, t.Scopes)
	b = append(b, `,"expires":`...)
	b = appendTime(b, t.Expires)
	b = append(b, '}')
	endBody(ctx, b)
}

// writeDeny answers {"active":false,"error":code} with status and the
// challenge; a forward-auth answer also names the reason in X-Token-Error.
func writeDeny(ctx *fasthttp.RequestCtx, status int, code string, challenge []byte, forwardAuth bool) {
	ctx.SetStatusCode(status)
	if challenge != nil {
		ctx.Response.Header.SetCanonical(hdrWWWAuthenticate, challenge)
	}
	if forwardAuth {
		ctx.Response.Header.SetCanonical(hdrTokenError, readOnlyBytes(code))
	}
	b := beginBody(ctx)
	b = append(b, `{"active":false,"error":`...)
	b = appendString(b, code)
	b = append(b, '}')
	endBody(ctx, b)
}

// writeForbidden answers 403 {"active":false,"error":code,"scope":missing}
// with an RFC 6750 insufficient_scope challenge naming the missing scopes.
func writeForbidden(ctx *fasthttp.RequestCtx, code string, missing []byte, forwardAuth bool) {
	var cb [320]byte
	c := append(cb[:0], challengeScopePfx...)
	c = append(c, missing...)
	c = append(c, '"')
	ctx.Response.Header.SetCanonical(hdrWWWAuthenticate, c)
	if forwardAuth {
		ctx.Response.Header.SetCanonical(hdrTokenError, readOnlyBytes(code))
	}
	ctx.SetStatusCode(fasthttp.StatusForbidden)
	b := beginBody(ctx)
	b = append(b, `{"active":false,"error":`...)
	b = appendString(b, code)
	b = append(b, `,"scope":"`...)
	b = append(b, missing...) // scope-tokens: nothing to escape
	b = append(b, `"}`...)
	endBody(ctx, b)
}

// writeUndecided answers a validation the node cannot decide (err is
// Validation.Err or a failed read barrier): 503 for validate, a 401 deny
// with X-Token-Error for forward-auth (a gateway turns 5xx into an error
// page or, for Envoy's failure_mode_allow, into an allow).
func (s *Server) writeUndecided(ctx *fasthttp.RequestCtx, err error, forwardAuth bool) {
	code := codeOf(err)
	if code == codeInternal {
		s.log.LogAttrs(s.base, slog.LevelError, "cannot validate token", slog.Any("err", err))
	}
	if forwardAuth {
		writeDeny(ctx, fasthttp.StatusUnauthorized, code, challengeUndecided, true)
		return
	}
	ctx.Response.Header.SetCanonical(hdrRetryAfter, valOne)
	writeDeny(ctx, fasthttp.StatusServiceUnavailable, code, nil, false)
}

// readOnlyBytes returns the bytes of s without copying, for fasthttp
// setters that copy their argument before changing anything
// (ResponseHeader.SetCanonical copies the value into its own buffer first).
// The result must never be written to or kept.
func readOnlyBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
