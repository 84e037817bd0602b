package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokencache/tokencache/cluster"
	"github.com/tokencache/tokencache/cluster/clustertest"
	"github.com/tokencache/tokencache/replica"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// containsSecret reports whether p contains the secret of a token text.
func containsSecret(p []byte, text string) bool {
	i := strings.LastIndexByte(text, '.')
	return i >= 0 && bytes.Contains(p, []byte(text[i+1:]))
}

func TestClusterFormsWithTargetVoters(t *testing.T) {
	for _, tt := range []struct {
		n, r                int
		voters, nonvoters   int
		expect              int
		wantMet, wantTarget int
	}{
		{n: 3, r: 1, voters: 3, nonvoters: 0, wantTarget: 3},
		{n: 5, r: 2, voters: 5, nonvoters: 0, wantTarget: 5},
		{n: 5, r: 1, voters: 3, nonvoters: 2, expect: 3, wantTarget: 3},
		{n: 4, r: -1, voters: 4, nonvoters: 0, expect: 3, wantTarget: 4},
	} {
		t.Run(fmt.Sprintf("n%d_r%d", tt.n, tt.r), func(t *testing.T) {
			tc := clustertest.New(t, tt.n, clustertest.Options{R: clustertest.Intp(tt.r), Expect: tt.expect})
			var l *clustertest.Node
			clustertest.WaitFor(t, 20*time.Second, fmt.Sprintf("%d voters and %d non-voters", tt.voters, tt.nonvoters), func() bool {
				l = tc.Leader()
				if l == nil {
					return false
				}
				v, nv := clustertest.CountSuffrage(tc.Configuration(l))
				return v == tt.voters && nv == tt.nonvoters
			})
			// It stays that way (no flapping promotions or demotions).
			time.Sleep(3 * tc.Nodes[0].Cfg.ServerStabilization)
			l = tc.WaitLeader()
			if v, nv := clustertest.CountSuffrage(tc.Configuration(l)); v != tt.voters || nv != tt.nonvoters {
				t.Fatalf("configuration = %d voters, %d non-voters; want %d, %d", v, nv, tt.voters, tt.nonvoters)
			}
			for _, tn := range tc.Nodes {
				var st cluster.Status
				clustertest.WaitFor(t, 10*time.Second, tn.ID+" status with the leader, every member and the target met", func() bool {
					st = tn.Node.Status(context.Background())
					l := tc.Leader()
					return l != nil && st.LeaderID == l.ID && len(st.Members) == tt.n &&
						st.Replication.VotersTarget == tt.wantTarget && st.Replication.Met
				})
				voters := 0
				for _, m := range st.Members {
					if m.Suffrage == "voter" {
						voters++
					}
				}
				if voters != tt.voters {
					t.Errorf("%s: cluster.Status() shows %d voters, want %d: %+v", tn.ID, voters, tt.voters, st.Members)
				}
			}
		})
	}
}

