package cache

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/tokencache/tokencache/token"
)

// entry is one record in memory, cached or pinned: the immutable record and
// the latest use of it known on this node.
//
// A new entry is made for every new version of a record (the record is
// immutable, and so is the tok field once the entry is published). used is
// written under the shard mutex but read by Get after the mutex is released,
// hence atomic.
type entry struct {
	tok  *token.Token
	used atomic.Int64 // token.Time of the latest local or replicated use; 0 = none
}

// lastUsed returns the latest use known on this node.
func (e *entry) lastUsed() token.Time {
	return max(e.tok.LastUsed, token.Time(e.used.Load()))
}

// pin is a pinned change: the newest version of a key written by the log and
// not yet released by Unpin.
type pin struct {
	ent      *entry // nil for a deletion
	index    uint64
	maxIndex uint64 // deletion only
	applied  time.Time
}

// recentChanges is how many changes of a shard Fill can tell apart by key
// (see shard.recent). Fill skips a whole shard once more than this many
// changes happened in it since its Mark.
const recentChanges = 64

// shard is one independently locked part of the cache. Keys are spread over
// shards by token.Key.Shard.
type shard struct {
	mu sync.Mutex

	// Everything below is guarded by mu, except epoch (written under mu,
	// read atomically by Mark).

	lru     policy                           // cached (evictable) records
	pinned  map[token.Key]pin                // pinned changes; shadow lru
	neg     *simplelru.LRU[token.Key, int64] // unknown keys -> expiry (Unix ns)
	pending map[token.Key]token.Time         // recorded uses, drained by DrainUsed
	flights map[token.Key]*call              // loads in progress

	// epoch counts the changes of keys in this shard (Put, Delete, Unpin,
	// Reset). recent[e%recentChanges] is the key changed by epoch e, so that
	// Fill can skip only the keys changed since its Mark.
	epoch  atomic.Uint64
	recent [recentChanges]token.Key

	hits, misses, loads, negHits, filterRejects, evictions uint64
}

// paddedShard keeps two shards' hot fields off one cache line pair.
type paddedShard struct {
	shard
	_ [(128 - unsafe.Sizeof(shard{})%128) % 128]byte
}

// init makes s an empty shard.
func (s *shard) init(cfg settings) error {
	p, err := newPolicy(cfg.eviction, cfg.perShard)
	if err != nil {
		return err
	}
	neg, err := simplelru.NewLRU[token.Key, int64](cfg.negPerShard, nil)
	if err != nil {
		return fmt.Errorf("cannot create negative cache of size %d: %w", cfg.negPerShard, err)
	}
	s.lru = p
	s.neg = neg
	s.pinned = make(map[token.Key]pin)
	s.pending = make(map[token.Key]token.Time)
	s.flights = make(map[token.Key]*call)
	return nil
}

// findLocked returns what memory holds for k: the pinned change first, then
// the cached record. found reports whether memory answers for k at all; e is
// nil for a pinned deletion. touch counts the lookup as a use for eviction.
func (s *shard) findLocked(k token.Key, touch bool) (e *entry, found bool) {
	if len(s.pinned) != 0 {
		if p, ok := s.pinned[k]; ok {
			return p.ent, true
		}
	}
	if touch {
		return s.lru.get(k)
	}
	return s.lru.peek(k)
}

// changedLocked records a change of k: it moves the epoch on and remembers k
// for Fill.
func (s *shard) changedLocked(k token.Key) {
	e := s.epoch.Add(1)
	s.recent[e%recentChanges] = k
}

// changedSinceLocked reports whether k may have changed since the shard was at
// epoch mark: certainly not when the epoch has not moved; otherwise only if
// k is among the recent changes, or when too many changes happened to tell.
func (s *shard) changedSinceLocked(k token.Key, mark uint64) bool {
	cur := s.epoch.Load()
	if cur == mark {
		return false
	}
	if cur < mark || cur-mark > recentChanges {
		return true
	}
	for e := mark + 1; e <= cur; e++ {
		if s.recent[e%recentChanges] == k {
			return true
		}
	}
	return false
}

// cacheLocked adds e as the cached record of k, counting an eviction.
func (s *shard) cacheLocked(k token.Key, e *entry) {
	if s.lru.add(k, e) {
		s.evictions++
	}
}

// resetLocked empties the shard. Loads in progress are told, so that they
// neither cache nor trust what they read before the reset.
func (s *shard) resetLocked() {
	s.lru.purge()
	clear(s.pinned)
	s.neg.Purge()
	clear(s.pending)
	for _, f := range s.flights {
		f.reset = true
	}
	// Move past every key remembered in recent: a Mark taken before the
	// reset is worthless.
	s.epoch.Add(recentChanges + 1)
}
