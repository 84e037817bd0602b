// Package httpapi is tokencache's HTTP API, served with fasthttp.
//
// It answers three kinds of callers on one listener:
//
//   - gateways: GET /v1/validate, ANY /v1/authz[/…] (forward-auth for NGINX
//     auth_request, Traefik forwardAuth and Envoy ext_authz) and
//     POST /v1/introspect (RFC 7662);
//   - token holders: POST /v1/revoke (RFC 7009);
//   - operators: the admin endpoints under /v1/tokens, /v1/stats and
//     /v1/admin (Authorization: Bearer <admin token>), and /healthz, /readyz
//     and /metrics.
//
// The package depends on the token service only through the Tokens
// interface it declares. One table (apiErrors in errors.go) maps an error's
// code (internal/errcode, declared once with each sentinel) to its status,
// stable code and message; errorStatus is the one function that reads it.
//
// Validate and authz are the hot path: a decision answered from the cache
// allocates nothing in this package (JSON is appended into the response's
// pooled body buffer, headers are set from pre-built canonical keys, metric
// handles are resolved once). validate_alloc_test.go keeps it that way.
//
// Service calls never get the *fasthttp.RequestCtx as their context:
// fasthttp recycles it when the handler returns, and a context derived from
// it (context.WithTimeout) reads it from another goroutine afterwards. They
// get the server's own context (Validate) or one derived from it with
// Config.RequestTimeout (everything else).
//
// Nothing in this package logs a token, an Authorization header, the admin
// token or a request body; the access log (Debug level) carries the route
// label, never the request path or query.
package httpapi
