package cache

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/tokencache/tokencache/token"
)

// randomKeys returns n keys from a seeded generator.
func randomKeys(seed uint64, n int) []token.Key {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	keys := make([]token.Key, n)
	for i := range keys {
		for j := 0; j < token.KeySize; j += 8 {
			v := r.Uint64()
			for b := range 8 {
				keys[i][j+b] = byte(v >> (8 * b))
			}
		}
	}
	return keys
}

// storeOf returns a fake store holding a record for every key.
func storeOf(keys []token.Key) *fakeStore {
	s := newFakeStore()
	for _, k := range keys {
		s.set(rec(k, 1))
	}
	return s
}

func TestKeyFilterFlood(t *testing.T) {
	c := mustNew(t, testConfig(newFakeClock()))
	known := randomKeys(1, 1000)
	store := storeOf(known)
	if err := c.BuildKeyFilter(context.Background(), 100_000, store.scan); err != nil {
		t.Fatalf("BuildKeyFilter() = %v", err)
	}
	const flood = 10_000
	for _, k := range randomKeys(2, flood) {
		if got := mustLookup(t, c, k, store.get); got != nil {
			t.Fatalf("Lookup(%q) of a random key = %v, want nil", k, indexOf(got))
		}
	}
	if n := store.loads.Load(); n != 0 {
		t.Errorf("a flood of %d random keys loaded %d times, want 0", flood, n)
	}
	if st := c.Stats(); st.FilterRejects != flood {
		t.Errorf("Stats().FilterRejects = %d, want %d", st.FilterRejects, flood)
	}
	// Every stored key still loads (no false negatives).
	for _, k := range known {
		if got := mustLookup(t, c, k, store.get); got == nil {
			t.Fatalf("Lookup(%q) of a stored key = nil, want the record", k)
		}
	}
}

func TestKeyFilterNotUsedBeforeBuild(t *testing.T) {
	c := mustNew(t, testConfig(newFakeClock()))
	k := keyN(1)
	c.Put(rec(k, 1)) // Put before any build must not create a filter
	c.Unpin(1)
	c.Reset()
	store := newFakeStore(rec(k, 1))
	if got := mustLookup(t, c, k, store.get); got == nil {
		t.Errorf("Lookup(%q) without a key filter = nil, want the record", k)
	}
}

func TestKeyFilterDisabled(t *testing.T) {
	cfg := testConfig(newFakeClock())
	cfg.KeyFilter = false
	c := mustNew(t, cfg)
	scanned := false
	err := c.BuildKeyFilter(context.Background(), 10, func(context.Context, func(token.Key) error) error {
		scanned = true
		return nil
	})
	if err != nil || scanned {
		t.Errorf("BuildKeyFilter() without KeyFilter = %v, scanned %v; want nil, false", err, scanned)
	}
	store := newFakeStore()
	mustLookup(t, c, keyN(1), store.get)
	if store.loads.Load() != 1 {
		t.Errorf("Lookup without a key filter did not ask the store")
	}
}

// TestKeyFilterWritesDuringBuild checks that no key written around a build
// is missing from the filter: pinned before it (not in the store yet), put
// during the scan, and put after it.
func TestKeyFilterWritesDuringBuild(t *testing.T) {
	c := mustNew(t, testConfig(newFakeClock()))
	known := randomKeys(3, 500)
	store := storeOf(known)
	pinnedBefore := keyN(1)
	c.Put(rec(pinnedBefore, 1)) // not in the store
	during := randomKeys(4, 50)
	scan := func(ctx context.Context, fn func(token.Key) error) error {
		for i, k := range during {
			c.Put(rec(k, uint64(10+i)))
		}
		return store.scan(ctx, fn)
	}
	if err := c.BuildKeyFilter(context.Background(), 1000, scan); err != nil {
		t.Fatalf("BuildKeyFilter() = %v", err)
	}
	after := keyN(2)
	c.Put(rec(after, 100))
	c.Unpin(100)
	all := append(append([]token.Key{pinnedBefore, after}, during...), known...)
	for _, k := range all {
		if !c.keys.mayContain(k) {
			t.Errorf("key filter rejects %q, written around the build", k)
		}
	}
}

func TestKeyFilterBuildError(t *testing.T) {
	c := mustNew(t, testConfig(newFakeClock()))
	store := storeOf(randomKeys(5, 100))
	if err := c.BuildKeyFilter(context.Background(), 100, store.scan); err != nil {
		t.Fatalf("BuildKeyFilter() = %v", err)
	}
	errScan := errors.New("scan failed")
	failing := func(ctx context.Context, fn func(token.Key) error) error {
		_ = fn(keyN(1))
		return errScan
	}
	if err := c.BuildKeyFilter(context.Background(), 100, failing); !errors.Is(err, errScan) {
		t.Fatalf("BuildKeyFilter(failing scan) = %v, want %v", err, errScan)
	}
	// The previous filter stays in use.
	mustLookup(t, c, randomKeys(6, 1)[0], store.get)
	if st := c.Stats(); st.FilterRejects != 1 || store.loads.Load() != 0 {
		t.Errorf("after a failed rebuild: FilterRejects %d, loads %d; want 1, 0", st.FilterRejects, store.loads.Load())
	}
	if c.keys.building.Load() != nil {
		t.Errorf("a failed build left its filter receiving Puts")
	}
}

