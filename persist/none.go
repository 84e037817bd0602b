package persist

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotTombstone is Write's answer, on the store of persist.store "none",
// to a batch that puts a record other than a revocation tombstone. The token
// service refuses every operation that would write one (tokens
// .ErrStoreDisabled) before it reaches the log, so meeting it is a bug.
var ErrNotTombstone = errors.New("the store is disabled (persist.store none): only revocation tombstones of JWTs are kept")

// None is the store of persist.store "none" (Auth-O-Tron's NoStore): no SQL,
// and no token records either. Only self-contained tokens (JWTs) can be used
// then: they are issued without a record and judged by the claims they
// carry, and what must still be remembered is which of them were revoked.
// None keeps exactly that, the revocation tombstones (token.IsTombstone), in
// this process's memory.
//
// It is a Memory store that refuses to write anything else: like "memory",
// it is local to the node (Shared is false; every node writes its own from
// the log), its rows go into the node's snapshots, and it is rebuilt from
// the Raft log and snapshots when a node restarts, so nothing survives a
// restart of the whole cluster. Unlike "memory", it never holds an opaque
// token or a JWT's record, and so it never grows with the tokens issued,
// only with the revocations: a tombstone is kept until its JWT's exp (plus
// retention's grace, see token.EndOfUse), then the reaper deletes it like
// any row past retention. Nothing evicts one earlier.
type None struct {
	*Memory
}

var _ Store = (*None)(nil)

// NewNone returns an empty store for persist.store "none".
func NewNone() *None { return &None{Memory: NewMemory()} }

// Write applies b like Memory.Write, and refuses (writing nothing) a batch
// that puts a record which is not a revocation tombstone.
func (n *None) Write(ctx context.Context, b *Batch) error {
	if b != nil {
		for _, t := range b.Puts {
			if t != nil && !t.IsTombstone() {
				return fmt.Errorf("cannot write token %s (%s, not revoked): %w", t.Key, t.Format, ErrNotTombstone)
			}
		}
	}
	return n.Memory.Write(ctx, b)
}

// Disabled reports whether st is the store of persist.store "none": token
// records are not kept, only revocation tombstones.
func Disabled(st Store) bool {
	_, ok := st.(*None)
	return ok
}
