package replica

import "github.com/tokencache/tokencache/internal/errcode"

// Errors of replication: what proposing a command, waiting for it and the
// store writer can answer. Each carries its stable code (errcode.Of); the
// token service exports the same values under its own names (tokens.ErrStale
// is ErrStale), so errors.Is holds whichever package a caller names.
var (
	// ErrStoreUnavailable: the SQL store cannot answer (the writer's last
	// transaction failed) and a write-through write cannot be confirmed
	// (503 store_unavailable).
	ErrStoreUnavailable = errcode.New(errcode.StoreUnavailable, "token store unavailable")
	// ErrStale: this node has been out of contact with the leader for longer
	// than cluster.max_staleness and will not answer valid (503 stale).
	ErrStale = errcode.New(errcode.Stale, "node is out of contact with the cluster leader")
	// ErrOverloaded: the write-behind queue is full (503 overloaded).
	ErrOverloaded = errcode.New(errcode.Overloaded, "write queue full")
	// ErrNoLeader: no leader is known and the write could not be forwarded
	// within its deadline; it was not applied (503 no_leader).
	ErrNoLeader = errcode.New(errcode.NoLeader, "no cluster leader")
	// ErrIndeterminate: the write may or may not have been applied (leader
	// lost mid-commit, deadline passed). Retry with the same Idempotency-Key
	// (503 indeterminate).
	ErrIndeterminate = errcode.New(errcode.Indeterminate, "write outcome unknown")
	// ErrShuttingDown: the node is stopping (503 shutting_down).
	ErrShuttingDown = errcode.New(errcode.ShuttingDown, "node is shutting down")
)