func TestStatusJSONAndMetrics(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{})
	l := tc.WaitLeader()
	f := tc.Followers()[0]
	clustertest.Issue(t, l, "alice")
	clustertest.WaitFor(t, 5*time.Second, "applied indexes reported", func() bool {
		st := f.Node.Status(context.Background())
		for _, m := range st.Members {
			if m.AppliedIndex == nil {
				return false
			}
		}
		return true
	})
	b, err := json.Marshal(f.Node.Status(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"node_id", "leader_id", "leader_http_addr", "term", "commit_index", "applied_index", "persisted_index", "replication", "members"} {
		if _, ok := got[k]; !ok {
			t.Errorf("Status JSON lacks %q: %s", k, b)
		}
	}
	if got["leader_id"] != l.ID || got["leader_http_addr"] != l.Cfg.HTTPAddr || got["node_id"] != f.ID {
		t.Errorf("Status JSON = %s; want leader %s at %s", b, l.ID, l.Cfg.HTTPAddr)
	}
	members := got["members"].([]any)
	m0 := members[0].(map[string]any)
	for _, k := range []string{"id", "http_addr", "raft_addr", "gossip_addr", "suffrage", "status", "applied_index"} {
		if _, ok := m0[k]; !ok {
			t.Errorf("member JSON lacks %q: %v", k, m0)
		}
	}
	if m0["suffrage"] != "voter" || m0["status"] != "alive" {
		t.Errorf("member = %v, want an alive voter", m0)
	}

	reg := prometheus.NewRegistry()
	if err := reg.Register(l.Node.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			if mf.GetName() == "tokencache_cluster_members" {
				for _, lp := range m.GetLabel() {
					if lp.GetValue() == "alive" {
						have["members_alive"] = v
					}
				}
				continue
			}
			have[mf.GetName()] = v
		}
	}
	for name, want := range map[string]float64{
		"tokencache_raft_has_leader": 1, "tokencache_raft_is_leader": 1, "members_alive": 3,
	} {
		if have[name] != want {
			t.Errorf("metric %s = %v, want %v", name, have[name], want)
		}
	}
	for _, name := range []string{"tokencache_raft_term", "tokencache_raft_commit_index", "tokencache_raft_applied_index", "tokencache_raft_leader_changes_total"} {
		if have[name] < 1 {
			t.Errorf("metric %s = %v, want ≥ 1", name, have[name])
		}
	}
	if _, ok := have["tokencache_revoke_fence_seconds"]; !ok {
		// Histograms have no gauge value; check presence by name.
		found := false
		for _, mf := range mfs {
			found = found || mf.GetName() == "tokencache_revoke_fence_seconds"
		}
		if !found {
			t.Error("metric tokencache_revoke_fence_seconds missing")
		}
	}
}

// Raft tells followers the commit index only with an append, or after
// CommitTimeout when nothing is written. A write forwarded through a quiet
// follower must not wait for that: the leader appends a no-op right after
// (cluster.Node.nudge), and the follower answers once it applied its write. Here
// CommitTimeout is longer than the follower waits (1s), so without the
// nudge the follower would answer before it applied the write and not find
// the token.
func TestForwardedWriteOnQuietCluster(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{CommitTimeout: 5 * time.Second})
	tc.WaitLeader()
	f := tc.Followers()[0]
	for i := range 5 {
		iss := clustertest.Issue(t, f, fmt.Sprintf("quiet%d", i))
		clustertest.WantValid(t, f, iss.Token, token.StateValid)
		// Every commit index the follower was told of, it learns from
		// Raft within a round trip, not with the next append 5s later:
		// otherwise the fence's lag clause closes it after MaxStaleness.
		wantAppliedKnownCommit(t, f)
		time.Sleep(100 * time.Millisecond) // quiet again
	}
}

// A follower's consistent read on a quiet cluster: the leader's last write
// committed, but no append told the followers so yet (CommitTimeout 5s). The
// read index the leader hands out is that commit index; the leader must make
// the followers learn it now, not with the next append.
func TestFollowerConsistentReadOnQuietCluster(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{CommitTimeout: 5 * time.Second})
	l := tc.WaitLeader()
	f := tc.Followers()[0]
	for i := range 3 {
		iss := clustertest.Issue(t, l, fmt.Sprintf("quiet%d", i))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := f.Svc.Consistent(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Consistent on %s after a write on the quiet leader: %v", f.ID, err)
		}
		if got := f.State.AppliedIndex(); got < iss.Record.Index {
			t.Fatalf("after Consistent, %s applied %d < the write's index %d", f.ID, got, iss.Record.Index)
		}
		wantAppliedKnownCommit(t, f)
	}
}

// wantAppliedKnownCommit waits (a second, well below the 5s CommitTimeout of
// the quiet tests) until tn applied every commit index it knows of.
func wantAppliedKnownCommit(t *testing.T, tn *clustertest.Node) {
	t.Helper()
	p := tn.Node.Proposer()
	clustertest.WaitFor(t, time.Second, tn.ID+" applies the commit index it knows of", func() bool {
		return p.AppliedAtLeast(p.CommitKnown())
	})
}

