package httpapi

import (
	"testing"
	"time"

	"github.com/tokencache/tokencache/cluster/clustertest"
)

// A real three-node cluster (package clustertest: real Raft, gossip and
// RPC on loopback), one HTTP API per node. A token issued through a
// follower's API is forwarded to the leader, validates at once through the
// follower that issued it and then through every node's API. The writes the
// leader refuses answer the same status and error code through the
// follower's API as through the leader's: a duplicate name is 409
// duplicate_name and a modify of a revoked token 409 token_not_valid, never
// a 500 from an error the forwarding RPC lost on the way back.
func TestClusterFollowerAPIAnswersAsTheLeaderAPI(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{})
	l := tc.WaitLeader()
	f := tc.Followers()[0]
	api := make(map[string]*testServer)
	for _, tn := range tc.Nodes {
		api[tn.ID] = serveTest(t, testConfig(), tn.Svc)
	}

	tok, key := api[f.ID].issued(t, `{"username":"alice","name":"laptop"}`)
	noteSecret(tok)
	wantStatus(t, "validate on "+f.ID+", the follower that issued it", api[f.ID].validateAs(t, tok, ""), 200)
	for _, tn := range tc.Nodes {
		clustertest.WaitFor(t, 10*time.Second, "a 200 from validate on "+tn.ID, func() bool {
			return api[tn.ID].validateAs(t, tok, "").status == 200
		})
	}

	for _, tn := range []*clustertest.Node{l, f} {
		r := api[tn.ID].issueJSON(t, `{"username":"alice","name":"laptop"}`)
		wantError(t, "issue with a duplicate name on "+tn.ID, r, 409, "duplicate_name")
	}

	r := api[l.ID].do(t, req{method: "DELETE", path: "/v1/tokens/" + key, admin: true})
	wantStatus(t, "revoke on the leader "+l.ID, r, 200)
	for _, tn := range []*clustertest.Node{l, f} {
		r := api[tn.ID].do(t, req{method: "PATCH", path: "/v1/tokens/" + key, admin: true, contentType: "application/json", body: `{"name":"desktop"}`})
		wantError(t, "modify of the revoked token on "+tn.ID, r, 409, "token_not_valid")
	}
}
