package cache

import (
	"fmt"

	"github.com/hashicorp/golang-lru/arc/v2"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/tokencache/tokencache/token"
)

// policy is the evictable part of one shard: a bounded map from key to entry
// with an eviction order. It is always used under the shard's mutex (the 2Q
// and ARC caches of golang-lru also lock internally; that lock is never
// contended and costs a few nanoseconds).
type policy interface {
	// get returns the entry of k and counts a use of it for eviction.
	get(k token.Key) (*entry, bool)
	// peek returns the entry of k without counting a use.
	peek(k token.Key) (*entry, bool)
	// add inserts or replaces the entry of k and reports whether another
	// entry was evicted to make room.
	add(k token.Key, e *entry) (evicted bool)
	remove(k token.Key)
	len() int
	purge()
}

// newPolicy returns an empty policy of the given kind holding up to size
// entries.
func newPolicy(kind string, size int) (policy, error) {
	switch kind {
	case EvictionLRU:
		c, err := simplelru.NewLRU[token.Key, *entry](size, nil)
		if err != nil {
			return nil, fmt.Errorf("cannot create lru of size %d: %w", size, err)
		}
		return lruPolicy{c}, nil
	case Eviction2Q:
		c, err := lru.New2Q[token.Key, *entry](size)
		if err != nil {
			return nil, fmt.Errorf("cannot create 2q of size %d: %w", size, err)
		}
		return twoQueuePolicy{c}, nil
	case EvictionARC:
		c, err := arc.NewARC[token.Key, *entry](size)
		if err != nil {
			return nil, fmt.Errorf("cannot create arc of size %d: %w", size, err)
		}
		return arcPolicy{c}, nil
	}
	return nil, fmt.Errorf("unknown eviction policy %q", kind)
}

// lruPolicy is a plain LRU (simplelru, not locked).
type lruPolicy struct {
	c *simplelru.LRU[token.Key, *entry]
}

func (p lruPolicy) get(k token.Key) (*entry, bool)  { return p.c.Get(k) }
func (p lruPolicy) peek(k token.Key) (*entry, bool) { return p.c.Peek(k) }
func (p lruPolicy) add(k token.Key, e *entry) bool  { return p.c.Add(k, e) }
func (p lruPolicy) remove(k token.Key)              { p.c.Remove(k) }
func (p lruPolicy) len() int                        { return p.c.Len() }
func (p lruPolicy) purge()                          { p.c.Purge() }

// twoQueuePolicy is golang-lru's 2Q: a burst of one-time lookups (a scan, a
// flood of distinct tokens) cannot push out the tokens used again and again.
// Its Add does not report evictions, so add infers them from the length.
type twoQueuePolicy struct {
	c *lru.TwoQueueCache[token.Key, *entry]
}

func (p twoQueuePolicy) get(k token.Key) (*entry, bool)  { return p.c.Get(k) }
func (p twoQueuePolicy) peek(k token.Key) (*entry, bool) { return p.c.Peek(k) }
func (p twoQueuePolicy) remove(k token.Key)              { p.c.Remove(k) }
func (p twoQueuePolicy) len() int                        { return p.c.Len() }
func (p twoQueuePolicy) purge()                          { p.c.Purge() }

func (p twoQueuePolicy) add(k token.Key, e *entry) bool {
	if p.c.Contains(k) {
		p.c.Add(k, e)
		return false
	}
	n := p.c.Len()
	p.c.Add(k, e)
	return p.c.Len() <= n
}

// arcPolicy is golang-lru's ARC: like 2Q, but it adapts the split between
// recent and frequent entries to the workload.
type arcPolicy struct {
	c *arc.ARCCache[token.Key, *entry]
}

func (p arcPolicy) get(k token.Key) (*entry, bool)  { return p.c.Get(k) }
func (p arcPolicy) peek(k token.Key) (*entry, bool) { return p.c.Peek(k) }
func (p arcPolicy) remove(k token.Key)              { p.c.Remove(k) }
func (p arcPolicy) len() int                        { return p.c.Len() }
func (p arcPolicy) purge()                          { p.c.Purge() }

func (p arcPolicy) add(k token.Key, e *entry) bool {
	if p.c.Contains(k) {
		p.c.Add(k, e)
		return false
	}
	n := p.c.Len()
	p.c.Add(k, e)
	return p.c.Len() <= n
}
