// Package errcode is the error vocabulary of tokencache: every error a
// caller can tell apart carries one stable code, declared here once and
// attached to its sentinel where the sentinel is declared (New). The HTTP
// API maps a code to a status in one table (httpapi); the cluster RPC sends
// the code and the receiving node rebuilds an error that unwraps to the
// same sentinel (Lookup), so errors.Is holds on both sides of a forward.
// This is benbjohnson/wtf's ErrorCode(err), with the sentinels registered
// so that a code can be turned back into its error.
//
// The package imports nothing of tokencache: the lowest package that
// declares a sentinel (token) can use it.
package errcode

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Code is the stable name of an error. It crosses the cluster RPC between
// nodes of different versions and is the "error" of the HTTP envelope:
// never rename or reuse one.
type Code string

// The codes. Each has exactly one sentinel (New), except Timeout and
// Canceled, which stand for the context errors, and Internal, which stands
// for anything without a code.
const (
	// Input errors of the token model (token).
	Invalid   Code = "invalid"
	Malformed Code = "malformed"

	// Errors of the token service (tokens).
	NotFound            Code = "not_found"
	ParentNotFound      Code = "parent_not_found"
	ParentNotValid      Code = "parent_not_valid"
	TokenNotValid       Code = "token_not_valid"
	TooManyDescendants  Code = "too_many_descendants"
	DuplicateName       Code = "duplicate_name"
	IdempotencyConflict Code = "idempotency_conflict"
	StoreUnavailable    Code = "store_unavailable"
	Stale               Code = "stale"
	Overloaded          Code = "overloaded"
	NoLeader            Code = "no_leader"
	ShuttingDown        Code = "shutting_down"
	StoreDisabled       Code = "store_disabled"
	// Indeterminate wins over every other code in the same error: an
	// unknown outcome wraps its cause (a store outage, a lost leader), and
	// the caller must learn that the write may have happened.
	Indeterminate Code = "indeterminate"

	// Errors of the cluster (cluster).
	Halted      Code = "halted"
	LastServer  Code = "last_server"
	LeaveFailed Code = "leave_failed"

	// Codes without a sentinel of this project.
	Timeout  Code = "timeout"  // context.DeadlineExceeded
	Canceled Code = "canceled" // context.Canceled
	Internal Code = "internal" // no code: an unexpected error
)

// sentinel is an error with a code. Only New makes one, so two sentinels
// are never equal and errors.Is compares them by identity.
type sentinel struct {
	code Code
	msg  string
}

func (e *sentinel) Error() string { return e.msg }

// ErrorCode returns the error's code.
func (e *sentinel) ErrorCode() Code { return e.code }

var (
	mu       sync.RWMutex
	registry = map[Code]error{
		Timeout:  context.DeadlineExceeded,
		Canceled: context.Canceled,
	}
)

// New returns a sentinel error with text msg and the given code, and
// registers it as the error of that code (Lookup). Call it only in a
// package-level var declaration; it panics if the code already has an
// error or is Internal.
func New(code Code, msg string) error {
	e := &sentinel{code: code, msg: msg}
	mu.Lock()
	defer mu.Unlock()
	if old, ok := registry[code]; ok || code == Internal || code == "" {
		panic(fmt.Sprintf("errcode: code %q already stands for %v", code, old))
	}
	registry[code] = e
	return e
}

// Of returns the code of err: "" for nil, Internal for an error that
// carries no code. See Match.
func Of(err error) Code {
	if err == nil {
		return ""
	}
	code, _ := Match(err)
	return code
}

// Match returns the code of err and the sentinel (or context error) that
// gave it; Internal and nil if err carries none. It looks through err's
// tree as errors.Is does: Indeterminate wins wherever it is; otherwise the
// first sentinel found depth first; a context error only if no sentinel is
// there (a write that timed out mid-commit is indeterminate, not a plain
// timeout). Match does not allocate.
func Match(err error) (Code, error) {
	if err == nil {
		return Internal, nil
	}
	if ind, ok := Lookup(Indeterminate); ok && errors.Is(err, ind) {
		return Indeterminate, ind
	}
	if s, ok := errors.AsType[*sentinel](err); ok {
		return s.code, s
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return Timeout, context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return Canceled, context.Canceled
	}
	return Internal, nil
}

// Lookup returns the error registered for code: the sentinel New made for
// it, or the context error of Timeout and Canceled. It is false for
// Internal and for a code this binary does not know (a newer node's).
func Lookup(code Code) (error, bool) {
	mu.RLock()
	defer mu.RUnlock()
	err, ok := registry[code]
	return err, ok
}

// Errors returns every error that has a code, ordered by code: the
// registered sentinels and the two context errors. Tests walk it.
func Errors() []error {
	mu.RLock()
	codes := make([]Code, 0, len(registry))
	for c := range registry {
		codes = append(codes, c)
	}
	mu.RUnlock()
	slices.Sort(codes)
	out := make([]error, 0, len(codes))
	for _, c := range codes {
		err, _ := Lookup(c)
		out = append(out, err)
	}
	return out
}
