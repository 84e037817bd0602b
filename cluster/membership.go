package cluster

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Membership reconcile (leader only), after Consul's leaderLoop and
// raft-autopilot, written out so that every rule has a table test
// (membership_test.go). The leader runs a pass on every gossip event, every
// ReconcileInterval and every health poll; a pass applies at most one
// configuration change at a time and plans again, so each change is
// committed before the next is chosen. The rules, in priority order:
//
//  1. promote: while fewer good voters than the target (2R+1; R=-1: every
//     eligible node), promote the non-voter (lowest node id first) that has
//     been healthy (RPC answers, raft contact < heartbeat timeout, applied
//     within maxTrailingLag of the leader's commit) for ServerStabilization;
//  2. demote a bad voter (fingerprint mismatch, stale incarnation, left, or
//     dead in gossip AND silent on Raft for ServerStabilization), but only
//     once it is replaced (good voters ≥ target), or it left / mismatches /
//     has been dead for DeadServerCleanup, and only if the remaining good
//     voters still form a quorum of the remaining voters;
//  3. add alive gossip members that are not in the configuration as
//     non-voters (never a node whose fingerprint differs, and never one that
//     holds Raft state of another cluster, or of none this leader knows:
//     its log would be overwritten, and what it acknowledged lost);
//  4. update a server's address when its node announces another one;
//  5. remove non-voters that are stale incarnations, mismatched, left (and
//     silent on Raft for an election timeout), or dead in gossip and silent
//     on Raft for DeadServerCleanup;
//  6. demote surplus good voters (target lowered), highest node id first.
//
// The leader never changes its own membership; a voter is never removed
// directly (demoted first), and never on gossip's word alone.

const maxTrailingLag = 250 // entries a promotable follower may lag (autopilot's MaxTrailingLogs)

// membership is this node's view of the other servers and the state of its
// joining: the peer tracker (Raft contact, health, removals), the members
// whose join check failed recently, whether the gossip join succeeded, and
// the reconcile loop's wake-up. Its methods are safe for concurrent use;
// the Node's reconcile loop acts on it.
type membership struct {
	peers    *peerTracker
	refusals joinRefusals // members whose join check failed recently (joinauth.go)
	joined   atomic.Bool  // gossip join succeeded (or nothing to join)
	kickCh   chan struct{}
}

func newMembership() *membership {
	return &membership{peers: newPeerTracker(), kickCh: make(chan struct{}, 1)}
}

// observe records what raft reports of the other servers (one of raft's
// observations' Data): heartbeat failures give the leader Raft-level
// silence per server.
func (m *membership) observe(data any) {
	switch d := data.(type) {
	case raft.FailedHeartbeatObservation:
		m.peers.heartbeatFailed(string(d.PeerID), d.LastContact)
	case raft.ResumedHeartbeatObservation:
		m.peers.heartbeatResumed(string(d.PeerID))
	case raft.PeerObservation:
		if !d.Removed {
			// A new replication (the server was added, or added back
			// after a removal): its heartbeat loop reports failures
			// afresh and a resume only after one of its own failures, so
			// an earlier loop's failing mark would otherwise outlive it.
			m.peers.replicationStarted(string(d.Peer.ID))
		}
	}
}

// kick asks the reconcile loop for a pass (non-blocking).
func (m *membership) kick() {
	select {
	case m.kickCh <- struct{}{}:
	default:
	}
}

type actionKind int

const (
	actNone actionKind = iota
	actPromote
	actDemote
	actAddNonvoter
	actUpdateAddr
	actRemove
)

func (k actionKind) String() string {
	return [...]string{"none", "promote", "demote", "add-nonvoter", "update-address", "remove"}[k]
}

type action struct {
	kind   actionKind
	id     string // raft id
	addr   raft.ServerAddress
	reason string
}

// serverView is one server (in the configuration, or alive in gossip) as the
// planner sees it.
type serverView struct {
	ID       string // raft id
	Node     string
	Addr     raft.ServerAddress // current (config) address
	NewAddr  raft.ServerAddress // address its node announces ("" = same / unknown)
	InConfig bool
	Voter    bool
	Status   memberStatus // gossip status of its node (statusDead when unknown to gossip)
	DeadFor  time.Duration
	Stale    bool // its node runs under another raft id now
	Mismatch bool // fingerprint differs from the leader's
	// Foreign: not in the configuration, and holds Raft state of another
	// cluster (identity.go); never added.
	Foreign bool
	// SilentFor is how long the leader has had no Raft contact with it.
	SilentFor  time.Duration
	HealthyFor time.Duration // continuously healthy (stats polls); 0 = not
}