// An issue received by a follower is forwarded to the leader; the follower
// sees its own write at once, every node validates it, and no token secret
// crosses the network.
func TestForwardedIssueValidatesEverywhere(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{})
	var mu sync.Mutex
	var sent [][]byte
	tc.Net.SetTap(func(from, to string, p []byte) {
		mu.Lock()
		sent = append(sent, append([]byte(nil), p...))
		mu.Unlock()
	})
	tc.WaitLeader()
	f := tc.Followers()[0]
	var texts []string
	for i := 0; i < 20; i++ {
		iss := clustertest.Issue(t, f, fmt.Sprintf("user%d", i%3))
		texts = append(texts, iss.Token)
		// Read-your-writes on the node that took the request.
		clustertest.WantValid(t, f, iss.Token, token.StateValid)
	}
	for _, tn := range tc.Nodes {
		for _, text := range texts {
			clustertest.WaitFor(t, 5*time.Second, tn.ID+" validates a forwarded token", func() bool {
				st, err := clustertest.Validate(tn, text)
				return err == nil && st == token.StateValid
			})
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) == 0 {
		t.Fatal("the tap saw no traffic")
	}
	for _, p := range sent {
		for _, text := range texts {
			if containsSecret(p, text) {
				t.Fatalf("a token secret went over the network: %q", p)
			}
		}
	}
}

// A follower's consistent read sees a write acknowledged just before.
func TestFollowerConsistentReadSeesAckedWrite(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{})
	l := tc.WaitLeader()
	fs := tc.Followers()
	for i := 0; i < 20; i++ {
		iss := clustertest.Issue(t, l, "bob")
		f := fs[i%len(fs)]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := f.Svc.Consistent(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Consistent on %s: %v", f.ID, err)
		}
		if got := f.State.AppliedIndex(); got < iss.Record.Index {
			t.Fatalf("after Consistent, %s applied %d < the write's index %d", f.ID, got, iss.Record.Index)
		}
		if _, _, ok := f.Cache.Get(iss.Record.Key); !ok {
			t.Fatalf("after Consistent, %s does not hold the token just issued", f.ID)
		}
	}
}

// Invariant 1: sync-acknowledged writes survive the loss of R nodes,
// the leader among them.
func TestInvariant1SyncWritesSurviveLossOfR(t *testing.T) {
	for _, tt := range []struct{ n, r int }{{3, 1}, {5, 2}} {
		t.Run(fmt.Sprintf("n%d_r%d", tt.n, tt.r), func(t *testing.T) {
			tc := clustertest.New(t, tt.n, clustertest.Options{R: clustertest.Intp(tt.r)})
			l := tc.WaitLeader()
			var mu sync.Mutex
			var acked []tokens.Issued
			var wg sync.WaitGroup
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 15; i++ {
						tn := tc.Nodes[(w+i)%len(tc.Nodes)]
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						iss, err := tn.Svc.Issue(ctx, tokens.IssueRequest{Username: fmt.Sprintf("u%d", w), Type: token.TypeUser})
						cancel()
						if err == nil {
							mu.Lock()
							acked = append(acked, iss)
							mu.Unlock()
						}
					}
				}()
			}
			wg.Wait()
			if len(acked) < 50 {
				t.Fatalf("only %d of 60 writes acknowledged on a healthy cluster", len(acked))
			}
			// Kill R nodes, the leader first, right after the last ack.
			victims := []*clustertest.Node{l}
			for _, f := range tc.Followers() {
				if len(victims) == tt.r {
					break
				}
				victims = append(victims, f)
			}
			for _, v := range victims {
				tc.Kill(v)
			}
			nl := tc.WaitLeader()
			t.Logf("killed %d nodes incl. leader %s; new leader %s", len(victims), l.ID, nl.ID)
			for _, tn := range tc.Up() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := tn.Svc.Consistent(ctx); err != nil {
					t.Fatalf("Consistent on %s: %v", tn.ID, err)
				}
				cancel()
				clustertest.WaitFor(t, 5*time.Second, tn.ID+" fence open", func() bool { return tn.Node.Fence() == nil })
				for _, iss := range acked {
					clustertest.WantValid(t, tn, iss.Token, token.StateValid)
				}
			}
		})
	}
}

