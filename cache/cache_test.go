package cache

import (
	"context"
	"testing"
	"time"

	"github.com/tokencache/tokencache/token"
)

func TestGet(t *testing.T) {
	clock := newFakeClock()
	c := mustNew(t, testConfig(clock))
	k := keyN(1)
	mustMiss(t, c, k)

	r := rec(k, 3)
	r.LastUsed = 42
	c.Put(r)
	got, used, ok := c.Get(k)
	if !ok || got != r || used != 42 {
		t.Fatalf("Get(%q) = %v, %d, %v; want the record, 42, true", k, indexOf(got), used, ok)
	}
	if st := c.Stats(); st.Hits != 1 || st.Misses != 0 {
		t.Errorf("Stats() = %d hits, %d misses; want 1, 0 (a Get miss is not counted)", st.Hits, st.Misses)
	}
}

func TestPut(t *testing.T) {
	clock := newFakeClock()
	k := keyN(7)

	t.Run("replaces a cached record", func(t *testing.T) {
		c := mustNew(t, testConfig(clock))
		mustLookup(t, c, k, newFakeStore(rec(k, 5)).get)
		c.Put(rec(k, 7))
		mustGet(t, c, k, 7)
		if st := c.Stats(); st.Len != 0 || st.Pinned != 1 {
			t.Errorf("Stats() = Len %d, Pinned %d; want 0, 1", st.Len, st.Pinned)
		}
	})
	t.Run("ignores an older pinned index", func(t *testing.T) {
		c := mustNew(t, testConfig(clock))
		c.Put(rec(k, 7))
		c.Put(rec(k, 5))
		mustGet(t, c, k, 7)
	})
	t.Run("ignores an index older than the cached record", func(t *testing.T) {
		// A follower reading a shared store can cache a row newer than the
		// entry it applies next.
		c := mustNew(t, testConfig(clock))
		mustLookup(t, c, k, newFakeStore(rec(k, 9)).get)
		c.Put(rec(k, 7))
		mustGet(t, c, k, 9)
		if got := c.Pinned(); got != 0 {
			t.Errorf("Pinned() = %d, want 0", got)
		}
	})
	t.Run("same index twice keeps the later record once", func(t *testing.T) {
		c := mustNew(t, testConfig(clock))
		first, second := rec(k, 4), rec(k, 4)
		c.Put(first)
		c.Put(second)
		c.Advance(4)
		if got, _, _ := c.Get(k); got != second {
			t.Errorf("Get(%q) = %p, want the second record %p", k, got, second)
		}
		if changes, _ := c.Changes(0, 10); len(changes) != 1 || changes[0].Token != second {
			t.Errorf("Changes(0, 10) = %v, want only the second record", changes)
		}
	})
	t.Run("keeps the local use of the previous version", func(t *testing.T) {
		c := mustNew(t, testConfig(clock))
		c.Put(rec(k, 1))
		at := token.At(epoch0.Add(time.Hour))
		c.MarkUsed(k, at)
		c.Put(rec(k, 2))
		if _, used, _ := c.Get(k); used != at {
			t.Errorf("Get(%q) last used = %v, want %v", k, used, at)
		}
	})
	t.Run("clears the negative entry", func(t *testing.T) {
		c := mustNew(t, testConfig(clock))
		store := newFakeStore()
		if got := mustLookup(t, c, k, store.get); got != nil {
			t.Fatalf("Lookup(%q) = %v, want nil", k, indexOf(got))
		}
		c.Put(rec(k, 3))
		c.Unpin(3)
		c.Advance(3)
		if got := mustLookup(t, c, k, store.get); got == nil || got.Index != 3 {
			t.Errorf("Lookup(%q) = %v, want index 3", k, indexOf(got))
		}
	})
}

