package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokencache/tokencache/cluster/clustertest"
	"github.com/tokencache/tokencache/token"
)

// TestRevokeTokenThroughLaggingFollower: an RFC 7009 revocation sent to a
// follower that has not yet applied the token's issue (it was issued a
// moment ago through another node) must revoke it, not answer "unknown
// token, nothing to do" from the follower's own state. The linearizability
// run found this: POST /v1/revoke answered 200 and the token stayed valid on
// every node.
func TestRevokeTokenThroughLaggingFollower(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{})
	l := tc.WaitLeader()
	f := tc.Followers()[0]
	// The leader can no longer reach f (its appends are lost), while f can
	// still reach the leader (forwarding works).
	tc.Net.Cut(l.ID, f.ID)
	iss := clustertest.Issue(t, l, "alice")
	if st, _ := clustertest.Validate(f, iss.Token); st == token.StateValid {
		t.Fatalf("%s already holds the token; the test needs a follower that lags", f.ID)
	}
	// Heal once RevokeToken has looked at f's own state, so that the
	// revocation is confirmed by f itself rather than by the rule that
	// excuses a silent server (not what this test is about).
	go func() {
		time.Sleep(500 * time.Millisecond)
		tc.Net.Heal()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.Svc.RevokeToken(ctx, []byte(iss.Token)); err != nil {
		t.Fatalf("RevokeToken on %s: %v", f.ID, err)
	}
	clustertest.WantValid(t, l, iss.Token, token.StateRevoked)
	clustertest.WantValid(t, f, iss.Token, token.StateRevoked)
}
