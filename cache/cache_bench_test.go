package cache

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/tokencache/tokencache/token"
)

// benchCache returns a cache of capacity n holding n cached records.
func benchCache(b *testing.B, eviction string, n int) (*Cache, []token.Key) {
	b.Helper()
	cfg := DefaultConfig()
	cfg.Capacity, cfg.Eviction = n, eviction
	c := mustNew(b, cfg)
	keys := make([]token.Key, n)
	toks := make([]*token.Token, n)
	for i := range keys {
		keys[i] = keyN(i)
		toks[i] = realisticToken(i)
	}
	if got := c.Fill(toks, c.Mark()); got < n*99/100 {
		b.Fatalf("Fill cached %d of %d", got, n)
	}
	for _, k := range keys { // 2q, arc: make every record "frequent"
		c.Get(k)
	}
	return c, keys
}

// BenchmarkGet is the hot path: a validation that hits.
func BenchmarkGet(b *testing.B) {
	const n = 100_000
	for _, eviction := range []string{"lru", "2q", "arc"} {
		b.Run("hit/"+eviction, func(b *testing.B) {
			c, keys := benchCache(b, eviction, n)
			var seq atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(seq.Add(1) * 7919)
				for pb.Next() {
					if _, _, ok := c.Get(keys[i%n]); !ok {
						b.Errorf("Get(%q) missed", keys[i%n])
						return
					}
					i++
				}
			})
		})
	}
	b.Run("pinned", func(b *testing.B) {
		c, keys := benchCache(b, "lru", n)
		for i, k := range keys[:1024] {
			c.Put(rec(k, uint64(n+i)))
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				c.Get(keys[i%1024])
				i++
			}
		})
	})
	b.Run("miss", func(b *testing.B) {
		c, _ := benchCache(b, "lru", n)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := n
			for pb.Next() {
				c.Get(keyN(i))
				i++
			}
		})
	})
}

// BenchmarkLookupMiss is a read-through: every Lookup misses, loads from a
// fake store (which allocates the record, like a decoder) and caches it,
// evicting another.
func BenchmarkLookupMiss(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Capacity = 100_000
	c := mustNew(b, cfg)
	load := func(_ context.Context, k token.Key) (*token.Token, error) {
		t := rec(k, 1)
		return t, nil
	}
	var seq atomic.Uint64
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1) << 40) // a key range per goroutine
		for pb.Next() {
			k := keyN(i)
			i++
			if t, _, err := c.Lookup(ctx, k, load); err != nil || t == nil {
				b.Errorf("Lookup(%q) = %v, %v", k, indexOf(t), err)
				return
			}
		}
	})
}

// BenchmarkLookupUnknown is a flood of random keys: answered by the key
// filter, or by the negative cache without one.
func BenchmarkLookupUnknown(b *testing.B) {
	const known = 1_000_000
	load := func(context.Context, token.Key) (*token.Token, error) { return nil, nil }
	ctx := context.Background()
	b.Run("filter", func(b *testing.B) {
		c := mustNew(b, DefaultConfig())
		err := c.BuildKeyFilter(ctx, known, func(_ context.Context, fn func(token.Key) error) error {
			for i := range known {
				_ = fn(keyN(i))
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		var seq atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := known + int(seq.Add(1)<<40)
			for pb.Next() {
				_, _, _ = c.Lookup(ctx, keyN(i), load)
				i++
			}
		})
		b.StopTimer()
		st := c.Stats()
		b.ReportMetric(float64(st.Loads)/float64(b.N), "loads/op")
	})
	b.Run("negative", func(b *testing.B) {
		c := mustNew(b, DefaultConfig())
		for i := range 1024 {
			_, _, _ = c.Lookup(ctx, keyN(known+i), load)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				_, _, _ = c.Lookup(ctx, keyN(known+i%1024), load)
				i++
			}
		})
	})
}

// BenchmarkMarkUsed is the other half of a validation: usually within the
// granularity (one atomic load and a compare), sometimes recorded.
func BenchmarkMarkUsed(b *testing.B) {
	const n = 100_000
	b.Run("within-granularity", func(b *testing.B) {
		c, keys := benchCache(b, "lru", n)
		at := token.At(epoch0)
		for _, k := range keys {
			c.MarkUsed(k, at)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				c.MarkUsed(keys[i%n], at)
				i++
			}
		})
	})
	b.Run("recorded", func(b *testing.B) {
		c, keys := benchCache(b, "lru", n)
		var clock atomic.Int64
		clock.Store(int64(token.At(epoch0)))
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				c.MarkUsed(keys[i%n], token.Time(clock.Add(int64(time.Second))))
				i++
			}
		})
	})
}

// BenchmarkPut is the apply path: Put, with the writer's Unpin every 1024
// entries so that the pinned set stays bounded, as in production.
func BenchmarkPut(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Capacity = 100_000
	c := mustNew(b, cfg)
	toks := make([]*token.Token, 4096)
	for i := range toks {
		toks[i] = realisticToken(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t := *toks[i%len(toks)]
		t.Key = keyN(i)
		t.Index = uint64(i + 1)
		c.Put(&t)
		if i%1024 == 1023 {
			c.Advance(t.Index)
			c.Unpin(t.Index)
		}
	}
}

// BenchmarkMemoryPerToken fills 1,000,000 realistic tokens and reports the
// heap bytes per cached token. Run it with -benchtime=1x.
func BenchmarkMemoryPerToken(b *testing.B) {
	for _, eviction := range []string{"lru", "2q", "arc"} {
		b.Run(eviction, func(b *testing.B) {
			var per float64
			for b.Loop() {
				per = heapBytesPerToken(b, eviction, 1_000_000)
			}
			b.ReportMetric(per, "bytes/token")
		})
	}
}

// BenchmarkKeyFilter compares the lock-free blocked filter with
// bits-and-blooms/bloom/v3 behind an RWMutex (it is not safe for concurrent
// Add and Test), both sized for 1,000,000 keys at about 1%, tested with keys
// that are not in them.
func BenchmarkKeyFilter(b *testing.B) {
	const n = 1_000_000
	b.Run("blocked-atomic", func(b *testing.B) {
		f := newBloom(n)
		for i := range n {
			f.add(keyN(i))
		}
		var seq atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seq.Add(1) << 32)
			for pb.Next() {
				f.mayContain(keyN(n + i))
				i++
			}
		})
	})
	b.Run("bits-and-blooms-rwmutex", func(b *testing.B) {
		f := bloom.NewWithEstimates(n, 0.01)
		var mu sync.RWMutex
		for i := range n {
			k := keyN(i)
			f.Add(k[:])
		}
		var seq atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seq.Add(1) << 32)
			for pb.Next() {
				k := keyN(n + i)
				mu.RLock()
				f.Test(k[:])
				mu.RUnlock()
				i++
			}
		})
	})
}
