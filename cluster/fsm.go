package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/tokencache/tokencache/replica"
)

// fsm adapts replica.Machine to raft.BatchingFSM. It is a thin, deterministic
// bridge: decode each command and hand it to Machine.Apply, in log order.
//
//   - LogCommand entries decode to a replica.Command. An entry that fails to
//     decode is fatal: the FSM logs it loudly, stops applying anything
//     (skipping it would make this node diverge) and asks the node to shut
//     Raft down; the fence then fails closed on this node.
//   - LogConfiguration entries are applied as an OpNoop at their index, so
//     that the Machine's applied index (and every snapshot's) covers them too.
//     Raft's own no-op (LogNoop, the first entry of a term) and barriers
//     never reach the FSM; see Node.appliedAtLeast.
//   - A foreign local store (DESIGN.md, "Fast-forward": this node started a
//     new Raft log over a local store that already held rows) is emptied
//     before the first entry that changes anything is applied, unless a
//     snapshot restore replaced or adopted it first.
type fsm struct {
	state *replica.Machine
	log   *slog.Logger
	ctx   context.Context // canceled when the node closes (bounds snapshot I/O)

	halted atomic.Pointer[error]
	onHalt func(error)
	// onClusterID, when set, records the cluster id the state holds after
	// an OpClusterID or a restore (identity.go), before the next entry is
	// applied: a node that holds the entry holds the id in its data dir.
	onClusterID func(string)
	// restoreFailed is set while the last snapshot restore failed: the state
	// is not to be trusted until a restore succeeds.
	restoreFailed atomic.Bool

	// applyMu makes applies, restores and the node's own uses of the state
	// between applies (fast-forward snapshot, dropping a foreign store)
	// mutually exclusive. Raft calls Apply and Restore from one goroutine,
	// so it is contended only by those rare uses.
	applyMu sync.Mutex
	// foreign is set while the local store holds rows this node's Raft log
	// did not write (set at start, cleared by a successful restore or by
	// dropForeign).
	foreign atomic.Bool
	// ownRestore is set by the leader around its fast-forward (raft.Restore
	// of its own state); raft is this node's Raft, set after NewRaft.
	ownRestore atomic.Bool
	raft       atomic.Pointer[raft.Raft]

	mu      sync.Mutex
	changed chan struct{} // closed and replaced after every apply or restore
}

var _ raft.BatchingFSM = (*fsm)(nil)

func newFSM(ctx context.Context, state *replica.Machine, log *slog.Logger, onHalt func(error)) *fsm {
	return &fsm{state: state, log: log, ctx: ctx, onHalt: onHalt, changed: make(chan struct{})}
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch implements raft.BatchingFSM. Each response is a replica.Result,
// or an error wrapping ErrHalted for entries not applied.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	defer f.notify()
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	for i, l := range logs {
		if p := f.halted.Load(); p != nil {
			out[i] = *p
			continue
		}
		switch l.Type {
		case raft.LogCommand:
			var cmd replica.Command
			if err := cmd.UnmarshalBinary(l.Data); err != nil {
				f.halt(fmt.Errorf("%w: cannot decode log entry %d (term %d, %d bytes): %w", ErrHalted, l.Index, l.Term, len(l.Data), err))
				out[i] = *f.halted.Load()
				continue
			}
			if cmd.Op != replica.OpNoop && cmd.Op != replica.OpClusterID && f.foreign.Load() {
				// Applying a change over rows of another log would let
				// the writer skip it (its index is at or below the
				// store's) and keep rows this log never had.
				if err := f.dropForeignLocked(fmt.Sprintf("entry %d is the first change this node applies and no snapshot replaced the store", l.Index)); err != nil {
					f.halt(fmt.Errorf("%w: %w", ErrHalted, err))
					out[i] = *f.halted.Load()
					continue
				}
			}
			out[i] = f.state.Apply(l.Index, &cmd)
			if cmd.Op == replica.OpClusterID && f.onClusterID != nil {
				f.onClusterID(f.state.ClusterID())
			}
		case raft.LogConfiguration:
			out[i] = f.state.Apply(l.Index, &replica.Command{Op: replica.OpNoop})
		default:
			out[i] = replica.Result{}
		}
	}
	return out
}