// Invariant 5: a write whose outcome is unknown is reported as
// indeterminate, never as failed, and a retry with the same Idempotency-Key
// yields one token.
func TestInvariant5IndeterminateAndIdempotentRetry(t *testing.T) {
	t.Run("leader lost mid-commit", func(t *testing.T) {
		tc := clustertest.New(t, 3, clustertest.Options{})
		l := tc.WaitLeader()
		var others []string
		for _, f := range tc.Followers() {
			others = append(others, f.ID)
		}
		tc.Net.Partition([]string{l.ID}, others)
		req := tokens.IssueRequest{Username: "carol", Type: token.TypeUser, IdempotencyKey: "idem-1"}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := l.Svc.Issue(ctx, req)
		cancel()
		if !errors.Is(err, tokens.ErrIndeterminate) || errors.Is(err, tokens.ErrNoLeader) {
			t.Fatalf("Issue on a leader cut off mid-commit = %v, want ErrIndeterminate", err)
		}
		tc.Net.Heal()
		clustertest.WaitFor(t, 20*time.Second, "a leader among all three", func() bool {
			nl := tc.Leader()
			return nl != nil && nl.Node.Ready(context.Background(), true) == nil && l.Node.Ready(context.Background(), true) == nil
		})
		retryUntilOK(t, l, req)
		retryUntilOK(t, l, req)
		assertOneToken(t, tc, "carol")
	})
	t.Run("answer lost after commit", func(t *testing.T) {
		tc := clustertest.New(t, 3, clustertest.Options{})
		l := tc.WaitLeader()
		f := tc.Followers()[0]
		// Cut follower→leader as soon as the forwarded write has been sent:
		// the leader commits it, the follower never hears back.
		var once sync.Once
		tc.Net.SetTap(func(from, to string, p []byte) {
			if from == f.ID && to == l.ID && strings.Contains(string(p), "idem-2") {
				once.Do(func() { tc.Net.CutLink(f.ID, l.ID) }) // this frame goes out; nothing comes back
			}
		})
		req := tokens.IssueRequest{Username: "dave", Type: token.TypeUser, IdempotencyKey: "idem-2"}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := f.Svc.Issue(ctx, req)
		cancel()
		if !errors.Is(err, tokens.ErrIndeterminate) {
			t.Fatalf("Issue whose answer was lost = %v, want ErrIndeterminate", err)
		}
		tc.Net.SetTap(nil)
		tc.Net.Heal()
		// The retry may even reach the leader before the first attempt (both
		// carry the key the receiving node remembered): one token either way.
		iss := retryUntilOK(t, f, req)
		again := retryUntilOK(t, f, req)
		if again.Record.Key != iss.Record.Key || !again.Reused {
			t.Errorf("second retry = %s (reused %v), want %s reused", again.Record.Key, again.Reused, iss.Record.Key)
		}
		assertOneToken(t, tc, "dave")
	})
}

func retryUntilOK(t *testing.T, tn *clustertest.Node, req tokens.IssueRequest) tokens.Issued {
	t.Helper()
	var iss tokens.Issued
	var err error
	clustertest.WaitFor(t, 20*time.Second, "a retry to succeed", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		iss, err = tn.Svc.Issue(ctx, req)
		if err != nil {
			t.Logf("retry on %s: %v", tn.ID, err)
		}
		return err == nil
	})
	return iss
}

func assertOneToken(t *testing.T, tc *clustertest.Cluster, user string) {
	t.Helper()
	for _, tn := range tc.Up() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := tn.Svc.Consistent(ctx); err != nil {
			t.Fatalf("Consistent on %s: %v", tn.ID, err)
		}
		ts, err := tn.Svc.List(ctx, tokens.ListQuery{Username: user})
		cancel()
		if err != nil {
			t.Fatalf("List on %s: %v", tn.ID, err)
		}
		if len(ts) != 1 {
			t.Fatalf("%s lists %d tokens for %s, want exactly 1", tn.ID, len(ts), user)
		}
	}
}

