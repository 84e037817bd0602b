package cache

import (
	"testing"

	"github.com/tokencache/tokencache/token"
)

func TestFill(t *testing.T) {
	cfg := testConfig(newFakeClock())
	cfg.Capacity, cfg.Shards = 16, 1
	newCache := func() *Cache { return mustNew(t, cfg) }
	batch := func(from, n int) []*token.Token {
		var out []*token.Token
		for i := from; i < from+n; i++ {
			out = append(out, rec(keyN(i), 1))
		}
		return out
	}

	t.Run("fills until full", func(t *testing.T) {
		c := newCache()
		m := c.Mark()
		if n := c.Fill(batch(0, 10), m); n != 10 {
			t.Errorf("Fill(10 records) = %d, want 10", n)
		}
		if c.Full() {
			t.Errorf("Full() = true with 10 of 16")
		}
		if n := c.Fill(batch(10, 10), m); n != 6 {
			t.Errorf("Fill(10 more) = %d, want 6", n)
		}
		if !c.Full() {
			t.Errorf("Full() = false with 16 of 16")
		}
		if st := c.Stats(); st.Evictions != 0 {
			t.Errorf("Stats().Evictions = %d, want 0 (Fill never evicts)", st.Evictions)
		}
	})
	t.Run("skips keys changed since the mark", func(t *testing.T) {
		c := newCache()
		m := c.Mark()
		// Changed and released: the batch row may be older than the record.
		c.Put(rec(keyN(2), 2))
		c.Unpin(2)
		// A change of another key of the shard does not matter.
		c.Put(rec(keyN(100), 3))
		c.Unpin(3)
		c.Put(rec(keyN(0), 5))  // pinned, newer than the batch
		c.Delete(keyN(1), 6, 9) // a pinned deletion
		if n := c.Fill(batch(0, 5), m); n != 2 {
			t.Errorf("Fill(5 records, 3 changed since the mark) = %d, want 2", n)
		}
		mustGet(t, c, keyN(0), 5)
		mustMiss(t, c, keyN(1))
		mustGet(t, c, keyN(2), 2)
		mustGet(t, c, keyN(3), 1)
	})
	t.Run("a busy shard is skipped", func(t *testing.T) {
		c := newCache()
		m := c.Mark()
		for i := range recentChanges + 1 {
			c.Delete(keyN(1000+i), uint64(i+1), 0)
		}
		if n := c.Fill(batch(0, 5), m); n != 0 {
			t.Errorf("Fill after %d changes in the shard = %d, want 0", recentChanges+1, n)
		}
	})
	t.Run("keeps a cached record", func(t *testing.T) {
		c := newCache()
		mustLookup(t, c, keyN(0), newFakeStore(rec(keyN(0), 3)).get)
		m := c.Mark()
		if n := c.Fill(batch(0, 1), m); n != 0 {
			t.Errorf("Fill(a record already cached) = %d, want 0", n)
		}
		mustGet(t, c, keyN(0), 3)
	})
	t.Run("zero mark", func(t *testing.T) {
		c := newCache()
		if n := c.Fill(batch(0, 3), Mark{}); n != 0 {
			t.Errorf("Fill(Mark{}) = %d, want 0", n)
		}
	})
}

func TestFillSkipsFullShard(t *testing.T) {
	cfg := testConfig(newFakeClock())
	cfg.Capacity, cfg.Shards = 16, 2
	c := mustNew(t, cfg)
	var same []*token.Token
	for _, k := range keysInShard(c, 20) {
		same = append(same, rec(k, 1))
	}
	if n := c.Fill(same, c.Mark()); n != 8 {
		t.Errorf("Fill(20 records of one shard of 8) = %d, want 8", n)
	}
	if c.Full() {
		t.Errorf("Full() = true with one of two shards full")
	}
}
