package persist

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokencache/tokencache/token"
)

// Run with:
//
//	go test ./persist/ -run '^$' -bench SQLite -benchtime 2s

func benchToken(i int) *token.Token {
	created := token.At(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)).Add(time.Duration(i) * time.Millisecond)
	return &token.Token{
		Key: token.NewKey(), Hash: token.Hash{byte(i), byte(i >> 8), 1}, Index: uint64(i + 1),
		Created: created, Expires: created.Add(time.Hour), Username: fmt.Sprintf("user%d", i%5000),
		Realm: token.DefaultRealm, Scopes: "read:all user:token", Type: token.TypeSession,
	}
}

// benchStore opens a SQLite store in a temporary directory holding n rows.
func benchStore(b *testing.B, n int, synchronous string) (*SQLStore, []token.Key) {
	b.Helper()
	s, err := openSQLite(b.Context(), DefaultConfig(), filepath.Join(b.TempDir(), "tokens.db"), discardLog(), sqliteOptions{synchronous: synchronous})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	keys := make([]token.Key, 0, n)
	for start := 0; start < n; start += 4096 {
		batch := &Batch{Index: uint64(start + 1)}
		for i := start; i < min(n, start+4096); i++ {
			t := benchToken(i)
			keys = append(keys, t.Key)
			batch.Puts = append(batch.Puts, t)
		}
		if err := s.Write(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	return s, keys
}

// BenchmarkSQLiteGet is the floor of a cache miss: one Get by key on a
// table of 100k rows, found and not found, alone and from many goroutines.
func BenchmarkSQLiteGet(b *testing.B) {
	s, keys := benchStore(b, 100_000, "")
	ctx := b.Context()
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.Get(ctx, keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		k := token.NewKey()
		for b.Loop() {
			if _, err := s.Get(ctx, k); !errors.Is(err, ErrNotFound) {
				b.Fatal(err)
			}
		}
	})
	b.Run("hit-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := s.Get(ctx, keys[i%len(keys)]); err != nil {
					b.Fatal(err)
				}
				i += 7
			}
		})
	})
	b.Run("miss-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			k := token.NewKey()
			for pb.Next() {
				if _, err := s.Get(ctx, k); !errors.Is(err, ErrNotFound) {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkSQLiteWrite compares one Write of 512 puts with 512 Writes of
// one put each (one transaction and one fsync each), under synchronous FULL
// (the default) and NORMAL. ns/row is the figure to compare.
func BenchmarkSQLiteWrite(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		for _, per := range []int{512, 1} {
			b.Run(fmt.Sprintf("sync=%s/rows-per-write=%d", sync, per), func(b *testing.B) {
				s, _ := benchStore(b, 10_000, sync)
				b.ReportAllocs()
				i := 10_000
				rows := 0
				start := time.Now()
				for b.Loop() {
					batch := &Batch{Index: uint64(i + 512)}
					for range 512 {
						batch.Puts = append(batch.Puts, benchToken(i))
						i++
						if len(batch.Puts) == per {
							if err := s.Write(b.Context(), batch); err != nil {
								b.Fatal(err)
							}
							batch.Puts = batch.Puts[:0]
						}
					}
					rows += 512
				}
				b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(rows), "ns/row")
			})
		}
	}
}

// BenchmarkSQLiteWriteChunk writes 1000 rows in one transaction with
// multi-row upserts of at most chunk rows: chunk=1 is 1000 single-row
// upserts in one transaction; Write uses putChunk.
func BenchmarkSQLiteWriteChunk(b *testing.B) {
	for _, chunk := range []int{1, 16, 64, 256, 1024} {
		b.Run(fmt.Sprintf("chunk=%d", chunk), func(b *testing.B) {
			s, _ := benchStore(b, 10_000, "")
			s.q.putChunk, s.q.upsert = chunk, nil
			for n := 1; n <= chunk; n *= 2 {
				s.q.upsert = append(s.q.upsert, upsertSQL(s.d, n))
			}
			if err := s.prepareWrites(b.Context()); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 10_000
			rows := 0
			start := time.Now()
			for b.Loop() {
				batch := &Batch{Index: uint64(i + 1000)}
				for range 1000 {
					batch.Puts = append(batch.Puts, benchToken(i))
					i++
				}
				if err := s.Write(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
				rows += 1000
			}
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(rows), "ns/row")
		})
	}
}

// BenchmarkSQLiteNewest pages through 100k rows newest first, 1024 at a
// time, as warm start does.
func BenchmarkSQLiteNewest(b *testing.B) {
	const n = 100_000
	s, _ := benchStore(b, n, "")
	b.ReportAllocs()
	rows := 0
	start := time.Now()
	for b.Loop() {
		var cur Cursor
		got := 0
		for {
			page, next, err := s.Newest(b.Context(), cur, 1024)
			if err != nil {
				b.Fatal(err)
			}
			got += len(page)
			if next.IsZero() {
				break
			}
			cur = next
		}
		if got != n {
			b.Fatalf("Newest paged %d rows, want %d", got, n)
		}
		rows += got
	}
	b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "tokens/s")
}

// BenchmarkMemoryGet is the memory store's Get, for comparison.
func BenchmarkMemoryGet(b *testing.B) {
	m := NewMemory()
	batch := &Batch{}
	for i := range 100_000 {
		batch.Puts = append(batch.Puts, benchToken(i))
	}
	if err := m.Write(b.Context(), batch); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := m.Get(b.Context(), batch.Puts[i%len(batch.Puts)].Key); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
