package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// Route labels of the hot paths (also their metric labels).
const (
	routeValidate = "/v1/validate"
	routeAuthz    = "/v1/authz"
)

// routes registers every endpoint of DESIGN §5 this package serves. The
// cluster endpoints (/v1/cluster, /v1/cluster/leave) are added by the caller
// with Handle. /.well-known/jwks.json and the RFC 8414 metadata answer 404
// while the JWT format is off (Config.JWKS, Config.Issuer).
func (s *Server) routes(gather prometheus.Gatherer) {
	// Gateways. validate and authz are dispatched by serve before the
	// router; they are registered here too so that the router's 405 and
	// route list know them.
	s.validateRoute = s.wrap(routeValidate, s.handleValidate, false, false)
	s.authzRoute = s.wrap(routeAuthz, s.handleAuthz, false, true)
	s.router.GET(routeValidate, s.validateRoute)
	s.router.ANY(routeAuthz, s.authzRoute)
	s.router.ANY(routeAuthz+"/{path:*}", s.authzRoute)
	s.Handle(fasthttp.MethodPost, "/v1/introspect", s.handleIntrospect, false)
	s.Handle(fasthttp.MethodPost, "/v1/revoke", s.handleRevoke, false)

	// Admin.
	s.Handle(fasthttp.MethodPost, "/v1/tokens", s.handleIssue, true)
	s.Handle(fasthttp.MethodGet, "/v1/tokens", s.handleList, true)
	s.Handle(fasthttp.MethodGet, "/v1/tokens/{key}", s.handleInfo, true)
	s.Handle(fasthttp.MethodPatch, "/v1/tokens/{key}", s.handleModify, true)
	s.Handle(fasthttp.MethodDelete, "/v1/tokens/{key}", s.handleRevokeKey, true)
	s.Handle(fasthttp.MethodGet, "/v1/tokens/{key}/children", s.handleChildren, true)
	s.Handle(fasthttp.MethodPost, "/v1/tokens/{key}/internal", s.handleDelegateInternal, true)
	s.Handle(fasthttp.MethodPost, "/v1/tokens/{key}/notebook", s.handleDelegateNotebook, true)
	s.Handle(fasthttp.MethodGet, "/v1/stats", s.handleStats, true)
	s.Handle(fasthttp.MethodGet, "/v1/admin/orphaned", s.handleOrphaned, true)
	s.Handle(fasthttp.MethodPost, "/v1/admin/purge", s.handlePurge, true)

	// Public JWT keys and RFC 8414 metadata.
	s.Handle(fasthttp.MethodGet, routeJWKS, s.handleJWKS, false)
	s.Handle(fasthttp.MethodGet, routeMetadata, s.handleMetadata, false)

	// Operations.
	s.Handle(fasthttp.MethodGet, "/healthz", s.handleHealthz, false)
	s.Handle(fasthttp.MethodGet, "/readyz", s.handleReadyz, false)
	if gather != nil {
		s.Handle(fasthttp.MethodGet, "/metrics", metricsHandler(gather), false)
	}
}
