package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tokencache/tokencache/cluster"
	"github.com/tokencache/tokencache/cluster/clustertest"
	"github.com/tokencache/tokencache/internal/lincheck"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// Faults of the in-process linearizability run.
const (
	faultPartitionFollower = "partition-follower"
	faultPartitionLeader   = "partition-leader"
	faultCrashFollower     = "crash-follower"
	faultCrashLeader       = "crash-leader"
	// A follower crashes, stays down until the leader removed it from the
	// configuration as dead, and restarts with its old (stale) state.
	faultRejoinRemoved = "rejoin-removed"
	// A node with another settings fingerprint and bootstrap_expect 1 joins
	// (issue 9 scenario 1); clients send it reads and writes.
	faultJoinMismatched = "join-mismatched"
	// Two of the three servers crash; a fresh node with bootstrap_expect 1
	// joins the survivor while no leader exists (scenario 2); then the two
	// come back.
	faultJoinLeaderless = "join-leaderless"
)

// TestLinearizableHistories records the history of concurrent clients
// (issue, child issue, revoke by key and by RFC 7009, local and consistent
// validation on every node) on an in-process cluster of three servers with
// boltdb logs, under a nemesis of partitions (the harness's Raft, RPC and
// gossip hook), crashes and restarts of the leader and of followers, and
// joins of a mismatched node and of a fresh node into a leaderless cluster,
// and checks it with porcupine against lincheck.Model. Short by default;
// TOKENCACHE_CHAOS=1 runs five minutes of faults. TOKENCACHE_LIN_SEED
// replays a seed, TOKENCACHE_LIN_FAULTS picks fault kinds.
func TestLinearizableHistories(t *testing.T) {
	seed := lincheck.Seed(t)
	faults := lincheck.Faults(t, faultPartitionFollower, faultPartitionLeader, faultCrashFollower, faultCrashLeader,
		faultRejoinRemoved, faultJoinMismatched, faultJoinLeaderless)
	length := lincheck.Length(20 * time.Second)
	tc := clustertest.Build(t, 5, clustertest.Options{Expect: 3, RaftStore: cluster.StoreBoltDB, LogLevel: slog.LevelWarn})
	servers, odd, fresh := tc.Nodes[:3], tc.Nodes[3], tc.Nodes[4]
	odd.Cfg.Fingerprint = "fp-other"
	odd.Cfg.BootstrapExpect = 1
	fresh.Cfg.BootstrapExpect = 1
	tc.StartNodes(servers...)
	tc.WaitFormed(3)

	rec := lincheck.NewRecorder()
	clients := lincheck.Workload{Seed: seed, ReadTimeout: 2 * time.Second}.NewClients(rec, svcTarget{tc})
	stop := clients.Start()

	nem := &nemesis{tc: tc, rec: rec, rnd: rand.New(rand.NewPCG(seed, 0x6e656d)), servers: servers, odd: odd, fresh: fresh}
	err := nem.run(faults, length)
	nem.heal()
	time.Sleep(2 * time.Second) // traffic after the heal
	stop()

	// Converge, then read every token everywhere (invariant 4).
	lincheck.Finish(t, clients, rec, seed, faults, err, waitConverged(tc, servers, 60*time.Second))
}

// svcTarget sends the workload's requests to the services of tc's nodes.
type svcTarget struct{ tc *clustertest.Cluster }

func (s svcTarget) Nodes() []string {
	var ids []string
	for _, tn := range s.tc.Up() {
		ids = append(ids, tn.ID)
	}
	return ids
}

func (s svcTarget) svc(node string) (*tokens.Service, bool) {
	for _, tn := range s.tc.Nodes {
		if tn.ID == node {
			return s.tc.SvcOf(tn)
		}
	}
	return nil, false
}

func (s svcTarget) Issue(ctx context.Context, node string, parent *lincheck.Token, idem string) (string, string, lincheck.Output) {
	svc, up := s.svc(node)
	if !up {
		return "", "", lincheck.Output{Result: lincheck.Failed, Detail: "node down"}
	}
	req := tokens.IssueRequest{Username: "lin", Type: token.TypeUser, Scopes: "read", IdempotencyKey: idem}
	if parent != nil {
		k, _, err := token.Parse("tc", []byte(parent.Text))
		if err != nil {
			return "", "", lincheck.Output{Result: lincheck.Other, Detail: err.Error()}
		}
		req.Parent = k
	}
	iss, err := svc.Issue(ctx, req)
	switch {
	case err == nil:
		return iss.Record.Key.String(), iss.Token, lincheck.Output{Result: lincheck.OK}
	case errors.Is(err, tokens.ErrParentNotFound):
		return "", "", lincheck.Output{Result: lincheck.NotFound, Detail: err.Error()}
	case errors.Is(err, tokens.ErrParentNotValid):
		return "", "", lincheck.Output{Result: lincheck.ParentNotValid, Detail: err.Error()}
	case errors.Is(err, tokens.ErrIdempotencyConflict):
		return "", "", lincheck.Output{Result: lincheck.Conflict, Detail: err.Error()}
	}
	return "", "", writeFailure(err)
}