func TestDelete(t *testing.T) {
	k := keyN(3)
	tests := []struct {
		name      string
		setup     func(c *Cache)
		index     uint64
		maxIndex  uint64
		deleted   bool
		wantIndex uint64 // when not deleted
	}{
		{"absent key", func(*Cache) {}, 10, 5, true, 0},
		{"pinned record at max index", func(c *Cache) { c.Put(rec(k, 5)) }, 10, 5, true, 0},
		{"pinned record above max index", func(c *Cache) { c.Put(rec(k, 8)) }, 10, 5, false, 8},
		{"cached record below max index", func(c *Cache) {
			c.Put(rec(k, 3))
			c.Unpin(3)
		}, 10, 5, true, 0},
		{"cached record above max index", func(c *Cache) {
			c.Put(rec(k, 7))
			c.Unpin(7)
		}, 10, 5, false, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustNew(t, testConfig(newFakeClock()))
			tt.setup(c)
			c.Delete(k, tt.index, tt.maxIndex)
			if !tt.deleted {
				mustGet(t, c, k, tt.wantIndex)
				return
			}
			mustMiss(t, c, k)
			store := newFakeStore(rec(k, 1)) // a stale row the store still has
			if got := mustLookup(t, c, k, store.get); got != nil {
				t.Errorf("Lookup(%q) = %v, want nil (pinned deletion)", k, indexOf(got))
			}
			if n := store.loads.Load(); n != 0 {
				t.Errorf("Lookup(%q) loaded %d times, want 0", k, n)
			}
			if got := c.Pinned(); got != 1 {
				t.Errorf("Pinned() = %d, want 1", got)
			}
		})
	}
}

func TestPinnedNeverEvicted(t *testing.T) {
	cfg := testConfig(newFakeClock())
	cfg.Capacity, cfg.Shards = 8, 1
	c := mustNew(t, cfg)
	for i := range 100 {
		c.Put(rec(keyN(i), uint64(i+1)))
	}
	store := newFakeStore()
	for i := 100; i < 200; i++ {
		store.set(rec(keyN(i), 1))
		mustLookup(t, c, keyN(i), store.get)
	}
	for i := range 100 {
		mustGet(t, c, keyN(i), uint64(i+1))
	}
	st := c.Stats()
	if st.Pinned != 100 || st.Len != 8 || st.Evictions != 92 {
		t.Errorf("Stats() = Pinned %d, Len %d, Evictions %d; want 100, 8, 92", st.Pinned, st.Len, st.Evictions)
	}
}

func TestUnpin(t *testing.T) {
	t.Run("records move to the evictable part", func(t *testing.T) {
		cfg := testConfig(newFakeClock())
		cfg.Capacity, cfg.Shards = 8, 1
		c := mustNew(t, cfg)
		for i := range 100 {
			c.Put(rec(keyN(i), uint64(i+1)))
		}
		c.Unpin(100)
		st := c.Stats()
		if st.Pinned != 0 || st.Len != 8 || st.Evictions != 92 {
			t.Errorf("Stats() = Pinned %d, Len %d, Evictions %d; want 0, 8, 92", st.Pinned, st.Len, st.Evictions)
		}
		for i := 92; i < 100; i++ { // the last released are the most recent
			mustGet(t, c, keyN(i), uint64(i+1))
		}
	})
	t.Run("superseded changes stay pinned", func(t *testing.T) {
		c := mustNew(t, testConfig(newFakeClock()))
		a, b, d := keyN(1), keyN(2), keyN(3)
		c.Put(rec(a, 1))
		c.Put(rec(b, 2))
		c.Put(rec(a, 3))
		c.Delete(d, 4, 0)
		c.Unpin(2)
		mustGet(t, c, a, 3)
		mustGet(t, c, b, 2)
		if st := c.Stats(); st.Pinned != 2 || st.Len != 1 {
			t.Errorf("after Unpin(2): Stats() = Pinned %d, Len %d; want 2 (a@3, d), 1 (b)", st.Pinned, st.Len)
		}
		c.Unpin(3)
		if st := c.Stats(); st.Pinned != 1 || st.Len != 2 {
			t.Errorf("after Unpin(3): Stats() = Pinned %d, Len %d; want 1 (d), 2", st.Pinned, st.Len)
		}
		c.Unpin(4)
		if got := c.Pinned(); got != 0 {
			t.Errorf("after Unpin(4): Pinned() = %d, want 0", got)
		}
		store := newFakeStore()
		if got := mustLookup(t, c, d, store.get); got != nil || store.loads.Load() != 1 {
			t.Errorf("Lookup(%q) = %v after %d loads; want nil after 1 (the deletion was dropped)", d, indexOf(got), store.loads.Load())
		}
	})
	t.Run("a record superseded by a deletion is not cached", func(t *testing.T) {
		c := mustNew(t, testConfig(newFakeClock()))
		k := keyN(5)
		c.Put(rec(k, 1))
		c.Delete(k, 2, 1)
		c.Unpin(1)
		mustMiss(t, c, k)
		if st := c.Stats(); st.Pinned != 1 || st.Len != 0 {
			t.Errorf("Stats() = Pinned %d, Len %d; want 1, 0", st.Pinned, st.Len)
		}
	})
}

