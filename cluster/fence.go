package cluster

import (
	"context"
	"fmt"
	"sync/atomic"
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

// fence holds the staleness state behind Fence: the last verdict, the
// leader's last quorum confirmation, the stale and fresh generations and the
// lag clause, measured on its own monotonic clock. The Node's fence loop
// feeds it what raft reports; Fence reads it. Its methods are safe for
// concurrent use, except compute and lag, which only the fence loop calls.
type fence struct {
	clock monoClock

	verdict atomic.Pointer[fenceVerdict] // the last verdict and when it was computed
	kickCh  chan struct{}                // recompute the verdict now (leadership changed)
	// verified: when the leader last confirmed quorum contact (since epoch).
	verified atomic.Int64
	// staleGen counts stale verdicts; freshGen is the staleGen value as of
	// the last read index this node obtained from the leader and applied.
	// The fence opens only when they are equal.
	staleGen atomic.Uint64
	freshGen atomic.Uint64

	lagTarget   uint64    // fence loop only
	lagSince    time.Time // fence loop only
	lastVerdict int64     // fence loop only: when it last computed (since epoch)
}

type fenceVerdict struct {
	at  int64 // since epoch
	err error // nil: may answer valid
}

// newFence returns a closed fence: stale until the first catch-up.
func newFence() *fence {
	f := &fence{clock: newMonoClock(), kickCh: make(chan struct{}, 1)}
	f.staleGen.Store(1)
	f.set(fmt.Errorf("%w: node not started", replica.ErrStale))
	return f
}

// set records a verdict (nil: may answer valid) as of now.
func (f *fence) set(err error) {
	f.verdict.Store(&fenceVerdict{at: f.clock.now(), err: err})
}

// check returns the last verdict, or ErrStale when it is too old to trust.
func (f *fence) check() error {
	v := f.verdict.Load()
	if age := f.clock.ago(v.at); age > maxVerdictAge {
		return fmt.Errorf("%w: staleness check not refreshed for %s", replica.ErrStale, age.Round(time.Millisecond))
	}
	return v.err
}

// kick asks the fence loop for a verdict now (non-blocking).
func (f *fence) kick() {
	select {
	case f.kickCh <- struct{}{}:
	default:
	}
}

// confirmQuorum records that this leader confirmed quorum contact in a
// check that started at ts (since epoch); an older confirmation never
// replaces a newer one.
func (f *fence) confirmQuorum(ts int64) {
	for {
		cur := f.verified.Load()
		if ts <= cur || f.verified.CompareAndSwap(cur, ts) {
			return
		}
	}
}

// sinceQuorum is how long ago this leader last confirmed quorum contact.
func (f *fence) sinceQuorum() time.Duration { return f.clock.ago(f.verified.Load()) }

// generation returns the count of stale verdicts and whether the node has
// caught up since the last one.
func (f *fence) generation() (stale uint64, fresh bool) {
	g := f.staleGen.Load()
	return g, f.freshGen.Load() == g
}

// caughtUp marks the stale verdicts up to generation g as cleared: the node
// applied a read index obtained after them.
func (f *fence) caughtUp(g uint64) { f.freshGen.Store(g) }

// compute returns the verdict: stale (counted) after a gap since the last
// verdict or when contact fails, stale until the node caught up after the
// last stale verdict, else nil. appliedIndex is only read for the message.
func (f *fence) compute(contact func() error, appliedIndex func() uint64) error {
	// A gap since the last verdict (process paused, goroutine starved)
	// counts as a stale event: raft's goroutines may have refreshed
	// LastContact before this one ran again, while the state still lacks
	// what was acknowledged during the pause.
	now := f.clock.now()
	last := f.lastVerdict
	f.lastVerdict = now
	if gap := time.Duration(now - last); last != 0 && gap > maxVerdictAge {
		f.staleGen.Add(1)
		return fmt.Errorf("%w: staleness check paused for %s", replica.ErrStale, gap.Round(time.Millisecond))
	}
	if err := contact(); err != nil {
		f.staleGen.Add(1)
		return err
	}
	if _, fresh := f.generation(); !fresh {
		return fmt.Errorf("%w: catching up with the leader after being out of contact (applied index %d)", replica.ErrStale, appliedIndex())
	}
	return nil
}

// lag is the lag clause: given the highest commit index known, it returns
// the oldest commit index known and not yet applied, and for how long it
// has been waiting (target 0: not behind).
func (f *fence) lag(commit uint64, appliedAtLeast func(uint64) bool) (target uint64, waiting time.Duration) {
	switch {
	case appliedAtLeast(commit):
		f.lagTarget, f.lagSince = 0, time.Time{}
	case f.lagTarget == 0 || appliedAtLeast(f.lagTarget):
		f.lagTarget, f.lagSince = commit, time.Now()
	}
	if f.lagTarget == 0 {
		return 0, 0
	}
	return f.lagTarget, time.Since(f.lagSince)
}

// monoClock measures durations on the monotonic clock from its epoch, as
// int64 nanoseconds that fit in atomics.
type monoClock struct{ epoch time.Time }

func newMonoClock() monoClock { return monoClock{epoch: time.Now()} }

// now returns the time since the epoch.
func (c monoClock) now() int64 { return int64(time.Since(c.epoch)) }

// ago returns how long ago an epoch-relative timestamp was.
func (c monoClock) ago(ts int64) time.Duration { return time.Duration(c.now() - ts) }

// Fence tells whether this node may answer valid: nil while the verdict
// says so, replica.ErrStale otherwise. It is called on every successful
// validation: one atomic load and a monotonic clock read.
func (n *Node) Fence() error { return n.fence.check() }

func (n *Node) fenceLoop(ctx context.Context) {
	t := time.NewTicker(fenceInterval)
	defer t.Stop()
	verifying := make(chan struct{}, 1)
	for {
		if n.IsLeader() {
			select {
			case verifying <- struct{}{}:
				n.wg.Add(1)
				go func() {
					defer n.wg.Done()
					defer func() { <-verifying }()
					start := n.fence.clock.now()
					vctx, cancel := context.WithTimeout(ctx, n.cfg.MaxStaleness)
					defer cancel()
					if waitFuture(vctx, n.raft.VerifyLeader()) == nil {
						n.fence.confirmQuorum(start)
					}
				}()
			default: // one check at a time
			}
		}
		if !n.closing.Load() {
			n.fence.set(n.fence.compute(n.contactFence, n.state.AppliedIndex))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.fence.kickCh:
		}
	}
}

// contactFence is the contact and lag part of the verdict (fence.compute).
// After any stale verdict the node stays closed until it has applied a read
// index obtained from the leader after that verdict (freshnessLoop): a node
// that regains contact while far behind — a healed partition, a restart
// under a new identity — must not answer valid from a state that lacks a
// revocation acknowledged meanwhile (it was excused from confirming it
// because its fence was closed).
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
		if age := n.fence.sinceQuorum(); age >= n.cfg.MaxStaleness {
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
	if target, waiting := n.fence.lag(n.proposer.commitKnown(), n.proposer.appliedAtLeast); target != 0 && waiting >= n.cfg.MaxStaleness {
		return stale("applied index %d behind commit index %d for %s", n.state.AppliedIndex(), target, waiting.Round(100*time.Millisecond))
	}
	return nil
}
