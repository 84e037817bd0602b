package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokencache/tokencache/token"
)

func TestLookupReadThrough(t *testing.T) {
	c := mustNew(t, testConfig(newFakeClock()))
	k := keyN(1)
	r := rec(k, 4)
	r.LastUsed = 9
	store := newFakeStore(r)
	for i := range 3 {
		got, used, err := c.Lookup(context.Background(), k, store.get)
		if err != nil || got != r || used != 9 {
			t.Fatalf("Lookup(%q) #%d = %v, %d, %v; want the record, 9, nil", k, i, indexOf(got), used, err)
		}
	}
	if n := store.loads.Load(); n != 1 {
		t.Errorf("3 Lookups loaded %d times, want 1", n)
	}
	mustGet(t, c, k, 4)
}

func TestLookupErrorIsNotCached(t *testing.T) {
	c := mustNew(t, testConfig(newFakeClock()))
	k := keyN(1)
	errDown := errors.New("store down")
	var calls atomic.Int64
	failing := func(context.Context, token.Key) (*token.Token, error) {
		calls.Add(1)
		return nil, errDown
	}
	for range 2 {
		if got, _, err := c.Lookup(context.Background(), k, failing); !errors.Is(err, errDown) || got != nil {
			t.Fatalf("Lookup(%q) = %v, %v; want nil, %v", k, indexOf(got), err, errDown)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("2 failing Lookups loaded %d times, want 2 (errors are not cached)", n)
	}
	if got := mustLookup(t, c, k, newFakeStore(rec(k, 1)).get); got == nil {
		t.Errorf("Lookup(%q) after the store recovered = nil, want the record", k)
	}
}

func TestLookupLoaderContract(t *testing.T) {
	c := mustNew(t, testConfig(newFakeClock()))
	k := keyN(1)
	tests := []struct {
		name string
		load Loader
	}{
		{"panic", func(context.Context, token.Key) (*token.Token, error) { panic("boom") }},
		{"another key", func(context.Context, token.Key) (*token.Token, error) { return rec(keyN(2), 1), nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _, err := c.Lookup(context.Background(), k, tt.load); !errors.Is(err, ErrLoader) || got != nil {
				t.Errorf("Lookup(%q) = %v, %v; want nil, ErrLoader", k, indexOf(got), err)
			}
			mustMiss(t, c, k)
		})
	}
}

func TestNegativeCache(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig(clock)
	cfg.NegativeTTL = time.Minute
	c := mustNew(t, cfg)
	k := keyN(1)
	store := newFakeStore()

	lookupLoads := func(step string, want int64) {
		t.Helper()
		before := store.loads.Load()
		if got := mustLookup(t, c, k, store.get); got != nil {
			t.Fatalf("%s: Lookup(%q) = %v, want nil", step, k, indexOf(got))
		}
		if n := store.loads.Load() - before; n != want {
			t.Errorf("%s: Lookup(%q) loaded %d times, want %d", step, k, n, want)
		}
	}
	lookupLoads("first", 1)
	lookupLoads("remembered", 0)
	clock.Advance(59 * time.Second)
	lookupLoads("just before the TTL", 0)
	clock.Advance(time.Second)
	lookupLoads("at the TTL", 1)
	if st := c.Stats(); st.NegativeHits != 2 {
		t.Errorf("Stats().NegativeHits = %d, want 2", st.NegativeHits)
	}

	// A row added behind the cache's back shows after the TTL; one written
	// through the log shows at once.
	store.set(rec(k, 3))
	lookupLoads("row added behind the cache", 0)
	c.Put(rec(k, 3))
	c.Unpin(3)
	if got := mustLookup(t, c, k, store.get); got == nil || got.Index != 3 {
		t.Errorf("Lookup(%q) after Put = %v, want index 3", k, indexOf(got))
	}
}

func TestNegativeCacheIsBounded(t *testing.T) {
	cfg := testConfig(newFakeClock())
	cfg.Shards, cfg.NegativeCapacity = 1, 10
	c := mustNew(t, cfg)
	store := newFakeStore()
	for i := range 20 {
		mustLookup(t, c, keyN(i), store.get)
	}
	before := store.loads.Load()
	for i := 10; i < 20; i++ {
		mustLookup(t, c, keyN(i), store.get)
	}
	mustLookup(t, c, keyN(0), store.get)
	if n := store.loads.Load() - before; n != 1 {
		t.Errorf("after 20 unknown keys with room for 10: %d loads for the last 10 and the first, want 1", n)
	}
}

// blockingLoader is a Loader that waits for release (or its ctx) and counts
// its calls.
type blockingLoader struct {
	calls    atomic.Int64
	release  chan struct{}
	result   *token.Token
	canceled atomic.Int64
}

func newBlockingLoader(result *token.Token) *blockingLoader {
	return &blockingLoader{release: make(chan struct{}), result: result}
}

func (l *blockingLoader) load(ctx context.Context, _ token.Key) (*token.Token, error) {
	l.calls.Add(1)
	select {
	case <-l.release:
		return l.result, nil
	case <-ctx.Done():
		l.canceled.Add(1)
		return nil, ctx.Err()
	}
}

func TestLookupSingleflight(t *testing.T) {
	for _, found := range []bool{true, false} {
		name := "missing key"
		if found {
			name = "stored key"
		}
		t.Run(name, func(t *testing.T) {
			c := mustNew(t, testConfig(newFakeClock()))
			k := keyN(1)
			var want *token.Token
			if found {
				want = rec(k, 2)
			}
			l := newBlockingLoader(want)
			const n = 100
			results := make(chan *token.Token, n)
			for range n {
				go func() {
					got, _, err := c.Lookup(context.Background(), k, l.load)
					if err != nil {
						t.Errorf("Lookup(%q) = %v", k, err)
					}
					results <- got
				}()
			}
			waitFor(t, 10*time.Second, "100 waiters", func() bool { return waiters(c, k) == n })
			close(l.release)
			for range n {
				if got := <-results; got != want {
					t.Errorf("Lookup(%q) = %v, want %v", k, indexOf(got), indexOf(want))
				}
			}
			if calls := l.calls.Load(); calls != 1 {
				t.Errorf("%d concurrent Lookups loaded %d times, want 1", n, calls)
			}
			if st := c.Stats(); st.Loads != 1 || st.Misses != n {
				t.Errorf("Stats() = Loads %d, Misses %d; want 1, %d", st.Loads, st.Misses, n)
			}
		})
	}
}

func TestLookupCancel(t *testing.T) {
	t.Run("one waiter leaves, the other gets the result", func(t *testing.T) {
		c := mustNew(t, testConfig(newFakeClock()))
		k := keyN(1)
		want := rec(k, 2)
		l := newBlockingLoader(want)

		ctxA, cancelA := context.WithCancel(context.Background())
		errA := make(chan error, 1)
		go func() {
			_, _, err := c.Lookup(ctxA, k, l.load)
			errA <- err
		}()
		waitFor(t, 10*time.Second, "the first waiter", func() bool { return waiters(c, k) == 1 })
		resB := make(chan *token.Token, 1)
		go func() {
			got, _, err := c.Lookup(context.Background(), k, l.load)
			if err != nil {
				t.Errorf("second Lookup(%q) = %v", k, err)
			}
			resB <- got
		}()
		waitFor(t, 10*time.Second, "the second waiter", func() bool { return waiters(c, k) == 2 })

		cancelA()
		if err := <-errA; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Lookup(%q) = %v, want context.Canceled", k, err)
		}
		close(l.release)
		if got := <-resB; got != want {
			t.Errorf("second Lookup(%q) = %v, want index 2", k, indexOf(got))
		}
		if l.calls.Load() != 1 || l.canceled.Load() != 0 {
			t.Errorf("loader: %d calls, %d cancelled; want 1, 0", l.calls.Load(), l.canceled.Load())
		}
		mustGet(t, c, k, 2)
	})

	t.Run("the last waiter cancels the load", func(t *testing.T) {
		c := mustNew(t, testConfig(newFakeClock()))
		k := keyN(1)
		l := newBlockingLoader(rec(k, 2))
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				if _, _, err := c.Lookup(ctx, k, l.load); !errors.Is(err, context.Canceled) {
					t.Errorf("Lookup(%q) = %v, want context.Canceled", k, err)
				}
			})
		}
		waitFor(t, 10*time.Second, "3 waiters", func() bool { return waiters(c, k) == 3 })
		cancel()
		wg.Wait()
		waitFor(t, 10*time.Second, "the load to see its ctx cancelled", func() bool { return l.canceled.Load() == 1 })

		// A new Lookup starts a new load rather than joining the dead one.
		close(l.release)
		if got := mustLookup(t, c, k, l.load); got == nil || got.Index != 2 {
			t.Errorf("Lookup(%q) after the cancelled load = %v, want index 2", k, indexOf(got))
		}
		if n := l.calls.Load(); n != 2 {
			t.Errorf("loader called %d times, want 2", n)
		}
	})

	t.Run("a cancelled context does not start a load", func(t *testing.T) {
		c := mustNew(t, testConfig(newFakeClock()))
		k := keyN(1)
		store := newFakeStore(rec(k, 1))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, _, err := c.Lookup(ctx, k, store.get); !errors.Is(err, context.Canceled) {
			t.Errorf("Lookup(%q) = %v, want context.Canceled", k, err)
		}
		if n := store.loads.Load(); n != 0 {
			t.Errorf("loads = %d, want 0", n)
		}
	})

	t.Run("the load is detached from the caller's ctx", func(t *testing.T) {
		c := mustNew(t, testConfig(newFakeClock()))
		k := keyN(1)
		type ctxKey struct{}
		ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), ctxKey{}, "v"), time.Hour)
		defer cancel()
		var sawValue, sawDeadline bool
		_, _, err := c.Lookup(ctx, k, func(ctx context.Context, _ token.Key) (*token.Token, error) {
			sawValue = ctx.Value(ctxKey{}) != nil
			_, sawDeadline = ctx.Deadline()
			return nil, nil
		})
		if err != nil || sawValue || sawDeadline {
			t.Errorf("Lookup(%q): err %v, loader saw the caller's value %v, deadline %v; want nil, false, false", k, err, sawValue, sawDeadline)
		}
	})
}