type reconcileInput struct {
	Self          string // leader raft id
	Target        int    // voters wanted; -1 = every eligible server
	Stabilization time.Duration
	DeadCleanup   time.Duration
	LeftGrace     time.Duration // Raft silence required after a graceful leave
	Servers       []serverView
}

// failed reports whether a voter may be replaced: stale, or gone from gossip
// (dead or left) and silent on Raft.
func (in *reconcileInput) failed(s *serverView) bool {
	switch {
	case s.Stale:
		return true
	case s.Status == statusLeft:
		return s.SilentFor >= in.LeftGrace
	case s.Status == statusDead:
		return s.SilentFor >= in.Stabilization
	}
	return false
}

// nextAction returns the next configuration change, or actNone.
func nextAction(in reconcileInput) action {
	servers := slices.Clone(in.Servers)
	slices.SortFunc(servers, func(a, b serverView) int {
		return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.ID, b.ID))
	})
	var voters, good, bad []*serverView
	eligibleNonvoters := 0
	for i := range servers {
		s := &servers[i]
		if !s.InConfig {
			continue
		}
		if s.Voter {
			voters = append(voters, s)
			if s.ID != in.Self && (s.Mismatch || in.failed(s)) {
				bad = append(bad, s)
			} else {
				good = append(good, s)
			}
		} else if s.Status == statusAlive && !s.Mismatch && !s.Stale {
			eligibleNonvoters++
		}
	}
	target := in.Target
	if target < 0 {
		target = len(good) + eligibleNonvoters
	}
	quorumOf := func(n int) int { return n/2 + 1 }

	// 1. Promote.
	if len(good) < target {
		for i := range servers {
			s := &servers[i]
			if s.InConfig && !s.Voter && s.Status == statusAlive && !s.Mismatch && !s.Stale &&
				s.HealthyFor >= in.Stabilization && s.HealthyFor > 0 {
				return action{kind: actPromote, id: s.ID, addr: s.Addr,
					reason: fmt.Sprintf("%d good voters, target %d", len(good), target)}
			}
		}
	}
	// 2. Demote a bad voter.
	for _, s := range bad {
		replaced := len(good) >= target
		longGone := s.Status == statusLeft || s.Mismatch || s.Stale ||
			(s.Status == statusDead && s.DeadFor >= in.DeadCleanup && s.SilentFor >= in.DeadCleanup)
		if !replaced && !longGone {
			continue
		}
		if len(good) < quorumOf(len(voters)-1) {
			continue // the rest would not form a quorum: keep it
		}
		why := "failed"
		switch {
		case s.Mismatch:
			why = "fingerprint differs"
		case s.Stale:
			why = "replaced by a newer incarnation of its node"
		case s.Status == statusLeft:
			why = "left the cluster"
		}
		return action{kind: actDemote, id: s.ID, reason: why}
	}
	// 3. Add alive members that are not in the configuration.
	for i := range servers {
		s := &servers[i]
		if !s.InConfig && s.Status == statusAlive && !s.Mismatch && !s.Stale && !s.Foreign && s.ID != in.Self {
			return action{kind: actAddNonvoter, id: s.ID, addr: s.NewAddr, reason: "new member"}
		}
	}
	// 4. Address changes.
	for i := range servers {
		s := &servers[i]
		if s.InConfig && s.NewAddr != "" && s.NewAddr != s.Addr && s.Status == statusAlive && !s.Stale && s.ID != in.Self {
			return action{kind: actUpdateAddr, id: s.ID, addr: s.NewAddr, reason: "member announces a new address"}
		}
	}
	// 5. Remove non-voters that are gone.
	for i := range servers {
		s := &servers[i]
		if !s.InConfig || s.Voter || s.ID == in.Self {
			continue
		}
		switch {
		case s.Stale:
			return action{kind: actRemove, id: s.ID, reason: "replaced by a newer incarnation of its node"}
		case s.Mismatch:
			return action{kind: actRemove, id: s.ID, reason: "fingerprint differs"}
		case s.Status == statusLeft && s.SilentFor >= in.LeftGrace:
			return action{kind: actRemove, id: s.ID, reason: "left the cluster"}
		case s.Status == statusDead && s.DeadFor >= in.DeadCleanup && s.SilentFor >= in.DeadCleanup:
			return action{kind: actRemove, id: s.ID, reason: "dead"}
		}
	}
	// 6. Surplus voters.
	if in.Target >= 0 && len(good) > in.Target {
		for i := len(good) - 1; i >= 0; i-- {
			if good[i].ID != in.Self {
				return action{kind: actDemote, id: good[i].ID, reason: fmt.Sprintf("%d good voters, target %d", len(good), in.Target)}
			}
		}
	}
	return action{}
}

