package httpapi

import (
	"log/slog"

	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/internal/errcode"
)

// Stable error codes of the API ({"error":"<code>"}) that belong to the
// HTTP layer itself; the codes of errors are errcode's (table below).
const (
	codeInvalidRequest   = "invalid_request"
	codeUnauthorized     = "unauthorized"
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
	codeBodyTooLarge     = "body_too_large"
	codeHeadersTooLarge  = "headers_too_large"
	codeUnsupportedMedia = "unsupported_media_type"
	codeRequestTimeout   = "request_timeout"
	codeBadRequest       = "bad_request"
	codeInternal         = "internal"
)

// apiError is how the API answers one code.
type apiError struct {
	status int
	// code is the envelope's "error"; empty means the errcode itself.
	code string
	// msg replaces the sentinel's text; hint is appended to it.
	msg, hint string
	// as answers the error as the sentinel of another code (its code and
	// text).
	as errcode.Code
	// ownMessage answers the error's own text, written for API callers.
	ownMessage bool
	// retryAfter overrides the Retry-After: 1 of a 503.
	retryAfter string
}

// apiErrors is the one table from an error's code (errcode.Of) to the HTTP
// status, the stable code and the message. The message is the sentinel's
// own text, never the wrapped chain, which may name internals (a database
// host, a raft address), unless ownMessage says the chain is written for
// the caller. A code missing here (halted, internal, a newer node's) is 500
// internal.
var apiErrors = map[errcode.Code]apiError{
	// The caller's fault: 400 invalid_request with the error's own message.
	errcode.Invalid:   {status: fasthttp.StatusBadRequest, code: codeInvalidRequest, ownMessage: true},
	errcode.Malformed: {status: fasthttp.StatusBadRequest, code: codeInvalidRequest, ownMessage: true},

	// The token service (tokens/api.go).
	errcode.Indeterminate:       {status: fasthttp.StatusServiceUnavailable, hint: ": retry with the same Idempotency-Key"},
	errcode.NotFound:            {status: fasthttp.StatusNotFound},
	errcode.ParentNotFound:      {status: fasthttp.StatusNotFound},
	errcode.ParentNotValid:      {status: fasthttp.StatusConflict},
	errcode.TokenNotValid:       {status: fasthttp.StatusConflict},
	errcode.TooManyDescendants:  {status: fasthttp.StatusConflict},
	errcode.DuplicateName:       {status: fasthttp.StatusConflict},
	errcode.IdempotencyConflict: {status: fasthttp.StatusConflict},
	errcode.StoreUnavailable:    {status: fasthttp.StatusServiceUnavailable},
	errcode.Stale:               {status: fasthttp.StatusServiceUnavailable},
	errcode.Overloaded:          {status: fasthttp.StatusServiceUnavailable},
	errcode.NoLeader:            {status: fasthttp.StatusServiceUnavailable},
	errcode.ShuttingDown:        {status: fasthttp.StatusServiceUnavailable},
	// persist.store: none: the operation needs stored tokens. 501: this
	// node does not implement it as configured; retrying never helps
	// (a 409 would say the token's state is in the way).
	errcode.StoreDisabled: {status: fasthttp.StatusNotImplemented},

	// POST /v1/cluster/leave (cluster.ErrLastServer, cluster.ErrLeaveFailed):
	// the reason of a failed leave is the error's own text.
	errcode.LastServer:  {status: fasthttp.StatusConflict, msg: "this node is the only server of its cluster; stop it instead"},
	errcode.LeaveFailed: {status: fasthttp.StatusServiceUnavailable, ownMessage: true, retryAfter: "5"},

	// A passed deadline is 503 timeout; a cancelled request context means
	// the server is shutting down (fasthttp cancels request contexts only
	// then). errcode.Match ranks every sentinel above them: a write that
	// timed out mid-commit is indeterminate, not a plain timeout.
	errcode.Timeout:  {status: fasthttp.StatusServiceUnavailable, msg: "the request did not complete in time"},
	errcode.Canceled: {status: fasthttp.StatusServiceUnavailable, as: errcode.ShuttingDown},
}

// errorStatus is the one place that maps an error to an HTTP status, a
// stable code and a message for the caller, by the error's code (table
// above). Anything without a code is 500 internal with a generic message;
// the handler logs the real error once.
func errorStatus(err error) (status int, code, message string) {
	c, sentinel := errcode.Match(err)
	e, ok := apiErrors[c]
	if !ok {
		return fasthttp.StatusInternalServerError, codeInternal, "internal error"
	}
	if e.as != "" {
		c = e.as
		sentinel, _ = errcode.Lookup(c)
	}
	code = e.code
	if code == "" {
		code = string(c)
	}
	switch {
	case e.ownMessage:
		message = err.Error()
	case e.msg != "":
		message = e.msg
	case e.hint != "":
		message = sentinel.Error() + e.hint
	default:
		message = sentinel.Error()
	}
	return e.status, code, message
}

// ErrorStatus returns the HTTP status and stable code the API answers for
// err. Other transports that carry these errors (the cluster's forwarding
// RPC) test against it, so that a write answers the same through any node.
func ErrorStatus(err error) (status int, code string) {
	status, code, _ = errorStatus(err)
	return status, code
}

// MappedErrors returns every error that errorStatus tells apart, one per
// code of its table. Safe for concurrent use; the slice is new.
func MappedErrors() []error {
	var out []error
	for _, err := range errcode.Errors() {
		if _, ok := apiErrors[errcode.Of(err)]; ok {
			out = append(out, err)
		}
	}
	return out
}

// Fail answers err as the API answers every error (the code's status,
// code and message; see errorStatus), for handlers that others add with
// Handle. A 500 is logged once, with the real error.
func (s *Server) Fail(ctx *fasthttp.RequestCtx, route string, err error) {
	s.fail(ctx, route, err)
}

// fail answers err as mapped by errorStatus. A 503 carries Retry-After: 1
// (overload, leader loss and store outages are short, and RFC 7009 clients
// must retry a revoke). A 500 is logged here, once, with the real error.
func (s *Server) fail(ctx *fasthttp.RequestCtx, route string, err error) {
	status, code, msg := errorStatus(err)
	s.failWith(ctx, route, err, status, code, msg)
	if e := apiErrors[errcode.Of(err)]; e.retryAfter != "" {
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, e.retryAfter)
	}
}

func (s *Server) failWith(ctx *fasthttp.RequestCtx, route string, err error, status int, code, msg string) {
	switch status {
	case fasthttp.StatusInternalServerError:
		s.log.LogAttrs(s.base, slog.LevelError, "request failed",
			slog.String("route", route), slog.String("method", string(ctx.Method())), slog.Any("err", err))
	case fasthttp.StatusServiceUnavailable:
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
	}
	writeError(ctx, status, code, msg)
}

// codeOf returns the stable code of an error that keeps a node from
// deciding (Validation.Err): store_unavailable, stale, shutting_down, …
func codeOf(err error) string {
	_, code, _ := errorStatus(err)
	return code
}
