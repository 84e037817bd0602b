package httpapi

import (
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/token"
)

// POST /v1/introspect (RFC 7662) and POST /v1/revoke (RFC 7009). Both take
// an application/x-www-form-urlencoded body with token= (token_type_hint is
// accepted and ignored: there is one kind of token).

const (
	routeIntrospect = "/v1/introspect"
	routeRevoke     = "/v1/revoke"
)

// inactive is the whole RFC 7662 answer for every token that is not active:
// expired, revoked, idle, unknown and malformed all look the same, so that
// introspection tells a token scanner nothing.
const inactive = `{"active":false}`

func (s *Server) handleIntrospect(ctx *fasthttp.RequestCtx) {
	form, ok := readForm(ctx)
	if !ok {
		return
	}
	defer fasthttp.ReleaseArgs(form)
	tok, ok := formToken(ctx, form)
	if !ok {
		return
	}
	if !validBearer(tok) {
		writeRaw(ctx, fasthttp.StatusOK, inactive)
		return
	}
	v := s.svc.Validate(s.base, tok)
	if v.Err != nil {
		// RFC 7662 has no "cannot tell": answering inactive would be a lie
		// that a caching gateway keeps, so the caller gets a 503 to retry.
		_, code, msg := errorStatus(v.Err)
		s.failWith(ctx, routeIntrospect, v.Err, fasthttp.StatusServiceUnavailable, code, msg)
		return
	}
	if v.State != token.StateValid || v.Token == nil {
		writeRaw(ctx, fasthttp.StatusOK, inactive)
		return
	}
	t := v.Token
	ctx.SetStatusCode(fasthttp.StatusOK)
	b := beginBody(ctx)
	b = append(b, `{"active":true,"scope":`...)
	b = appendString(b, string(t.Scopes))
	if c := t.ClientID(); c != "" {
		b = append(b, `,"client_id":`...)
		b = appendString(b, c)
	}
	b = append(b, `,"username":`...)
	b = appendString(b, t.Username)
	b = append(b, `,"token_type":"Bearer"`...)
	if !t.Expires.IsZero() {
		b = append(b, `,"exp":`...)
		b = strconv.AppendInt(b, t.Expires.Time().Unix(), 10)
	}
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, t.Created.Time().Unix(), 10)
	b = append(b, `,"sub":`...)
	b = appendString(b, t.Username)
	b = append(b, `,"jti":`...)
	b = appendKey(b, t.Key)
	b = append(b, `,"realm":`...)
	b = appendString(b, t.Realm)
	if t.HasUID {
		b = append(b, `,"uid":`...)
		b = strconv.AppendInt(b, t.UID, 10)
	}
	b = append(b, '}')
	endBody(ctx, b)
}

// handleRevoke revokes the token (and its descendants). It answers 200 with
// an empty body once the service has acknowledged the revoke, and also for
// unknown or malformed tokens (RFC 7009 §2.2). Any error is a 503 with
// Retry-After: the client must assume the token is still valid and retry.
func (s *Server) handleRevoke(ctx *fasthttp.RequestCtx) {
	form, ok := readForm(ctx)
	if !ok {
		return
	}
	defer fasthttp.ReleaseArgs(form)
	tok, ok := formToken(ctx, form)
	if !ok {
		return
	}
	if validBearer(tok) {
		rctx, cancel := s.requestContext()
		err := s.svc.RevokeToken(rctx, tok)
		cancel()
		if err != nil {
			status, code, msg := errorStatus(err)
			if status != fasthttp.StatusConflict {
				// RFC 7009: 503 tells the client to assume the token still
				// exists and retry; a 409 (too many descendants) is final.
				status = fasthttp.StatusServiceUnavailable
			}
			s.failWith(ctx, routeRevoke, err, status, code, msg)
			return
		}
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.Header.SetCanonical(hdrCacheControl, valNoStore)
}

// formToken returns the one token= of form; it answers 400 when there is
// none or more than one, or when the token came in the query string.
func formToken(ctx *fasthttp.RequestCtx, form *fasthttp.Args) ([]byte, bool) {
	if q := ctx.QueryArgs(); q.Has("token") || q.Has("access_token") {
		writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, msgTokenInURL)
		return nil, false
	}
	var tok []byte
	n := 0
	for k, v := range form.All() {
		if string(k) == "token" {
			tok = v
			n++
		}
	}
	switch n {
	case 0:
		writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, "the form must have a token parameter")
		return nil, false
	case 1:
		return tok, true
	default:
		writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, "the form must have exactly one token parameter")
		return nil, false
	}
}
