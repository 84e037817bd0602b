package cluster

// What the token service asks of replication (tokens.Replication): Propose,
// the linearizable read barrier (Consistent), the waits for applied indexes
// (WaitApplied, the revocation fence wait) and the commit-index bookkeeping
// they share.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tokencache/tokencache/replica"
)

// noopCommand is an encoded OpNoop (readiness barrier, replication nudge).
var noopCommand = func() []byte {
	b, err := (&replica.Command{Op: replica.OpNoop}).MarshalBinary()
	if err != nil {
		panic(err)
	}
	return b
}()

// Propose appends cmd to the replicated log. Only a ready leader proposes; anything else
// gets replica.ErrNoLeader (nothing appended).
//
// sync (and every command that must be, cmd.Sync(): revocations, no-ops…): waits until the entry is
// committed and applied here, and returns Applied{Index, Done: true, Result}.
// async: returns once the leader accepted the entry (queued it for its log),
// with Done false; see DESIGN.md for the loss window.
//
// Raft's ErrNotLeader and ErrLeadershipTransferInProgress come before the
// append: replica.ErrNoLeader. ErrLeadershipLost, ErrRaftShutdown and a ctx
// that ends while waiting leave the outcome unknown: replica.ErrIndeterminate.
func (n *Node) Propose(ctx context.Context, cmd *replica.Command) (replica.Applied, error) {
	if !n.running() {
		return replica.Applied{}, n.notRunning()
	}
	if !n.IsLeader() {
		return replica.Applied{}, fmt.Errorf("%w: this node is not the ready leader", replica.ErrNoLeader)
	}
	data, err := cmd.MarshalBinary()
	if err != nil {
		return replica.Applied{}, fmt.Errorf("cannot encode %s command: %w", cmd.Op, err)
	}
	timeout := time.Duration(0)
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return replica.Applied{}, fmt.Errorf("%w: deadline passed before proposing", replica.ErrNoLeader)
		}
	}
	if n.cfg.Policy == PolicyAsync && !cmd.Sync() {
		select {
		case n.asyncSem <- struct{}{}:
		case <-ctx.Done():
			return replica.Applied{}, fmt.Errorf("%w: %d async writes wait for a quorum", replica.ErrOverloaded, cap(n.asyncSem))
		}
		f := n.raft.Apply(data, timeout)
		n.metrics.asyncPending.Inc()
		go func() {
			err := f.Error()
			<-n.asyncSem
			n.metrics.asyncPending.Dec()
			if err != nil {
				n.metrics.asyncFailed.Inc()
				n.log.Warn("an acknowledged async write was not committed", "op", cmd.Op.String(), "err", err)
			}
		}()
		return replica.Applied{}, nil
	}
	f := n.raft.Apply(data, timeout)
	if err := waitFuture(ctx, f); err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return replica.Applied{}, fmt.Errorf("%w: deadline passed while committing: %w", replica.ErrIndeterminate, err)
		}
		return replica.Applied{}, translateApplyError(err)
	}
	switch r := f.Response().(type) {
	case replica.Result:
		return replica.Applied{Index: f.Index(), Done: true, Result: r}, nil
	case error:
		return replica.Applied{Index: f.Index()}, fmt.Errorf("%w: committed at index %d but not applied: %w", replica.ErrIndeterminate, f.Index(), r)
	}
	return replica.Applied{Index: f.Index(), Done: true}, nil
}

// appliedAtLeast reports whether this node's state reflects every entry up to
// target. The Machine's applied index covers commands and configuration entries;
// raft's own no-op (first entry of a term) never reaches the FSM, so a gap
// made only of such entries, already handed to the FSM, counts as applied.
func (n *Node) appliedAtLeast(target uint64) bool {
	a := n.state.AppliedIndex()
	if a >= target {
		return true
	}
	if n.fsm.haltErr() != nil || n.raft.AppliedIndex() < target || target-a > 8 {
		return false
	}
	for i := a + 1; i <= target; i++ {
		var l raft.Log
		if err := n.stores.logs.GetLog(i, &l); err != nil {
			return false
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return false
		}
	}
	return true
}

