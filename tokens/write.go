package tokens

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/replica"
	"github.com/tokencache/tokencache/token"
)

// WriteRequest is one write as the leader runs it. The node that received
// the client's request builds it (with the new key, the secret's hash and
// any sealed blobs: secrets never leave that node) and either runs it
// (LeaderWrite) or forwards it to the leader. Exactly one field is set.
type WriteRequest struct {
	Issue    *IssueSpec      `json:"issue,omitempty"`
	Modify   *ModifySpec     `json:"modify,omitempty"`
	Revoke   *RevokeSpec     `json:"revoke,omitempty"`
	Delegate *DelegateSpec   `json:"delegate,omitempty"`
	Purge    *PurgeSpec      `json:"purge,omitempty"`
	Touch    []persist.Touch `json:"touch,omitempty"`
}

// WriteResult is what the leader answers.
type WriteResult struct {
	Token  *token.Token   `json:"token,omitempty"`  // issue, modify, delegate
	Tokens []*token.Token `json:"tokens,omitempty"` // revoke (root first), purge
	Reused bool           `json:"reused,omitempty"` // delegate handed out an existing child; idempotent replay
}

// IssueSpec is an issue resolved by the receiving node.
type IssueSpec struct {
	Request IssueRequest `json:"request"` // Credentials already sealed into Sealed
	Key     token.Key    `json:"key"`
	Hash    token.Hash   `json:"hash"`
	// CredentialsSealed is the sealed credentials blob (or nil).
	CredentialsSealed []byte `json:"credentials_sealed,omitempty"`
}

// ModifySpec is a modify request.
type ModifySpec struct {
	Request ModifyRequest `json:"request"`
}

// RevokeSpec revokes a token and its descendants.
type RevokeSpec struct {
	Key token.Key `json:"key"`
	// Hash, when set, must match the token's hash (RFC 7009 revocation by
	// token text: the leader re-checks possession).
	Hash *token.Hash `json:"hash,omitempty"`
	// Tombstone, when set, revokes a self-contained token (a JWT) that has
	// no record here (an external issuer's, or any while the store is
	// disabled): the record its claims state, which the leader writes with
	// RevokedAt when no record of Key exists (see RevokeToken).
	Tombstone *token.Token `json:"tombstone,omitempty"`
}

// DelegateSpec asks for a delegated child of Parent. The receiving node
// verified the parent's secret; the leader re-checks ParentHash.
type DelegateSpec struct {
	Parent     token.Key        `json:"parent"`
	ParentHash token.Hash       `json:"parent_hash"`
	Delegation token.Delegation `json:"delegation"`
	// New child, used when no existing child fits.
	Key     token.Key  `json:"key"`
	Hash    token.Hash `json:"hash"`
	Sealed  []byte     `json:"sealed"`
	Expires token.Time `json:"expires"` // requested expiry (0 = parent's / default)
}

// PurgeSpec deletes tokens past retention (or every expired token).
type PurgeSpec struct {
	IncludeExpired bool `json:"include_expired"`
}

// write runs w on the leader: here when this node leads, else forwarded
// through the replication layer (forward.go).
func (s *Service) write(ctx context.Context, w *WriteRequest) (*WriteResult, error) {
	if s.stopping.Load() {
		return nil, ErrShuttingDown
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.WriteTimeout)
		defer cancel()
	}
	if s.repl.IsLeader() {
		return s.LeaderWrite(ctx, w)
	}
	return s.forward(ctx, w)
}