// reconcileLoop runs passes while this node is the ready leader.
func (n *Node) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.ReconcileInterval)
	defer t.Stop()
	h := time.NewTicker(n.healthInterval())
	defer h.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.membership.kickCh:
		case <-t.C:
			n.disc.refresh()
		case <-h.C:
			if !n.IsLeader() {
				continue
			}
			n.pollHealth(ctx)
		}
		if n.IsLeader() {
			n.reconcile(ctx)
		}
	}
}

func (n *Node) healthInterval() time.Duration {
	return min(n.cfg.ReconcileInterval, max(n.cfg.HeartbeatTimeout, 100*time.Millisecond))
}

// reconcile plans and applies changes until nothing is left to do (at most
// a few per pass).
func (n *Node) reconcile(ctx context.Context) {
	for step := 0; step < 8 && n.IsLeader(); step++ {
		in, err := n.reconcileInput(ctx)
		if err != nil {
			n.log.Debug("cannot reconcile", "err", err)
			return
		}
		a := nextAction(in)
		if a.kind == actNone {
			return
		}
		if err := n.execute(ctx, a, in); err != nil {
			n.log.Warn("cannot change raft membership", "action", a.kind.String(), "server", a.id, "err", err)
			return
		}
	}
	n.membership.kick() // more to do: next pass
}

func (n *Node) execute(ctx context.Context, a action, in reconcileInput) error {
	ctx, cancel := context.WithTimeout(ctx, 4*n.cfg.ElectionTimeout)
	defer cancel()
	n.log.Info("changing raft membership", "action", a.kind.String(), "server", a.id, "reason", a.reason)
	id := raft.ServerID(a.id)
	switch a.kind {
	case actPromote:
		return waitFuture(ctx, n.raft.AddVoter(id, a.addr, 0, 0))
	case actDemote:
		return waitFuture(ctx, n.raft.DemoteVoter(id, 0, 0))
	case actAddNonvoter:
		resp, err := n.authorizeServer(ctx, a.id, a.addr)
		if err != nil {
			return err
		}
		if err := n.checkNotForeign(a.id, resp); err != nil {
			return err
		}
		return waitFuture(ctx, n.raft.AddNonvoter(id, a.addr, 0, 0))
	case actUpdateAddr:
		if _, err := n.authorizeServer(ctx, a.id, a.addr); err != nil {
			return err
		}
		for _, s := range in.Servers {
			if s.ID == a.id && s.Voter {
				return waitFuture(ctx, n.raft.AddVoter(id, a.addr, 0, 0))
			}
		}
		return waitFuture(ctx, n.raft.AddNonvoter(id, a.addr, 0, 0))
	case actRemove:
		return n.removeServer(ctx, a.id, a.reason)
	}
	return nil
}