// nudge makes the leader tell its followers the commit index now. Raft
// sends the commit index only with an append: when nothing else is written,
// a follower learns that an entry committed up to CommitTimeout (50 ms by
// default) later, and a write forwarded through it, or a revocation
// waiting for it, waits that long. nudgeLoop appends a no-op after the
// call, so that the followers learn every commit made before it within one
// round trip. Calls coalesce: at most one no-op is in flight, and calls made
// meanwhile are served by one more no-op once it committed, so a busy
// leader adds one small entry per commit round, not one per write.
func (n *Node) nudge() {
	select {
	case n.nudgeCh <- struct{}{}:
	default: // one is already due after this call
	}
}

// nudgeLoop serves nudge on the leader.
func (n *Node) nudgeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.nudgeCh:
		}
		if !n.IsLeader() {
			continue
		}
		// An FSM command, not raft.Barrier, so the log's tail stays
		// visible to appliedAtLeast.
		if err := waitFuture(ctx, n.raft.Apply(noopCommand, 0)); err != nil && ctx.Err() == nil {
			n.log.Debug("cannot append a commit-index no-op", "err", err)
		}
	}
}

// waitApplied blocks until appliedAtLeast(target) or ctx ends.
func (n *Node) waitApplied(ctx context.Context, target uint64) error {
	var timer *time.Timer
	for {
		ch := n.fsm.waitCh()
		if n.appliedAtLeast(target) {
			return nil
		}
		if err := n.fsm.haltErr(); err != nil {
			return err
		}
		if timer == nil {
			timer = time.NewTimer(10 * time.Millisecond)
			defer timer.Stop()
		} else {
			timer.Reset(10 * time.Millisecond)
		}
		select {
		case <-ch:
		case <-timer.C:
		case <-ctx.Done():
			return fmt.Errorf("cannot reach applied index %d (at %d): %w", target, n.state.AppliedIndex(), ctx.Err())
		}
	}
}

// noteCommit records a commit index learned from the leader outside Raft's
// own replication (read index, forwarded writes, applied-index waits).
func (n *Node) noteCommit(index uint64) {
	for {
		cur := n.knownCommit.Load()
		if index <= cur || n.knownCommit.CompareAndSwap(cur, index) {
			return
		}
	}
}

// commitKnown returns the highest commit index this node knows of.
func (n *Node) commitKnown() uint64 {
	return max(n.raft.CommitIndex(), n.knownCommit.Load())
}

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
				return n.waitApplied(ctx, idx)
			}
		} else if addr, leader := n.leaderRPCAddr(); addr != "" && leader != n.cfg.NodeID {
			var resp readIndexResponse
			_, err := n.rpc.call(ctx, addr, leader, rpcReadIndex, readIndexRequest{}, &resp)
			if err == nil && resp.Code == codeOK {
				n.noteCommit(resp.Index)
				if err := n.waitApplied(ctx, resp.Index); err != nil {
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
	if err := n.waitApplied(ctx, index); err != nil {
		return err
	}
	cf := n.raft.GetConfiguration()
	if err := waitFuture(ctx, cf); err != nil {
		return fmt.Errorf("cannot read the raft configuration: %s", err.Error())
	}
	type target struct{ id, addr string }
	var targets []target
	for _, s := range cf.Configuration().Servers {
		if string(s.ID) == n.raftID {
			continue
		}
		hostport, _ := splitRaftAddress(s.Address)
		targets = append(targets, target{string(s.ID), hostport})
	}
	for id, r := range n.peers.recentlyRemoved(n.RevocationWaitBound()) {
		targets = append(targets, target{id, r.addr})
	}
	if len(targets) == 0 {
		return nil
	}
	// Followers learn that index is committed on the leader's next append,
	// up to CommitTimeout from now when nothing else is written.
	n.nudge()
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
	for {
		cctx, cancel := context.WithTimeout(ctx, max(n.cfg.HeartbeatTimeout, 250*time.Millisecond))
		var resp waitAppliedResponse
		_, err := n.rpc.call(cctx, addr, node, rpcWaitApplied, waitAppliedRequest{Index: index, RaftID: id, Timeout: max(n.cfg.HeartbeatTimeout, 250*time.Millisecond) - 20*time.Millisecond}, &resp)
		cancel()
		if err == nil && resp.Code == codeOK {
			return nil
		}
		// Raft contact is tracked only by the current leader's session.
		if last, failing := n.peers.lastContact(id); failing && n.IsLeader() {
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
