package cache

import "github.com/tokencache/tokencache/token"

// Warm start reads the store newest first, in batches, and hands each batch
// to Fill with a Mark taken before the batch was read. A row read from the
// store may be older than a change the log applied while it was being read;
// the Mark is how Fill tells.
//
// Each shard counts its changes (Put, Delete, Unpin) in an epoch and
// remembers the keys of its last recentChanges changes. A record is filled
// when its shard's epoch has not moved since the Mark, or when it moved by
// at most recentChanges and none of those changes was of the record's key.
// Otherwise (a busy shard, or Reset) the record is skipped: skipping only
// costs a later read-through.

// Mark is a point in the cache's change history, taken before a batch of
// records is read from the store for Fill.
type Mark struct{ epochs []uint64 }

// Mark returns the current point in the change history.
func (c *Cache) Mark() Mark {
	m := Mark{epochs: make([]uint64, len(c.shards))}
	for i := range c.shards {
		m.epochs[i] = c.shards[i].epoch.Load()
	}
	return m
}

// Fill caches records read from the store after m was taken (warm start),
// skipping any record whose key the log changed since m, or for which a
// newer version is known. It stops when the cache is full and returns how
// many it cached.
//
// Fill never evicts: a record whose shard is full is skipped (the batch is
// newest first, so what is already cached is at least as recent). A zero
// Mark caches nothing.
func (c *Cache) Fill(toks []*token.Token, m Mark) int {
	if len(m.epochs) != len(c.shards) {
		return 0
	}
	total := c.cachedLen()
	n := 0
	for _, t := range toks {
		if total >= c.cfg.capacity {
			break
		}
		if t == nil {
			continue
		}
		i := t.Key.Shard() & c.mask
		s := &c.shards[i].shard
		s.mu.Lock()
		if s.lru.len() < c.cfg.perShard && !s.changedSinceLocked(t.Key, m.epochs[i]) {
			if _, found := s.findLocked(t.Key, false); !found {
				// A row added to the store behind the log's back may be
				// missing from the key filter; memory never is.
				c.keys.addActive(t.Key)
				s.cacheLocked(t.Key, &entry{tok: t})
				s.neg.Remove(t.Key)
				n++
				total++
			}
		}
		s.mu.Unlock()
	}
	return n
}
