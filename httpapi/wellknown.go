package httpapi

import (
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
)

// GET /.well-known/jwks.json and GET /.well-known/oauth-authorization-server
// (RFC 8414): what a relying party needs to verify this node's JWTs offline
// and to find its introspection and revocation endpoints. No admin token:
// both are public by design (public keys and endpoint names).

const (
	routeJWKS     = "/.well-known/jwks.json"
	routeMetadata = "/.well-known/oauth-authorization-server"
)

// Messages of the 404s when the JWT format is off.
const (
	msgNoJWKS   = "this node has no JWT signing keys (tokens.jwt.keys_file is not set)"
	msgNoIssuer = "this node issues no JWTs (tokens.jwt.keys_file is not set), so it publishes no authorization server metadata"
)

var (
	hdrVary     = []byte("Vary")
	valVaryHost = []byte("Host")
)

// handleJWKS answers the JWK set of the local issuer's verify keys (the
// public half of each asymmetric key; an HS256 secret is never in it). It
// is read per request: a key reload shows at once, and relying parties may
// cache it for Config.JWKSMaxAge.
func (s *Server) handleJWKS(ctx *fasthttp.RequestCtx) {
	var set []byte
	if s.cfg.JWKS != nil {
		set = s.cfg.JWKS()
	}
	if len(set) == 0 {
		writeError(ctx, fasthttp.StatusNotFound, codeNotFound, msgNoJWKS)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.SetBody(set)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	s.setPublicCache(ctx)
}

// handleMetadata answers RFC 8414 authorization server metadata: the
// issuer, the JWKS URI (when there are local keys), and the introspection
// (RFC 7662) and revocation (RFC 7009) endpoints. tokencache has no token
// or authorization endpoint (tokens are issued by the admin API), so it
// names none, and no response or grant types.
//
// The endpoints are absolute URLs under the issuer when the issuer is an
// http(s) URL (set tokens.jwt.issuer to the public URL, as RFC 8414
// expects); otherwise under http://<Host of the request>.
func (s *Server) handleMetadata(ctx *fasthttp.RequestCtx) {
	if s.cfg.Issuer == "" {
		writeError(ctx, fasthttp.StatusNotFound, codeNotFound, msgNoIssuer)
		return
	}
	base := strings.TrimSuffix(s.cfg.Issuer, "/")
	fromHost := !strings.HasPrefix(base, "https://") && !strings.HasPrefix(base, "http://")
	if fromHost {
		base = "http://" + string(ctx.Host())
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	b := beginBody(ctx)
	b = append(b, `{"issuer":`...)
	b = appendString(b, s.cfg.Issuer)
	if s.cfg.JWKS != nil && len(s.cfg.JWKS()) > 0 {
		b = append(b, `,"jwks_uri":`...)
		b = appendString(b, base+routeJWKS)
	}
	b = append(b, `,"introspection_endpoint":`...)
	b = appendString(b, base+routeIntrospect)
	b = append(b, `,"introspection_endpoint_auth_methods_supported":["none"]`...)
	b = append(b, `,"revocation_endpoint":`...)
	b = appendString(b, base+routeRevoke)
	b = append(b, `,"revocation_endpoint_auth_methods_supported":["none"]`...)
	b = append(b, `,"response_types_supported":[],"grant_types_supported":[]`...)
	b = append(b, `,"token_endpoint_auth_methods_supported":[]`...)
	b = append(b, '}')
	endBody(ctx, b)
	s.setPublicCache(ctx)
	if fromHost {
		ctx.Response.Header.SetCanonical(hdrVary, valVaryHost)
	}
}

// setPublicCache replaces endBody's no-store with a public max-age of
// Config.JWKSMaxAge (no-cache when it is 0).
func (s *Server) setPublicCache(ctx *fasthttp.RequestCtx) {
	v := "no-cache"
	if age := int64(s.cfg.JWKSMaxAge.Seconds()); age > 0 {
		v = "public, max-age=" + strconv.FormatInt(age, 10)
	}
	ctx.Response.Header.Set("Cache-Control", v)
}
