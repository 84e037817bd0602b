package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tokencache/tokencache/httpapi"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
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

// The same through a real follower of a real cluster, for the writes the
// RPC table once missed: a modify of a revoked token is 409 token_not_valid
// through either node, never 500 internal.
func TestForwardedTokenNotValid(t *testing.T) {
	tc := newTestCluster(t, 3, clusterOpts{})
	lead := tc.waitLeader()
	f := tc.followers()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	iss := issue(t, lead, "alice")
	if _, err := lead.svc.Revoke(ctx, iss.Record.Key); err != nil {
		t.Fatal(err)
	}
	name := "laptop"
	for _, tn := range []*testNode{lead, f} {
		_, err := tn.svc.Modify(ctx, tokens.ModifyRequest{Key: iss.Record.Key, Name: &name})
		if !errors.Is(err, tokens.ErrTokenNotValid) {
			t.Errorf("Modify(revoked) on %s error = %v, want ErrTokenNotValid", tn.id, err)
		}
		if status, code := httpapi.ErrorStatus(err); status != 409 || code != "token_not_valid" {
			t.Errorf("Modify(revoked) on %s answers %d %s, want 409 token_not_valid", tn.id, status, code)
		}
	}
	wantValid(t, f, iss.Token, token.StateRevoked)
}