func TestKeyFilterResetDuringBuild(t *testing.T) {
	c := mustNew(t, testConfig(newFakeClock()))
	scan := func(ctx context.Context, fn func(token.Key) error) error {
		c.Reset()
		return nil
	}
	if err := c.BuildKeyFilter(context.Background(), 10, scan); !errors.Is(err, ErrReset) {
		t.Fatalf("BuildKeyFilter() across Reset = %v, want ErrReset", err)
	}
	if c.keys.active.Load() != nil {
		t.Errorf("a filter built before Reset is in use")
	}
}

// TestKeyFilterFalsePositiveRate measures the false-positive rate at the
// sized count, and after a build whose expected count was far too small
// (the build resizes and scans again).
func TestKeyFilterFalsePositiveRate(t *testing.T) {
	const n, probes = 100_000, 200_000
	tests := []struct {
		name     string
		expected int
		scans    int
	}{
		{"sized", n, 1},
		{"undersized", n / 10, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustNew(t, testConfig(newFakeClock()))
			store := storeOf(randomKeys(7, n))
			scans := 0
			scan := func(ctx context.Context, fn func(token.Key) error) error {
				scans++
				return store.scan(ctx, fn)
			}
			if err := c.BuildKeyFilter(context.Background(), tt.expected, scan); err != nil {
				t.Fatalf("BuildKeyFilter() = %v", err)
			}
			if scans != tt.scans {
				t.Errorf("BuildKeyFilter(expected %d) scanned %d times, want %d", tt.expected, scans, tt.scans)
			}
			fp := 0
			for _, k := range randomKeys(8, probes) {
				if c.keys.mayContain(k) {
					fp++
				}
			}
			rate := float64(fp) / probes
			t.Logf("false positives: %.3f%% (%d of %d) with %d keys", 100*rate, fp, probes, n)
			if rate > 0.015 {
				t.Errorf("false-positive rate = %.3f%%, want at most 1.5%%", 100*rate)
			}
		})
	}
}

// TestKeyFilterLoadAndRebuild: keys added after a build fill the filter past
// what it was sized for (false positives climb); KeyFilterLoad reports it,
// and a rebuild sized from it brings the false-positive rate back down.
func TestKeyFilterLoadAndRebuild(t *testing.T) {
	c := mustNew(t, testConfig(newFakeClock()))
	var stored []token.Key
	scan := func(ctx context.Context, fn func(token.Key) error) error {
		for _, k := range stored {
			if err := fn(k); err != nil {
				return err
			}
		}
		return nil
	}
	if keys, capacity := c.KeyFilterLoad(); keys != 0 || capacity != 0 {
		t.Fatalf("KeyFilterLoad before a build = %d, %d; want 0, 0", keys, capacity)
	}
	if err := c.BuildKeyFilter(context.Background(), 0, scan); err != nil {
		t.Fatal(err)
	}
	_, capacity := c.KeyFilterLoad()
	n := 4 * capacity
	for i := range n {
		k := keyN(i)
		stored = append(stored, k)
		c.Put(rec(k, uint64(i+1)))
	}
	c.Unpin(uint64(n))
	keys, capacity := c.KeyFilterLoad()
	if keys != n || keys <= capacity+capacity/4 {
		t.Fatalf("KeyFilterLoad after %d puts = %d keys, sized for %d; want it reported as over capacity", n, keys, capacity)
	}
	fp := func() float64 {
		hits := 0
		for i := range 20000 {
			if c.keys.mayContain(keyN(10_000_000 + i)) {
				hits++
			}
		}
		return float64(hits) / 20000
	}
	if rate := fp(); rate < 0.05 {
		t.Fatalf("false-positive rate of an overfull filter = %.3f; the test needs it high", rate)
	}
	if err := c.BuildKeyFilter(context.Background(), 2*keys, scan); err != nil {
		t.Fatal(err)
	}
	if keys, capacity := c.KeyFilterLoad(); capacity < keys {
		t.Errorf("after rebuild: %d keys, sized for %d", keys, capacity)
	}
	if rate := fp(); rate > 0.02 {
		t.Errorf("false-positive rate after rebuild = %.3f, want about 1%%", rate)
	}
	for _, k := range stored {
		if !c.keys.mayContain(k) {
			t.Fatalf("rebuilt filter lost key %v", k)
		}
	}
}

// TestKeyFilterNoFalseNegativeDuringBuild races Puts against builds over an
// empty store (fast, so a whole build can fit inside one Put): once Put(k)
// has returned, the filter in use must hold k, else a lookup of that token,
// once unpinned and evicted, answers unknown without asking the store.
func TestKeyFilterNoFalseNegativeDuringBuild(t *testing.T) {
	empty := func(context.Context, func(token.Key) error) error { return nil }
	for iter := range 10 {
		c := mustNew(t, testConfig(newFakeClock()))
		var stop atomic.Bool
		builds := make(chan struct{})
		go func() {
			defer close(builds)
			for !stop.Load() {
				if err := c.BuildKeyFilter(context.Background(), 0, empty); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		for i := range 2000 {
			k := keyN(iter*2000 + i)
			c.Put(rec(k, uint64(i+1)))
			if !c.keys.mayContain(k) {
				stop.Store(true)
				<-builds
				t.Fatalf("iteration %d: Put(key %d) returned, but the key filter in use says it does not exist", iter, i)
			}
		}
		stop.Store(true)
		<-builds
	}
}
