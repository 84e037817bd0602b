package cluster

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tokencache/tokencache/replica"
)

// Status is GET /v1/cluster (DESIGN §5).
type Status struct {
	NodeID string `json:"node_id"`
	// ClusterID is the identity of the cluster this node belongs to ("" for
	// a node not yet bootstrapped nor added).
	ClusterID string `json:"cluster_id"`
	// FingerprintMismatch: this node's settings fingerprint differs from
	// the cluster's (the leader's, or a member's that holds the cluster's
	// state): it is never added and never ready. NotReady says why.
	FingerprintMismatch bool `json:"fingerprint_mismatch,omitempty"`
	// NotReady is why /readyz fails on this node ("" when ready).
	NotReady       string            `json:"not_ready,omitempty"`
	LeaderID       string            `json:"leader_id"`
	LeaderHTTPAddr string            `json:"leader_http_addr"`
	Term           uint64            `json:"term"`
	CommitIndex    uint64            `json:"commit_index"`
	AppliedIndex   uint64            `json:"applied_index"`
	PersistedIndex uint64            `json:"persisted_index"`
	Replication    ReplicationStatus `json:"replication"`
	// JWTKeys is the digest of this node's JWT keys ("" = none);
	// JWTKeysAgree is false while the alive members announce different
	// digests (a key rotation in progress, or a node whose keys file was
	// not updated). It is a report for operators, never a reason for
	// /readyz to fail: see SetJWTKeys.
	JWTKeys      string         `json:"jwt_keys,omitempty"`
	JWTKeysAgree bool           `json:"jwt_keys_agree"`
	Members      []MemberStatus `json:"members"`
}

// ReplicationStatus tells whether the cluster has the voters it wants.
type ReplicationStatus struct {
	Count        int  `json:"count"`         // cluster.replication_count (R)
	VotersTarget int  `json:"voters_target"` // 2R+1, or every eligible node for R = -1
	Met          bool `json:"met"`           // alive voters ≥ target
}

// MemberStatus is one node.
type MemberStatus struct {
	ID         string `json:"id"`
	HTTPAddr   string `json:"http_addr"`
	RaftAddr   string `json:"raft_addr"`
	GossipAddr string `json:"gossip_addr"`
	// Suffrage is "voter" or "nonvoter"; "none" for a node gossip knows but
	// Raft does not (joining, or quarantined for a fingerprint mismatch).
	Suffrage string `json:"suffrage"`
	Status   string `json:"status"` // alive, suspect, dead, left
	// AppliedIndex is null when the node did not answer.
	AppliedIndex        *uint64 `json:"applied_index"`
	FingerprintMismatch bool    `json:"fingerprint_mismatch,omitempty"`
	// JWTKeys is the digest of the member's JWT keys as it announces them
	// ("" = none, or not known).
	JWTKeys string `json:"jwt_keys,omitempty"`
}

// RaftConfiguration returns the Raft configuration (servers, their
// addresses and suffrage) as this node knows it: the raw view behind
// Status's member list, earlier incarnations included. It blocks until Raft
// answers or ctx ends; before Start it returns an error wrapping ErrNotReady.
func (n *Node) RaftConfiguration(ctx context.Context) (raft.Configuration, error) {
	if n.raft == nil {
		return raft.Configuration{}, fmt.Errorf("%w: not started", ErrNotReady)
	}
	cf := n.raft.GetConfiguration()
	if err := waitFuture(ctx, cf); err != nil {
		return raft.Configuration{}, fmt.Errorf("cannot read the raft configuration: %s", err.Error())
	}
	return cf.Configuration(), nil
}

