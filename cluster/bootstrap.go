package cluster

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Bootstrap, as Consul's and Nomad's maybeBootstrap:
//
//  1. only a node without Raft state tries (HasExistingState at start), and
//     it stops trying for good once it has state or a configuration;
//  2. with a join list, only after the join succeeded;
//  3. once BootstrapExpect alive members (this one included) announce the
//     same cluster, the same bootstrap_expect and the same fingerprint;
//  4. after asking each of them over RPC whether it already has Raft state:
//     if one does, a cluster exists and its leader will add this node;
//  5. the voter list is the first min(expect, 2R+1) of those members by
//     node id (all of them for R = -1); every node of that list calls
//     BootstrapCluster with the identical configuration (raft's
//     ErrCantBootstrap, from a second call, is ignored); the others wait to
//     be added as non-voters.
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
	if n.raft.LastIndex() > 0 {
		return true // we were added to a cluster, or bootstrapped
	}
	if !n.joined.Load() {
		return false
	}
	expect := n.cfg.BootstrapExpect
	var peers []nodeMeta
	for _, m := range n.disc.snapshot() {
		if m.status != statusAlive || m.metaErr != nil || m.meta.Cluster != n.cfg.Name {
			continue
		}
		if m.meta.Expect != expect {
			n.disc.mu.Lock()
			n.disc.warnOnce(m.id, "expect", func() {
				n.log.Warn("member announces another bootstrap_expect; not counting it for bootstrap",
					"member", m.id, "its_expect", m.meta.Expect, "ours", expect)
			})
			n.disc.mu.Unlock()
			continue
		}
		if m.meta.Fingerprint != n.cfg.Fingerprint {
			continue
		}
		peers = append(peers, m.meta)
	}
	if !slices.ContainsFunc(peers, func(m nodeMeta) bool { return m.ID == n.cfg.NodeID }) {
		peers = append(peers, n.localMeta())
	}
	if len(peers) < expect {
		return false
	}
	slices.SortFunc(peers, func(a, b nodeMeta) int { return strings.Compare(a.ID, b.ID) })
	for _, p := range peers {
		if p.ID == n.cfg.NodeID {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var resp statsResponse
		_, err := n.rpc.call(cctx, p.RaftAddr, p.ID, rpcStats, statsRequest{}, &resp)
		cancel()
		if err == nil {
			err = n.verifyPeerStats(p.ID, p.RaftID, &resp) // joinauth.go
		}
		if err != nil {
			n.log.Debug("cannot verify bootstrap peer", "member", p.ID, "err", err)
			return false // ask again later
		}
		if resp.HasState {
			n.log.Info("a cluster already exists; waiting to be added by its leader", "member", p.ID)
			return true
		}
	}
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
	for _, v := range voters {
		conf.Servers = append(conf.Servers, raft.Server{
			Suffrage: raft.Voter, ID: raft.ServerID(v.RaftID), Address: raftAddress(v.RaftAddr, v.RaftID),
		})
		ids = append(ids, v.ID)
	}
	err := n.raft.BootstrapCluster(conf).Error()
	switch {
	case err == nil:
		n.log.Info("bootstrapped the cluster", "voters", strings.Join(ids, ","))
	case errors.Is(err, raft.ErrCantBootstrap):
		n.log.Debug("cluster already bootstrapped")
	default:
		n.log.Error("cannot bootstrap the cluster", "err", err)
		return false
	}
	return true
}
