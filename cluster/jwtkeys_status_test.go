package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokencache/tokencache/cluster"
	"github.com/tokencache/tokencache/cluster/clustertest"
)

// TestStatusJWTKeysDisagree checks that GET /v1/cluster reports the JWT
// key digest of every member and whether they agree, and that a
// disagreement (a rotation half done) keeps every node ready.
func TestStatusJWTKeysDisagree(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{})
	for _, tn := range tc.Nodes {
		tn.Node.SetJWTKeys("aaaa")
	}
	ctx := context.Background()
	agree := func(n *cluster.Node, want bool, digests map[string]string) bool {
		st := n.Status(ctx)
		if st.JWTKeysAgree != want {
			return false
		}
		for _, m := range st.Members {
			if m.JWTKeys != digests[m.ID] {
				return false
			}
		}
		return true
	}
	all := map[string]string{"n1": "aaaa", "n2": "aaaa", "n3": "aaaa"}
	clustertest.WaitFor(t, 10*time.Second, "every node reports the same JWT keys", func() bool {
		for _, tn := range tc.Nodes {
			if !agree(tn.Node, true, all) {
				return false
			}
		}
		return true
	})
	tc.Nodes[1].Node.SetJWTKeys("bbbb")
	mixed := map[string]string{"n1": "aaaa", "n2": "bbbb", "n3": "aaaa"}
	clustertest.WaitFor(t, 10*time.Second, "every node reports n2's different JWT keys", func() bool {
		for _, tn := range tc.Nodes {
			if !agree(tn.Node, false, mixed) {
				return false
			}
		}
		return true
	})
	for _, tn := range tc.Nodes {
		if err := tn.Node.Ready(ctx, false); err != nil {
			t.Errorf("%s: Ready() = %v while JWT keys differ, want nil (a rotation must not take nodes out)", tn.ID, err)
		}
		if st := tn.Node.Status(ctx); st.NotReady != "" || st.JWTKeys != mixed[tn.ID] {
			t.Errorf("%s: cluster.Status() = not_ready %q, jwt_keys %q; want ready and %q", tn.ID, st.NotReady, st.JWTKeys, mixed[tn.ID])
		}
	}
}
