package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// Errors of this package. Errors that callers of tokens.Log and
// tokens.Forwarder see are the tokens sentinels (ErrNoLeader,
// ErrIndeterminate, ErrStale, ErrShuttingDown), wrapped with a reason; raft's
// and memberlist's errors never leave the package unwrapped.
var (
	// ErrIdentityMismatch: the data directory holds the Raft identity of
	// another node id; refusing to start under a different one.
	ErrIdentityMismatch = errors.New("data directory belongs to another node")
	// ErrLastServer: the node is the only server of the cluster; there is
	// no one to hand the log to, so it cannot leave (stop it instead).
	ErrLastServer = errors.New("the only server of the cluster cannot leave it")
	// ErrNotReady: the node has not joined the cluster or not caught up with
	// the leader's commit index yet (Ready).
	ErrNotReady = errors.New("node not ready")
	// ErrHalted: the state machine met a log entry it cannot decode and
	// stopped applying (skipping it would diverge); the node must be fixed
	// by an operator.
	ErrHalted = errors.New("state machine halted")
	// ErrClosed: the node was closed.
	ErrClosed = errors.New("cluster node closed")
)

// Stable error codes of the internal RPC. A leader's error travels as a code
// and a message; the follower maps the code back to the same sentinel, so
// errors.Is works across the hop. Never renumber or rename a code.
const (
	codeOK                  = "ok"
	codeNotLeader           = "not_leader" // nothing was done: retry elsewhere
	codeNoLeader            = "no_leader"  // nothing was appended
	codeShuttingDown        = "shutting_down"
	codeIndeterminate       = "indeterminate"
	codeStale               = "stale"
	codeNotFound            = "not_found"
	codeParentNotFound      = "parent_not_found"
	codeParentNotValid      = "parent_not_valid"
	codeTokenNotValid       = "token_not_valid"
	codeTooManyDescendants  = "too_many_descendants"
	codeDuplicateName       = "duplicate_name"
	codeIdempotencyConflict = "idempotency_conflict"
	codeStoreUnavailable    = "store_unavailable"
	codeOverloaded          = "overloaded"
	codeInvalid             = "invalid"
	codeMalformed           = "malformed"
	codeHalted              = "halted"
	codeTimeout             = "timeout"  // the leader's deadline passed (context.DeadlineExceeded)
	codeCanceled            = "canceled" // the leader is stopping (context.Canceled)
	codeInternal            = "internal"
)

// codeSentinels maps codes to the errors they stand for. Order matters in
// errorCode: ErrIndeterminate is checked before the errors it may wrap, and
// the context errors after every sentinel (as httpapi matches them). It
// covers every error httpapi tells apart (httpapi.MappedErrors; a test walks
// them all), so a write answers the same status through a follower as on
// the leader.
var codeSentinels = []struct {
	code string
	err  error
}{
	{codeIndeterminate, tokens.ErrIndeterminate},
	{codeShuttingDown, tokens.ErrShuttingDown},
	{codeNoLeader, tokens.ErrNoLeader},
	{codeStale, tokens.ErrStale},
	{codeNotFound, tokens.ErrNotFound},
	{codeParentNotFound, tokens.ErrParentNotFound},
	{codeParentNotValid, tokens.ErrParentNotValid},
	{codeTokenNotValid, tokens.ErrTokenNotValid},
	{codeTooManyDescendants, tokens.ErrTooManyDescendants},
	{codeDuplicateName, tokens.ErrDuplicateName},
	{codeIdempotencyConflict, tokens.ErrIdempotencyConflict},
	{codeStoreUnavailable, tokens.ErrStoreUnavailable},
	{codeOverloaded, tokens.ErrOverloaded},
	{codeInvalid, token.ErrInvalid},
	{codeMalformed, token.ErrMalformed},
	{codeHalted, ErrHalted},
	{codeTimeout, context.DeadlineExceeded},
	{codeCanceled, context.Canceled},
}

// errorCode returns the stable code of err.
func errorCode(err error) string {
	if err == nil {
		return codeOK
	}
	for _, cs := range codeSentinels {
		if errors.Is(err, cs.err) {
			return cs.code
		}
	}
	return codeInternal
}

// remoteError is an error returned by another node. It unwraps to the
// sentinel of its code, so errors.Is works on the receiving side.
type remoteError struct {
	code     string
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// errorFromCode rebuilds a remote error.
func errorFromCode(code, msg string) error {
	if code == codeOK {
		return nil
	}
	for _, cs := range codeSentinels {
		if cs.code == code {
			return &remoteError{code: code, msg: msg, sentinel: cs.err}
		}
	}
	return &remoteError{code: code, msg: msg}
}

// translateApplyError maps an error of raft.Apply's future to the tokens
// sentinels (raft's own errors are formatted, not wrapped: they stop at the
// package boundary).
func translateApplyError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// Refused before it was appended: nothing happened.
		return fmt.Errorf("%w: %v", tokens.ErrNoLeader, err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: raft apply queue full: %v", tokens.ErrOverloaded, err)
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: leadership lost while committing: %v", tokens.ErrIndeterminate, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: raft shut down while committing: %v", tokens.ErrIndeterminate, err)
	}
	return fmt.Errorf("%w: %v", tokens.ErrIndeterminate, err)
}
