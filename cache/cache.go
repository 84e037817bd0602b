// Package cache is tokencache's in-memory token cache: a bounded, sharded
// cache (golang-lru/v2: lru, 2q or arc) in front of the SQL store, plus the
// set of pinned changes that are not yet persisted.
//
// Two kinds of entries live here (see DESIGN.md):
//   - cached records: evictable, bounded by Config.Capacity, filled from the
//     store on a miss (read-through) or at warm start;
//   - pinned changes: every record written (Put) or deleted (Delete) by the
//     replicated log whose index is above the persisted index. They are never
//     evicted and always shadow cached records and the store, so that no
//     eviction, reload or SQL lag can bring back an older version of a token
//     (a revoked token answering valid). Unpin releases them once the store
//     holds them.
//
// Apply-side methods (Put, Delete, ApplyTouch, Advance, Unpin, Reset) are
// called by the state machine in log order, never concurrently with each
// other; every other method is safe for concurrent use with them and with
// itself. Get and MarkUsed are the hot path: they do not block on I/O and do
// not allocate.
package cache

import (
	"errors"
	"sync/atomic"

	"github.com/tokencache/tokencache/token"
)

// Errors returned by this package. Callers compare with errors.Is.
var (
	// ErrInvalidConfig means a Config failed Validate; the message lists
	// every problem.
	ErrInvalidConfig = errors.New("invalid cache config")
	// ErrReset means Reset ran while BuildKeyFilter was reading the store;
	// the filter built from the old contents was thrown away.
	ErrReset = errors.New("cache was reset")
	// ErrLoader means a Loader broke its contract (it panicked, or returned
	// a record of another key). The record, if any, is not used.
	ErrLoader = errors.New("loader failed")
)

// Cache is safe for concurrent use as described in the package comment.
type Cache struct {
	cfg    settings
	shards []paddedShard
	mask   uint64

	fifo    fifo          // pinned changes in index order
	pinnedN atomic.Int64  // distinct pinned keys
	applied atomic.Uint64 // last index given to Advance
	resets  atomic.Uint64 // Reset calls; bumped with fifo.mu held

	keys      keyFilter
	drainNext atomic.Uint32 // first shard DrainUsed looks at
}

// New returns an empty cache.
func New(cfg Config) (*Cache, error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	c := &Cache{
		cfg:    s,
		shards: make([]paddedShard, s.shards),
		mask:   uint64(s.shards - 1),
	}
	for i := range c.shards {
		if err := c.shards[i].init(s); err != nil {
			return nil, err
		}
	}
	c.keys.enabled = s.keyFilter
	return c, nil
}

// shard returns the shard of k.
func (c *Cache) shard(k token.Key) *shard { return &c.shards[k.Shard()&c.mask].shard }

// nowNanos reads the configured clock.
func (c *Cache) nowNanos() int64 { return c.cfg.now().UnixNano() }

// Get returns the newest record the cache knows for k (a pinned change
// first, then a cached record) and the latest use known on this node
// (LastUsed of the record or a later local use). ok is false for a miss and
// for a pinned deletion. It never blocks on I/O and does not allocate.
//
// With the 2q and arc policies, the first Get that promotes a record from
// the "recent" to the "frequent" list allocates one list element inside
// golang-lru; later Gets of it do not.
func (c *Cache) Get(k token.Key) (t *token.Token, lastUsed token.Time, ok bool) {
	s := c.shard(k)
	s.mu.Lock()
	e, found := s.findLocked(k, true)
	if found {
		s.hits++
	}
	s.mu.Unlock()
	if e == nil {
		return nil, 0, false
	}
	return e.tok, e.lastUsed(), true
}

// Advance records that every log entry up to index has been applied (also
// the entries that changed no record).
func (c *Cache) Advance(index uint64) { c.applied.Store(index) }

// AppliedIndex returns the last index given to Advance.
func (c *Cache) AppliedIndex() uint64 { return c.applied.Load() }

// Reset drops every record, pinned change, negative entry and use, and the
// applied index (a snapshot restore starts from nothing). It also drops the
// key filter (the store is about to hold other keys): Lookup asks the store
// for every miss until BuildKeyFilter succeeds again. Counters are kept.
func (c *Cache) Reset() {
	c.keys.reset()
	c.fifo.mu.Lock()
	defer c.fifo.mu.Unlock()
	c.resets.Add(1)
	for i := range c.shards {
		s := &c.shards[i].shard
		s.mu.Lock()
		s.resetLocked()
		s.mu.Unlock()
	}
	c.fifo.clearLocked()
	c.pinnedN.Store(0)
	c.applied.Store(0)
}

// Full reports whether the cached part holds Capacity records.
func (c *Cache) Full() bool { return c.cachedLen() >= c.cfg.capacity }

// cachedLen returns the number of cached (evictable) records.
func (c *Cache) cachedLen() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i].shard
		s.mu.Lock()
		n += s.lru.len()
		s.mu.Unlock()
	}
	return n
}

// Stats are counters for /v1/stats and /metrics.
type Stats struct {
	Len           int // cached (evictable) records
	Pinned        int
	Capacity      int
	Hits          uint64 // Get/Lookup answered from memory (records, pinned deletions)
	Misses        uint64 // Lookup had to decide without a record in memory
	Loads         uint64 // store reads started by Lookup
	NegativeHits  uint64 // unknown keys answered from the negative cache
	FilterRejects uint64 // unknown keys answered by the key filter
	Evictions     uint64
}

// Stats returns the current counters. Misses include the lookups answered
// by the negative cache or the key filter, so Hits/(Hits+Misses) is the
// share of lookups answered by a record or pinned deletion in memory.
func (c *Cache) Stats() Stats {
	st := Stats{Capacity: c.cfg.capacity, Pinned: c.Pinned()}
	for i := range c.shards {
		s := &c.shards[i].shard
		s.mu.Lock()
		st.Len += s.lru.len()
		st.Hits += s.hits
		st.Misses += s.misses
		st.Loads += s.loads
		st.NegativeHits += s.negHits
		st.FilterRejects += s.filterRejects
		st.Evictions += s.evictions
		s.mu.Unlock()
	}
	return st
}
