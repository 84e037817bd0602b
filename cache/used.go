package cache

import "github.com/tokencache/tokencache/token"

// Last-used tracking. A validation calls MarkUsed; most calls find that the
// token was recorded as used less than UseGranularity ago and return after
// one atomic load and a compare. The others move the entry's last use
// forward and put (key, time) into the shard's pending map, which DrainUsed
// empties for replication (OpTouch). A pending map holds at most one use per
// key, so its size is bounded by the number of keys in memory, and the
// replicated volume by (tokens in use) / UseGranularity.
//
// Idle expiry is therefore judged from a last use that may be up to
// UseGranularity old on the node that saw it, plus the replication delay
// (the DrainUsed period) on the other nodes.

// MarkUsed records a use of k at at on this node, if k is in memory and its
// last recorded use is older than UseGranularity. Recorded uses are handed
// out by DrainUsed. It does not allocate in steady state.
//
// "In memory" includes pinned records; a use of a key that is not in memory
// is not recorded (the validation that used it found it through Lookup, which
// cached it, so this only happens when it was evicted in between).
func (c *Cache) MarkUsed(k token.Key, at token.Time) {
	s := c.shard(k)
	s.mu.Lock()
	if e, _ := s.findLocked(k, false); e != nil && int64(at-e.lastUsed()) > c.cfg.granularity {
		e.used.Store(int64(at))
		s.pending[k] = at
	}
	s.mu.Unlock()
}

// Use is a last-used time recorded on this node, waiting to be replicated.
type Use struct {
	Key token.Key
	At  token.Time
}

// DrainUsed removes and returns up to max recorded uses (the latest per key).
// It starts at a different shard on every call, so that a small max still
// drains every shard in turn. max <= 0 returns nothing.
func (c *Cache) DrainUsed(max int) []Use {
	if max <= 0 {
		return nil
	}
	var out []Use
	n := len(c.shards)
	start := int(c.drainNext.Add(1))
	for i := 0; i < n && len(out) < max; i++ {
		s := &c.shards[(start+i)&(n-1)].shard
		s.mu.Lock()
		for k, at := range s.pending {
			if len(out) == max {
				break
			}
			out = append(out, Use{Key: k, At: at})
			delete(s.pending, k)
		}
		s.mu.Unlock()
	}
	return out
}

// ApplyTouch records a replicated last-used time for k (moves forward only)
// on whatever record of k is in memory.
//
// A local use that is not newer than at no longer needs replicating and is
// dropped from the pending uses.
func (c *Cache) ApplyTouch(k token.Key, at token.Time) {
	s := c.shard(k)
	s.mu.Lock()
	if e, _ := s.findLocked(k, false); e != nil && int64(at) > e.used.Load() {
		e.used.Store(int64(at))
	}
	if p, ok := s.pending[k]; ok && p <= at {
		delete(s.pending, k)
	}
	s.mu.Unlock()
}
