package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Bootstrap, after Consul's and Nomad's maybeBootstrap (DESIGN.md §8). A
// node starts a new cluster only when everything it can see says there is
// none yet:
//
//  1. only with an empty log (no Raft state at start, and none since: it
//     stops trying for good once it has state or a configuration);
//  2. with a join list, only after the join succeeded;
//  3. if any alive member of the same cluster name holds Raft state or
//     belongs to a cluster (its metadata says so, or its stats RPC does)
//     other than the one this bootstrap would create (a voter of the same
//     list that got there first), a cluster exists: this node never
//     bootstraps and waits to be added by that cluster's leader (Consul's
//     "existing Raft peers" check, applied to every member it can see,
//     whatever its settings);
//  4. members that announce another settings fingerprint or another
//     bootstrap_expect are not counted, and while some do, this node
//     bootstraps only if the members that agree with it are a strict
//     majority of those it sees: the odd node out never bootstraps, a tie
//     stops everyone (Consul refuses to bootstrap on any conflicting
//     expect);
//  5. once bootstrap_expect alive members (this one included) agree, the
//     voter list is the first min(expect, 2R+1) of them by node id (all of
//     them for R = -1); the first node of that list records the cluster id
//     derived from it (identity.go) and calls BootstrapCluster; the other
//     voters get the configuration and the log from it (a node without a
//     configuration grants votes), the rest wait to be added as non-voters;
//  6. no plan is made while a member of the cluster name is suspect (it may
//     be alive, and the others may count it);
//  7. the first voter bootstraps only once each of the first
//     bootstrap_expect members of its view answers (stats RPC,
//     bootstrap_voters) that it makes the same voter list from its own
//     view, and its own view still makes it after those RPCs. Views differ
//     when bootstrap_expect is below the number of nodes started together
//     and a node sees fewer members than another (one not yet joined, or
//     suspect for a moment on a loaded machine): each then made a list of
//     its own, and two first voters bootstrapped two clusters. Two sets of
//     bootstrap_expect members drawn from fewer than 2 × bootstrap_expect
//     nodes share a member, which must have answered both first voters the
//     same list; it can still have answered each a different one if its
//     view changed between the two answers (an answer is what the member
//     sees, not a promise). With bootstrap_expect equal to the number of
//     nodes started together every view that makes a plan is the same, and
//     one cluster forms.
//
// bootstrap_expect = 1 without a join list bootstraps this node alone.

