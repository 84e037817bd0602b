package cache

import (
	"context"
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/tokencache/tokencache/token"
)

// The key filter answers "certainly not in the store" for most keys the
// store does not hold, without a query: a flood of random, well-formed
// tokens then costs a hash and one cache line per request. It is a blocked
// Bloom filter (one 64-byte block per key, bloomHashes bits in the block) of
// atomic words: Test is lock-free and Add is an atomic OR, so the filter
// needs no lock on the miss path and concurrent Puts need none either.
// Positions come from hash/maphash with a random per-filter seed, so keys
// that collide cannot be crafted from outside.
//
// A Bloom filter has no false negatives as long as every key of the store
// was added. The build guarantees that for keys written while it scans:
//  1. the new filter is published as "building" (Put adds to it from then
//     on);
//  2. the keys of every pinned record are added (they may not be in the
//     store yet);
//  3. the store is scanned (everything unpinned before step 2 is there).
//
// Deleted keys stay in the filter until the next build.

const (
	// bloomBitsPerKey and bloomHashes give about 1% false positives at the
	// sized count for a 512-bit blocked filter (measured by
	// TestKeyFilterFalsePositiveRate; a classic filter needs 9.6 bits).
	bloomBitsPerKey = 10
	bloomHashes     = 7
	// minFilterKeys is the smallest count a filter is sized for.
	minFilterKeys = 1 << 16 // 80 KiB: small next to the cache, and no early rebuilds
)

// bloomBlock is one cache line of the filter.
type bloomBlock [8]atomic.Uint64

// bloomFilter is a blocked Bloom filter, safe for concurrent add and test.
type bloomFilter struct {
	blocks []bloomBlock
	seed   maphash.Seed
}

// newBloom returns a filter sized for n keys.
func newBloom(n int) *bloomFilter {
	nblocks := max(1, (n*bloomBitsPerKey+511)/512)
	return &bloomFilter{blocks: make([]bloomBlock, nblocks), seed: maphash.MakeSeed()}
}

// locate returns the block of k and a value whose 9-bit groups are the bit
// positions of k in the block.
func (b *bloomFilter) locate(k token.Key) (*bloomBlock, uint64) {
	h := maphash.Comparable(b.seed, k)
	i, _ := bits.Mul64(h, uint64(len(b.blocks)))
	// The block index uses the high bits of h; multiplying by an odd
	// constant mixes every bit of h into the positions.
	return &b.blocks[i], h * 0x9e3779b97f4a7c15
}

func (b *bloomFilter) add(k token.Key) {
	blk, x := b.locate(k)
	for range bloomHashes {
		p := x & 511
		w, m := &blk[p>>6], uint64(1)<<(p&63)
		if w.Load()&m == 0 {
			w.Or(m)
		}
		x >>= 9
	}
}

func (b *bloomFilter) mayContain(k token.Key) bool {
	blk, x := b.locate(k)
	for range bloomHashes {
		p := x & 511
		if blk[p>>6].Load()&(uint64(1)<<(p&63)) == 0 {
			return false
		}
		x >>= 9
	}
	return true
}

// keyFilter holds the filter Lookup uses and the one being built.
type keyFilter struct {
	enabled bool

	active   atomic.Pointer[bloomFilter] // nil until the first build succeeds
	building atomic.Pointer[bloomFilter] // non-nil while BuildKeyFilter runs

	buildMu sync.Mutex   // one build at a time
	mu      sync.Mutex   // guards the swap against Reset
	gen     uint64       // bumped by Reset; guarded by mu
	sized   atomic.Int64 // keys counted by the last build
	// capacity is the key count the active filter was sized for, count the
	// keys in it (the build's plus every key added since): when count runs
	// well past capacity, false positives climb and the filter needs a
	// rebuild (KeyFilterLoad).
	capacity atomic.Int64
	count    atomic.Int64
}

// addActive adds k to the filter Lookup uses.
func (f *keyFilter) addActive(k token.Key) {
	if a := f.active.Load(); a != nil {
		a.add(k)
		f.count.Add(1)
	}
}

// addBuilding adds k to the filter being built, if any.
func (f *keyFilter) addBuilding(k token.Key) {
	if b := f.building.Load(); b != nil {
		b.add(k)
	}
}

// mayContain reports whether the store may hold k: true without a filter.
func (f *keyFilter) mayContain(k token.Key) bool {
	a := f.active.Load()
	return a == nil || a.mayContain(k)
}

// reset drops the filters: after a snapshot restore the store holds other
// keys, and a build in progress read the old ones.
func (f *keyFilter) reset() {
	f.mu.Lock()
	f.gen++
	f.active.Store(nil)
	f.building.Store(nil)
	f.mu.Unlock()
}

// KeyScanner calls fn for every key in the store.
type KeyScanner func(ctx context.Context, fn func(token.Key) error) error

// BuildKeyFilter (re)builds the key filter from scan, sized for at least
// expected keys, while Put keeps adding new keys. Until the first build
// succeeds, Lookup asks the store for every miss. A no-op without
// Config.KeyFilter.
//
// The filter is sized for the largest of expected, the count of the last
// build, and 1024. When the scan finds more than 1.25 times the keys it was
// sized for (so that false positives would climb well above 1%), it scans
// once more with a filter sized for what it found. On an error the previous
// filter, if any, stays in use. Builds are serialized; BuildKeyFilter blocks
// for the length of the scan. It returns ErrReset (wrapped) if Reset ran
// meanwhile.
func (c *Cache) BuildKeyFilter(ctx context.Context, expected int, scan KeyScanner) error {
	f := &c.keys
	if !f.enabled {
		return nil
	}
	f.buildMu.Lock()
	defer f.buildMu.Unlock()
	defer f.building.Store(nil)

	f.mu.Lock()
	gen := f.gen
	f.mu.Unlock()

	size := max(expected, int(f.sized.Load()), minFilterKeys)
	for attempt := 0; ; attempt++ {
		b := newBloom(size)
		f.building.Store(b)
		c.addPinnedKeys(b)
		n := 0
		err := scan(ctx, func(k token.Key) error {
			b.add(k)
			n++
			return nil
		})
		if err != nil {
			return fmt.Errorf("cannot build key filter: %w", err)
		}
		if attempt == 0 && n > size+size/4 {
			size = n + n/4
			continue
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.gen != gen {
			return fmt.Errorf("cannot build key filter: %w", ErrReset)
		}
		f.active.Store(b)
		f.sized.Store(int64(n))
		f.capacity.Store(int64(size))
		f.count.Store(int64(n))
		return nil
	}
}

// KeyFilterLoad returns how many keys the active key filter holds and how
// many it was sized for. Deleted keys stay counted until the next build.
// When keys runs well past capacity (more than 1.25×), false positives climb
// and the caller should rebuild it with BuildKeyFilter. Both are 0 before
// the first build or without Config.KeyFilter.
func (c *Cache) KeyFilterLoad() (keys, capacity int) {
	if c.keys.active.Load() == nil {
		return 0, 0
	}
	return int(c.keys.count.Load()), int(c.keys.capacity.Load())
}

// addPinnedKeys adds the key of every pinned record to b.
func (c *Cache) addPinnedKeys(b *bloomFilter) {
	for i := range c.shards {
		s := &c.shards[i].shard
		s.mu.Lock()
		for k, p := range s.pinned {
			if p.ent != nil {
				b.add(k)
			}
		}
		s.mu.Unlock()
	}
}
