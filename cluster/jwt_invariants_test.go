package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/tokencache/tokencache/internal/jwttest"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// Invariant 2 for tokens without a record of their own: a JWT of a trusted
// external issuer (store on), and any JWT while the store is disabled
// (persist.store none), is judged by its claims; once its revocation by
// text is acknowledged, every node answers revoked, although each had
// answered valid (and remembered that the key has no record) just before.
// A node that was cut off meanwhile and catches up by a snapshot install
// answers revoked too: tombstones travel in snapshots.
func TestInvariant2SelfContainedJWT(t *testing.T) {
	for _, store := range []string{"memory", "none"} {
		t.Run("store "+store, func(t *testing.T) {
			js := jwttest.New(t, nil)
			tc := newTestCluster(t, 3, clusterOpts{
				persist: store, snapThresh: 16, trailingLogs: 8,
				formats: func(*testNode) *token.Formats {
					f, err := token.NewFormats(token.NewOpaque(token.DefaultPrefix, token.NewHasher(nil)), js.NewCodec(t))
					if err != nil {
						t.Fatal(err)
					}
					return f
				},
			})
			tc.waitLeader()
			ext := func() string {
				now := time.Now()
				text, _ := js.ExternalToken(t, "erin", now, now.Add(time.Hour))
				return text
			}
			texts := []string{ext(), ext(), ext()}
			if store == "none" {
				// A local JWT has no record either when the store is off.
				for i := range 3 {
					iss, err := tc.nodes[i].svc.Issue(context.Background(), tokens.IssueRequest{
						Username: "frank", Type: token.TypeUser, Format: token.FormatJWT, Scopes: "read"})
					if err != nil {
						t.Fatalf("Issue(jwt) on %s: %v", tc.nodes[i].id, err)
					}
					texts = append(texts, iss.Token)
				}
			}
			for i, text := range texts {
				for _, tn := range tc.nodes {
					wantValid(t, tn, text, token.StateValid)
				}
				via := tc.nodes[(i+1)%3]
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := via.svc.RevokeToken(ctx, []byte(text))
				cancel()
				if err != nil {
					t.Fatalf("RevokeToken via %s: %v", via.id, err)
				}
				for _, tn := range tc.nodes {
					wantValid(t, tn, text, token.StateRevoked)
				}
			}

			// A follower cut off while the log moves past it (40 more
			// revocations, compacted away) catches up by a snapshot.
			f := tc.followers()[0]
			seen, kept := ext(), ext()
			for _, text := range []string{seen, kept} {
				wantValid(t, f, text, token.StateValid)
			}
			var others []string
			for _, tn := range tc.nodes {
				if tn != f {
					others = append(others, tn.id)
				}
			}
			tc.net.partition([]string{f.id}, others)
			behind := f.node.raft.LastIndex()
			more := []string{seen}
			for range 40 {
				more = append(more, ext())
			}
			for i, text := range more {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				err := tc.node(others[i%2]).svc.RevokeToken(ctx, []byte(text))
				cancel()
				if err != nil {
					t.Fatalf("RevokeToken on the majority side: %v", err)
				}
			}
			l := tc.waitLeader()
			// Every node of the majority, not only today's leader: the
			// healed node may disrupt the term, and whichever node leads
			// then must have nothing but a snapshot to send it.
			for _, id := range others {
				o := tc.node(id)
				waitFor(t, 20*time.Second, "the majority to compact its logs past the cut-off node", func() bool {
					first, err := o.node.stores.logs.FirstIndex()
					return err == nil && first > behind+1
				})
			}
			tc.net.heal()
			commit := l.node.raft.CommitIndex()
			waitFor(t, 20*time.Second, "the healed node to catch up", func() bool { return f.state.AppliedIndex() >= commit })
			// Raft records the installed snapshot just after the machine's
			// restore has moved its applied index: wait for that too.
			var snap string
			installed := func() bool {
				snap = f.node.raft.Stats()["last_snapshot_index"]
				return snap != "0" && snap != ""
			}
			for deadline := time.Now().Add(5 * time.Second); !installed() && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if !installed() {
				t.Errorf("healed node's last_snapshot_index = %q, want an installed snapshot", snap)
			}
			for _, text := range append(texts, more...) {
				wantValid(t, f, text, token.StateRevoked)
			}
			wantValid(t, f, kept, token.StateValid)
		})
	}
}
