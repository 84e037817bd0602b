package persist_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tokencache/tokencache/cache"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/persist/mysqltest"
	"github.com/tokencache/tokencache/replica"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// BenchmarkMySQLWrite measures rows per second written to MariaDB in
// transactions of one row (what write-through costs when writes arrive one
// at a time) against the multi-row batches write-behind sends
// (persist.batch_size). Each transaction also records the persisted index,
// as the writer's do.
//
//	go test ./persist -run '^$' -bench MySQLWrite -benchtime 20000x
func BenchmarkMySQLWrite(b *testing.B) {
	srv := mysqltest.Shared(b)
	for _, size := range []int{1, 64, 512} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := openStore(b, mysqlConfig(srv.NewDatabase(b)))
			rows := make([]*token.Token, b.N)
			now := time.Now()
			for i := range rows {
				c := token.At(now.Add(time.Duration(i) * time.Microsecond))
				rows[i] = &token.Token{Key: token.NewKey(), Hash: token.Hash{1, 2, 3}, Index: uint64(i + 1), Created: c,
					Expires: c.Add(time.Hour), Username: fmt.Sprintf("user%d", i%1000), Realm: "default",
					Scopes: "read write", Format: token.FormatOpaque, Type: token.TypeSession}
			}
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			for off := 0; off < b.N; off += size {
				end := min(b.N, off+size)
				if err := s.Write(ctx, &persist.Batch{Puts: rows[off:end], Index: uint64(end)}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
		})
	}
}

// BenchmarkMySQLNewest measures the store side of warm start: paging
// through every row newest first in pages of cache.load_batch_size (1024).
func BenchmarkMySQLNewest(b *testing.B) {
	srv := mysqltest.Shared(b)
	s := openStore(b, mysqlConfig(srv.NewDatabase(b)))
	const n = 100_000
	now := time.Now()
	ctx := context.Background()
	for off := 0; off < n; off += 2048 {
		var puts []*token.Token
		for i := off; i < off+2048 && i < n; i++ {
			c := token.At(now.Add(time.Duration(i) * time.Microsecond))
			puts = append(puts, &token.Token{Key: token.NewKey(), Hash: token.Hash{1}, Index: uint64(i + 1), Created: c,
				Username: "u", Realm: "default", Scopes: "read", Format: token.FormatOpaque, Type: token.TypeSession})
		}
		if err := s.Write(ctx, &persist.Batch{Puts: puts, Index: uint64(off + len(puts))}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	total := 0
	for range b.N {
		var cur persist.Cursor
		for {
			page, next, err := s.Newest(ctx, cur, 1024)
			if err != nil {
				b.Fatal(err)
			}
			total += len(page)
			if next.IsZero() {
				break
			}
			cur = next
		}
	}
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "rows/s")
}

// BenchmarkMySQLServiceMiss is the miss path without HTTP: the token
// service validating tokens that are in MariaDB but not in its cache
// (capacity 16 for 20,000 tokens), from 16 goroutines, against
// BenchmarkMySQLServicePointSelect, the same primary-key SELECT run from Go
// directly (the floor).
//
//	go test ./persist -run '^$' -bench 'MySQLService' -benchtime 20000x
func BenchmarkMySQLServiceMiss(b *testing.B) {
	srv := mysqltest.Shared(b)
	db := srv.NewDatabase(b)
	cfg := mysqlConfig(db)
	s := openStoreQuiet(b, cfg)
	toks := seedValidTokens(b, s, 20000)
	cc := cache.DefaultConfig()
	cc.Capacity, cc.Shards = 16, 1
	c, err := cache.New(cc)
	if err != nil {
		b.Fatal(err)
	}
	st, err := replica.NewMachine(replica.DefaultWriterConfig(), c, s, nil)
	if err != nil {
		b.Fatal(err)
	}
	idx, _ := s.PersistedIndex(context.Background())
	svc, err := tokens.New(tokens.DefaultConfig(), st, replica.NewLocalLog(st, idx), nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer svc.Close(context.Background())
	time.Sleep(time.Second) // warm start and key filter
	before := c.Stats().Loads
	mysqltest.Latencies(b, func(i int) error {
		v := svc.Validate(context.Background(), []byte(toks[rand.IntN(len(toks))]))
		if v.State != token.StateValid {
			return fmt.Errorf("validate = %v %w", v.State, v.Err)
		}
		return nil
	})
	b.ReportMetric(float64(c.Stats().Loads-before)/float64(b.N), "reads/op")
}

func BenchmarkMySQLServicePointSelect(b *testing.B) {
	srv := mysqltest.Shared(b)
	db := srv.NewDatabase(b)
	s := openStoreQuiet(b, mysqlConfig(db))
	seedValidTokens(b, s, 20000)
	mysqltest.PointSelectFloor(b, db.DB(b), 15)
}

func openStoreQuiet(b *testing.B, cfg persist.Config) persist.Store {
	b.Helper()
	s, err := persist.Open(context.Background(), cfg, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func seedValidTokens(b *testing.B, s persist.Store, n int) []string {
	b.Helper()
	h := token.NewHasher(nil)
	now := time.Now()
	var texts []string
	for off := 0; off < n; off += 2048 {
		var puts []*token.Token
		for i := off; i < min(n, off+2048); i++ {
			k, secret := token.NewKey(), token.NewSecret()
			texts = append(texts, token.Encode(token.DefaultPrefix, k, secret))
			c := token.At(now.Add(time.Duration(i-n) * time.Millisecond))
			puts = append(puts, &token.Token{Key: k, Hash: h.Sum(k, []byte(secret)), Index: uint64(i + 1), Created: c,
				Expires: c.Add(24 * time.Hour), Username: fmt.Sprintf("user%d", i%5000), Realm: token.DefaultRealm,
				Scopes: "read", Format: token.FormatOpaque, Type: token.TypeSession})
		}
		if err := s.Write(context.Background(), &persist.Batch{Puts: puts, Index: uint64(off + len(puts))}); err != nil {
			b.Fatal(err)
		}
	}
	return texts
}
