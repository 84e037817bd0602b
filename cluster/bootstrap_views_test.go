package cluster_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokencache/tokencache/cluster"
	"github.com/tokencache/tokencache/cluster/clustertest"
)

// Nodes started together with bootstrap_expect below their number must form
// one cluster even when their views of the members differ. Here n2 does not
// see n1 (as when n1, starved on a loaded machine, is suspect in n2's view
// for a moment): n2 makes the voter list n2,n3,n4 and the others n1,n2,n3.
// Before, n1 and n2 each bootstrapped their list, and two clusters formed,
// each with its own cluster id. Now a first voter bootstraps only once every
// voter of its list makes the same list, so nobody does while the views
// differ, and one cluster forms once they agree.
func TestBootstrapViewsThatDifferMakeOneCluster(t *testing.T) {
	var hide atomic.Bool
	hide.Store(true)
	tc := clustertest.Start(t, 5, clustertest.Options{R: clustertest.Intp(1), Expect: 3, BeforeStart: func(n *cluster.Node) {
		if n.ID() == "n2" {
			n.HideFromBootstrapView(func(id string) bool { return id == "n1" && hide.Load() })
		}
	}})
	ids := map[string]string{} // cluster id -> a node that held it
	sample := func() {
		for _, tn := range tc.Nodes {
			if id := tn.Node.ClusterID(); id != "" {
				ids[id] = tn.ID
			}
		}
		if len(ids) > 1 {
			t.Fatalf("two clusters formed: %v (cluster id -> a member)", ids)
		}
	}
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		sample()
	}
	// n1 and n2 would each be the first voter of their list, and neither
	// list is every voter's: nobody bootstrapped.
	if len(ids) != 0 {
		t.Fatalf("a cluster was bootstrapped while the voters' lists differed: %v (cluster id -> a member)", ids)
	}
	hide.Store(false)
	tc.WaitFormed(5)
	for _, tn := range tc.Nodes {
		clustertest.WaitFor(t, 10*time.Second, tn.ID+" learns the cluster id", func() bool { return tn.Node.ClusterID() != "" })
	}
	sample()
}

// With a voter target below bootstrap_expect (R = 1: 3 voters; expect 5),
// two voter lists need not share a node even when expect is more than half
// of the nodes: 8 nodes, n1 sees n1,n2,n3,n7,n8 and makes n1,n2,n3, while
// n4, n5 and n6 see n4…n8 and make n4,n5,n6. Confirming with the voters
// alone, both first voters bootstrapped. The first expect members of each
// view (which do share n7 and n8) must make the same list: one cluster.
func TestBootstrapVoterTargetBelowExpectMakesOneCluster(t *testing.T) {
	hide := map[string]map[string]bool{
		"n1": {"n4": true, "n5": true, "n6": true},
		"n4": {"n1": true, "n2": true, "n3": true},
		"n5": {"n1": true, "n2": true, "n3": true},
		"n6": {"n1": true, "n2": true, "n3": true},
	}
	tc := clustertest.Start(t, 8, clustertest.Options{R: clustertest.Intp(1), Expect: 5, BeforeStart: func(n *cluster.Node) {
		if h, ok := hide[n.ID()]; ok {
			n.HideFromBootstrapView(func(id string) bool { return h[id] })
		}
	}})
	ids := map[string]string{} // cluster id -> a node that held it
	for deadline := time.Now().Add(6 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, tn := range tc.Nodes {
			if id := tn.Node.ClusterID(); id != "" {
				ids[id] = tn.ID
			}
		}
		if len(ids) > 1 {
			t.Fatalf("two clusters formed: %v (cluster id -> a member)", ids)
		}
	}
	tc.WaitFormed(8)
}
