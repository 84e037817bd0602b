package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
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

// proposer appends commands to the Raft log and waits for them to apply:
// sync and async proposals (the async writes in flight are bounded), the
// commit-index nudge, and the waits for an applied index with the commit
// index they share. Its methods are safe for concurrent use once bound.
type proposer struct {
	async    bool          // Policy is PolicyAsync
	asyncSem chan struct{} // one slot per async write waiting for a quorum
	nudgeCh  chan struct{} // capacity 1: nudgeLoop appends a no-op
	// knownCommit is the highest commit index learned outside raft (RPC).
	knownCommit atomic.Uint64

	state    *replica.Machine
	isLeader func() bool
	metrics  *metrics
	log      *slog.Logger

	// Set by bind, when the node starts, before anything proposes or waits.
	raft *raft.Raft
	fsm  *fsm
	logs raft.LogStore
}

func newProposer(async bool, maxAsync int, state *replica.Machine, isLeader func() bool, m *metrics, log *slog.Logger) *proposer {
	return &proposer{
		async:    async,
		asyncSem: make(chan struct{}, maxAsync),
		nudgeCh:  make(chan struct{}, 1),
		state:    state,
		isLeader: isLeader,
		metrics:  m,
		log:      log,
	}
}

// bind hands the proposer the Raft instance, FSM and log store that Start
// opened.
func (p *proposer) bind(r *raft.Raft, f *fsm, logs raft.LogStore) {
	p.raft, p.fsm, p.logs = r, f, logs
}

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
	return n.proposer.propose(ctx, cmd)
}

// propose is Propose on a running, ready leader.
func (p *proposer) propose(ctx context.Context, cmd *replica.Command) (replica.Applied, error) {
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
	if p.async && !cmd.Sync() {
		select {
		case p.asyncSem <- struct{}{}:
		case <-ctx.Done():
			return replica.Applied{}, fmt.Errorf("%w: %d async writes wait for a quorum", replica.ErrOverloaded, cap(p.asyncSem))
		}
		f := p.raft.Apply(data, timeout)
		p.metrics.asyncPending.Inc()
		go func() {
			err := f.Error()
			<-p.asyncSem
			p.metrics.asyncPending.Dec()
			if err != nil {
				p.metrics.asyncFailed.Inc()
				p.log.Warn("an acknowledged async write was not committed", "op", cmd.Op.String(), "err", err)
			}
		}()
		return replica.Applied{}, nil
	}
	f := p.raft.Apply(data, timeout)
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
func (p *proposer) appliedAtLeast(target uint64) bool {
	a := p.state.AppliedIndex()
	if a >= target {
		return true
	}
	if p.fsm.haltErr() != nil || p.raft.AppliedIndex() < target || target-a > 8 {
		return false
	}
	for i := a + 1; i <= target; i++ {
		var l raft.Log
		if err := p.logs.GetLog(i, &l); err != nil {
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
// default, and as long as an operator sets) later, and a write forwarded
// through it, a read index it asked for, or a revocation waiting for it,
// waits that long. nudgeLoop appends a no-op after the call, so that the
// followers learn every commit made before it within one round trip. Calls
// coalesce: at most one no-op is in flight, and calls made meanwhile are
// served by one more no-op once it committed, so a busy leader adds one
// small entry per commit round, not one per write.
//
// Every index a follower is told to wait for is therefore read before the
// call: the no-op announces the commits made before it, not its own, and an
// index read after the call may be the no-op's, which the followers learn
// only with the append after it.
func (p *proposer) nudge() {
	select {
	case p.nudgeCh <- struct{}{}:
	default: // one is already due after this call
	}
}

// nudgeLoop serves nudge on the leader.
func (p *proposer) nudgeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.nudgeCh:
		}
		if !p.isLeader() {
			continue
		}
		// An FSM command, not raft.Barrier, so the log's tail stays
		// visible to appliedAtLeast.
		if err := waitFuture(ctx, p.raft.Apply(noopCommand, 0)); err != nil && ctx.Err() == nil {
			p.log.Debug("cannot append a commit-index no-op", "err", err)
		}
	}
}

// waitApplied blocks until appliedAtLeast(target) or ctx ends.
func (p *proposer) waitApplied(ctx context.Context, target uint64) error {
	var timer *time.Timer
	for {
		ch := p.fsm.waitCh()
		if p.appliedAtLeast(target) {
			return nil
		}
		if err := p.fsm.haltErr(); err != nil {
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
			return fmt.Errorf("cannot reach applied index %d (at %d): %w", target, p.state.AppliedIndex(), ctx.Err())
		}
	}
}

// noteCommit records a commit index learned from the leader outside Raft's
// own replication (read index, forwarded writes, applied-index waits).
func (p *proposer) noteCommit(index uint64) {
	for {
		cur := p.knownCommit.Load()
		if index <= cur || p.knownCommit.CompareAndSwap(cur, index) {
			return
		}
	}
}

// commitKnown returns the highest commit index this node knows of.
func (p *proposer) commitKnown() uint64 {
	return max(p.raft.CommitIndex(), p.knownCommit.Load())
}

// CatchUp is the read-your-writes hook of the token service: when this node's
// applied index is behind the commit index it knows of, or behind entries it
// already holds in its log but has not seen committed yet, it waits up to
// 250ms (bounded by ctx) for the log to catch up and reports whether it
// applied anything. It returns false at once when the node is not behind.
//
// The second case matters: hashicorp/raft heartbeats do not carry the
// leader's commit index, so a follower learns that an entry it already
// holds is committed only with the next AppendEntries (within CommitTimeout),
// while the leader may have acknowledged the write already.
func (n *Node) CatchUp(ctx context.Context) bool {
	if !n.running() {
		return false
	}
	target := max(n.proposer.commitKnown(), n.raft.LastIndex())
	if n.proposer.appliedAtLeast(target) {
		return false
	}
	before := n.state.AppliedIndex()
	wctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	_ = n.proposer.waitApplied(wctx, target)
	return n.state.AppliedIndex() > before
}