// A leader crash: writes resume within a few election timeouts.
func TestLeaderCrashWritesResume(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{})
	l := tc.WaitLeader()
	f := tc.Followers()[0]
	clustertest.Issue(t, f, "erin")
	start := time.Now()
	tc.Kill(l)
	var elapsed time.Duration
	clustertest.WaitFor(t, 20*time.Second, "a write after the leader crashed", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := f.Svc.Issue(ctx, tokens.IssueRequest{Username: "erin", Type: token.TypeUser})
		elapsed = time.Since(start)
		return err == nil
	})
	t.Logf("first acknowledged write %s after the leader crashed", elapsed)
	if limit := 30 * f.Cfg.ElectionTimeout; elapsed > limit {
		t.Fatalf("writes resumed after %s, want within %s", elapsed, limit)
	}
}

// A node whose settings fingerprint differs never gets a vote (nor
// entries), is shown in the status, and fails closed.
func TestFingerprintMismatchNeverVotes(t *testing.T) {
	// expect 2: the three nodes start together. expect 1 (the default):
	// two nodes form the cluster, then the odd one joins it (issue 9,
	// scenario 1: it bootstrapped a cluster of its own and served).
	for _, expect := range []int{2, 1} {
		t.Run(fmt.Sprintf("expect=%d", expect), func(t *testing.T) {
			testFingerprintMismatchNeverVotes(t, expect)
		})
	}
}

