package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/tokencache/tokencache/httpapi"
)

// Every error the API tells apart answers the same status and code whether
// the leader ran the write itself or a follower forwarded it: the leader's
// error crosses the RPC as errorCode and its message (handleForward), and
// the follower rebuilds it with errorFromCode (forwardOnce).
func TestForwardedErrorsAnswerAsOnTheLeader(t *testing.T) {
	for _, sentinel := range httpapi.MappedErrors() {
		onLeader := fmt.Errorf("cannot run the write: %w", sentinel)
		status, code := httpapi.ErrorStatus(onLeader)
		forwarded := errorFromCode(errorCode(onLeader), onLeader.Error())
		fstatus, fcode := httpapi.ErrorStatus(forwarded)
		if fstatus != status || fcode != code {
			t.Errorf("%v through a follower answers %d %s, on the leader %d %s", sentinel, fstatus, fcode, status, code)
		}
		if !errors.Is(forwarded, sentinel) {
			t.Errorf("%v through a follower = %v, which is not it (errors.Is)", sentinel, forwarded)
		}
	}
}

// POST /v1/cluster/leave answers through the same table: the last server
// is 409 last_server, a failed leave 503 leave_failed with its reason.
func TestLeaveErrorsAnswerThroughTheTable(t *testing.T) {
	if status, code := httpapi.ErrorStatus(ErrLastServer); status != 409 || code != "last_server" {
		t.Errorf("ErrorStatus(ErrLastServer) = %d %s, want 409 last_server", status, code)
	}
	failed := fmt.Errorf("%w: no leader removed this node: %w", ErrLeaveFailed, context.DeadlineExceeded)
	if status, code := httpapi.ErrorStatus(failed); status != 503 || code != "leave_failed" {
		t.Errorf("ErrorStatus(%v) = %d %s, want 503 leave_failed", failed, status, code)
	}
}