// TestLookupRace checks the fill-race rule: a row loaded while the log
// changes the key never replaces, and is never answered instead of, the
// newer state.
func TestLookupRace(t *testing.T) {
	k := keyN(1)
	stale := rec(k, 2) // what the store returns: read before the change
	tests := []struct {
		name       string
		during     func(c *Cache) // runs while the load is blocked
		row        *token.Token   // what the load returns
		want       uint64         // index answered; 0 = unknown
		wantCached bool           // Get(k) hits afterwards
	}{
		{"put still pinned", func(c *Cache) {
			c.Put(revoked(stale, 5))
		}, stale, 5, true},
		{"put unpinned and kept", func(c *Cache) {
			c.Put(revoked(stale, 5))
			c.Unpin(5)
		}, stale, 5, true},
		{"put unpinned and evicted", func(c *Cache) {
			c.Put(revoked(stale, 5))
			c.Unpin(5)
			evictShard(c, k)
		}, stale, 5, false},
		{"two puts, the last evicted", func(c *Cache) {
			c.Put(revoked(stale, 5))
			c.Put(revoked(stale, 6))
			c.Unpin(6)
			evictShard(c, k)
		}, stale, 6, false},
		{"delete still pinned", func(c *Cache) {
			c.Delete(k, 5, 4)
		}, stale, 0, false},
		{"delete unpinned", func(c *Cache) {
			c.Delete(k, 5, 4)
			c.Unpin(5)
		}, stale, 0, false},
		{"the store returned nothing, put evicted", func(c *Cache) {
			c.Put(rec(k, 5))
			c.Unpin(5)
			evictShard(c, k)
		}, nil, 5, false},
		{"the row is newer than the change", func(c *Cache) {
			c.Put(revoked(stale, 5))
			c.Unpin(5)
			evictShard(c, k)
		}, rec(k, 7), 7, false},
		{"another key of the shard changed", func(c *Cache) {
			other := keyN(2) // the cache has one shard
			c.Put(rec(other, 5))
			c.Unpin(5)
		}, stale, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(newFakeClock())
			cfg.Capacity, cfg.Shards = 8, 1
			c := mustNew(t, cfg)
			l := newBlockingLoader(tt.row)
			res := make(chan *token.Token, 1)
			go func() {
				got, _, err := c.Lookup(context.Background(), k, l.load)
				if err != nil {
					t.Errorf("Lookup(%q) = %v", k, err)
				}
				res <- got
			}()
			waitFor(t, 10*time.Second, "the load", func() bool { return l.calls.Load() == 1 })
			tt.during(c)
			close(l.release)
			got := <-res
			if (got == nil) != (tt.want == 0) || got != nil && got.Index != tt.want {
				t.Fatalf("Lookup(%q) = %v, want index %d (0 = unknown)", k, indexOf(got), tt.want)
			}
			if _, _, ok := c.Get(k); ok != tt.wantCached {
				t.Errorf("Get(%q) after the load: ok = %v, want %v", k, ok, tt.wantCached)
			}
		})
	}
}

