package replica

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/tokencache/tokencache/cache"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

// Machine is the replicated state machine of one node: it applies log commands
// to the cache's pinned set and hands the changes to the SQL writer. Apply is
// a thin, deterministic adapter (no clock, no I/O); Apply, Restore and
// Snapshot are called by one goroutine at a time (the log's), everything else
// is safe for concurrent use.
type Machine struct {
	cache  *cache.Cache
	store  persist.Store
	writer *Writer
	log    *slog.Logger

	idem idempotencyTable // guarded by the apply goroutine; snapshot copies it under idemMu
	// idemMu lets Lookup (leader, outside Apply) read the table.
	idemMu sync.RWMutex

	applied atomic.Uint64
	// clusterID is the cluster's identity (OpClusterID; snapshots carry
	// it). Set by the apply goroutine, read by anyone.
	clusterID atomic.Pointer[string]
}

// NewMachine returns the state machine of a node over c and store. The writer
// persists applied changes to store according to cfg. log is the node's
// logger, untagged: the state and its writer tag their own component.
func NewMachine(cfg WriterConfig, c *cache.Cache, store persist.Store, log *slog.Logger) (*Machine, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w, err := newWriter(cfg, c, store, log.With("component", "writer"))
	if err != nil {
		return nil, err
	}
	return &Machine{
		cache:  c,
		store:  store,
		writer: w,
		log:    log.With("component", "state"),
		idem:   newIdempotencyTable(),
	}, nil
}

// ClusterID returns the identity of the cluster whose log this state
// applied ("" until an OpClusterID was applied or restored). Safe for
// concurrent use.
func (s *Machine) ClusterID() string {
	if p := s.clusterID.Load(); p != nil {
		return *p
	}
	return ""
}

// Applied is the outcome of a proposal.
type Applied struct {
	Index uint64 // log index of the entry (0 when not yet known, async)
	// Done is true when the entry was applied on this node before Propose
	// returned, so Result is meaningful.
	Done   bool
	Result Result
}

// Result is what Machine.Apply returns for one command; deterministic on every
// node.
type Result struct {
	// Replayed is set when an OpPut carried an idempotency key that an earlier
	// entry already used: nothing was written, and Existing is the token that
	// earlier entry minted.
	Replayed bool
	Existing token.Key
}

// Apply applies the command at index. It must be called in log order.
func (s *Machine) Apply(index uint64, cmd *Command) Result {
	var res Result
	urgent := false
	switch cmd.Op {
	case OpPut:
		if cmd.IdempotencyKey != "" {
			s.idemMu.Lock()
			s.idem.prune(cmd.Time)
			prev, seen := s.idem.get(cmd.IdempotencyKey)
			if !seen && len(cmd.Puts) > 0 {
				s.idem.put(cmd.IdempotencyKey, cmd.Puts[0].Key, cmd.Time)
			}
			s.idemMu.Unlock()
			if seen {
				res = Result{Replayed: true, Existing: prev}
				break
			}
		}
		for _, t := range cmd.Puts {
			t.Index = index
			if t.RevokedAt != 0 {
				urgent = true // revocations are never held back by write-behind
			}
			s.cache.Put(t)
		}
	case OpDelete:
		for _, d := range cmd.Deletes {
			s.cache.Delete(d.Key, index, d.MaxIndex)
		}
	case OpTouch:
		for _, t := range cmd.Touches {
			s.cache.ApplyTouch(t.Key, t.At)
		}
		s.writer.addTouches(cmd.Touches)
	case OpPersisted:
		if s.store.Shared() {
			s.cache.Unpin(cmd.Persisted)
			s.writer.observePersisted(cmd.Persisted)
		}
	case OpNoop:
	case OpClusterID:
		if s.ClusterID() == "" {
			id := cmd.ClusterID
			s.clusterID.Store(&id)
		}
	default:
		// Decoding rejects unknown ops; a Command built in-process with a
		// bad op is a programming error, and skipping it is deterministic.
		s.log.Error("ignoring command with unknown op", "op", cmd.Op, "index", index)
	}
	s.cache.Advance(index)
	s.applied.Store(index)
	s.writer.wake(urgent)
	return res
}