func (f *fsm) halt(err error) {
	f.haltWith(err, "STATE MACHINE HALTED: a committed log entry cannot be applied; this node stops applying and leaves Raft. "+
		"Upgrade the binary (the entry may come from a newer version) or wipe this node's data dir to rejoin under a new identity.")
}

// haltWith halts the FSM (see halt) and logs msg at Error.
func (f *fsm) haltWith(err error, msg string) {
	if !f.halted.CompareAndSwap(nil, &err) {
		return
	}
	f.log.Error(msg, "err", err)
	if f.onHalt != nil {
		go f.onHalt(err) // not on raft's FSM goroutine: raft.Shutdown waits for it
	}
}

// haltErr returns the halt error, or nil.
func (f *fsm) haltErr() error {
	if p := f.halted.Load(); p != nil {
		return *p
	}
	return nil
}

// Snapshot implements raft.FSM: Machine.Snapshot copies only the pinned set and
// the idempotency table; the rows (local store) stream in Persist.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.haltErr(); err != nil {
		return nil, fmt.Errorf("cannot snapshot: %w", err)
	}
	return &fsmSnapshot{ctx: f.ctx, snap: f.state.Snapshot()}, nil
}

// Restore implements raft.FSM. A snapshot is either one raft installs (from
// the leader, or this node's own at start), which replaces everything, or
// this leader's fast-forward (raft.Restore of its own state, see fastforward.go):
// raft restores a user snapshot on its leader loop while it is the leader,
// and an installed one only as a follower (installSnapshot runs on a leader
// only for a newer term, after stepping down), so "ownRestore set and raft
// is the leader" singles the fast-forward out. Its rows are this node's
// store's rows: Machine.RestoreOwn keeps the local store instead of
// rewriting it.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	defer f.notify()
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	own := false
	if f.ownRestore.Load() {
		r := f.raft.Load()
		own = r != nil && r.State() == raft.Leader
	}
	restore := f.state.Restore
	if own {
		restore = f.state.RestoreOwn
	}
	if err := restore(f.ctx, rc); err != nil {
		f.restoreFailed.Store(true)
		f.log.Error("cannot restore snapshot; this node answers stale until a restore succeeds", "own", own, "err", err)
		return fmt.Errorf("cannot restore snapshot: %w", err)
	}
	f.restoreFailed.Store(false)
	if f.foreign.Swap(false) {
		if own {
			f.log.Info("this leader's local store is now the state of the new raft log")
		} else {
			f.log.Info("the leader's snapshot replaced this node's local store")
		}
	}
	if id := f.state.ClusterID(); id != "" && f.onClusterID != nil {
		f.onClusterID(id)
	}
	f.log.Info("restored snapshot", "own", own, "applied_index", f.state.AppliedIndex(), "persisted_index", f.state.PersistedIndex())
	return nil
}

// snapshotAt returns Machine.SnapshotAt(index), taken between two applies.
func (f *fsm) snapshotAt(index uint64) *replica.Snapshot {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	return f.state.SnapshotAt(index)
}

// dropForeign empties a foreign local store (no-op once it is not foreign
// any more), between two applies.
func (f *fsm) dropForeign(why string) error {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	if !f.foreign.Load() {
		return nil
	}
	return f.dropForeignLocked(why)
}

func (f *fsm) dropForeignLocked(why string) error {
	before := f.state.PersistedIndex()
	if err := f.state.ResetLocalStore(f.ctx); err != nil {
		return fmt.Errorf("cannot empty the local store left by an earlier raft log: %w", err)
	}
	f.foreign.Store(false)
	f.log.Warn("emptied this node's local store: it was written by an earlier raft log and the leader did not adopt it; "+
		"this node's log rebuilds it", "why", why, "dropped_persisted_index", before, "applied_index", f.state.AppliedIndex())
	return nil
}

// waitCh returns a channel closed after the next apply or restore.
func (f *fsm) waitCh() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

func (f *fsm) notify() {
	f.mu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

type fsmSnapshot struct {
	ctx  context.Context
	snap *replica.Snapshot
}

// Persist implements raft.FSMSnapshot; it runs concurrently with applies.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.snap.WriteTo(s.ctx, sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("cannot write snapshot at index %d: %w", s.snap.Index(), err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("cannot close snapshot at index %d: %w", s.snap.Index(), err)
	}
	return nil
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}
