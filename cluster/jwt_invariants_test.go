package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokencache/tokencache/cluster/clustertest"
	"github.com/tokencache/tokencache/internal/jwttest"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// Invariant 2 for tokens without a record of their own: a JWT of a trusted
// external issuer (store on), and any JWT while the store is disabled
// (persist.Store none), is judged by its claims; once its revocation by
// text is acknowledged, every node answers revoked, although each had
// answered valid (and remembered that the key has no record) just before.
// A node that was cut off meanwhile and catches up by a snapshot install
// answers revoked too: tombstones travel in snapshots.
func TestInvariant2SelfContainedJWT(t *testing.T) {
	for _, store := range []string{"memory", "none"} {
		t.Run("store "+store, func(t *testing.T) {
			js := jwttest.New(t, nil)
			tc := clustertest.New(t, 3, clustertest.Options{
				Persist: store, SnapThresh: 16, TrailingLogs: 8,
				Formats: func(*clustertest.Node) *token.Formats {
					f, err := token.NewFormats(token.NewOpaque(token.DefaultPrefix, token.NewHasher(nil)), js.NewCodec(t))
					if err != nil {
						t.Fatal(err)
					}
					return f
				},
			})
			tc.WaitLeader()
			ext := func() string {
				now := time.Now()
				text, _ := js.ExternalToken(t, "erin", now, now.Add(time.Hour))
				return text
			}
			texts := []string{ext(), ext(), ext()}
			if store == "none" {
				// A local JWT has no record either when the store is off.
				for i := range 3 {
					iss, err := tc.Nodes[i].Svc.Issue(context.Background(), tokens.IssueRequest{
						Username: "frank", Type: token.TypeUser, Format: token.FormatJWT, Scopes: "read"})
					if err != nil {
						t.Fatalf("Issue(jwt) on %s: %v", tc.Nodes[i].ID, err)
					}
					texts = append(texts, iss.Token)
				}
			}
			for i, text := range texts {
				for _, tn := range tc.Nodes {
					clustertest.WantValid(t, tn, text, token.StateValid)
				}
				via := tc.Nodes[(i+1)%3]
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := via.Svc.RevokeToken(ctx, []byte(text))
				cancel()
				if err != nil {
					t.Fatalf("RevokeToken via %s: %v", via.ID, err)
				}
				for _, tn := range tc.Nodes {
					clustertest.WantValid(t, tn, text, token.StateRevoked)
				}
			}

			// A follower cut off while the log moves past it (40 more
			// revocations, compacted away) catches up by a snapshot.
			f := tc.Followers()[0]
			seen, kept := ext(), ext()
			for _, text := range []string{seen, kept} {
				clustertest.WantValid(t, f, text, token.StateValid)
			}
			var others []string
			for _, tn := range tc.Nodes {
				if tn != f {
					others = append(others, tn.ID)
				}
			}
			tc.Net.Partition([]string{f.ID}, others)
			behind := f.Node.Raft().LastIndex()
			more := []string{seen}
			for range 40 {
				more = append(more, ext())
			}
			for i, text := range more {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				err := tc.Node(others[i%2]).Svc.RevokeToken(ctx, []byte(text))
				cancel()
				if err != nil {
					t.Fatalf("RevokeToken on the majority side: %v", err)
				}
			}
			l := tc.WaitLeader()
			// Every node of the majority, not only today's leader: the
			// healed node may disrupt the term, and whichever node leads
			// then must have nothing but a snapshot to send it.
			for _, id := range others {
				o := tc.Node(id)
				clustertest.WaitFor(t, 20*time.Second, "the majority to compact its logs past the cut-off node", func() bool {
					first, err := o.Node.RaftLogs().FirstIndex()
					return err == nil && first > behind+1
				})
			}
			tc.Net.Heal()
			commit := l.Node.Raft().CommitIndex()
			clustertest.WaitFor(t, 20*time.Second, "the healed node to catch up", func() bool { return f.State.AppliedIndex() >= commit })
			// Raft records the installed snapshot just after the machine's
			// restore has moved its applied index: wait for that too.
			var snap string
			installed := func() bool {
				snap = f.Node.Raft().Stats()["last_snapshot_index"]
				return snap != "0" && snap != ""
			}
			for deadline := time.Now().Add(5 * time.Second); !installed() && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if !installed() {
				t.Errorf("healed node's last_snapshot_index = %q, want an installed snapshot", snap)
			}
			for _, text := range append(texts, more...) {
				clustertest.WantValid(t, f, text, token.StateRevoked)
			}
			clustertest.WantValid(t, f, kept, token.StateValid)
		})
	}
}