// writeFailure classifies a write error: only ErrNoLeader promises that
// nothing was appended; anything else may have been applied.
func writeFailure(err error) lincheck.Output {
	if errors.Is(err, tokens.ErrNoLeader) {
		return lincheck.Output{Result: lincheck.Failed, Detail: err.Error()}
	}
	if errors.Is(err, token.ErrInvalid) {
		return lincheck.Output{Result: lincheck.Other, Detail: err.Error()}
	}
	return lincheck.Output{Result: lincheck.Ambiguous, Detail: err.Error()}
}

func (s svcTarget) Revoke(ctx context.Context, node string, tok lincheck.Token, rfc7009 bool) lincheck.Output {
	svc, up := s.svc(node)
	if !up {
		return lincheck.Output{Result: lincheck.Failed, Detail: "node down"}
	}
	var err error
	if rfc7009 {
		err = svc.RevokeToken(ctx, []byte(tok.Text))
	} else {
		k, _, perr := token.Parse("tc", []byte(tok.Text))
		if perr != nil {
			return lincheck.Output{Result: lincheck.Other, Detail: perr.Error()}
		}
		_, err = svc.Revoke(ctx, k)
	}
	switch {
	case err == nil:
		return lincheck.Output{Result: lincheck.OK}
	case errors.Is(err, tokens.ErrNotFound):
		return lincheck.Output{Result: lincheck.NotFound, Detail: err.Error()}
	}
	return writeFailure(err)
}

func (s svcTarget) Validate(ctx context.Context, node string, tok lincheck.Token, consistent bool) lincheck.Output {
	svc, up := s.svc(node)
	if !up {
		return lincheck.Output{Result: lincheck.Refused, Detail: "node down"}
	}
	if consistent {
		if err := svc.Consistent(ctx); err != nil {
			return lincheck.Output{Result: lincheck.Refused, Detail: err.Error()}
		}
	}
	v := svc.Validate(ctx, []byte(tok.Text))
	if v.Err != nil {
		return lincheck.Output{Result: lincheck.Refused, Detail: v.Err.Error()}
	}
	switch v.State {
	case token.StateValid:
		return lincheck.Output{Result: lincheck.Valid}
	case token.StateRevoked:
		return lincheck.Output{Result: lincheck.Revoked}
	case token.StateUnknown:
		return lincheck.Output{Result: lincheck.Unknown}
	}
	return lincheck.Output{Result: lincheck.Other, Detail: v.State.String()}
}

// nemesis injects one fault at a time into tc and records each in rec.
type nemesis struct {
	tc      *clustertest.Cluster
	rec     *lincheck.Recorder
	rnd     *rand.Rand
	servers []*clustertest.Node
	odd     *clustertest.Node // mismatched fingerprint, bootstrap_expect 1
	fresh   *clustertest.Node // same settings, bootstrap_expect 1
}

func (nm *nemesis) sleep(lo, hi time.Duration) { lincheck.Pause(nm.rnd, lo, hi) }

// run injects faults for length (lincheck.Schedule), letting the cluster
// recover before the next fault.
func (nm *nemesis) run(kinds []string, length time.Duration) error {
	return lincheck.Schedule(nm.rnd, kinds, length, nm.inject, func() error { return nm.recover(30 * time.Second) })
}

func (nm *nemesis) leader() *clustertest.Node {
	for _, tn := range nm.servers {
		if svc, up := nm.tc.SvcOf(tn); up && svc != nil && tn.Node.IsLeader() {
			return tn
		}
	}
	return nil
}

func (nm *nemesis) pick(leader bool) *clustertest.Node {
	l := nm.leader()
	if leader {
		return l
	}
	var fs []*clustertest.Node
	for _, tn := range nm.servers {
		if tn != l {
			fs = append(fs, tn)
		}
	}
	return fs[nm.rnd.IntN(len(fs))]
}

func ids(ns []*clustertest.Node) []string {
	var out []string
	for _, tn := range ns {
		out = append(out, tn.ID)
	}
	return out
}

