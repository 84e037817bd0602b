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
	"context"
	"time"

	"github.com/tokencache/tokencache/token"
)

// Config configures a Cache.
type Config struct {
	// Capacity is the number of cached (evictable) records (cache.capacity).
	// Pinned changes come on top of it and are bounded by the write path.
	Capacity int
	// Eviction is "lru" (default), "2q" or "arc" (cache.eviction).
	Eviction string
	// Shards is the number of independently locked shards; a power of two.
	// 0 picks the default (64).
	Shards int
	// NegativeCapacity bounds how many unknown keys are remembered, so that
	// asking again for a key the store does not have costs no query.
	// 0 picks the default (Capacity/8, at least 1024).
	NegativeCapacity int
	// NegativeTTL is how long an unknown key is remembered (0 = 1m). Writes
	// through the log clear the entry at once; the TTL only bounds how long
	// a row added behind tokencache's back stays invisible.
	NegativeTTL time.Duration
	// UseGranularity is the resolution of last-used tracking: a use is
	// recorded (and later replicated) only when the previously recorded use
	// is older than this. 0 picks the default (1s).
	UseGranularity time.Duration
	// KeyFilter keeps a Bloom filter of every key the store holds, so that
	// a flood of random, well-formed tokens costs no store query at all.
	KeyFilter bool
	// Now is the clock (for TTLs and lag); nil = time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults (capacity 1,000,000, lru).
func DefaultConfig() Config { panic("unimplemented") }

// Validate reports every problem with c.
func (c Config) Validate() error { panic("unimplemented") }

// Cache is safe for concurrent use as described in the package comment.
type Cache struct{}

// New returns an empty cache.
func New(cfg Config) (*Cache, error) { panic("unimplemented") }

// Get returns the newest record the cache knows for k (a pinned change
// first, then a cached record) and the latest use known on this node
// (LastUsed of the record or a later local use). ok is false for a miss and
// for a pinned deletion. It never blocks on I/O and does not allocate.
func (c *Cache) Get(k token.Key) (t *token.Token, lastUsed token.Time, ok bool) {
	panic("unimplemented")
}

// Loader reads one record from the store. It returns (nil, nil) when the
// store has no such key, and an error when it cannot answer.
type Loader func(ctx context.Context, k token.Key) (*token.Token, error)

// Lookup is Get with read-through: on a miss it answers unknown keys from the
// negative cache or the key filter, and otherwise calls load once for all
// concurrent lookups of k (singleflight) and caches the result, unless the
// key was changed by the log while the load ran (then the newer state wins,
// and the load is retried once if the cache no longer holds it). It returns
// (nil, 0, nil) for an unknown key, and load's error when the store cannot
// answer (the error is not cached).
func (c *Cache) Lookup(ctx context.Context, k token.Key, load Loader) (*token.Token, token.Time, error) {
	panic("unimplemented")
}

// MarkUsed records a use of k at at on this node, if k is in memory and its
// last recorded use is older than UseGranularity. Recorded uses are handed
// out by DrainUsed. It does not allocate in steady state.
func (c *Cache) MarkUsed(k token.Key, at token.Time) { panic("unimplemented") }

// Use is a last-used time recorded on this node, waiting to be replicated.
type Use struct {
	Key token.Key
	At  token.Time
}

// DrainUsed removes and returns up to max recorded uses (the latest per key).
func (c *Cache) DrainUsed(max int) []Use { panic("unimplemented") }

// Put pins t as the newest version of t.Key (t.Index is the log index that
// wrote it and must be greater than every index Put or Delete saw before).
// Lookups see it at once; it replaces any cached record and clears the key
// from the negative cache; it is not evicted until Unpin(i) with i ≥ t.Index.
// The cache keeps t: the caller must not change it afterwards.
func (c *Cache) Put(t *token.Token) { panic("unimplemented") }

// Delete pins the deletion of k at index, unless the newest record the cache
// holds for k has an index above maxIndex (it changed after the deletion was
// decided; the store applies the same rule). Lookups answer unknown for k
// without asking the store until Unpin releases the deletion.
func (c *Cache) Delete(k token.Key, index, maxIndex uint64) { panic("unimplemented") }

// ApplyTouch records a replicated last-used time for k (moves forward only)
// on whatever record of k is in memory.
func (c *Cache) ApplyTouch(k token.Key, at token.Time) { panic("unimplemented") }

// Advance records that every log entry up to index has been applied (also
// the entries that changed no record).
func (c *Cache) Advance(index uint64) { panic("unimplemented") }

// AppliedIndex returns the last index given to Advance.
func (c *Cache) AppliedIndex() uint64 { panic("unimplemented") }

// Change is one pinned change.
type Change struct {
	Index    uint64
	Key      token.Key
	Token    *token.Token // nil for a deletion
	MaxIndex uint64       // deletion only: see Delete
	Applied  time.Time    // when this node applied it (for lag)
}

// Changes returns the pinned changes with an index above after, oldest
// first, at most max of them, skipping changes superseded by a later change
// of the same key. upTo is the index the store will be complete up to once
// it holds them: the last applied index when no pinned change remains after
// the returned ones, else the index of the last change returned.
func (c *Cache) Changes(after uint64, max int) (changes []Change, upTo uint64) {
	panic("unimplemented")
}

// EachPinned calls fn for the newest pinned change of every key, in no
// particular order, until fn returns false. It holds no lock while fn runs
// for changes of other shards.
func (c *Cache) EachPinned(fn func(Change) bool) { panic("unimplemented") }

// Unpin releases every pinned change with an index up to upTo: records move
// to the evictable part (unless a newer change of the key is pinned),
// deletions are dropped (the store no longer has the row).
func (c *Cache) Unpin(upTo uint64) { panic("unimplemented") }

// Pinned returns the number of pinned changes (distinct keys).
func (c *Cache) Pinned() int { panic("unimplemented") }

// OldestPinned returns the applied time of the oldest pinned change.
func (c *Cache) OldestPinned() (time.Time, bool) { panic("unimplemented") }

// Reset drops every record, pinned change, negative entry and use, and the
// applied index (a snapshot restore starts from nothing).
func (c *Cache) Reset() { panic("unimplemented") }

// Mark is a point in the cache's change history, taken before a batch of
// records is read from the store for Fill.
type Mark struct{ epochs []uint64 }

// Mark returns the current point in the change history.
func (c *Cache) Mark() Mark { panic("unimplemented") }

// Fill caches records read from the store after m was taken (warm start),
// skipping any record whose key the log changed since m, or for which a
// newer version is known. It stops when the cache is full and returns how
// many it cached.
func (c *Cache) Fill(toks []*token.Token, m Mark) int { panic("unimplemented") }

// Full reports whether the cached part holds Capacity records.
func (c *Cache) Full() bool { panic("unimplemented") }

// KeyScanner calls fn for every key in the store.
type KeyScanner func(ctx context.Context, fn func(token.Key) error) error

// BuildKeyFilter (re)builds the key filter from scan, sized for at least
// expected keys, while Put keeps adding new keys. Until the first build
// succeeds, Lookup asks the store for every miss. A no-op without
// Config.KeyFilter.
func (c *Cache) BuildKeyFilter(ctx context.Context, expected int, scan KeyScanner) error {
	panic("unimplemented")
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

// Stats returns the current counters.
func (c *Cache) Stats() Stats { panic("unimplemented") }
