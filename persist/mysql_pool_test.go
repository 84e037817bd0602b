package persist

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokencache/tokencache/persist/mysqltest"
	"github.com/tokencache/tokencache/token"
)

func openMySQLForTest(t *testing.T, change func(*Config)) *SQLStore {
	t.Helper()
	db := mysqltest.Shared(t).NewDatabase(t)
	cfg := DefaultConfig()
	cfg.Store, cfg.URL, cfg.Username, cfg.Password = StoreMySQL, db.URL, db.User, db.Password
	change(&cfg)
	s, err := Open(testCtx(t), cfg, "", nil)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.(*SQLStore)
}

// TestMySQLPoolTimeout: with every connection of pool_size + max_overflow
// in use, an operation waits pool_timeout for one and then fails with a
// clear ErrUnavailable, instead of waiting for ever.
func TestMySQLPoolTimeout(t *testing.T) {
	s := openMySQLForTest(t, func(c *Config) {
		c.PoolSize, c.MaxOverflow, c.PoolTimeout = 1, 1, 300*time.Millisecond
	})
	// Hold both connections: Scan keeps its connection until fn returns,
	// once there is a row to hand to fn.
	if err := s.Write(context.Background(), &Batch{Puts: []*token.Token{testRow(1)}}); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			_ = s.Scan(context.Background(), func(*token.Token) error { <-release; return nil })
		})
	}
	waitUntil(t, func() bool { return len(s.rgate.slots) == 2 })
	start := time.Now()
	_, err := s.Get(context.Background(), token.NewKey())
	took := time.Since(start)
	close(release)
	wg.Wait()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "pool_timeout") {
		t.Fatalf("Get with the pool exhausted = %v, want ErrUnavailable naming pool_timeout", err)
	}
	if took < 250*time.Millisecond || took > 3*time.Second {
		t.Errorf("Get with the pool exhausted failed after %s, want about pool_timeout (300ms)", took)
	}
	if _, err := s.Get(context.Background(), token.NewKey()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after the connections came back = %v, want ErrNotFound", err)
	}
}

// TestMySQLPoolMapping: pool_size is the connections kept idle,
// pool_size + max_overflow the most open at once (the extra ones are kept
// while the pool is busy and closed once it has needed at most pool_size
// for a trim period), -1 no limit; pool_recycle replaces old connections.
func TestMySQLPoolMapping(t *testing.T) {
	s := openMySQLForTest(t, func(c *Config) {
		c.PoolSize, c.MaxOverflow, c.PoolRecycle = 2, 3, 400*time.Millisecond
	})
	if got := s.rdb.Stats().MaxOpenConnections; got != 5 {
		t.Errorf("MaxOpenConnections = %d, want pool_size + max_overflow = 5", got)
	}
	// Scan holds its connection while fn blocks, once there is a row.
	if err := s.Write(context.Background(), &Batch{Puts: []*token.Token{testRow(1)}}); err != nil {
		t.Fatal(err)
	}
	burst := func() { holdConnections(t, s, 5) }
	burst()
	if st := s.rdb.Stats(); st.MaxIdleClosed != 0 {
		t.Errorf("right after a burst of 5: %d closed as overflow; want every connection kept for reuse while busy", st.MaxIdleClosed)
	}
	time.Sleep(600 * time.Millisecond)
	if _, err := s.Get(context.Background(), token.NewKey()); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if st := s.rdb.Stats(); st.MaxLifetimeClosed == 0 {
		t.Errorf("no connection was recycled after pool_recycle (stats %+v)", st)
	}

	u := openMySQLForTest(t, func(c *Config) { c.PoolSize, c.MaxOverflow = 1, -1 })
	if u.rgate != nil || u.rdb.Stats().MaxOpenConnections != 0 {
		t.Errorf("max_overflow -1: gate %v, MaxOpenConnections %d; want no limit", u.rgate, u.rdb.Stats().MaxOpenConnections)
	}
}

// TestMySQLPoolOverflowTrim: under load every connection is kept for the
// next query (database/sql would close the ones beyond MaxIdleConns as they
// come back, and reopen them per query); once the pool has needed at most
// pool_size connections for a trim period, the idle overflow is closed and
// pool_size stay open.
func TestMySQLPoolOverflowTrim(t *testing.T) {
	s := openMySQLForTest(t, func(c *Config) { c.PoolSize, c.MaxOverflow = 2, 3 })
	if err := s.Write(context.Background(), &Batch{Puts: []*token.Token{testRow(1)}}); err != nil {
		t.Fatal(err)
	}
	s.trims[0].stop() // a short trim period for the test
	s.trims[0] = startTrimmer(s.rdb, s.rgate, 2, 5, 300*time.Millisecond)
	holdConnections(t, s, 5)
	if st := s.rdb.Stats(); st.Idle != 5 || st.MaxIdleClosed != 0 {
		t.Errorf("right after a burst of 5: idle %d, closed as overflow %d; want all 5 kept for reuse", st.Idle, st.MaxIdleClosed)
	}
	waitUntil(t, func() bool { return s.rdb.Stats().MaxIdleClosed >= 3 })
	if st := s.rdb.Stats(); st.Idle != 2 || st.MaxIdleClosed != 3 {
		t.Errorf("after a quiet trim period: idle %d, closed as overflow %d; want 2 kept idle and 3 closed", st.Idle, st.MaxIdleClosed)
	}
}

// holdConnections makes n Scans hold a read connection each at once (a
// Scan holds its connection while fn blocks, once there is a row), then
// lets them finish.
func holdConnections(t *testing.T, s *SQLStore, n int) {
	t.Helper()
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range n {
		wg.Go(func() {
			_ = s.Scan(context.Background(), func(*token.Token) error { <-release; return nil })
		})
	}
	waitUntil(t, func() bool { return s.rdb.Stats().InUse == n })
	close(release)
	wg.Wait()
}

func testRow(idx uint64) *token.Token {
	return &token.Token{Key: token.NewKey(), Hash: token.Hash{1}, Index: idx, Created: token.At(time.Now()),
		Username: "u", Realm: "default", Scopes: "read", Format: token.FormatOpaque, Type: token.TypeSession}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