// Status returns the cluster as this node sees it. Remote applied indexes
// come from a stats RPC to each Raft server (in parallel, 300ms at most),
// reused for a second.
func (n *Node) Status(ctx context.Context) Status {
	st := Status{
		NodeID:         n.cfg.NodeID,
		AppliedIndex:   n.state.AppliedIndex(),
		PersistedIndex: n.state.PersistedIndex(),
		Replication:    ReplicationStatus{Count: n.cfg.ReplicationCount},
		JWTKeys:        n.JWTKeys(),
		JWTKeysAgree:   true,
	}
	if n.raft == nil || n.disc == nil {
		return st
	}
	st.ClusterID = n.ClusterID()
	st.FingerprintMismatch = n.settingsMismatch() != ""
	if err := n.Ready(ctx, false); err != nil {
		st.NotReady = err.Error()
	}
	st.Term = n.raft.CurrentTerm()
	st.CommitIndex = n.raft.CommitIndex()
	_, leaderNode := n.leaderRPCAddr()
	st.LeaderID = leaderNode
	members := n.disc.snapshot()
	if m, ok := members[leaderNode]; ok && m.metaErr == nil {
		st.LeaderHTTPAddr = m.meta.HTTPAddr
	}
	var servers []raft.Server
	if cf, err := n.RaftConfiguration(ctx); err == nil {
		servers = cf.Servers
	}
	n.refreshStats(ctx, servers)

	byNode := make(map[string]*MemberStatus)
	aliveVoters, eligible := 0, 0
	for _, s := range servers {
		id := string(s.ID)
		node := nodeOfRaftID(id)
		if m, ok := members[node]; ok && m.metaErr == nil && m.meta.RaftID != id {
			continue // an earlier incarnation; the member line shows the current one
		}
		hostport, _ := splitRaftAddress(s.Address)
		ms := &MemberStatus{ID: node, RaftAddr: hostport, Suffrage: "nonvoter", Status: statusDead.String()}
		if s.Suffrage == raft.Voter {
			ms.Suffrage = "voter"
		}
		if id == n.raftID {
			a := n.state.AppliedIndex()
			ms.AppliedIndex = &a
		} else if a, ok := n.membership.peers.appliedIndex(id, 2*time.Second); ok {
			ms.AppliedIndex = &a
		}
		byNode[node] = ms
	}
	for id, m := range members {
		ms := byNode[id]
		if ms == nil {
			ms = &MemberStatus{ID: id, Suffrage: "none"}
			byNode[id] = ms
		}
		ms.Status = m.status.String()
		ms.GossipAddr = m.gossipAddr
		if m.metaErr == nil {
			ms.HTTPAddr = m.meta.HTTPAddr
			if ms.RaftAddr == "" {
				ms.RaftAddr = m.meta.RaftAddr
			}
			ms.FingerprintMismatch = m.meta.Fingerprint != n.cfg.Fingerprint
			ms.JWTKeys = m.meta.JWTKeys
		}
		if id == n.cfg.NodeID {
			ms.JWTKeys = st.JWTKeys // gossip may not have carried a reload yet
		}
	}
	for _, ms := range byNode {
		alive := ms.Status == statusAlive.String() || ms.Status == statusSuspect.String()
		if alive && ms.JWTKeys != st.JWTKeys {
			st.JWTKeysAgree = false
		}
		if ms.Suffrage == "voter" && alive && !ms.FingerprintMismatch {
			aliveVoters++
		}
		if alive && !ms.FingerprintMismatch && ms.Suffrage != "none" {
			eligible++
		}
		st.Members = append(st.Members, *ms)
	}
	slices.SortFunc(st.Members, func(a, b MemberStatus) int { return cmp.Compare(a.ID, b.ID) })
	target := n.cfg.votersTarget()
	if target < 0 {
		target = max(eligible, 1)
	}
	st.Replication.VotersTarget = target
	st.Replication.Met = aliveVoters >= target
	return st
}

// refreshStats polls servers whose stats are older than a second.
func (n *Node) refreshStats(ctx context.Context, servers []raft.Server) {
	var wg sync.WaitGroup
	for _, s := range servers {
		id := string(s.ID)
		if id == n.raftID {
			continue
		}
		if _, ok := n.membership.peers.appliedIndex(id, time.Second); ok {
			continue
		}
		hostport, _ := splitRaftAddress(s.Address)
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			var resp statsResponse
			if _, err := n.rpc.call(cctx, hostport, nodeOfRaftID(id), rpcStats, statsRequest{}, &resp); err == nil && resp.Code == codeOK && resp.RaftID == id {
				n.membership.peers.recordApplied(id, &resp)
			}
		}()
	}
	wg.Wait()
}

