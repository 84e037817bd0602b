package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Leadership. raft's NotifyCh (buffered, always drained) tells this node
// when it gains or loses leadership. On gaining it, the node commits an
// OpNoop through the FSM: once that entry is applied here, this node's state
// holds every entry of earlier terms (the same guarantee as raft.Barrier,
// but the log's tail stays a command, which applied-index comparisons rely
// on). Then, if the log is behind the store (a new log over a store that an
// earlier log wrote), it fast-forwards the log past the store's persisted
// index (fastForward) and commits a second OpNoop. Only then is it a ready
// leader (IsLeader), does it become the SQL writer of a shared store, and
// does it reconcile membership.

func (n *Node) leadershipLoop(ctx context.Context) {
	defer n.stopLeaderSession()
	for {
		select {
		case <-ctx.Done():
			return
		case leader := <-n.notifyCh:
			if leader {
				n.startLeaderSession(ctx)
			} else {
				n.stopLeaderSession()
			}
		}
	}
}

func (n *Node) startLeaderSession(parent context.Context) {
	n.stopLeaderSession()
	ctx, cancel := context.WithCancel(parent)
	done := make(chan struct{})
	n.leaderStop = func() {
		cancel()
		<-done
	}
	n.membership.peers.reset()
	go func() {
		defer close(done)
		n.leaderSession(ctx)
	}()
}

func (n *Node) stopLeaderSession() {
	if n.leaderStop == nil {
		return
	}
	n.leaderStop()
	n.leaderStop = nil
	if n.readyTerm.Swap(0) != 0 {
		n.log.Info("no longer the leader")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.state.SetWriter(ctx, false, nil); err != nil {
		n.log.Warn("cannot stop the store writer", "err", err)
	}
}

func (n *Node) leaderSession(ctx context.Context) {
	term, started, err := n.leaderBarrier(ctx)
	if err != nil {
		return
	}
	forwarded, err := n.fastForward(ctx)
	if err != nil {
		return
	}
	if forwarded {
		// Raft's own no-op follows the restored snapshot; an OpNoop puts a
		// command back at the tail (appliedAtLeast) and proves the term.
		if term, started, err = n.leaderBarrier(ctx); err != nil {
			return
		}
	}
	n.readyTerm.Store(term)
	// The barrier committed on a quorum: contact confirmed as of its start.
	n.fence.confirmQuorum(started)
	n.log.Info("leader ready", "term", term, "applied_index", n.state.AppliedIndex())
	n.fence.kick()
	if err := n.state.SetWriter(ctx, true, n.announcer.announce); err != nil {
		n.log.Error("cannot become the store writer", "err", err)
	}
	n.membership.kick()
	<-ctx.Done()
}

// leaderBarrier commits and applies an OpNoop in this term, retrying until
// it succeeds or leadership ends. It returns the term it applied in and
// when the successful attempt started (since epoch).
func (n *Node) leaderBarrier(ctx context.Context) (uint64, int64, error) {
	backoff := 10 * time.Millisecond
	for {
		if n.raft.State() != raft.Leader {
			return 0, 0, fmt.Errorf("cannot commit leadership barrier: not leader")
		}
		term, started := n.raft.CurrentTerm(), n.fence.clock.now()
		err := waitFuture(ctx, n.raft.Apply(noopCommand, n.cfg.ElectionTimeout))
		if err == nil && n.raft.CurrentTerm() == term {
			return term, started, nil
		}
		if ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		n.log.Debug("leadership barrier failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, n.cfg.ElectionTimeout)
	}
}

// IsLeader reports whether this node is the Raft leader and its
// leadership barrier has applied in the current term.
func (n *Node) IsLeader() bool {
	if n.raft == nil || n.closing.Load() {
		return false
	}
	t := n.readyTerm.Load()
	return t != 0 && n.raft.State() == raft.Leader && n.raft.CurrentTerm() == t
}

// observe consumes raft observations: heartbeat and replication events go
// to membership; leader changes are counted.
func (n *Node) observe(ctx context.Context, ch <-chan raft.Observation) {
	var lastLeader raft.ServerID
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-ch:
			if d, ok := o.Data.(raft.LeaderObservation); ok {
				if d.LeaderID != lastLeader {
					lastLeader = d.LeaderID
					n.metrics.leaderChanges.Inc()
					n.log.Info("leader changed", "leader", string(d.LeaderID))
				}
				n.membership.kick()
				continue
			}
			n.membership.observe(o.Data)
		}
	}
}
