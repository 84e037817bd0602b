package cache

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokencache/tokencache/internal/fakeclock"
	"github.com/tokencache/tokencache/token"
)

// epoch0 is the fake clock's start.
var epoch0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// newFakeClock is a settable clock for Config.Now, at epoch0.
func newFakeClock() *fakeclock.Clock { return fakeclock.New(epoch0) }

// testConfig is a small cache with a fake clock.
func testConfig(clock *fakeclock.Clock) Config {
	cfg := DefaultConfig()
	cfg.Capacity = 1024
	cfg.Shards = 8
	cfg.NegativeCapacity = 1024
	cfg.Now = clock.Now
	return cfg
}

// mustNew returns a cache for cfg or fails the test.
func mustNew(tb testing.TB, cfg Config) *Cache {
	tb.Helper()
	c, err := New(cfg)
	if err != nil {
		tb.Fatalf("New(%+v) = %v", cfg, err)
	}
	return c
}

// keyN returns a distinct, well-spread key for i (the first 8 bytes, which
// choose the shard, are a mix of i).
func keyN(i int) token.Key {
	var k token.Key
	binary.LittleEndian.PutUint64(k[:8], uint64(i+1)*0x9e3779b97f4a7c15)
	binary.LittleEndian.PutUint64(k[8:], uint64(i+1))
	return k
}

// keysInShard returns n distinct keys that all fall in shard 0 of c.
func keysInShard(c *Cache, n int) []token.Key {
	var out []token.Key
	for i := 0; len(out) < n; i++ {
		if k := keyN(i); k.Shard()&c.mask == 0 {
			out = append(out, k)
		}
	}
	return out
}

// rec returns a valid record of k at index.
func rec(k token.Key, index uint64) *token.Token {
	return &token.Token{
		Key:      k,
		Hash:     token.Hash{1},
		Index:    index,
		Created:  token.At(epoch0),
		Username: "user",
		Realm:    token.DefaultRealm,
		Type:     token.TypeUser,
	}
}

// revoked returns a revoked copy of t at index.
func revoked(t *token.Token, index uint64) *token.Token {
	r := t.Clone()
	r.Index = index
	r.RevokedAt = token.At(epoch0.Add(time.Hour))
	return r
}

// fakeStore is a store for Loaders: rows by key, with a load counter.
type fakeStore struct {
	mu    sync.Mutex
	rows  map[token.Key]*token.Token
	loads atomic.Int64
}

func newFakeStore(rows ...*token.Token) *fakeStore {
	s := &fakeStore{rows: make(map[token.Key]*token.Token)}
	for _, r := range rows {
		s.rows[r.Key] = r
	}
	return s
}

func (s *fakeStore) set(t *token.Token) {
	s.mu.Lock()
	s.rows[t.Key] = t
	s.mu.Unlock()
}

func (s *fakeStore) get(_ context.Context, k token.Key) (*token.Token, error) {
	s.loads.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rows[k], nil
}

func (s *fakeStore) scan(_ context.Context, fn func(token.Key) error) error {
	s.mu.Lock()
	keys := make([]token.Key, 0, len(s.rows))
	for k := range s.rows {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	for _, k := range keys {
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

// mustGet fails the test unless Get(k) returns a record with index want.
func mustGet(tb testing.TB, c *Cache, k token.Key, want uint64) *token.Token {
	tb.Helper()
	t, _, ok := c.Get(k)
	if !ok {
		tb.Fatalf("Get(%q) = miss, want index %d", k, want)
	}
	if t.Index != want {
		tb.Fatalf("Get(%q) = index %d, want %d", k, t.Index, want)
	}
	return t
}

// mustMiss fails the test unless Get(k) misses.
func mustMiss(tb testing.TB, c *Cache, k token.Key) {
	tb.Helper()
	if t, _, ok := c.Get(k); ok {
		tb.Fatalf("Get(%q) = index %d, want miss", k, t.Index)
	}
}

// mustLookup calls Lookup and fails the test on an error.
func mustLookup(tb testing.TB, c *Cache, k token.Key, load Loader) *token.Token {
	tb.Helper()
	t, _, err := c.Lookup(context.Background(), k, load)
	if err != nil {
		tb.Fatalf("Lookup(%q) = %v", k, err)
	}
	return t
}

// indexOf describes a lookup result for messages.
func indexOf(t *token.Token) string {
	if t == nil {
		return "nil"
	}
	return fmt.Sprintf("index %d", t.Index)
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// waiters returns how many Lookups wait on the load of k.
func waiters(c *Cache, k token.Key) int {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.flights[k]; f != nil {
		return f.waiters
	}
	return 0
}