func TestChanges(t *testing.T) {
	clock := newFakeClock()
	a, b, cc, d, e, f := keyN(1), keyN(2), keyN(3), keyN(4), keyN(5), keyN(6)
	build := func(applied uint64) *Cache {
		c := mustNew(t, testConfig(clock))
		c.Put(rec(a, 1))
		c.Put(rec(b, 2))
		c.Put(rec(a, 3)) // supersedes a@1
		c.Delete(cc, 4, 1)
		c.Put(rec(d, 5)) // d and e: one log entry
		c.Put(rec(e, 5))
		c.Put(rec(f, 6))
		c.Advance(applied)
		return c
	}
	tests := []struct {
		name     string
		applied  uint64
		after    uint64
		max      int
		want     []token.Key
		wantUpTo uint64
	}{
		{"everything", 6, 0, 10, []token.Key{b, a, cc, d, e, f}, 6},
		{"limited: upTo is the last returned", 6, 0, 2, []token.Key{b, a}, 3},
		{"after skips older", 6, 2, 1, []token.Key{a}, 3},
		{"the deletion", 6, 0, 3, []token.Key{b, a, cc}, 4},
		{"one index is never split", 6, 0, 4, []token.Key{b, a, cc, d, e}, 5},
		{"nothing left", 6, 6, 10, nil, 6},
		{"applied beyond the last change", 9, 0, 10, []token.Key{b, a, cc, d, e, f}, 9},
		{"upTo never above applied", 4, 0, 10, []token.Key{b, a, cc, d, e, f}, 4},
		{"limited and above applied", 4, 0, 5, []token.Key{b, a, cc, d, e}, 4},
		{"max 0", 6, 3, 0, nil, 3},
		{"after beyond applied", 6, 8, 10, nil, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := build(tt.applied)
			changes, upTo := c.Changes(tt.after, tt.max)
			var got []token.Key
			for _, ch := range changes {
				got = append(got, ch.Key)
			}
			if !equalKeys(got, tt.want) || upTo != tt.wantUpTo {
				t.Errorf("Changes(%d, %d) = %v, %d; want %v, %d", tt.after, tt.max, got, upTo, tt.want, tt.wantUpTo)
			}
		})
	}

	t.Run("fields", func(t *testing.T) {
		c := build(6)
		changes, _ := c.Changes(0, 10)
		for _, ch := range changes {
			switch {
			case ch.Key == cc:
				if ch.Token != nil || ch.Index != 4 || ch.MaxIndex != 1 {
					t.Errorf("deletion change = %+v, want no token, index 4, max index 1", ch)
				}
			case ch.Token == nil || ch.Token.Key != ch.Key || ch.Token.Index != ch.Index:
				t.Errorf("record change = %+v, want its record", ch)
			}
			if !ch.Applied.Equal(epoch0) {
				t.Errorf("change %d applied at %v, want %v", ch.Index, ch.Applied, epoch0)
			}
		}
	})
}