func testFingerprintMismatchNeverVotes(t *testing.T, expect int) {
	tc := clustertest.Build(t, 3, clustertest.Options{R: clustertest.Intp(-1), Expect: expect, Fingerprint: func(i int) string {
		if i == 2 {
			return "fp-other"
		}
		return "fp-1"
	}})
	odd := tc.Nodes[2]
	if expect == 1 {
		tc.StartNodes(tc.Nodes[0], tc.Nodes[1])
		clustertest.WaitFor(t, 20*time.Second, "a leader with two voters before the odd node starts", func() bool {
			l := tc.Leader()
			return l != nil && len(tc.Configuration(l).Servers) == 2
		})
		tc.StartNodes(odd)
	} else {
		tc.StartNodes(tc.Nodes...)
	}
	var l *clustertest.Node
	clustertest.WaitFor(t, 20*time.Second, "a leader with two voters", func() bool {
		l = tc.Leader()
		return l != nil && len(tc.Configuration(l).Servers) == 2
	})
	// Long enough for promotion (R=-1 would make every eligible node vote).
	deadline := time.Now().Add(10 * odd.Cfg.ServerStabilization)
	for time.Now().Before(deadline) {
		if l = tc.Leader(); l != nil {
			for _, s := range tc.Configuration(l).Servers {
				if cluster.NodeOfRaftID(string(s.ID)) == odd.ID {
					t.Fatalf("mismatched node is in the raft configuration as %v", s.Suffrage)
				}
			}
		}
		if odd.Node.HasRaftState() {
			t.Fatal("mismatched node has raft state (it bootstrapped a cluster of its own)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if odd.Node.IsLeader() {
		t.Fatal("mismatched node leads")
	}
	l = tc.WaitLeader()
	st := l.Node.Status(context.Background())
	found := false
	for _, m := range st.Members {
		if m.ID == odd.ID {
			found = true
			if !m.FingerprintMismatch || m.Suffrage == "voter" {
				t.Errorf("Status member %+v, want fingerprint_mismatch and no vote", m)
			}
		}
	}
	if !found {
		t.Errorf("Status members %+v lack the mismatched node", st.Members)
	}
	if err := odd.Node.Fence(); !errors.Is(err, tokens.ErrStale) {
		t.Errorf("mismatched node's fence = %v, want ErrStale", err)
	}
	if err := odd.Node.Ready(context.Background(), false); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Errorf("mismatched node's Ready() = %v, want an error naming the fingerprint", err)
	}
	if ost := odd.Node.Status(context.Background()); !ost.FingerprintMismatch || ost.NotReady == "" || ost.ClusterID != "" {
		t.Errorf("mismatched node's cluster.Status() = fingerprint_mismatch %v, not_ready %q, cluster_id %q; want true, a reason, none",
			ost.FingerprintMismatch, ost.NotReady, ost.ClusterID)
	}
	if st.ClusterID == "" {
		t.Error("the leader's cluster.Status() has no cluster id")
	}
	if expect == 2 {
		// Whichever node leads first, the committed id is the one the
		// bootstrapping node derived from the bootstrap configuration.
		want := cluster.DeriveClusterID(tc.Nodes[0].Cfg.Name, []string{tc.Nodes[0].Node.RaftID(), tc.Nodes[1].Node.RaftID()})
		clustertest.WaitFor(t, 10*time.Second, "the derived cluster id committed and held by both voters", func() bool {
			return l.State.ClusterID() == want && tc.Nodes[0].Node.ClusterID() == want && tc.Nodes[1].Node.ClusterID() == want
		})
	}
}

// Two clusters with different names on one host never merge, even when one
// is told to join the other.
// A node that holds state of one cluster never joins another of the same
// name: gossip refuses to merge members of two cluster ids, so neither
// leader ever adds (and overwrites) the other's node.
func TestNodeOfAnotherClusterNeverJoins(t *testing.T) {
	a := clustertest.New(t, 1, clustertest.Options{Name: "alpha"})
	b := clustertest.New(t, 1, clustertest.Options{Name: "alpha", IDPrefix: "m"})
	an, bn := a.Nodes[0], b.Nodes[0]
	clustertest.WaitFor(t, 10*time.Second, "both cluster ids committed", func() bool {
		return an.Node.ClusterID() != "" && bn.Node.ClusterID() != "" && an.State.ClusterID() != ""
	})
	if an.Node.ClusterID() == bn.Node.ClusterID() {
		t.Fatalf("two clusters bootstrapped apart share the id %s", an.Node.ClusterID())
	}
	if n, err := bn.Node.Memberlist().Join([]string{an.Cfg.GossipAddr}); err == nil && n > 0 {
		t.Fatalf("Join across cluster ids contacted %d nodes", n)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if v, nv := clustertest.CountSuffrage(a.Configuration(an)); v+nv != 1 {
			t.Fatalf("alpha's raft configuration has %d servers, want 1", v+nv)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := an.Node.Memberlist().NumMembers(); got != 1 {
		t.Errorf("alpha has %d gossip members, want 1", got)
	}
}

func TestClustersWithDifferentNamesNeverMerge(t *testing.T) {
	a := clustertest.New(t, 1, clustertest.Options{Name: "alpha"})
	b := clustertest.Start(t, 1, clustertest.Options{Name: "beta"})
	// Point beta's node at alpha's gossip port: it keeps trying.
	bn := b.Nodes[0]
	an := a.Nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if n, err := bn.Node.Memberlist().Join([]string{an.Cfg.GossipAddr}); err == nil && n > 0 {
		t.Fatalf("Join across cluster names contacted %d nodes", n)
	}
	<-ctx.Done()
	if got := an.Node.Memberlist().NumMembers(); got != 1 {
		t.Errorf("alpha has %d gossip members, want 1", got)
	}
	if got := bn.Node.Memberlist().NumMembers(); got != 1 {
		t.Errorf("beta has %d gossip members, want 1", got)
	}
	if v, nv := clustertest.CountSuffrage(a.Configuration(an)); v+nv != 1 {
		t.Errorf("alpha's raft configuration has %d servers, want 1", v+nv)
	}
	// Control: a node of the same name does merge (the test can fail).
	c := clustertest.Start(t, 1, clustertest.Options{Name: "alpha", Expect: 2, IDPrefix: "m"})
	if n, err := c.Nodes[0].Node.Memberlist().Join([]string{an.Cfg.GossipAddr}); err != nil || n != 1 {
		t.Fatalf("Join within one cluster name = %d, %v; want 1 contacted", n, err)
	}
	clustertest.WaitFor(t, 5*time.Second, "same-name node in alpha's gossip", func() bool { return an.Node.Memberlist().NumMembers() == 2 })
}

// bootstrap_expect=3 with three nodes started at once forms one cluster,
// every time.
func TestBootstrapExpectSimultaneousStart(t *testing.T) {
	runs := 3
	if chaos() {
		runs = 30
	}
	for i := 0; i < runs; i++ {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			tc := clustertest.Start(t, 3, clustertest.Options{Expect: 3})
			l := tc.WaitFormed(3)
			term := l.Node.Raft().CurrentTerm()
			for _, tn := range tc.Nodes {
				_, id := tn.Node.Raft().LeaderWithID()
				if cluster.NodeOfRaftID(string(id)) != l.ID {
					t.Errorf("%s follows %q, want %s", tn.ID, id, l.ID)
				}
				c := tc.Configuration(tn)
				if v, _ := clustertest.CountSuffrage(c); v != 3 {
					t.Errorf("%s: configuration %+v, want 3 voters", tn.ID, c.Servers)
				}
				if got := tn.Node.Raft().CurrentTerm(); got != term {
					t.Errorf("%s: term %d, leader's %d", tn.ID, got, term)
				}
			}
		})
	}
}

// A memory-mode node that restarts comes back under a new Raft identity;
// the stale one is removed and the new one takes its vote.
func TestMemoryModeRestartGetsNewIdentity(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{})
	tc.WaitLeader()
	f := tc.Followers()[0]
	old := f.Node.RaftID()
	iss := clustertest.Issue(t, tc.Leader(), "frank")
	tc.Kill(f)
	tc.Restart(f)
	if f.Node.RaftID() == old {
		t.Fatalf("restarted memory-mode node kept raft id %s", old)
	}
	clustertest.WaitFor(t, 30*time.Second, "the new identity voting and the old one gone", func() bool {
		l := tc.Leader()
		if l == nil {
			return false
		}
		c := tc.Configuration(l)
		newVoter, oldIn := false, false
		for _, s := range c.Servers {
			oldIn = oldIn || string(s.ID) == old
			newVoter = newVoter || (string(s.ID) == f.Node.RaftID() && s.Suffrage == raft.Voter)
		}
		return newVoter && !oldIn && len(c.Servers) == 3
	})
	clustertest.WaitFor(t, 10*time.Second, "the restarted node to hold earlier tokens", func() bool {
		st, err := clustertest.Validate(f, iss.Token)
		return err == nil && st == token.StateValid
	})
}