func (n *Node) bootstrapLoop(ctx context.Context) {
	t := time.NewTicker(min(n.cfg.Gossip.ProbeInterval, time.Second))
	defer t.Stop()
	for {
		if n.tryBootstrap(ctx) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// bootstrapPlan is what this node's view of the members says of a new
// cluster.
type bootstrapPlan struct {
	verdict planVerdict
	// voters: the first min(expect, target) agreeing alive members by node
	// id (planReady); confirm: the first expect of them, who must all make
	// the same list (a superset of voters when the target is below
	// expect); others: every alive member of the cluster name but this
	// node.
	voters, confirm, others []nodeMeta
	// exists: the member whose state says a cluster exists, and its id
	// (planExists).
	exists, existsID string
}

type planVerdict int

const (
	planWait   planVerdict = iota // no plan yet: too few members, a suspect one, a conflict
	planReady                     // voters is the plan
	planExists                    // a cluster exists: this node never bootstraps
)

// planBootstrap computes the plan from this node's current view of the
// members (rules 3 to 5 above). A member that is suspect (it may be alive:
// it is probed again, or refutes) holds the plan back: without it, this
// node might see itself first in a list that the others, who see it alive,
// do not make, and two lists bootstrap two clusters.
func (n *Node) planBootstrap() bootstrapPlan {
	expect := n.cfg.BootstrapExpect
	var p bootstrapPlan
	var peers []nodeMeta // agreeing alive members
	conflict, suspect := "", ""
	members := n.disc.snapshot()
	if n.bootstrapView != nil {
		n.bootstrapView(members)
	}
	for _, m := range members {
		if m.id == n.cfg.NodeID || m.metaErr != nil || m.meta.Cluster != n.cfg.Name {
			continue
		}
		if m.status == statusSuspect {
			suspect = m.id
			continue
		}
		if m.status != statusAlive {
			continue
		}
		agrees := m.meta.Fingerprint == n.cfg.Fingerprint && m.meta.Expect == expect
		if (m.meta.HasState || m.meta.ClusterID != "") && !agrees {
			// State no bootstrap of ours can have made: a cluster exists.
			return bootstrapPlan{verdict: planExists, exists: m.id, existsID: m.meta.ClusterID}
		}
		p.others = append(p.others, m.meta)
		switch {
		case m.meta.Fingerprint != n.cfg.Fingerprint:
			conflict = fmt.Sprintf("member %s announces settings fingerprint %q, this node %q", m.id, m.meta.Fingerprint, n.cfg.Fingerprint)
		case m.meta.Expect != expect:
			conflict = fmt.Sprintf("member %s announces bootstrap_expect %d, this node %d", m.id, m.meta.Expect, expect)
		default:
			peers = append(peers, m.meta)
		}
	}
	if conflict != "" {
		// Settings that differ would judge tokens differently, and
		// another expect means another plan: the members that agree
		// bootstrap only while they are a strict majority of the members
		// seen (so the odd one out never does, and a tie stops everyone).
		agree, seen := len(peers)+1, len(p.others)+1
		n.disc.mu.Lock()
		n.disc.warnOnce(n.cfg.NodeID, "bootstrap:"+conflict, func() {
			if 2*agree <= seen {
				n.log.Error("not bootstrapping: too few members share this node's settings and bootstrap_expect; "+
					"every node of a new cluster needs the same ones", "agreeing", agree, "seen", seen, "conflict", conflict)
			} else {
				n.log.Warn("member announces other settings or another bootstrap_expect; not counting it for bootstrap",
					"conflict", conflict)
			}
		})
		n.disc.mu.Unlock()
		if 2*agree <= seen {
			return p
		}
	}
	if suspect != "" {
		return p
	}
	peers = append(peers, n.localMeta())
	if len(peers) < expect {
		return p
	}
	slices.SortFunc(peers, func(a, b nodeMeta) int { return strings.Compare(a.ID, b.ID) })
	nv := min(expect, len(peers))
	if t := n.cfg.votersTarget(); t > 0 {
		nv = min(nv, t)
	}
	p.voters, p.confirm, p.verdict = peers[:nv], peers[:expect], planReady
	return p
}

// planIDs is the node ids of a plan's voters, in order (the stats RPC's
// bootstrap_voters).
func planIDs(voters []nodeMeta) []string {
	ids := make([]string, len(voters))
	for i, v := range voters {
		ids[i] = v.ID
	}
	return ids
}

// bootstrapVoters is this node's current plan for the stats RPC: the node
// ids of the voters it would bootstrap with, nil while it has none (or
// holds Raft state).
func (n *Node) bootstrapVoters() []string {
	if !n.discReady.Load() || n.hasRaftState() {
		return nil
	}
	if p := n.planBootstrap(); p.verdict == planReady {
		return planIDs(p.voters)
	}
	return nil
}

// tryBootstrap returns true when bootstrapping is over (done, or not ours to
// do any more).
func (n *Node) tryBootstrap(ctx context.Context) bool {
	if n.hasRaftState() {
		return true // we were added to a cluster, or bootstrapped
	}
	if !n.membership.joined.Load() {
		return false
	}
	plan := n.planBootstrap()
	switch plan.verdict {
	case planExists:
		n.clusterExists(plan.exists, plan.existsID)
		return true
	case planWait:
		return false
	}
	voters, others := plan.voters, plan.others
	nv := len(voters)
	if !slices.ContainsFunc(voters, func(m nodeMeta) bool { return m.ID == n.cfg.NodeID }) {
		n.log.Info("bootstrap quorum met; this node is not among the first voters and waits to be added", "members", len(others)+1)
		return true
	}
	var conf raft.Configuration
	ids := make([]string, 0, nv)
	raftIDs := make([]string, 0, nv)
	for _, v := range voters {
		conf.Servers = append(conf.Servers, raft.Server{
			Suffrage: raft.Voter, ID: raft.ServerID(v.RaftID), Address: raftAddress(v.RaftAddr, v.RaftID),
		})
		ids = append(ids, v.ID)
		raftIDs = append(raftIDs, v.RaftID)
	}
	id := deriveClusterID(n.cfg.Name, raftIDs)
	// A member that holds state or belongs to a cluster is fine only when
	// that cluster is the one this bootstrap makes (a voter of the same
	// list got there first). Metadata can lag, and an older binary
	// announces nothing of its state: ask every member seen, not only the
	// agreeing ones.
	for _, p := range others {
		if (p.HasState || p.ClusterID != "") && p.ClusterID != id {
			n.clusterExists(p.ID, p.ClusterID)
			return true
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var resp statsResponse
		_, err := n.rpc.call(cctx, p.RaftAddr, p.ID, rpcStats, statsRequest{}, &resp)
		cancel()
		if err == nil {
			err = verifyPeerStats(p.ID, p.RaftID, &resp) // joinauth.go: the peer is who gossip says
		}
		if err != nil {
			n.log.Debug("cannot verify bootstrap peer", "member", p.ID, "err", err)
			return false // ask again later
		}
		if (resp.HasState || resp.ClusterID != "") && resp.ClusterID != id {
			n.clusterExists(p.ID, resp.ClusterID)
			return true
		}
		// Every one of the first expect members must make the same list
		// from its own view: one that sees other members (one this node
		// does not see, or not this one) would bootstrap, or follow,
		// another cluster. Not the voters alone: with a voter target
		// below expect, two lists of voters need not share a node, where
		// two sets of expect members out of fewer than 2 × expect nodes
		// do.
		if slices.ContainsFunc(plan.confirm, func(v nodeMeta) bool { return v.ID == p.ID }) && !resp.HasState &&
			!slices.Equal(resp.BootstrapVoters, ids) {
			n.disc.mu.Lock()
			n.disc.warnOnce("bootstrap:"+p.ID, strings.Join(resp.BootstrapVoters, ","), func() {
				n.log.Info("bootstrap quorum met, but a voter sees other members; waiting until every voter makes the same list",
					"voter", p.ID, "its_voters", strings.Join(resp.BootstrapVoters, ","), "voters", strings.Join(ids, ","))
			})
			n.disc.mu.Unlock()
			return false // ask again later
		}
	}
	// Only the first voter bootstraps; the others get the configuration
	// and the log from it. Every voter calling BootstrapCluster (Consul's
	// way) is safe only if all computed the same list: nodes that saw the
	// members at different moments (expect below the nodes started) made
	// different lists, and two groups each bootstrapped one.
	if voters[0].ID != n.cfg.NodeID {
		n.disc.mu.Lock()
		n.disc.warnOnce(n.cfg.NodeID, "bootstrap:wait-first", func() {
			n.log.Info("bootstrap quorum met; the first voter bootstraps and this node waits for its log",
				"first", voters[0].ID, "voters", strings.Join(ids, ","))
		})
		n.disc.mu.Unlock()
		return false // until raft state arrives (or the first voter is gone)
	}
	// The round took RPCs: a view that changed meanwhile (a member that
	// came into sight) makes another plan, and this one is stale.
	if again := n.planBootstrap(); again.verdict != planReady || !slices.Equal(planIDs(again.voters), ids) {
		return false // ask again later
	}
	// The id first: the node announces it with its state, so that the
	// others of the list recognise their own bootstrap.
	if err := n.setClusterID(id); err != nil {
		n.log.Error("cannot record the cluster id", "err", err)
		return false
	}
	err := n.raft.BootstrapCluster(conf).Error()
	switch {
	case err == nil:
		n.log.Info("bootstrapped the cluster", "voters", strings.Join(ids, ","), "cluster_id", id)
	case errors.Is(err, raft.ErrCantBootstrap):
		n.log.Debug("cluster already bootstrapped")
	default:
		n.log.Error("cannot bootstrap the cluster", "err", err)
		return false
	}
	// Same configuration, same id on every voter; the first ready leader
	// commits it (identity.go).
	return true
}

// clusterExists logs (once) that member holds a cluster's state, so this
// node never bootstraps.
func (n *Node) clusterExists(member, clusterID string) {
	n.log.Info("a cluster already exists (a member holds raft state); this node never bootstraps and waits to be added by its leader",
		"member", member, "cluster_id", clusterID)
}
