package cluster_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tokencache/tokencache/cluster"
	"github.com/tokencache/tokencache/cluster/clustertest"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// observation is one validation answered by a node.
type observation struct {
	at    time.Time
	state token.State
	err   error
}

// watch validates texts on tn every few milliseconds until stop is closed.
func watch(tn *clustertest.Node, texts []string, stop <-chan struct{}) func() []observation {
	var mu sync.Mutex
	var obs []observation
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, text := range texts {
				st, err := clustertest.Validate(tn, text)
				mu.Lock()
				obs = append(obs, observation{at: time.Now(), state: st, err: err})
				mu.Unlock()
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() []observation {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return obs
	}
}

// issueFamily issues a parent and a child token through tn.
func issueFamily(t *testing.T, tn *clustertest.Node, user string) (parent, child tokens.Issued) {
	t.Helper()
	parent = clustertest.Issue(t, tn, user)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	child, err := tn.Svc.Issue(ctx, tokens.IssueRequest{Username: user, Type: token.TypeUser, Scopes: "read", Parent: parent.Record.Key})
	if err != nil {
		t.Fatalf("Issue child: %v", err)
	}
	return parent, child
}

// Invariant 2: once a revoke is acknowledged, every node in contact with
// the leader answers revoked (for the token and its descendants); a node cut
// off answers stale, never valid, and revoked once healed.
func TestInvariant2RevocationFence(t *testing.T) {
	t.Run("healthy cluster: every node answers revoked at the ack", func(t *testing.T) {
		tc := clustertest.New(t, 4, clustertest.Options{Expect: 3}) // 3 voters + 1 non-voter
		l := tc.WaitLeader()
		clustertest.WaitFor(t, 10*time.Second, "a non-voter", func() bool { _, nv := clustertest.CountSuffrage(tc.Configuration(l)); return nv == 1 })
		for i := 0; i < 10; i++ {
			p, c := issueFamily(t, tc.Nodes[i%4], "rev"+strconv.Itoa(i))
			via := tc.Nodes[(i+1)%4]
			if _, err := via.Svc.Revoke(context.Background(), p.Record.Key); err != nil {
				t.Fatalf("Revoke via %s: %v", via.ID, err)
			}
			for _, tn := range tc.Nodes {
				clustertest.WantValid(t, tn, p.Token, token.StateRevoked)
				clustertest.WantValid(t, tn, c.Token, token.StateRevoked)
			}
		}
	})
	for _, cutLeader := range []bool{false, true} {
		name := "partitioned follower"
		if cutLeader {
			name = "partitioned old leader"
		}
		t.Run(name, func(t *testing.T) {
			tc := clustertest.New(t, 4, clustertest.Options{Expect: 3})
			l := tc.WaitLeader()
			clustertest.WaitFor(t, 10*time.Second, "a non-voter", func() bool { _, nv := clustertest.CountSuffrage(tc.Configuration(l)); return nv == 1 })
			p, c := issueFamily(t, l, "victim")
			for _, tn := range tc.Nodes {
				texts := []string{p.Token, c.Token}
				for _, text := range texts {
					clustertest.WaitFor(t, 5*time.Second, tn.ID+" validates", func() bool { st, err := clustertest.Validate(tn, text); return err == nil && st == token.StateValid })
				}
			}
			cut := tc.Followers()[0]
			if cutLeader {
				cut = l
			}
			var rest []string
			for _, tn := range tc.Nodes {
				if tn != cut {
					rest = append(rest, tn.ID)
				}
			}
			stop := make(chan struct{})
			observed := watch(cut, []string{p.Token, c.Token}, stop)
			tc.Net.Partition([]string{cut.ID}, rest)
			cutAt := time.Now()

			// Revoke on the majority side (through its leader, new or old).
			var nl *clustertest.Node
			clustertest.WaitFor(t, 20*time.Second, "a leader on the majority side", func() bool {
				nl = tc.Leader()
				return nl != nil && nl != cut
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			keys, err := tc.Node(rest[0]).Svc.Revoke(ctx, p.Record.Key)
			cancel()
			if err != nil {
				t.Fatalf("Revoke on the majority side: %v", err)
			}
			ackAt := time.Now()
			if len(keys) != 2 {
				t.Fatalf("Revoke revoked %v, want parent and child", keys)
			}
			t.Logf("revoke acknowledged %s after the partition", ackAt.Sub(cutAt).Round(time.Millisecond))
			for _, id := range rest {
				clustertest.WantValid(t, tc.Node(id), p.Token, token.StateRevoked)
				clustertest.WantValid(t, tc.Node(id), c.Token, token.StateRevoked)
			}
			// The cut-off node fails closed now (and never said valid after
			// the ack).
			for _, text := range []string{p.Token, c.Token} {
				if st, err := clustertest.Validate(cut, text); !errors.Is(err, tokens.ErrStale) {
					t.Fatalf("cut-off node answers %v, %v; want ErrStale", st, err)
				}
			}
			// Heal: the node catches up, and must not say valid on the way
			// (it regains contact while its state still lacks the revoke).
			tc.Net.Heal()
			for _, text := range []string{p.Token, c.Token} {
				clustertest.WaitFor(t, 20*time.Second, "the healed node to answer revoked", func() bool {
					st, err := clustertest.Validate(cut, text)
					return err == nil && st == token.StateRevoked
				})
			}
			close(stop)
			obs := observed()
			var lastValid time.Time
			for _, o := range obs {
				if o.err == nil && o.state == token.StateValid {
					lastValid = o.at
				}
				if o.err == nil && o.state == token.StateValid && !o.at.Before(ackAt) {
					t.Fatalf("cut-off node answered valid %s after the revoke was acknowledged (before or after the heal)", o.at.Sub(ackAt))
				}
			}
			if lastValid.IsZero() {
				t.Fatal("the watcher saw no valid answer before the partition (the test observed nothing)")
			}
			t.Logf("cut-off node's last valid answer %s after the cut; fence closed before the ack", lastValid.Sub(cutAt).Round(time.Millisecond))
		})
	}
}

// Invariant 4: a node partitioned away catches up once healed, also by a
// snapshot install when the log was compacted past it.
func TestInvariant4CatchUpAfterPartitionViaSnapshot(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{SnapThresh: 16, TrailingLogs: 8})
	l := tc.WaitLeader()
	f := tc.Followers()[0]
	before := clustertest.Issue(t, l, "hank")
	var others []string
	for _, tn := range tc.Nodes {
		if tn != f {
			others = append(others, tn.ID)
		}
	}
	tc.Net.Partition([]string{f.ID}, others)
	behind := f.Node.Raft().LastIndex()
	var issued []tokens.Issued
	for i := 0; i < 60; i++ {
		issued = append(issued, clustertest.Issue(t, tc.Node(others[i%2]), "hank"))
	}
	revoked := issued[0]
	if _, err := l.Svc.Revoke(context.Background(), revoked.Record.Key); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	clustertest.WaitFor(t, 20*time.Second, "the leader to compact its log past the cut-off node", func() bool {
		first, err := l.Node.RaftLogs().FirstIndex()
		return err == nil && first > behind+1
	})
	tc.Net.Heal()
	commit := l.Node.Raft().CommitIndex()
	clustertest.WaitFor(t, 20*time.Second, "the healed node to catch up", func() bool { return f.State.AppliedIndex() >= commit })
	if snap := f.Node.Raft().Stats()["last_snapshot_index"]; snap == "0" || snap == "" {
		t.Errorf("healed node's last_snapshot_index = %q, want an installed snapshot", snap)
	}
	clustertest.WantValid(t, f, before.Token, token.StateValid)
	clustertest.WantValid(t, f, revoked.Token, token.StateRevoked)
	for _, iss := range issued[1:] {
		clustertest.WantValid(t, f, iss.Token, token.StateValid)
	}
}

// The fence of a node that applies nothing while it hears from the leader
// closes after MaxStaleness (the lag clause), and CatchUp returns at once
// when the node is not behind.
func TestFenceLagClauseAndCatchUp(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{})
	l := tc.WaitLeader()
	f := tc.Followers()[0]
	clustertest.Issue(t, l, "ivy")
	clustertest.WaitFor(t, 5*time.Second, "follower fence open and everything in its log applied", func() bool {
		return f.Node.Fence() == nil && f.Node.Proposer().AppliedAtLeast(max(f.Node.Proposer().CommitKnown(), f.Node.Raft().LastIndex()))
	})
	start := time.Now()
	if f.Node.CatchUp(context.Background()) {
		t.Error("CatchUp on a node that is not behind reported progress")
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("CatchUp on a node that is not behind took %s", d)
	}
	// Pretend the leader told us of a commit index we cannot reach.
	f.Node.Proposer().NoteCommit(f.Node.Proposer().CommitKnown() + 1000)
	start = time.Now()
	f.Node.CatchUp(context.Background())
	if d := time.Since(start); d < cluster.CatchUpTimeout || d > cluster.CatchUpTimeout+200*time.Millisecond {
		t.Errorf("CatchUp behind an unreachable index took %s, want about %s", d, cluster.CatchUpTimeout)
	}
	clustertest.WaitFor(t, 3*f.Cfg.MaxStaleness, "the lag clause to close the fence", func() bool {
		return errors.Is(f.Node.Fence(), tokens.ErrStale)
	})
	t.Logf("fence: %v", f.Node.Fence())
}
