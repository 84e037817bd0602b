package tokens

import (
	"context"
	"sync"

	"github.com/tokencache/tokencache/token"
)

// Log replicates commands to every node and applies them through State. The
// cluster package implements it with Raft; LocalLog is the single-process
// stand-in used by unit tests. Implementations are safe for concurrent use.
type Log interface {
	// Propose appends cmd and blocks until it is acknowledged under the
	// replication policy (sync: committed and applied on this node; async:
	// accepted by the leader, then Applied is false). Only the leader may
	// propose. An error that leaves the outcome unknown wraps
	// ErrIndeterminate; an error that guarantees nothing was appended
	// (not leader, shutting down) must not.
	Propose(ctx context.Context, cmd *Command) (Applied, error)
	// IsLeader reports whether this node is the leader and ready for writes
	// (its state reflects every earlier term's entries).
	IsLeader() bool
	// WaitApplied blocks until every healthy node has applied index (used
	// before a revocation is acknowledged: DESIGN §3 invariant 2).
	WaitApplied(ctx context.Context, index uint64) error
	// Consistent blocks until this node's state reflects every write
	// acknowledged before the call (a linearizable read barrier).
	Consistent(ctx context.Context) error
}

// Applied is the outcome of a proposal.
type Applied struct {
	Index uint64 // log index of the entry (0 when not yet known, async)
	// Done is true when the entry was applied on this node before Propose
	// returned, so Result is meaningful.
	Done   bool
	Result Result
}

// Result is what State.Apply returns for one command; deterministic on every
// node.
type Result struct {
	// Replayed is set when an OpPut carried an idempotency key that an earlier
	// entry already used: nothing was written, and Existing is the token that
	// earlier entry minted.
	Replayed bool
	Existing token.Key
}

// LocalLog is a Log for a single process without replication: proposals are
// applied at once, in order, at consecutive indexes. It is what the service
// runs on in unit tests; it is safe for concurrent use.
type LocalLog struct {
	mu    sync.Mutex
	state *State
	index uint64
}

// NewLocalLog returns a LocalLog whose next index follows start (pass the
// store's persisted index, so that new rows always carry larger indexes).
func NewLocalLog(state *State, start uint64) *LocalLog {
	state.cache.Advance(start)
	return &LocalLog{state: state, index: start}
}

// Propose implements Log.
func (l *LocalLog) Propose(ctx context.Context, cmd *Command) (Applied, error) {
	if err := ctx.Err(); err != nil {
		return Applied{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.index++
	res := l.state.Apply(l.index, cmd)
	return Applied{Index: l.index, Done: true, Result: res}, nil
}

// IsLeader implements Log: a single process always leads.
func (l *LocalLog) IsLeader() bool { return true }

// WaitApplied implements Log: the only node applied it in Propose.
func (l *LocalLog) WaitApplied(context.Context, uint64) error { return nil }

// Consistent implements Log.
func (l *LocalLog) Consistent(context.Context) error { return nil }