// A boltdb-mode node keeps its identity and its log across restarts, and a
// data dir refuses another node id.
func TestBoltRestartKeepsIdentity(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{RaftStore: cluster.StoreBoltDB, Persist: "sqlite"})
	tc.WaitLeader()
	f := tc.Followers()[0]
	old := f.Node.RaftID()
	iss := clustertest.Issue(t, tc.Leader(), "gina")
	tc.StopNode(f, true)
	tc.Restart(f)
	if f.Node.RaftID() != old {
		t.Fatalf("restarted node has raft id %s, want %s", f.Node.RaftID(), old)
	}
	clustertest.WaitFor(t, 20*time.Second, "restarted node ready", func() bool { return f.Node.Ready(context.Background(), true) == nil })
	clustertest.WantValid(t, f, iss.Token, token.StateValid)
	if _, err := cluster.LoadIdentity(f.Node.RaftDir(), "someone-else"); !errors.Is(err, cluster.ErrIdentityMismatch) {
		t.Fatalf("loadIdentity with another node id = %v, want cluster.ErrIdentityMismatch", err)
	}
}

// async: a write is acknowledged once the leader accepted it (Applied.Done
// false) and reaches every node; a revocation is proposed synchronously
// whatever the policy, so invariant 2 holds under async too.
func TestAsyncPolicy(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{Policy: cluster.PolicyAsync})
	l := tc.WaitLeader()
	a, err := l.Node.Propose(context.Background(), &replica.Command{Op: replica.OpTouch})
	if err != nil || a.Done || a.Index != 0 {
		t.Fatalf("async Propose = %+v, %v; want accepted, not done", a, err)
	}
	f := tc.Followers()[0]
	var texts []string
	for i := 0; i < 10; i++ {
		texts = append(texts, clustertest.Issue(t, f, "async").Token)
	}
	for _, tn := range tc.Nodes {
		for _, text := range texts {
			clustertest.WaitFor(t, 5*time.Second, tn.ID+" validates an async write", func() bool {
				st, err := clustertest.Validate(tn, text)
				return err == nil && st == token.StateValid
			})
		}
	}
	k, _, _ := token.Parse("tc", []byte(texts[0]))
	if _, err := f.Svc.Revoke(context.Background(), k); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	for _, tn := range tc.Nodes {
		clustertest.WantValid(t, tn, texts[0], token.StateRevoked)
	}
}