// ReadyCheck is Ready without requiring a known leader: the readiness the
// token service asks of replication (joined, caught up).
func (n *Node) ReadyCheck(ctx context.Context) error { return n.Ready(ctx, false) }

// Ready reports whether this node may serve: it has joined the cluster and
// caught up (applied ≥ the leader's commit index observed when it first
// reached a leader). Losing the leader later does not make it unready,
// unless leaderRequired. It does not block.
func (n *Node) Ready(ctx context.Context, leaderRequired bool) error {
	switch {
	case !n.started.Load():
		return fmt.Errorf("%w: not started", ErrNotReady)
	case n.closing.Load():
		return fmt.Errorf("%w: cluster node is closing", replica.ErrShuttingDown)
	}
	if err := n.fsm.haltErr(); err != nil {
		return err
	}
	if !n.caughtUp.Load() {
		if why := n.settingsMismatch(); why != "" {
			return fmt.Errorf("%w: %s", ErrNotReady, why)
		}
		if !n.membership.joined.Load() {
			return fmt.Errorf("%w: not yet joined the cluster", ErrNotReady)
		}
		return fmt.Errorf("%w: catching up with the leader (applied index %d, commit index %d)", ErrNotReady, n.state.AppliedIndex(), n.proposer.commitKnown())
	}
	if leaderRequired {
		if addr, _ := n.leaderRPCAddr(); addr == "" {
			return fmt.Errorf("%w: no leader known", replica.ErrNoLeader)
		}
	}
	return nil
}

// freshnessLoop catches this node up whenever its fence has been stale:
// it obtains the leader's read index (the commit index after a quorum
// check; on the leader its own) and waits until it applied it, then marks
// the stale verdicts seen before the request as cleared. The first success
// also makes the node ready (caughtUp).
func (n *Node) freshnessLoop(ctx context.Context) {
	t := time.NewTicker(fenceInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g, fresh := n.fence.generation()
		if fresh || !n.membership.joined.Load() {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*n.cfg.ElectionTimeout)
		idx, ok := n.readIndex(cctx)
		if ok && n.proposer.waitApplied(cctx, idx) == nil {
			// A foreign local store (DESIGN.md, "Fast-forward") still here
			// after applying a ready leader's read index was neither adopted
			// (that leader would have fast-forwarded, and reaching its read
			// index would have installed the snapshot) nor replaced: the
			// leader's log holds no change yet and does not know these rows.
			// Empty it before the fence first opens.
			if n.fsm.foreign.Load() && !n.IsLeader() {
				if err := n.fsm.dropForeign("caught up with a leader that did not adopt it"); err != nil {
					n.log.Error("cannot empty the local store left by an earlier raft log; this node stays stale", "err", err)
					cancel()
					continue
				}
			}
			n.fence.caughtUp(g)
			if !n.caughtUp.Swap(true) {
				n.log.Info("caught up with the cluster", "applied_index", n.state.AppliedIndex())
			}
			n.fence.kick()
		}
		cancel()
	}
}

// readIndex returns the leader's read index: its commit index captured
// before a successful quorum check.
func (n *Node) readIndex(ctx context.Context) (uint64, bool) {
	if n.IsLeader() {
		idx, err := n.readIndexLocal(ctx)
		return idx, err == nil
	}
	addr, leader := n.leaderRPCAddr()
	if addr == "" || leader == n.cfg.NodeID {
		return 0, false
	}
	var resp readIndexResponse
	if _, err := n.rpc.call(ctx, addr, leader, rpcReadIndex, readIndexRequest{}, &resp); err != nil || resp.Code != codeOK {
		return 0, false
	}
	n.proposer.noteCommit(resp.Index)
	return resp.Index, true
}
