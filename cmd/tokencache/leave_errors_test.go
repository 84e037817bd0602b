package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/cluster"
	"github.com/tokencache/tokencache/httpapi"
)

// POST /v1/cluster/leave (handleClusterLeave) answers its errors through
// httpapi's Fail and its one table: 409 last_server, and 503
// leave_failed with the reason and Retry-After: 5.
func TestFailAnswersLeaveErrors(t *testing.T) {
	s := &httpapi.Server{}
	for _, tc := range []struct {
		err        error
		status     int
		body       string
		retryAfter string
	}{
		{cluster.ErrLastServer, 409, `{"error":"last_server","message":"this node is the only server of its cluster; stop it instead"}`, ""},
		{fmt.Errorf("%w: no leader removed this node: %w", cluster.ErrLeaveFailed, context.DeadlineExceeded), 503,
			`{"error":"leave_failed","message":"cannot leave the cluster: no leader removed this node: context deadline exceeded"}`, "5"},
	} {
		var ctx fasthttp.RequestCtx
		s.Fail(&ctx, "/v1/cluster/leave", tc.err)
		body := strings.TrimSpace(string(ctx.Response.Body()))
		if ctx.Response.StatusCode() != tc.status || body != tc.body || string(ctx.Response.Header.Peek("Retry-After")) != tc.retryAfter {
			t.Errorf("Fail(%v) = %d %s (Retry-After %q), want %d %s (Retry-After %q)", tc.err, ctx.Response.StatusCode(), body,
				ctx.Response.Header.Peek("Retry-After"), tc.status, tc.body, tc.retryAfter)
		}
		if cc := string(ctx.Response.Header.Peek("Cache-Control")); cc != "no-store" {
			t.Errorf("Fail(%v) Cache-Control = %q, want no-store", tc.err, cc)
		}
	}
}