// LeaderWrite runs w on this node, which must be the leader (HandleWrite
// runs it for writes received by other nodes).
func (s *Service) LeaderWrite(ctx context.Context, w *WriteRequest) (*WriteResult, error) {
	if s.stopping.Load() {
		return nil, ErrShuttingDown
	}
	if s.noStore && (w.Issue != nil || w.Modify != nil || w.Delegate != nil) {
		// A write of a stored token, forwarded by a node that stores
		// tokens (the fingerprint keeps such nodes apart; this keeps the
		// log clean if one gets here anyway): the store could never hold
		// it, and its writer would retry it forever.
		return nil, fmt.Errorf("%w: this leader keeps no token records", ErrStoreDisabled)
	}
	switch {
	case w.Issue != nil:
		t, replay, err := s.leaderIssue(ctx, w.Issue)
		return &WriteResult{Token: t, Reused: replay}, err
	case w.Modify != nil:
		t, err := s.leaderModify(ctx, &w.Modify.Request)
		return &WriteResult{Token: t}, err
	case w.Revoke != nil:
		ts, err := s.leaderRevoke(ctx, w.Revoke)
		return &WriteResult{Tokens: ts}, err
	case w.Delegate != nil:
		t, reused, err := s.leaderDelegate(ctx, w.Delegate)
		return &WriteResult{Token: t, Reused: reused}, err
	case w.Purge != nil:
		ts, err := s.leaderPurge(ctx, w.Purge.IncludeExpired)
		return &WriteResult{Tokens: ts}, err
	case w.Touch != nil:
		_, err := s.propose(ctx, &replica.Command{Op: replica.OpTouch, Touches: w.Touch})
		return &WriteResult{}, err
	}
	return nil, fmt.Errorf("%w: empty write request", token.ErrInvalid)
}

// propose appends cmd (stamping its time) and waits until it is acknowledged:
// by the log under its replication policy, then, with write-through, until
// the store holds it, and for a revocation (cmd.Revokes) until every healthy
// node applied it.
//
// A revocation is admitted even when the write-behind queue is full or the
// store is down: it takes effect in every node's memory at once (pinned
// until the store has it), and refusing it would leave a token usable that
// its owner wants dead. If the store then cannot confirm it, the caller gets
// ErrIndeterminate and a retry is harmless.
func (s *Service) propose(ctx context.Context, cmd *replica.Command) (replica.Applied, error) {
	revocation := cmd.Revokes()
	if cmd.Op != replica.OpTouch && cmd.Op != replica.OpPersisted && !revocation {
		if err := s.state.Writer().Admit(); err != nil {
			return replica.Applied{}, err
		}
	}
	if cmd.Time == 0 {
		cmd.Time = token.At(s.now())
	}
	a, err := s.repl.Propose(ctx, cmd)
	if err != nil {
		return a, err
	}
	if a.Done && a.Result.Replayed {
		return a, nil
	}
	if s.state.Writer().WritesThrough() && a.Index > 0 && cmd.Op != replica.OpTouch {
		if err := s.state.Writer().WaitPersisted(ctx, a.Index); err != nil {
			// The entry is in the log and every node applies it; only the
			// SQL commit is not confirmed. It will follow once the store
			// answers, but the caller cannot be told it is durable there.
			return a, fmt.Errorf("%w: applied at index %d but not yet stored: %w", ErrIndeterminate, a.Index, err)
		}
	}
	if revocation && a.Index > 0 {
		if err := s.repl.WaitApplied(ctx, a.Index); err != nil {
			return a, fmt.Errorf("%w: revocation at index %d not yet applied everywhere: %w", ErrIndeterminate, a.Index, err)
		}
	}
	return a, nil
}

// userLocks serialises the leader's writes per username, from reading the
// view to the entry being applied, so that name uniqueness and cascades are
// checked against a state no concurrent write of the same user changes.
type userLocks struct {
	seed    maphash.Seed
	stripes [256]sync.Mutex
}

func newUserLocks() userLocks { return userLocks{seed: maphash.MakeSeed()} }

func (l *userLocks) lock(username string) func() {
	m := &l.stripes[maphash.String(l.seed, username)%uint64(len(l.stripes))]
	m.Lock()
	return m.Unlock
}

// errIs reports whether err is any of targets.
func errIs(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