// reconcileInput gathers the Raft configuration, gossip and health.
func (n *Node) reconcileInput(ctx context.Context) (reconcileInput, error) {
	cf := n.raft.GetConfiguration()
	if err := waitFuture(ctx, cf); err != nil {
		return reconcileInput{}, fmt.Errorf("cannot read the raft configuration: %s", err.Error())
	}
	members := n.disc.snapshot()
	in := reconcileInput{
		Self:          n.raftID,
		Target:        n.cfg.votersTarget(),
		Stabilization: n.cfg.ServerStabilization,
		DeadCleanup:   n.cfg.DeadServerCleanup,
		LeftGrace:     2 * n.cfg.ElectionTimeout,
	}
	inConfig := make(map[string]bool)
	for _, s := range cf.Configuration().Servers {
		id := string(s.ID)
		inConfig[id] = true
		v := serverView{
			ID: id, Node: nodeOfRaftID(id), Addr: s.Address, InConfig: true,
			Voter:      s.Suffrage == raft.Voter,
			SilentFor:  n.membership.peers.silentFor(id),
			HealthyFor: n.membership.peers.healthyFor(id),
			Status:     statusDead,
		}
		if id == n.raftID {
			v.Status, v.SilentFor, v.HealthyFor = statusAlive, 0, time.Hour
		} else if m, ok := members[v.Node]; ok {
			switch {
			case m.metaErr != nil:
			case m.meta.RaftID != id:
				// Another incarnation of the node is in gossip: this id is
				// stale once that one is alive.
				v.Stale = m.status == statusAlive
				v.Status = m.status
			default:
				v.Status = m.status
				v.Mismatch = m.meta.Fingerprint != n.cfg.Fingerprint
				v.NewAddr = raftAddress(m.meta.RaftAddr, id)
			}
			if v.Status == statusDead || v.Status == statusLeft {
				v.DeadFor = time.Since(m.since)
			}
		} else {
			v.DeadFor = v.SilentFor // unknown to gossip: only raft silence counts
		}
		in.Servers = append(in.Servers, v)
	}
	for _, m := range members {
		if m.metaErr != nil || m.meta.RaftID == n.raftID || inConfig[m.meta.RaftID] || m.status != statusAlive ||
			n.membership.peers.hasLeft(m.meta.RaftID) || n.membership.refusals.refused(m.meta.RaftID, time.Now()) {
			continue
		}
		foreign := n.foreignState(m.meta.HasState, m.meta.ClusterID)
		if foreign == "" {
			foreign = n.membership.peers.foreignReason(m.meta.RaftID)
		}
		if foreign != "" {
			n.disc.mu.Lock()
			n.disc.warnOnce(m.id, "foreign:"+foreign, func() {
				n.log.Error("NOT ADDING MEMBER: "+foreign+"; wipe its data dir to add it as a new server",
					"member", m.id, "raft_id", m.meta.RaftID)
			})
			n.disc.mu.Unlock()
		}
		in.Servers = append(in.Servers, serverView{
			ID: m.meta.RaftID, Node: m.id, NewAddr: raftAddress(m.meta.RaftAddr, m.meta.RaftID),
			Status: m.status, Mismatch: m.meta.Fingerprint != n.cfg.Fingerprint, Foreign: foreign != "",
		})
	}
	return in, nil
}

// checkNotForeign refuses a server about to be added (remembering why) when
// its stats answer (authorizeServer) says it holds Raft state of another
// cluster: its metadata may lag, or come from an older binary that does not
// announce it.
func (n *Node) checkNotForeign(id string, resp *statsResponse) error {
	if why := n.foreignState(resp.HasState, resp.ClusterID); why != "" {
		if n.ClusterID() != "" { // else: ask again once this cluster's id is known
			n.membership.peers.markForeign(id, why)
		}
		return fmt.Errorf("not adding %s: %s", id, why)
	}
	return nil
}

// pollHealth asks every server of the configuration for its stats (in
// parallel, bounded by the health interval) and records whether it is a
// healthy follower.
func (n *Node) pollHealth(ctx context.Context) {
	cf := n.raft.GetConfiguration()
	if err := waitFuture(ctx, cf); err != nil {
		return
	}
	commit := n.raft.CommitIndex()
	timeout := n.healthInterval()
	var wg sync.WaitGroup
	for _, s := range cf.Configuration().Servers {
		id := string(s.ID)
		if id == n.raftID {
			continue
		}
		hostport, _ := splitRaftAddress(s.Address)
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			var resp statsResponse
			_, err := n.rpc.call(cctx, hostport, nodeOfRaftID(id), rpcStats, statsRequest{}, &resp)
			if err != nil || resp.Code != codeOK || resp.RaftID != id {
				n.membership.peers.recordStats(id, nil, false)
				return
			}
			healthy := resp.LastContact >= 0 && time.Duration(resp.LastContact)*time.Millisecond < n.cfg.HeartbeatTimeout &&
				resp.Applied+maxTrailingLag >= commit && resp.Fingerprint == n.cfg.Fingerprint &&
				n.membership.peers.silentFor(id) == 0
			n.membership.peers.recordStats(id, &resp, healthy)
		}()
	}
	wg.Wait()
}
