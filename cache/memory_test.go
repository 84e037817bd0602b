package cache

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/tokencache/tokencache/token"
)

// realisticToken returns the i-th token of a memory measurement, shaped like
// a row decoded from the store: the username (10 characters) is its own
// allocation, the realm and the scopes (3) are interned, Ext is nil.
func realisticToken(i int) *token.Token {
	scopes := [...]string{
		"read:all user:token write:all",
		"exec:admin read:image user:token",
		"admin:token read:all write:notebook",
	}
	return &token.Token{
		Key:      keyN(i),
		Hash:     token.Hash{byte(i), byte(i >> 8), 1},
		Index:    uint64(i + 1),
		Created:  token.At(epoch0),
		Expires:  token.At(epoch0) + 3600e9,
		Username: fmt.Sprintf("user%06d", i%1_000_000),
		// Built from fresh bytes and interned, as the decoders do.
		Realm:  token.Intern(string([]byte(token.DefaultRealm))),
		Scopes: token.Scopes(token.Intern(string([]byte(scopes[i%len(scopes)])))),
		Type:   token.TypeUser,
	}
}

// heapBytesPerToken fills a new cache of capacity n with n realistic tokens
// (in warm-start batches) and returns the live heap it added, per token: the
// records and their strings, the cache entries, golang-lru's list elements
// and maps, and the cache's fixed overhead.
func heapBytesPerToken(tb testing.TB, eviction string, n int) float64 {
	tb.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	cfg := DefaultConfig()
	cfg.Capacity, cfg.Eviction = n, eviction
	c := mustNew(tb, cfg)
	const batch = 1024
	toks := make([]*token.Token, 0, batch)
	filled := 0
	for i := 0; i < n; i += batch {
		toks = toks[:0]
		for j := i; j < min(i+batch, n); j++ {
			toks = append(toks, realisticToken(j))
		}
		filled += c.Fill(toks, c.Mark())
	}
	clear(toks[:cap(toks)])

	runtime.GC()
	runtime.ReadMemStats(&after)
	if filled < n*99/100 {
		tb.Fatalf("Fill cached %d of %d tokens", filled, n)
	}
	runtime.KeepAlive(c)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(filled)
}

// TestMemoryPerToken bounds the heap cost of a cached token. The 1,000,000
// token figure is BenchmarkMemoryPerToken.
func TestMemoryPerToken(t *testing.T) {
	const n = 100_000
	got := heapBytesPerToken(t, "lru", n)
	t.Logf("lru: %.0f heap bytes per cached token (%d tokens)", got, n)
	if got > 340 {
		t.Errorf("heap bytes per cached token = %.0f, want at most 340", got)
	}
}
