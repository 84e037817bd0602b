package cache

import (
	"time"

	"github.com/tokencache/tokencache/token"
)

// The pinned set lives in two places:
//   - per shard, pinned maps each key to its newest change (the map every
//     lookup checks first);
//   - globally, the fifo lists (index, key) of every change in index order,
//     for Changes, Unpin and OldestPinned. An item whose key has since been
//     changed again is superseded: its index no longer matches the shard's
//     pin, and every reader skips it.
//
// Lock order: fifo.mu, then a shard's mu. Put and Delete never hold both.

// Put pins t as the newest version of t.Key (t.Index is the log index that
// wrote it and must be greater than every index Put or Delete saw before).
// Lookups see it at once; it replaces any cached record and clears the key
// from the negative cache; it is not evicted until Unpin(i) with i ≥ t.Index.
// The cache keeps t: the caller must not change it afterwards.
//
// Several records of one log entry share its index. A record older than the
// version of t.Key already in memory (a smaller index) is ignored, as the
// store ignores it: an older write never replaces a newer one. Local uses
// recorded for the previous version carry over.
func (c *Cache) Put(t *token.Token) {
	k := t.Key
	now := c.cfg.now()
	s := c.shard(k)
	s.mu.Lock()
	var used int64
	p, wasPinned := s.pinned[k]
	switch {
	case wasPinned:
		if t.Index < p.index {
			s.mu.Unlock()
			return
		}
		if p.ent != nil {
			used = p.ent.used.Load()
		}
	default:
		if old, ok := s.lru.peek(k); ok {
			if t.Index < old.tok.Index {
				s.mu.Unlock()
				return
			}
			used = old.used.Load()
			s.lru.remove(k)
		}
		c.pinnedN.Add(1)
	}
	e := &entry{tok: t}
	e.used.Store(used)
	s.pinned[k] = pin{ent: e, index: t.Index, applied: now}
	// The key goes into the key filters while the shard is locked: until
	// it is unpinned (which needs this lock) lookups find it pinned, and
	// after that only the filter stands between a lookup and the store. A
	// build visits pinned keys under this lock too, so either it saw the
	// key pinned, or it is still building (addBuilding reaches it), or it
	// has published its filter (addActive reaches it): the building filter
	// is read first, so a build publishing in between cannot be missed.
	c.keys.addBuilding(k)
	c.keys.addActive(k)
	s.neg.Remove(k)
	s.changedLocked(k)
	if f := s.flights[k]; f != nil {
		f.observe(e, t.Index)
	}
	s.mu.Unlock()
	// The same key twice in one entry keeps one fifo item.
	if !wasPinned || p.index != t.Index {
		c.fifo.push(t.Index, k)
	}
}

// Delete pins the deletion of k at index, unless the newest record the cache
// holds for k has an index above maxIndex (it changed after the deletion was
// decided; the store applies the same rule). Lookups answer unknown for k
// without asking the store until Unpin releases the deletion.
func (c *Cache) Delete(k token.Key, index, maxIndex uint64) {
	now := c.cfg.now()
	s := c.shard(k)
	s.mu.Lock()
	p, wasPinned := s.pinned[k]
	switch {
	case wasPinned:
		if p.index > maxIndex {
			s.mu.Unlock()
			return
		}
	default:
		if old, ok := s.lru.peek(k); ok {
			if old.tok.Index > maxIndex {
				s.mu.Unlock()
				return
			}
			s.lru.remove(k)
		}
		c.pinnedN.Add(1)
	}
	s.pinned[k] = pin{index: index, maxIndex: maxIndex, applied: now}
	s.neg.Remove(k)
	delete(s.pending, k)
	s.changedLocked(k)
	if f := s.flights[k]; f != nil {
		f.observe(nil, index)
	}
	s.mu.Unlock()
	if !wasPinned || p.index != index {
		c.fifo.push(index, k)
	}
}

// Change is one pinned change.
type Change struct {
	Index    uint64
	Key      token.Key
	Token    *token.Token // nil for a deletion
	MaxIndex uint64       // deletion only: see Delete
	Applied  time.Time    // when this node applied it (for lag)
}

// changeOf returns the pinned change of item, or false when the item is
// superseded (the key changed again, or was released).
func (c *Cache) changeOf(it fifoItem) (Change, bool) {
	s := c.shard(it.key)
	s.mu.Lock()
	p, ok := s.pinned[it.key]
	s.mu.Unlock()
	if !ok || p.index != it.index {
		return Change{}, false
	}
	return p.change(it.key), true
}

