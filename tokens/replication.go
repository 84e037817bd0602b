package tokens

import (
	"context"

	"github.com/tokencache/tokencache/replica"
)

// Replication is what the service needs of the replicated log, declared
// here, where it is consumed. The cluster package implements it with Raft
// (cluster.Node) without importing this package; replica.LocalLog is the
// single-process log of unit tests. Implementations are safe for
// concurrent use.
type Replication interface {
	// Propose appends cmd and blocks until it is acknowledged under the
	// replication policy (cmd.Sync(), or the sync policy: committed and
	// applied on this node; async: accepted by the leader, then Applied.Done
	// is false). Only the leader may propose. An error that leaves the
	// outcome unknown wraps ErrIndeterminate; an error that guarantees
	// nothing was appended (not leader, shutting down) must not.
	Propose(ctx context.Context, cmd *replica.Command) (replica.Applied, error)
	// IsLeader reports whether this node is the leader and ready for writes
	// (its state reflects every earlier term's entries).
	IsLeader() bool
	// Forward sends a write to the leader, whose HandleWrite runs it, and
	// returns its answer. write and the answer are this package's encoding
	// (forward.go); the replication layer carries them unread. It holds the
	// write through a leader election until ctx ends (then ErrNoLeader).
	Forward(ctx context.Context, write []byte) ([]byte, error)
	// WaitApplied blocks until every healthy node has applied index (used
	// before a revocation is acknowledged: DESIGN §3 invariant 2).
	WaitApplied(ctx context.Context, index uint64) error
	// Consistent blocks until this node's state reflects every write
	// acknowledged before the call (a linearizable read barrier).
	Consistent(ctx context.Context) error
	// Fence tells whether this node may answer valid: nil while it is in
	// contact with the leader (or runs alone), ErrStale otherwise. It is
	// called on every successful validation and must be cheap (an atomic
	// load).
	Fence() error
	// CatchUp is called before a node answers unknown for a key it has not
	// got: if this node's applied index is behind the commit index it knows
	// of, it waits (briefly, bounded by ctx) for the log to catch up and
	// reports whether it applied anything, so that a token issued through
	// another node a moment ago is not answered unknown here. It must
	// return at once when the node is not behind.
	CatchUp(ctx context.Context) bool
	// ReadyCheck reports whether the replication layer lets this node
	// answer (joined the cluster, caught up with the leader).
	ReadyCheck(ctx context.Context) error
}

var _ Replication = (*replica.LocalLog)(nil)
