package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tokencache/tokencache/replica"
)

// The staleness fence (DESIGN §3 invariant 2). A goroutine recomputes the
// verdict every fenceInterval; Fence returns it with one atomic load and a
// monotonic clock read. A node may answer valid only while:
//
//   - leader: it confirmed a quorum (VerifyLeader, every fenceInterval)
//     less than MaxStaleness ago, measured from the start of that check;
//   - follower: raft's LastContact (any AppendEntries or heartbeat from a
//     leader) is less than MaxStaleness old;
//
// and, in both roles, its applied index has not stayed behind a commit
// index it knew of for MaxStaleness or longer (a node that hears from the
// leader but cannot apply fails closed too). A verdict older than
// maxVerdictAge is not trusted (the fence goroutine was starved, or the
// process was paused): the node answers stale until it is refreshed. Every
// duration is measured on the monotonic clock.
const (
	fenceInterval = 50 * time.Millisecond
	// Ten intervals: a goroutine starved for a few hundred milliseconds on
	// a loaded machine must not fail a healthy node closed; a longer pause
	// than this is caught, and the revocation margin accounts for it.
	maxVerdictAge  = 10 * fenceInterval
	catchUpTimeout = 250 * time.Millisecond
)

type fenceVerdict struct {
	at  int64 // since epoch
	err error // nil: may answer valid
}

func (n *Node) setVerdict(err error) {
	n.fence.Store(&fenceVerdict{at: n.sinceEpoch(), err: err})
}

// Fence tells whether this node may answer valid: nil while the verdict
// says so, replica.ErrStale otherwise. It is called on every successful
// validation: one atomic load and a monotonic clock read.
func (n *Node) Fence() error {
	v := n.fence.Load()
	if age := n.ago(v.at); age > maxVerdictAge {
		return fmt.Errorf("%w: staleness check not refreshed for %s", replica.ErrStale, age.Round(time.Millisecond))
	}
	return v.err
}

func (n *Node) fenceLoop(ctx context.Context) {
	t := time.NewTicker(fenceInterval)
	defer t.Stop()
	verifying := make(chan struct{}, 1)
	for {
		if n.raft.State() == raft.Leader && n.IsLeader() {
			select {
			case verifying <- struct{}{}:
				n.wg.Add(1)
				go func() {
					defer n.wg.Done()
					defer func() { <-verifying }()
					start := n.sinceEpoch()
					vctx, cancel := context.WithTimeout(ctx, n.cfg.MaxStaleness)
					defer cancel()
					if waitFuture(vctx, n.raft.VerifyLeader()) == nil {
						n.storeVerified(start)
					}
				}()
			default: // one check at a time
			}
		}
		if !n.closing.Load() {
			n.setVerdict(n.computeFence())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.fenceKick:
		}
	}
}

// computeFence returns nil when this node may answer valid, else ErrStale
// wrapped with the reason. After any stale verdict the node stays closed
// until it has applied a read index obtained from the leader after that
// verdict (freshnessLoop): a node that regains contact while far behind —
// a healed partition, a restart under a new identity — must not answer
// valid from a state that lacks a revocation acknowledged meanwhile (it was
// excused from confirming it because its fence was closed).
func (n *Node) computeFence() error {
	// A gap since the last verdict (process paused, goroutine starved)
	// counts as a stale event: raft's goroutines may have refreshed
	// LastContact before this one ran again, while the state still lacks
	// what was acknowledged during the pause.
	now := n.sinceEpoch()
	last := n.lastVerdict
	n.lastVerdict = now
	if gap := time.Duration(now - last); last != 0 && gap > maxVerdictAge {
		n.staleGen.Add(1)
		return fmt.Errorf("%w: staleness check paused for %s", replica.ErrStale, gap.Round(time.Millisecond))
	}
	if err := n.contactFence(); err != nil {
		n.staleGen.Add(1)
		return err
	}
	if n.freshGen.Load() != n.staleGen.Load() {
		return fmt.Errorf("%w: catching up with the leader after being out of contact (applied index %d)", replica.ErrStale, n.state.AppliedIndex())
	}
	return nil
}

// contactFence is the contact and lag part of computeFence.
func (n *Node) contactFence() error {
	stale := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{replica.ErrStale}, args...)...)
	}
	if err := n.fsm.haltErr(); err != nil {
		return stale("%v", err)
	}
	if n.fsm.restoreFailed.Load() {
		return stale("the last snapshot restore failed")
	}
	if m := n.disc.leaderMismatch(); m != "" {
		return stale("%s", m)
	}
	switch n.raft.State() {
	case raft.Leader:
		if !n.IsLeader() {
			return stale("new leader still catching up")
		}
		if age := n.ago(n.leaderVerified.Load()); age >= n.cfg.MaxStaleness {
			return stale("leader without quorum contact for %s", age.Round(100*time.Millisecond))
		}
	case raft.Shutdown:
		return stale("raft is shut down")
	default:
		lc := n.raft.LastContact()
		if lc.IsZero() {
			return stale("not yet in contact with a leader")
		}
		if age := time.Since(lc); age >= n.cfg.MaxStaleness {
			return stale("no contact with leader for %s", age.Round(100*time.Millisecond))
		}
	}
	// The lag clause: how long has the oldest commit index we knew of and
	// have not applied been waiting?
	commit := n.commitKnown()
	switch {
	case n.appliedAtLeast(commit):
		n.lagTarget, n.lagSince = 0, time.Time{}
	case n.lagTarget == 0 || n.appliedAtLeast(n.lagTarget):
		n.lagTarget, n.lagSince = commit, time.Now()
	}
	if n.lagTarget != 0 {
		if age := time.Since(n.lagSince); age >= n.cfg.MaxStaleness {
			return stale("applied index %d behind commit index %d for %s", n.state.AppliedIndex(), n.lagTarget, age.Round(100*time.Millisecond))
		}
	}
	return nil
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
	target := max(n.commitKnown(), n.raft.LastIndex())
	if n.appliedAtLeast(target) {
		return false
	}
	before := n.state.AppliedIndex()
	wctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	_ = n.waitApplied(wctx, target)
	return n.state.AppliedIndex() > before
}