func (p pin) change(k token.Key) Change {
	ch := Change{Index: p.index, Key: k, MaxIndex: p.maxIndex, Applied: p.applied}
	if p.ent != nil {
		ch.Token = p.ent.tok
	}
	return ch
}

// Changes returns the pinned changes with an index above after, oldest
// first, at most max of them, skipping changes superseded by a later change
// of the same key. upTo is the index the store will be complete up to once
// it holds them: the last applied index when no pinned change remains after
// the returned ones, else the index of the last change returned.
//
// Two refinements keep upTo safe while the log is being applied
// concurrently: the changes of one log index are never split (so more than
// max may be returned when the last index has several), and upTo is never
// above AppliedIndex (the entry at a higher index may not be fully applied
// yet; its changes are returned again by the next call). upTo is never below
// after. max <= 0 returns no change.
func (c *Cache) Changes(after uint64, max int) (changes []Change, upTo uint64) {
	// Read the applied index first: every change at or below it is in the
	// fifo by now.
	applied := c.applied.Load()
	c.fifo.mu.Lock()
	defer c.fifo.mu.Unlock()
	items := c.fifo.live()
	more := false
	var last uint64
	for i := c.fifo.searchLocked(after); i < len(items); i++ {
		it := items[i]
		ch, ok := c.changeOf(it)
		if !ok {
			continue
		}
		if len(changes) >= max && (len(changes) == 0 || it.index != last) {
			more = true
			break
		}
		changes = append(changes, ch)
		last = it.index
	}
	upTo = applied
	if more {
		upTo = min(last, applied)
	}
	if upTo < after {
		upTo = after
	}
	return changes, upTo
}

// EachPinned calls fn for the newest pinned change of every key, in no
// particular order, until fn returns false. It holds no lock while fn runs
// for changes of other shards.
//
// (It holds no lock at all while fn runs: each shard's changes are copied
// first. fn may call any method of the cache.)
func (c *Cache) EachPinned(fn func(Change) bool) {
	var buf []Change
	for i := range c.shards {
		s := &c.shards[i].shard
		s.mu.Lock()
		buf = buf[:0]
		for k, p := range s.pinned {
			buf = append(buf, p.change(k))
		}
		s.mu.Unlock()
		for _, ch := range buf {
			if !fn(ch) {
				return
			}
		}
	}
}

// unpinBatch is how many fifo items Unpin takes per hold of the fifo lock,
// so that a large release does not stall Put.
const unpinBatch = 256

// Unpin releases every pinned change with an index up to upTo: records move
// to the evictable part (unless a newer change of the key is pinned),
// deletions are dropped (the store no longer has the row).
//
// A released record becomes the most recently used cached record of its
// shard and may evict another.
func (c *Cache) Unpin(upTo uint64) {
	var batch [unpinBatch]fifoItem
	for {
		c.fifo.mu.Lock()
		n := c.fifo.popUpToLocked(upTo, batch[:])
		resets := c.resets.Load()
		c.fifo.mu.Unlock()
		for _, it := range batch[:n] {
			c.release(it, resets)
		}
		if n < len(batch) {
			return
		}
	}
}

// release unpins the change of it unless it is superseded, or Reset ran
// since it was taken from the fifo (a pin of the same index restored from a
// snapshot is another change, which the store may not hold).
func (c *Cache) release(it fifoItem, resets uint64) {
	s := c.shard(it.key)
	s.mu.Lock()
	if p, ok := s.pinned[it.key]; ok && p.index == it.index && c.resets.Load() == resets {
		delete(s.pinned, it.key)
		c.pinnedN.Add(-1)
		if p.ent != nil {
			s.cacheLocked(it.key, p.ent)
		}
		s.changedLocked(it.key)
	}
	s.mu.Unlock()
}

// Pinned returns the number of pinned changes (distinct keys).
func (c *Cache) Pinned() int { return int(c.pinnedN.Load()) }

// OldestPinned returns the applied time of the oldest pinned change.
func (c *Cache) OldestPinned() (time.Time, bool) {
	c.fifo.mu.Lock()
	defer c.fifo.mu.Unlock()
	for len(c.fifo.live()) > 0 {
		if ch, ok := c.changeOf(c.fifo.live()[0]); ok {
			return ch.Applied, true
		}
		// Superseded: nothing will ever need it again.
		c.fifo.popFrontLocked()
	}
	return time.Time{}, false
}
