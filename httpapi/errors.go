package httpapi

import (
	"context"
	"errors"
	"log/slog"

	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// Stable error codes of the API ({"error":"<code>"}), besides the ones
// errorStatus derives from service errors.
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

// serviceErrors maps each sentinel of the token service to its status and
// stable code. The message is the sentinel's own text, never the wrapped
// chain, which may name internals (a database host, a raft address).
var serviceErrors = []struct {
	err    error
	status int
	code   string
}{
	// First: an indeterminate outcome wraps its cause (a store outage, a
	// deadline), and the caller must learn that the write may have happened.
	{tokens.ErrIndeterminate, fasthttp.StatusServiceUnavailable, "indeterminate"},
	{tokens.ErrNotFound, fasthttp.StatusNotFound, "not_found"},
	{tokens.ErrParentNotFound, fasthttp.StatusNotFound, "parent_not_found"},
	{tokens.ErrParentNotValid, fasthttp.StatusConflict, "parent_not_valid"},
	{tokens.ErrTokenNotValid, fasthttp.StatusConflict, "token_not_valid"},
	{tokens.ErrTooManyDescendants, fasthttp.StatusConflict, "too_many_descendants"},
	{tokens.ErrDuplicateName, fasthttp.StatusConflict, "duplicate_name"},
	{tokens.ErrIdempotencyConflict, fasthttp.StatusConflict, "idempotency_conflict"},
	{tokens.ErrStoreUnavailable, fasthttp.StatusServiceUnavailable, "store_unavailable"},
	{tokens.ErrStale, fasthttp.StatusServiceUnavailable, "stale"},
	{tokens.ErrOverloaded, fasthttp.StatusServiceUnavailable, "overloaded"},
	{tokens.ErrNoLeader, fasthttp.StatusServiceUnavailable, "no_leader"},
	{tokens.ErrShuttingDown, fasthttp.StatusServiceUnavailable, "shutting_down"},
}

// errorStatus is the one place that maps an error to an HTTP status, a
// stable code and a message for the caller.
//
//   - token.ErrInvalid and token.ErrMalformed are the caller's fault: 400
//     invalid_request with the error's own message, which is written for
//     API callers.
//   - Each sentinel of tokens/api.go has its status and code (table above).
//   - A passed deadline is 503 timeout; a cancelled request context means
//     the server is shutting down (fasthttp cancels request contexts only
//     then): 503 shutting_down.
//   - Anything else is 500 internal with a generic message; the handler
//     logs the real error once.
//
// Service sentinels are matched before context errors: a write that timed
// out mid-commit is indeterminate, not a plain timeout.
func errorStatus(err error) (status int, code, message string) {
	if errors.Is(err, token.ErrInvalid) || errors.Is(err, token.ErrMalformed) {
		return fasthttp.StatusBadRequest, codeInvalidRequest, err.Error()
	}
	for _, e := range serviceErrors {
		if errors.Is(err, e.err) {
			msg := e.err.Error()
			if e.err == tokens.ErrIndeterminate {
				msg += ": retry with the same Idempotency-Key"
			}
			return e.status, e.code, msg
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fasthttp.StatusServiceUnavailable, "timeout", "the request did not complete in time"
	case errors.Is(err, context.Canceled):
		return fasthttp.StatusServiceUnavailable, "shutting_down", tokens.ErrShuttingDown.Error()
	}
	return fasthttp.StatusInternalServerError, codeInternal, "internal error"
}

// ErrorStatus returns the HTTP status and stable code the API answers for
// err. Other transports that carry these errors (the cluster's forwarding
// RPC) test against it, so that a write answers the same through any node.
func ErrorStatus(err error) (status int, code string) {
	status, code, _ = errorStatus(err)
	return status, code
}

// MappedErrors returns every error that errorStatus tells apart: the
// sentinels of the table above, the two input errors of the token model and
// the two context errors. Safe for concurrent use; the slice is new.
func MappedErrors() []error {
	out := []error{token.ErrInvalid, token.ErrMalformed}
	for _, e := range serviceErrors {
		out = append(out, e.err)
	}
	return append(out, context.DeadlineExceeded, context.Canceled)
}

// fail answers err as mapped by errorStatus. A 503 carries Retry-After: 1
// (overload, leader loss and store outages are short, and RFC 7009 clients
// must retry a revoke). A 500 is logged here, once, with the real error.
func (s *Server) fail(ctx *fasthttp.RequestCtx, route string, err error) {
	status, code, msg := errorStatus(err)
	s.failWith(ctx, route, err, status, code, msg)
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