// SetWriter makes this node the writer of a shared store (on gaining
// leadership, after its state caught up) or stops it (on losing it), and sets
// how the writer announces what it persisted: announce proposes OpPersisted.
// With a local store every node always writes and this does nothing.
func (s *Machine) SetWriter(ctx context.Context, active bool, announce func(ctx context.Context, index uint64) error) error {
	if announce != nil {
		s.writer.announce.Store(&announce)
	}
	return s.writer.setActive(ctx, active)
}

// SharedStore reports whether the store is shared by every node (only the
// leader writes it) rather than local to this node.
func (s *Machine) SharedStore() bool { return s.store.Shared() }

// LoadPersistedIndex reads the store's persisted index and raises
// PersistedIndex (and so every later Snapshot) to it. Service.Start does the
// same when it starts the writer; the cluster calls this earlier, when it
// starts, because a node may become the leader before the service has
// started, and the leader must know the index before it accepts a write
// (see cluster/DESIGN.md, "Fast-forward").
func (s *Machine) LoadPersistedIndex(ctx context.Context) (uint64, error) {
	idx, err := s.store.PersistedIndex(ctx)
	if err != nil {
		return 0, fmt.Errorf("cannot read persisted index: %w", err)
	}
	s.writer.observePersisted(idx)
	return s.writer.persisted.Load(), nil
}

// ResetLocalStore empties a local store that this node's log did not write
// (a node that starts a new log over a store left by an earlier one, and
// whose leader does not adopt that store): every row goes and the persisted
// index becomes 0, the cache is emptied as by Restore, and the pinned set,
// the idempotency table and the applied index are kept, so that the log
// applied from here on rebuilds the store. It must be called from the apply
// goroutine (between applies), and is meant to run before this node applied
// any change (the cluster calls it then: nothing is pinned, so no flush of
// the writer can race with the reset). A shared store is never reset.
func (s *Machine) ResetLocalStore(ctx context.Context) error {
	if s.store.Shared() {
		return nil
	}
	var pinned []cache.Change
	s.cache.EachPinned(func(c cache.Change) bool {
		pinned = append(pinned, c)
		return true
	})
	slices.SortFunc(pinned, func(a, b cache.Change) int { return cmpU64(a.Index, b.Index) })
	if err := s.store.Reset(ctx); err != nil {
		return fmt.Errorf("cannot reset the local store: %w", err)
	}
	s.refill(pinned, s.applied.Load())
	s.writer.persisted.Store(0)
	s.writer.wake(true)
	return nil
}

// Cache returns the cache the state applies to.
func (s *Machine) Cache() *cache.Cache { return s.cache }

// Store returns the store the writer persists to.
func (s *Machine) Store() persist.Store { return s.store }

// Writer returns the store writer of the state.
func (s *Machine) Writer() *Writer { return s.writer }

// AppliedIndex returns the index of the last applied entry.
func (s *Machine) AppliedIndex() uint64 { return s.applied.Load() }

// PersistedIndex returns the index up to which this node knows the store to
// be complete.
func (s *Machine) PersistedIndex() uint64 { return s.writer.persisted.Load() }

// refill empties the cache, puts the pinned changes back (in log order) and
// marks it complete up to applied: what survives a rebuild of the store or a
// snapshot restore is only what the store does not hold yet.
func (s *Machine) refill(pinned []cache.Change, applied uint64) {
	s.cache.Reset()
	for _, c := range pinned {
		if c.Token != nil {
			s.cache.Put(c.Token)
		} else {
			s.cache.Delete(c.Key, c.Index, c.MaxIndex)
		}
	}
	s.cache.Advance(applied)
}
