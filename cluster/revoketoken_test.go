package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/tokencache/tokencache/token"
)

// TestRevokeTokenThroughLaggingFollower: an RFC 7009 revocation sent to a
// follower that has not yet applied the token's issue (it was issued a
// moment ago through another node) must revoke it, not answer "unknown
// token, nothing to do" from the follower's own state. The linearizability
// run found this: POST /v1/revoke answered 200 and the token stayed valid on
// every node.
func TestRevokeTokenThroughLaggingFollower(t *testing.T) {
	tc := newTestCluster(t, 3, clusterOpts{})
	l := tc.waitLeader()
	f := tc.followers()[0]
	// The leader can no longer reach f (its appends are lost), while f can
	// still reach the leader (forwarding works).
	tc.net.mu.Lock()
	tc.net.cut[[2]string{l.id, f.id}] = true
	tc.net.mu.Unlock()
	iss := issue(t, l, "alice")
	if st, _ := validate(f, iss.Token); st == token.StateValid {
		t.Fatalf("%s already holds the token; the test needs a follower that lags", f.id)
	}
	// Heal once RevokeToken has looked at f's own state, so that the
	// revocation is confirmed by f itself rather than by the rule that
	// excuses a silent server (not what this test is about).
	go func() {
		time.Sleep(500 * time.Millisecond)
		tc.net.heal()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.svc.RevokeToken(ctx, []byte(iss.Token)); err != nil {
		t.Fatalf("RevokeToken on %s: %v", f.id, err)
	}
	wantValid(t, l, iss.Token, token.StateRevoked)
	wantValid(t, f, iss.Token, token.StateRevoked)
}