func equalKeys(a, b []token.Key) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEachPinned(t *testing.T) {
	c := mustNew(t, testConfig(newFakeClock()))
	want := map[token.Key]uint64{}
	for i := range 50 {
		k := keyN(i)
		c.Put(rec(k, uint64(2*i+1)))
		want[k] = uint64(2*i + 1)
	}
	c.Delete(keyN(0), 200, 1)
	want[keyN(0)] = 200

	got := map[token.Key]uint64{}
	c.EachPinned(func(ch Change) bool {
		c.Get(ch.Key) // fn may use the cache: no lock is held
		got[ch.Key] = ch.Index
		return true
	})
	if len(got) != len(want) {
		t.Fatalf("EachPinned saw %d keys, want %d", len(got), len(want))
	}
	for k, idx := range want {
		if got[k] != idx {
			t.Errorf("EachPinned: %q at index %d, want %d", k, got[k], idx)
		}
	}
	n := 0
	c.EachPinned(func(Change) bool { n++; return n < 3 })
	if n != 3 {
		t.Errorf("EachPinned called fn %d times after it returned false, want 3", n)
	}
}

func TestOldestPinned(t *testing.T) {
	clock := newFakeClock()
	c := mustNew(t, testConfig(clock))
	if at, ok := c.OldestPinned(); ok {
		t.Fatalf("OldestPinned() = %v, true; want false", at)
	}
	a, b := keyN(1), keyN(2)
	t0 := clock.Now()
	c.Put(rec(a, 1))
	clock.Advance(time.Second)
	t1 := clock.Now()
	c.Put(rec(b, 2))
	if at, ok := c.OldestPinned(); !ok || !at.Equal(t0) {
		t.Errorf("OldestPinned() = %v, %v; want %v, true", at, ok, t0)
	}
	clock.Advance(time.Second)
	c.Put(rec(a, 3)) // a@1 is superseded: b is now the oldest
	if at, ok := c.OldestPinned(); !ok || !at.Equal(t1) {
		t.Errorf("OldestPinned() = %v, %v; want %v, true", at, ok, t1)
	}
	c.Unpin(3)
	if at, ok := c.OldestPinned(); ok {
		t.Errorf("OldestPinned() = %v, true after Unpin; want false", at)
	}
}

func TestReset(t *testing.T) {
	clock := newFakeClock()
	c := mustNew(t, testConfig(clock))
	pinned, cached, unknown := keyN(1), keyN(2), keyN(3)
	store := newFakeStore(rec(cached, 1))
	c.Put(rec(pinned, 5))
	mustLookup(t, c, cached, store.get)
	mustLookup(t, c, unknown, store.get)
	c.MarkUsed(pinned, token.At(clock.Now()))
	c.Advance(5)
	mark := c.Mark()

	c.Reset()
	mustMiss(t, c, pinned)
	mustMiss(t, c, cached)
	st := c.Stats()
	if st.Len != 0 || st.Pinned != 0 || c.AppliedIndex() != 0 {
		t.Errorf("after Reset: Len %d, Pinned %d, AppliedIndex %d; want 0, 0, 0", st.Len, st.Pinned, c.AppliedIndex())
	}
	if uses := c.DrainUsed(10); len(uses) != 0 {
		t.Errorf("after Reset: DrainUsed(10) = %v, want none", uses)
	}
	if changes, _ := c.Changes(0, 10); len(changes) != 0 {
		t.Errorf("after Reset: Changes(0, 10) = %v, want none", changes)
	}
	if _, ok := c.OldestPinned(); ok {
		t.Errorf("after Reset: OldestPinned() ok, want none")
	}
	before := store.loads.Load()
	mustLookup(t, c, unknown, store.get)
	if store.loads.Load() != before+1 {
		t.Errorf("after Reset: Lookup(%q) did not ask the store (negative entry survived)", unknown)
	}
	if n := c.Fill([]*token.Token{rec(keyN(9), 1)}, mark); n != 0 {
		t.Errorf("Fill with a Mark from before Reset cached %d, want 0", n)
	}
}

func TestAdvance(t *testing.T) {
	c := mustNew(t, testConfig(newFakeClock()))
	if got := c.AppliedIndex(); got != 0 {
		t.Errorf("AppliedIndex() = %d, want 0", got)
	}
	c.Advance(17)
	if got := c.AppliedIndex(); got != 17 {
		t.Errorf("AppliedIndex() = %d, want 17", got)
	}
}

