package cluster_test

import (
	"testing"
	"time"

	"github.com/tokencache/tokencache/cluster"
	"github.com/tokencache/tokencache/cluster/clustertest"
	"github.com/tokencache/tokencache/token"
)

// Under TLS only the leader's word moves what a follower knows of the
// commit index: a member that asks a follower to wait for an index far past
// any log must not close that follower's fence (its lag clause closes a
// node that stays behind a commit index it knows of for MaxStaleness).
func TestWaitAppliedCommitOnlyFromTheLeader(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{})
	l := tc.WaitFormed(3)
	fs := tc.Followers()
	other, victim := fs[0], fs[1]
	iss := clustertest.Issue(t, l, "alice")
	clustertest.WaitFor(t, 5*time.Second, victim.ID+" validates the token", func() bool {
		st, err := clustertest.Validate(victim, iss.Token)
		return err == nil && st == token.StateValid
	})
	victim.Node.HandleWaitApplied(&cluster.WaitAppliedRequest{Index: 1 << 60, RaftID: victim.Node.RaftID(), Timeout: 100 * time.Millisecond}, other.ID)
	time.Sleep(victim.Cfg.MaxStaleness + time.Second)
	clustertest.WantValid(t, victim, iss.Token, token.StateValid)
}

// The mux of a running node knows the members' addresses.
func TestNodeTellsItsMuxTheMembersAddresses(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{})
	l := tc.WaitFormed(3)
	f := l.Node.MuxMemberIP()
	if f == nil {
		t.Fatal("the mux was not told the members' addresses")
	}
	if !(*f)("127.0.0.1") {
		t.Error("127.0.0.1, the address of every member, is not a member's address")
	}
	if (*f)("192.0.2.7") {
		t.Error("192.0.2.7 (no member's) is a member's address")
	}
}
