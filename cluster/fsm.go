package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/tokencache/tokencache/tokens"
)

// fsm adapts tokens.State to raft.BatchingFSM. It is a thin, deterministic
// bridge: decode each command and hand it to State.Apply, in log order.
//
//   - LogCommand entries decode to a tokens.Command. An entry that fails to
//     decode is fatal: the FSM logs it loudly, stops applying anything
//     (skipping it would make this node diverge) and asks the node to shut
//     Raft down; the fence then fails closed on this node.
//   - LogConfiguration entries are applied as an OpNoop at their index, so
//     that State's applied index (and every snapshot's) covers them too.
//     Raft's own no-op (LogNoop, the first entry of a term) and barriers
//     never reach the FSM; see Node.appliedAtLeast.
type fsm struct {
	state *tokens.State
	log   *slog.Logger
	ctx   context.Context // canceled when the node closes (bounds snapshot I/O)

	halted atomic.Pointer[error]
	onHalt func(error)
	// restoreFailed is set while the last snapshot restore failed: the state
	// is not to be trusted until a restore succeeds.
	restoreFailed atomic.Bool

	mu      sync.Mutex
	changed chan struct{} // closed and replaced after every apply or restore
}

var _ raft.BatchingFSM = (*fsm)(nil)

func newFSM(ctx context.Context, state *tokens.State, log *slog.Logger, onHalt func(error)) *fsm {
	return &fsm{state: state, log: log, ctx: ctx, onHalt: onHalt, changed: make(chan struct{})}
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch implements raft.BatchingFSM. Each response is a tokens.Result,
// or an error wrapping ErrHalted for entries not applied.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	defer f.notify()
	for i, l := range logs {
		if p := f.halted.Load(); p != nil {
			out[i] = *p
			continue
		}
		switch l.Type {
		case raft.LogCommand:
			var cmd tokens.Command
			if err := cmd.UnmarshalBinary(l.Data); err != nil {
				f.halt(fmt.Errorf("%w: cannot decode log entry %d (term %d, %d bytes): %w", ErrHalted, l.Index, l.Term, len(l.Data), err))
				out[i] = *f.halted.Load()
				continue
			}
			out[i] = f.state.Apply(l.Index, &cmd)
		case raft.LogConfiguration:
			out[i] = f.state.Apply(l.Index, &tokens.Command{Op: tokens.OpNoop})
		default:
			out[i] = tokens.Result{}
		}
	}
	return out
}

func (f *fsm) halt(err error) {
	if !f.halted.CompareAndSwap(nil, &err) {
		return
	}
	f.log.Error("STATE MACHINE HALTED: a committed log entry cannot be applied; this node stops applying and leaves Raft. "+
		"Upgrade the binary (the entry may come from a newer version) or wipe this node's data dir to rejoin under a new identity.",
		"err", err)
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

// Snapshot implements raft.FSM: State.Snapshot copies only the pinned set and
// the idempotency table; the rows (local store) stream in Persist.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.haltErr(); err != nil {
		return nil, fmt.Errorf("cannot snapshot: %w", err)
	}
	return &fsmSnapshot{ctx: f.ctx, snap: f.state.Snapshot()}, nil
}

// Restore implements raft.FSM.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	defer f.notify()
	if err := f.state.Restore(f.ctx, rc); err != nil {
		f.restoreFailed.Store(true)
		f.log.Error("cannot restore snapshot; this node answers stale until a restore succeeds", "err", err)
		return fmt.Errorf("cannot restore snapshot: %w", err)
	}
	f.restoreFailed.Store(false)
	f.log.Info("restored snapshot", "applied_index", f.state.AppliedIndex(), "persisted_index", f.state.PersistedIndex())
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
	snap *tokens.Snapshot
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
