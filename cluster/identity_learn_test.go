package cluster_test

import (
	"testing"
	"time"

	"github.com/tokencache/tokencache/cluster/clustertest"
)

// TestFollowerLearnsClusterIDFromItsLog: a follower cut off right after the
// cluster formed may hold the bootstrap configuration but not yet the
// OpClusterID entry. It announced state of "no known cluster", and once the
// leader removed it as dead no leader would add it back (a CI run of
// TestInvariant2SelfContainedJWT logged "NOT ADDING MEMBER: it holds raft
// state of no known cluster" for a node partitioned 0.4 s after forming).
// Its own log proves its cluster: it learns the id the leader committed.
func TestFollowerLearnsClusterIDFromItsLog(t *testing.T) {
	tc := clustertest.Start(t, 3, clustertest.Options{})
	l := tc.WaitFormed(3)
	var want string
	clustertest.WaitFor(t, 10*time.Second, "every node to hold the cluster id", func() bool {
		want = l.State.ClusterID()
		for _, tn := range tc.Nodes {
			if tn.Node.ClusterID() != want {
				return false
			}
		}
		return want != ""
	})
	f := tc.Followers()[0]
	f.Node.ForgetClusterID() // as before the OpClusterID entry reached it
	if why := l.Node.ForeignState(true, f.Node.ClusterID()); why == "" {
		t.Fatal("the leader would add a member holding state of no known cluster")
	}
	if !f.Node.LearnClusterIDFromLog() {
		t.Fatal("a follower holding the bootstrap configuration learned no cluster id from it")
	}
	if got := f.Node.ClusterID(); got != want {
		t.Fatalf("learned cluster id %q, want the committed %q", got, want)
	}
	if why := l.Node.ForeignState(true, f.Node.ClusterID()); why != "" {
		t.Errorf("after learning, the leader still refuses it: %s", why)
	}
	// A node that knows its id learns nothing more.
	if f.Node.LearnClusterIDFromLog() {
		t.Error("learnClusterIDFromLog replaced a known id")
	}
}