// Leave removes a node from the Raft configuration for good; a non-voter
// takes its vote.
func TestLeave(t *testing.T) {
	tc := clustertest.New(t, 4, clustertest.Options{Expect: 3})
	l := tc.WaitLeader()
	clustertest.WaitFor(t, 10*time.Second, "3 voters and a non-voter", func() bool {
		v, nv := clustertest.CountSuffrage(tc.Configuration(l))
		return v == 3 && nv == 1
	})
	var leaver *clustertest.Node
	for _, f := range tc.Followers() {
		for _, s := range tc.Configuration(l).Servers {
			if string(s.ID) == f.Node.RaftID() && s.Suffrage == raft.Voter {
				leaver = f
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := leaver.Node.Leave(ctx); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	// The leaver keeps running for a while (as `cluster leave` before the
	// process stops): the leader must not add it back.
	inConfig := func() bool {
		l := tc.Leader()
		if l == nil {
			return true
		}
		for _, s := range tc.Configuration(l).Servers {
			if string(s.ID) == leaver.Node.RaftID() {
				return true
			}
		}
		return false
	}
	clustertest.WaitFor(t, 10*time.Second, "the leaver out of the configuration", func() bool { return !inConfig() })
	deadline := time.Now().Add(5 * leaver.Cfg.ReconcileInterval)
	for time.Now().Before(deadline) {
		if inConfig() {
			t.Fatal("the leader added a node that left back into the configuration")
		}
		time.Sleep(20 * time.Millisecond)
	}
	tc.StopNode(leaver, true)
	clustertest.WaitFor(t, 20*time.Second, "3 voters without the leaver", func() bool {
		l := tc.Leader()
		if l == nil {
			return false
		}
		c := tc.Configuration(l)
		for _, s := range c.Servers {
			if string(s.ID) == leaver.Node.RaftID() {
				return false
			}
		}
		v, nv := clustertest.CountSuffrage(c)
		return v == 3 && nv == 0
	})
}

// The only server of a cluster cannot leave it: it answers at once.
func TestLeaveLastServer(t *testing.T) {
	tc := clustertest.New(t, 1, clustertest.Options{})
	n := tc.WaitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := n.Node.Leave(ctx); !errors.Is(err, cluster.ErrLastServer) {
		t.Fatalf("Leave(only server) = %v, want cluster.ErrLastServer", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Leave(only server) took %s, want an immediate answer", d)
	}
}

// Gossip encryption: nodes sharing the key form a cluster; a node with
// another key never becomes a member.
func TestGossipEncryption(t *testing.T) {
	keyA := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	keyB := "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB="
	tc := clustertest.Start(t, 3, clustertest.Options{Expect: 2, EncryptKey: func(i int) string {
		if i == 2 {
			return keyB
		}
		return keyA
	}})
	var l *clustertest.Node
	clustertest.WaitFor(t, 20*time.Second, "the two nodes sharing a key to form", func() bool {
		l = tc.Leader()
		return l != nil && len(tc.Configuration(l).Servers) == 2
	})
	time.Sleep(time.Second)
	for _, tn := range tc.Nodes[:2] {
		if got := tn.Node.Memberlist().NumMembers(); got != 2 {
			t.Errorf("%s has %d gossip members, want 2 (the node with another key must stay out)", tn.ID, got)
		}
	}
	if got := tc.Nodes[2].Node.Memberlist().NumMembers(); got != 1 {
		t.Errorf("node with another key sees %d members, want 1", got)
	}
}
