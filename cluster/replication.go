package cluster

// What the token service asks of replication (tokens.Replication) beyond
// Propose (propose.go): the linearizable read barrier (Consistent) and the
// revocation fence wait (WaitApplied), which reach the other servers.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tokencache/tokencache/replica"
)

// Consistent is a linearizable read barrier. On the
// leader: capture the commit index, confirm leadership with a quorum
// (VerifyLeader), wait until applied reaches the captured index. On a
// follower: ask the leader for that read index over RPC, then wait until
// this node applied it. No leader within ctx: replica.ErrNoLeader.
func (n *Node) Consistent(ctx context.Context) error {
	backoff := 10 * time.Millisecond
	for {
		if !n.running() {
			return n.notRunning()
		}
		if n.IsLeader() {
			if idx, err := n.readIndexLocal(ctx); err == nil {
				return n.proposer.waitApplied(ctx, idx)
			}
		} else if addr, leader := n.leaderRPCAddr(); addr != "" && leader != n.cfg.NodeID {
			var resp readIndexResponse
			_, err := n.rpc.call(ctx, addr, leader, rpcReadIndex, readIndexRequest{}, &resp)
			if err == nil && resp.Code == codeOK {
				n.proposer.noteCommit(resp.Index)
				if err := n.proposer.waitApplied(ctx, resp.Index); err != nil {
					return fmt.Errorf("%w: %w", replica.ErrStale, err)
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: no leader confirmed a read index: %w", replica.ErrNoLeader, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, n.cfg.ElectionTimeout/2)
	}
}

// readIndexLocal returns the commit index captured before a successful
// VerifyLeader on this (ready) leader.
func (n *Node) readIndexLocal(ctx context.Context) (uint64, error) {
	idx := n.raft.CommitIndex()
	if !n.IsLeader() {
		return 0, fmt.Errorf("%w: not the ready leader", replica.ErrNoLeader)
	}
	start := n.fence.clock.now()
	if err := waitFuture(ctx, n.raft.VerifyLeader()); err != nil {
		return 0, fmt.Errorf("%w: cannot verify leadership: %s", replica.ErrNoLeader, err.Error())
	}
	n.fence.confirmQuorum(start)
	return idx, nil
}

// fenceMargin is how long past MaxStaleness a silent node's fence is
// certainly closed (DESIGN.md, "WaitApplied"): a deposed leader may keep
// heartbeating its minority for up to 2 leader leases; the fence verdict is
// refreshed every fenceInterval and trusted for at most maxVerdictAge;
// clocks may run 10% apart; plus one heartbeat timeout of slack.
func (n *Node) fenceMargin() time.Duration {
	return 2*n.cfg.LeaderLease + maxVerdictAge + fenceInterval + n.cfg.MaxStaleness/10 + n.cfg.HeartbeatTimeout
}

// RevocationWaitBound is the longest WaitApplied waits for a silent server:
// the time Raft takes to report its heartbeats failing (up to the transport
// timeout: a stopped process's kernel still accepts bytes, so only the I/O
// deadline reveals it), then MaxStaleness + margin. A revocation's write
// timeout shorter than this ends indeterminate whenever a node is
// partitioned away or stopped; callers size their write timeout from it.
func (n *Node) RevocationWaitBound() time.Duration {
	return transportTimeout(n.cfg) + n.silenceExcuse()
}

// silenceExcuse is how long after its last Raft contact a silent server's
// fence has certainly closed (MaxStaleness + margin): past it, a revocation
// stops waiting for that server's confirmation.
func (n *Node) silenceExcuse() time.Duration { return n.cfg.MaxStaleness + n.fenceMargin() }

// WaitApplied blocks until every healthy node applied index (the
// revocation fence wait, invariant 2).
// It returns once every server in the Raft configuration (voters and
// non-voters; also servers removed in the last MaxStaleness+margin) has
// either confirmed over RPC that it applied index, or been silent long enough
// that its own fence has certainly closed: the leader has had no Raft
// contact with it since S, and now ≥ max(S, start) + MaxStaleness + margin,
// where start is when WaitApplied was called (after the entry committed).
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	if !n.running() {
		return n.notRunning()
	}
	start := time.Now()
	defer func() { n.metrics.fenceSeconds.Observe(time.Since(start).Seconds()) }()
	if err := n.proposer.waitApplied(ctx, index); err != nil {
		return err
	}
	cf, err := n.RaftConfiguration(ctx)
	if err != nil {
		return err
	}
	type target struct{ id, addr string }
	var targets []target
	for _, s := range cf.Servers {
		if string(s.ID) == n.raftID {
			continue
		}
		hostport, _ := splitRaftAddress(s.Address)
		targets = append(targets, target{string(s.ID), hostport})
	}
	for id, r := range n.membership.peers.recentlyRemoved(n.RevocationWaitBound()) {
		targets = append(targets, target{id, r.addr})
	}
	if len(targets) == 0 {
		return nil
	}
	// Followers learn that index is committed on the leader's next append,
	// up to CommitTimeout from now when nothing else is written.
	n.proposer.nudge()
	wait := n.silenceExcuse()
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.confirmApplied(ctx, t.id, t.addr, index, start, wait)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// confirmApplied asks one server to confirm index until it does, or until
// it is excused by Raft-level silence (see WaitApplied).
func (n *Node) confirmApplied(ctx context.Context, id, addr string, index uint64, start time.Time, wait time.Duration) error {
	backoff := 10 * time.Millisecond
	node := nodeOfRaftID(id)
	round := max(n.cfg.HeartbeatTimeout, 250*time.Millisecond) // one request's wait
	for {
		cctx, cancel := context.WithTimeout(ctx, round)
		var resp waitAppliedResponse
		_, err := n.rpc.call(cctx, addr, node, rpcWaitApplied, waitAppliedRequest{Index: index, RaftID: id, Timeout: round - 20*time.Millisecond}, &resp)
		cancel()
		if err == nil && resp.Code == codeOK {
			return nil
		}
		// Raft contact is tracked only by the current leader's session.
		if last, failing := n.membership.peers.lastContact(id); failing && n.IsLeader() {
			from := start
			if last.After(from) {
				from = last
			}
			if time.Since(from) >= wait {
				n.log.Info("revocation not confirmed by a silent server; its fence has closed", "server", id,
					"index", index, "silent_for", time.Since(last).Round(time.Millisecond).String())
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cannot confirm index %d on %s: %w", index, id, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}