func (nm *nemesis) inject(kind string) error {
	tc := nm.tc
	switch kind {
	case faultPartitionFollower, faultPartitionLeader:
		victim := nm.pick(kind == faultPartitionLeader)
		if victim == nil {
			return nil
		}
		var rest []*clustertest.Node
		for _, tn := range tc.Nodes {
			if tn != victim {
				rest = append(rest, tn)
			}
		}
		end := nm.rec.Fault(kind, victim.ID+" cut off")
		tc.Net.Partition([]string{victim.ID}, ids(rest))
		nm.sleep(time.Second, 3*time.Second)
		tc.Net.Heal()
		end()
	case faultCrashFollower, faultCrashLeader:
		victim := nm.pick(kind == faultCrashLeader)
		if victim == nil {
			return nil
		}
		end := nm.rec.Fault(kind, victim.ID+" crashed and restarted")
		tc.Kill(victim)
		nm.sleep(500*time.Millisecond, 2*time.Second)
		tc.Net.Heal()
		err := tc.StartNode(victim)
		end()
		return err
	case faultRejoinRemoved:
		victim := nm.pick(false)
		end := nm.rec.Fault(kind, victim.ID+" crashed, removed as dead, restarted with its state")
		tc.Kill(victim)
		removed := func() bool {
			l := nm.leader()
			if l == nil {
				return false
			}
			f := l.Node.Raft().GetConfiguration()
			if f.Error() != nil {
				return false
			}
			for _, s := range f.Configuration().Servers {
				if cluster.NodeOfRaftID(string(s.ID)) == victim.ID {
					return false
				}
			}
			return true
		}
		for deadline := time.Now().Add(20 * time.Second); !removed() && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		tc.Net.Heal()
		err := tc.StartNode(victim)
		end()
		return err
	case faultJoinMismatched:
		end := nm.rec.Fault(kind, nm.odd.ID+" (fingerprint fp-other, bootstrap_expect 1) joins")
		nm.odd.Dir = tc.T.TempDir()
		if err := tc.StartNode(nm.odd); err != nil {
			end()
			return err
		}
		nm.sleep(2*time.Second, 4*time.Second)
		tc.Kill(nm.odd)
		tc.Net.Heal()
		end()
	case faultJoinLeaderless:
		l := nm.leader()
		if l == nil {
			return nil
		}
		survivor := nm.pick(false)
		var gone []*clustertest.Node
		for _, tn := range nm.servers {
			if tn != survivor {
				gone = append(gone, tn)
			}
		}
		end := nm.rec.Fault(kind, fmt.Sprintf("%v crashed; %s (bootstrap_expect 1) joins %s", ids(gone), nm.fresh.ID, survivor.ID))
		for _, tn := range gone {
			tc.Kill(tn)
		}
		tc.Net.Heal()
		nm.fresh.Dir = tc.T.TempDir()
		if err := tc.StartNode(nm.fresh); err != nil {
			end()
			return err
		}
		nm.sleep(2*time.Second, 4*time.Second)
		for _, tn := range gone {
			if err := tc.StartNode(tn); err != nil {
				end()
				return err
			}
		}
		nm.sleep(2*time.Second, 3*time.Second)
		tc.Kill(nm.fresh)
		tc.Net.Heal()
		end()
	default:
		return fmt.Errorf("unknown fault %q", kind)
	}
	return nil
}

// recover waits until a leader leads and every running server is ready.
func (nm *nemesis) recover(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if nm.leader() != nil {
			ready := true
			for _, tn := range nm.servers {
				if svc, up := nm.tc.SvcOf(tn); up && svc != nil && tn.Node.Ready(context.Background(), true) != nil {
					ready = false
				}
			}
			if ready {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no ready leader among %v within %s", ids(nm.servers), timeout)
}

// heal ends every fault: links restored, the servers running, the extra
// nodes stopped.
func (nm *nemesis) heal() {
	nm.tc.Net.Heal()
	for _, tn := range []*clustertest.Node{nm.odd, nm.fresh} {
		if _, up := nm.tc.SvcOf(tn); up {
			nm.tc.Kill(tn)
		}
	}
	nm.tc.Net.Heal()
	for _, tn := range nm.servers {
		if _, up := nm.tc.SvcOf(tn); !up {
			if err := nm.tc.StartNode(tn); err != nil {
				nm.tc.T.Errorf("restart %s: %v", tn.ID, err)
			}
		}
	}
}

// waitConverged waits until one leader leads every server and each is
// ready and has applied the leader's commit index.
func waitConverged(tc *clustertest.Cluster, servers []*clustertest.Node, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if l := tc.Leader(); l != nil {
			commit := l.Node.Raft().CommitIndex()
			ok := true
			for _, tn := range servers {
				if tn.Node.Ready(context.Background(), true) != nil || tn.State.AppliedIndex() < commit {
					ok, last = false, fmt.Sprintf("%s not ready or applied %d < %d", tn.ID, tn.State.AppliedIndex(), commit)
				}
			}
			if ok {
				return nil
			}
		} else {
			last = "no ready leader"
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not converged within %s: %s", timeout, last)
}
