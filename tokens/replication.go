package tokens

import (
	"context"

	"github.com/tokencache/tokencache/replica"
)

// Log replicates commands to every node and applies them through the
// replicated state (replica.Machine). The cluster package implements it with
// Raft; replica.LocalLog is the single-process stand-in used by unit tests.
// Implementations are safe for concurrent use.
type Log interface {
	// Propose appends cmd and blocks until it is acknowledged under the
	// replication policy (sync: committed and applied on this node; async:
	// accepted by the leader, then Applied is false). Only the leader may
	// propose. An error that leaves the outcome unknown wraps
	// ErrIndeterminate; an error that guarantees nothing was appended
	// (not leader, shutting down) must not.
	Propose(ctx context.Context, cmd *replica.Command) (replica.Applied, error)
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
