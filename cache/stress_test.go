package cache

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokencache/tokencache/token"
)

// The stress test checks the invariant that matters most: once a version of
// a token has been applied (Put, Delete), no sequence of evictions, Unpins,
// fills and concurrent loads makes Get or Lookup return an older version
// (in particular, a token that was revoked or deleted never answers with a
// version from before).
//
// The apply side writes key after key through Put and Delete, each key
// living a few versions (valid, then revoked, then deleted, never reused);
// a writer persists Changes to a fake store and Unpins them; a warm-start
// goroutine Fills stale batches; readers Lookup and Get with a loader that
// reads the store at a random moment of a randomly delayed call, so that it
// routinely returns rows that are stale by the time it returns. The cache is
// tiny, so everything is evicted all the time.

const (
	stressSlots       = 32  // keys alive at once
	stressGenerations = 400 // keys per slot over the test
	stressOps         = 6000
)

// stressKey is the key of generation g of slot s.
func stressKey(s, g int) token.Key { return keyN(s*stressGenerations + g) }

// floor is the newest change applied to one key (index<<1 | deleted), set
// once the change is applied; deleting is set just before a Delete is
// applied, for the readers that see it before the floor moves.
type floor struct {
	v        atomic.Uint64
	deleting atomic.Bool
}

func (f *floor) set(index uint64, deleted bool) {
	v := index << 1
	if deleted {
		v |= 1
	}
	f.v.Store(v)
}

func (f *floor) get() (index uint64, deleted bool) {
	v := f.v.Load()
	return v >> 1, v&1 == 1
}

// stressStore is the store behind the cache: rows only move forward.
type stressStore struct {
	mu   sync.Mutex
	rows map[token.Key]*token.Token
}

func (s *stressStore) write(changes []Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range changes {
		row := s.rows[ch.Key]
		switch {
		case ch.Token != nil:
			if row == nil || row.Index < ch.Token.Index {
				s.rows[ch.Key] = ch.Token
			}
		case row != nil && row.Index <= ch.MaxIndex:
			delete(s.rows, ch.Key)
		}
	}
}

func (s *stressStore) read(k token.Key) *token.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rows[k]
}

// snapshot returns up to n rows.
func (s *stressStore) snapshot(n int) []*token.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*token.Token, 0, n)
	for _, r := range s.rows {
		if len(out) == n {
			break
		}
		out = append(out, r)
	}
	return out
}

// jitter sleeps up to max, or not at all half of the time.
func jitter(r *rand.Rand, max time.Duration) {
	if r.IntN(2) == 0 {
		return
	}
	time.Sleep(time.Duration(r.Int64N(int64(max))))
}

func TestStressNoOlderVersion(t *testing.T) {
	for _, eviction := range []string{"lru", "2q", "arc"} {
		t.Run(eviction, func(t *testing.T) {
			t.Parallel()
			runStress(t, eviction)
		})
	}
}