// evictShard pushes every cached record out of k's shard by caching as
// many others (the tests using it run lru).
func evictShard(c *Cache, k token.Key) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range c.cfg.perShard {
		filler := keyN(1_000_000 + i)
		s.cacheLocked(filler, &entry{tok: rec(filler, 1)})
	}
	if _, ok := s.lru.peek(k); ok {
		panic("evictShard: the key is still cached")
	}
}

func TestLookupResetDuringLoad(t *testing.T) {
	c := mustNew(t, testConfig(newFakeClock()))
	k := keyN(1)
	var calls atomic.Int64
	release := make(chan struct{})
	load := func(ctx context.Context, _ token.Key) (*token.Token, error) {
		if calls.Add(1) == 1 {
			<-release
			return rec(k, 2), nil // read before the restore
		}
		return rec(k, 9), nil // the restored store
	}
	res := make(chan *token.Token, 1)
	go func() { res <- mustLookup(t, c, k, load) }()
	waitFor(t, 10*time.Second, "the load", func() bool { return calls.Load() == 1 })
	c.Reset()
	close(release)
	if got := <-res; got == nil || got.Index != 9 {
		t.Errorf("Lookup(%q) across Reset = %v, want index 9 (loaded again)", k, indexOf(got))
	}
	mustGet(t, c, k, 9)
}
