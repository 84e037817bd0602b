package cluster

import (
	"testing"
	"time"
)

// TestFollowerLearnsClusterIDFromItsLog: a follower cut off right after the
// cluster formed may hold the bootstrap configuration but not yet the
// OpClusterID entry. It announced state of "no known cluster", and once the
// leader removed it as dead no leader would add it back (a CI run of
// TestInvariant2SelfContainedJWT logged "NOT ADDING MEMBER: it holds raft
// state of no known cluster" for a node partitioned 0.4 s after forming).
// Its own log proves its cluster: it learns the id the leader committed.
func TestFollowerLearnsClusterIDFromItsLog(t *testing.T) {
	tc := startTestCluster(t, 3, clusterOpts{})
	l := tc.waitFormed(3)
	var want string
	waitFor(t, 10*time.Second, "every node to hold the cluster id", func() bool {
		want = l.state.ClusterID()
		for _, tn := range tc.nodes {
			if tn.node.ClusterID() != want {
				return false
			}
		}
		return want != ""
	})
	f := tc.followers()[0]
	f.node.clusterID.Store(nil) // as before the OpClusterID entry reached it
	if why := l.node.foreignState(true, f.node.ClusterID()); why == "" {
		t.Fatal("the leader would add a member holding state of no known cluster")
	}
	if !f.node.learnClusterIDFromLog() {
		t.Fatal("a follower holding the bootstrap configuration learned no cluster id from it")
	}
	if got := f.node.ClusterID(); got != want {
		t.Fatalf("learned cluster id %q, want the committed %q", got, want)
	}
	if why := l.node.foreignState(true, f.node.ClusterID()); why != "" {
		t.Errorf("after learning, the leader still refuses it: %s", why)
	}
	// A node that knows its id learns nothing more.
	if f.node.learnClusterIDFromLog() {
		t.Error("learnClusterIDFromLog replaced a known id")
	}
}
