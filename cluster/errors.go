package cluster

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/tokencache/tokencache/internal/errcode"
	"github.com/tokencache/tokencache/replica"
)

// Errors of this package. Errors that callers of Propose, Forward and the
// fence see are replica's sentinels (ErrNoLeader, ErrIndeterminate,
// ErrStale, ErrShuttingDown, ErrOverloaded), wrapped with a reason; raft's
// and memberlist's errors never leave the package wrapped: their text is
// formatted with %s of err.Error(), never %w or %v, so errorlint's %w check
// (make check) sees which errors stop here on purpose. Sentinels that cross
// the RPC carry their code (errcode).
var (
	// ErrIdentityMismatch: the data directory holds the Raft identity of
	// another node id; refusing to start under a different one.
	ErrIdentityMismatch = errors.New("data directory belongs to another node")
	// ErrLastServer: the node is the only server of the cluster; there is
	// no one to hand the log to, so it cannot leave (stop it instead).
	ErrLastServer = errcode.New(errcode.LastServer, "the only server of the cluster cannot leave it")
	// ErrLeaveFailed: Leave did not complete (no leader removed the node
	// before the deadline, the leader refused); the node keeps running as a
	// member. It wraps the reason.
	ErrLeaveFailed = errcode.New(errcode.LeaveFailed, "cannot leave the cluster")
	// ErrNotReady: the node has not joined the cluster or not caught up with
	// the leader's commit index yet (Ready).
	ErrNotReady = errors.New("node not ready")
	// ErrHalted: the state machine met a log entry it cannot decode and
	// stopped applying (skipping it would diverge); the node must be fixed
	// by an operator.
	ErrHalted = errcode.New(errcode.Halted, "state machine halted")
	// ErrClosed: the node was closed.
	ErrClosed = errors.New("cluster node closed")
)

// codeOK is the RPC code of success. Every other code is an errcode.Code
// (errcode.Of of the leader's error); codeNotLeader is a protocol answer,
// not an error: nothing was done, retry elsewhere.
const (
	codeOK        = "ok"
	codeNotLeader = "not_leader"
)

// errorCode returns the code a leader sends for err: its errcode, which the
// receiving node turns back into the same sentinel (errorFromCode).
func errorCode(err error) string {
	if err == nil {
		return codeOK
	}
	return string(errcode.Of(err))
}

// remoteError is an error returned by another node. It unwraps to the
// sentinel of its code, so errors.Is works on the receiving side; its text
// is the remote error's.
type remoteError struct {
	code     string
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// errorFromCode rebuilds a remote error. A code this binary does not know
// (a newer node's) unwraps to nothing: it answers as internal.
func errorFromCode(code, msg string) error {
	if code == codeOK {
		return nil
	}
	sentinel, _ := errcode.Lookup(errcode.Code(code))
	return &remoteError{code: code, msg: msg, sentinel: sentinel}
}

// translateApplyError maps an error of raft.Apply's future to replica's
// sentinels (raft's own errors are formatted, not wrapped: they stop at the
// package boundary).
func translateApplyError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// Refused before it was appended: nothing happened.
		return fmt.Errorf("%w: %s", replica.ErrNoLeader, err.Error())
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: raft apply queue full: %s", replica.ErrOverloaded, err.Error())
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: leadership lost while committing: %s", replica.ErrIndeterminate, err.Error())
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: raft shut down while committing: %s", replica.ErrIndeterminate, err.Error())
	}
	return fmt.Errorf("%w: %s", replica.ErrIndeterminate, err.Error())
}