// TestEvictionPolicies checks each policy against a scan: 4 keys used twice,
// then 20 keys used once. LRU keeps the scan; 2Q and ARC keep the keys used
// twice.
func TestEvictionPolicies(t *testing.T) {
	tests := []struct {
		eviction     string
		keepFrequent bool
	}{
		{"lru", false},
		{"2q", true},
		{"arc", true},
	}
	for _, tt := range tests {
		t.Run(tt.eviction, func(t *testing.T) {
			cfg := testConfig(newFakeClock())
			cfg.Capacity, cfg.Shards, cfg.Eviction = 8, 1, tt.eviction
			c := mustNew(t, cfg)
			store := newFakeStore()
			for i := range 24 {
				store.set(rec(keyN(i), 1))
			}
			ctx := context.Background()
			for i := range 8 {
				mustLookup(t, c, keyN(i), store.get)
			}
			for i := range 4 {
				mustGet(t, c, keyN(i), 1)
			}
			for i := 8; i < 24; i++ {
				mustLookup(t, c, keyN(i), store.get)
			}
			st := c.Stats()
			if st.Len != 8 || st.Evictions != 16 {
				t.Errorf("Stats() = Len %d, Evictions %d; want 8, 16", st.Len, st.Evictions)
			}
			for i := range 4 {
				_, _, ok := c.Get(keyN(i))
				if ok != tt.keepFrequent {
					t.Errorf("Get(%q) of a key used twice: ok = %v, want %v", keyN(i), ok, tt.keepFrequent)
				}
			}
			// Whatever it evicted, a lookup still answers from the store.
			if got, _, err := c.Lookup(ctx, keyN(0), store.get); err != nil || got == nil {
				t.Errorf("Lookup(%q) = %v, %v; want the record", keyN(0), indexOf(got), err)
			}
		})
	}
}

func TestStats(t *testing.T) {
	cfg := testConfig(newFakeClock())
	cfg.Capacity, cfg.Shards = 8, 1
	c := mustNew(t, cfg)
	store := newFakeStore()
	for i := range 10 {
		store.set(rec(keyN(i), 1))
	}
	for i := range 10 {
		mustLookup(t, c, keyN(i), store.get) // 10 misses, 10 loads, 2 evictions
	}
	mustLookup(t, c, keyN(9), store.get)   // hit
	mustGet(t, c, keyN(9), 1)              // hit
	mustLookup(t, c, keyN(100), store.get) // miss, load, negative entry
	mustLookup(t, c, keyN(100), store.get) // miss, negative hit
	c.Put(rec(keyN(200), 3))
	c.Delete(keyN(201), 4, 0)
	mustLookup(t, c, keyN(201), store.get) // hit: pinned deletion
	want := Stats{Len: 8, Pinned: 2, Capacity: 8, Hits: 3, Misses: 12, Loads: 11, NegativeHits: 1, Evictions: 2}
	if got := c.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

// TestUnpinAcrossReset checks that a change the writer took from the fifo
// before a snapshot restore does not release the restored pin of the same
// index (which the restored store may not hold).
func TestUnpinAcrossReset(t *testing.T) {
	c := mustNew(t, testConfig(newFakeClock()))
	k := keyN(1)
	c.Put(rec(k, 5))
	var taken [1]fifoItem
	c.fifo.mu.Lock()
	n := c.fifo.popUpToLocked(5, taken[:])
	resets := c.resets.Load()
	c.fifo.mu.Unlock()
	if n != 1 {
		t.Fatalf("popUpToLocked(5) = %d items, want 1", n)
	}

	c.Reset()
	c.Put(rec(k, 5)) // restored from the snapshot
	c.release(taken[0], resets)
	if got := c.Pinned(); got != 1 {
		t.Errorf("Pinned() = %d after a release from before Reset, want 1", got)
	}
	mustGet(t, c, k, 5)
}