func runStress(t *testing.T, eviction string) {
	cfg := DefaultConfig()
	cfg.Capacity, cfg.Eviction, cfg.NegativeCapacity = 16, eviction, 16
	c := mustNew(t, cfg)
	store := &stressStore{rows: make(map[token.Key]*token.Token)}
	if err := c.BuildKeyFilter(context.Background(), 1024, func(context.Context, func(token.Key) error) error {
		return nil
	}); err != nil {
		t.Fatalf("BuildKeyFilter() = %v", err)
	}

	floors := make([]floor, stressSlots*stressGenerations)
	var gens [stressSlots]atomic.Int64 // current generation of each slot
	floorOf := func(s, g int) *floor { return &floors[s*stressGenerations+g] }

	var stop atomic.Bool
	var violations atomic.Int64
	var lookups, loads, stale atomic.Int64
	fail := func(format string, args ...any) {
		if violations.Add(1) <= 10 {
			t.Errorf(format, args...)
		}
	}

	// The loader reads the store at a random point of a delayed call.
	load := func(ctx context.Context, k token.Key) (*token.Token, error) {
		loads.Add(1)
		r := rand.New(rand.NewPCG(rand.Uint64(), 0))
		jitter(r, 300*time.Microsecond)
		row := store.read(k)
		jitter(r, 300*time.Microsecond)
		if now := store.read(k); now != row {
			stale.Add(1)
		}
		return row, nil
	}

	var wg sync.WaitGroup
	// Apply side: Put and Delete in log order, then Advance.
	applied := make(chan struct{})
	wg.Go(func() {
		defer close(applied)
		r := rand.New(rand.NewPCG(1, 2))
		current := make([]*token.Token, stressSlots)
		index := uint64(0)
		for range stressOps {
			s := r.IntN(stressSlots)
			g := int(gens[s].Load())
			if g >= stressGenerations-1 {
				continue
			}
			index++
			k := stressKey(s, g)
			cur := current[s]
			switch {
			case cur == nil:
				cur = rec(k, index)
				c.Put(cur)
				floorOf(s, g).set(index, false)
			case r.IntN(8) == 0: // past retention: delete, move to a new key
				floorOf(s, g).deleting.Store(true)
				c.Delete(k, index, cur.Index)
				floorOf(s, g).set(index, true)
				cur = nil
				gens[s].Add(1)
			case cur.RevokedAt == 0 && r.IntN(3) == 0:
				cur = revoked(cur, index)
				c.Put(cur)
				floorOf(s, g).set(index, false)
			default: // modify (a revoked token stays revoked)
				next := cur.Clone()
				next.Index = index
				cur = next
				c.Put(cur)
				floorOf(s, g).set(index, false)
			}
			current[s] = cur
			if r.IntN(16) == 0 {
				c.ApplyTouch(k, token.At(epoch0.Add(time.Duration(index))))
			}
			c.Advance(index)
			if r.IntN(4) == 0 {
				time.Sleep(time.Duration(r.IntN(50)) * time.Microsecond)
			}
		}
	})

	// Writer: persist pinned changes, then release them.
	wg.Go(func() {
		r := rand.New(rand.NewPCG(3, 4))
		var persisted uint64
		for done := false; !done; {
			select {
			case <-applied:
				done = true
			default:
			}
			changes, upTo := c.Changes(persisted, 1+r.IntN(8))
			store.write(changes)
			jitter(r, 200*time.Microsecond)
			persisted = upTo
			c.Unpin(upTo)
			if done && c.Pinned() > 0 {
				done = false // drain what is left
			}
		}
	})

	// Warm start: fill batches read from the store after a Mark.
	wg.Go(func() {
		r := rand.New(rand.NewPCG(5, 6))
		for !stop.Load() {
			m := c.Mark()
			jitter(r, 200*time.Microsecond)
			batch := store.snapshot(8)
			jitter(r, 200*time.Microsecond)
			c.Fill(batch, m)
		}
	})

	// Uses are drained concurrently.
	wg.Go(func() {
		for !stop.Load() {
			c.DrainUsed(64)
			time.Sleep(50 * time.Microsecond)
		}
	})

	// Readers.
	for w := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(10+w), 0))
			for !stop.Load() {
				s := r.IntN(stressSlots)
				g := int(gens[s].Load())
				if g > 0 && r.IntN(4) == 0 {
					g = r.IntN(g + 1) // an older key, deleted by now
				}
				k := stressKey(s, g)
				f := floorOf(s, g)
				want, wantDeleted := f.get()
				var got *token.Token
				if r.IntN(4) == 0 {
					got, _, _ = c.Get(k)
				} else {
					var err error
					got, _, err = c.Lookup(context.Background(), k, load)
					if err != nil {
						fail("Lookup(%q) = %v", k, err)
						continue
					}
					lookups.Add(1)
					if got == nil && want != 0 && !wantDeleted {
						if !f.deleting.Load() {
							fail("Lookup(%q) = nil, want index >= %d (the key exists)", k, want)
						}
					}
				}
				if got == nil {
					continue
				}
				if got.Key != k {
					fail("Lookup(%q) = record of %q", k, got.Key)
				}
				if wantDeleted {
					fail("Lookup(%q) = index %d, want nil (deleted at %d)", k, got.Index, want)
				} else if got.Index < want {
					fail("Lookup(%q) = index %d, want index >= %d (an older version)", k, got.Index, want)
				}
				c.MarkUsed(k, token.At(epoch0.Add(time.Duration(r.IntN(1<<40)))))
			}
		})
	}

	<-applied
	// Let the readers run against the drained, evicted state for a moment.
	time.Sleep(50 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	st := c.Stats()
	t.Logf("%s: %d lookups, %d loads (%d returned a row that changed during the call), %d evictions, %d filter rejects",
		eviction, lookups.Load(), loads.Load(), stale.Load(), st.Evictions, st.FilterRejects)
	if stale.Load() == 0 || st.Evictions == 0 {
		t.Errorf("the stress test did not stress: %d stale loads, %d evictions", stale.Load(), st.Evictions)
	}
	if st.Pinned != 0 {
		t.Errorf("Pinned() = %d after the writer drained everything, want 0", st.Pinned)
	}
}
