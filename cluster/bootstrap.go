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
//     configuration grants votes), the rest wait to be added as non-voters.
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

// tryBootstrap returns true when bootstrapping is over (done, or not ours to
// do any more).
func (n *Node) tryBootstrap(ctx context.Context) bool {
	if n.hasRaftState() {
		return true // we were added to a cluster, or bootstrapped
	}
	if !n.membership.joined.Load() {
		return false
	}
	expect := n.cfg.BootstrapExpect
	var peers, others []nodeMeta // agreeing members; every alive member of the cluster name
	conflict := ""
	for _, m := range n.disc.snapshot() {
		if m.id == n.cfg.NodeID || m.status != statusAlive || m.metaErr != nil || m.meta.Cluster != n.cfg.Name {
			continue
		}
		agrees := m.meta.Fingerprint == n.cfg.Fingerprint && m.meta.Expect == expect
		if (m.meta.HasState || m.meta.ClusterID != "") && !agrees {
			// State no bootstrap of ours can have made: a cluster exists.
			n.clusterExists(m.id, m.meta.ClusterID)
			return true
		}
		others = append(others, m.meta)
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
		agree, seen := len(peers)+1, len(others)+1
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
			return false
		}
	}
	peers = append(peers, n.localMeta())
	if len(peers) < expect {
		return false
	}
	slices.SortFunc(peers, func(a, b nodeMeta) int { return strings.Compare(a.ID, b.ID) })
	nv := min(expect, len(peers))
	if t := n.cfg.votersTarget(); t > 0 {
		nv = min(nv, t)
	}
	voters := peers[:nv]
	if !slices.ContainsFunc(voters, func(m nodeMeta) bool { return m.ID == n.cfg.NodeID }) {
		n.log.Info("bootstrap quorum met; this node is not among the first voters and waits to be added", "members", len(peers))
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
