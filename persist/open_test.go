package persist

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/token"
)

func sampleToken(idx uint64) *token.Token {
	now := token.At(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC))
	return &token.Token{Key: token.NewKey(), Hash: token.Hash{1, 2, 3}, Index: idx, Created: now, Expires: now.Add(time.Hour),
		Username: "alice", Realm: token.DefaultRealm, Scopes: "read:all", Type: token.TypeSession}
}

func TestOpenMemory(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Store = StoreMemory
	s, err := Open(testCtx(t), cfg, "", nil)
	if err != nil {
		t.Fatalf("Open(memory) = %v", err)
	}
	defer s.Close()
	if _, ok := s.(*Memory); !ok || s.Shared() {
		t.Fatalf("Open(memory) = %T (shared %v), want an unshared *Memory", s, s.Shared())
	}
}

// TestOpenMySQLUnreachable: a server that refuses connections is
// ErrUnavailable at once (not a hang until pool_timeout), and the error
// does not carry the password.
func TestOpenMySQLUnreachable(t *testing.T) {
	cfg := DefaultConfig()
	const pw = "n0t-in-any-error"
	cfg.Store, cfg.URL, cfg.Username, cfg.Password = StoreMySQL, "jdbc:mysql://127.0.0.1:1/tc", "tc", pw
	start := time.Now()
	s, err := Open(testCtx(t), cfg, t.TempDir(), nil)
	if !errors.Is(err, ErrUnavailable) || s != nil {
		t.Fatalf("Open(mysql on a closed port) = %v, %v; want ErrUnavailable", s, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open(mysql on a closed port) took %s, want it to fail at once", d)
	}
	if strings.Contains(err.Error(), pw) {
		t.Errorf("Open error contains the password: %v", err)
	}
}

func TestOpenInvalidConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PoolSize = 0
	dir := t.TempDir()
	if _, err := Open(testCtx(t), cfg, dir, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("Open(pool_size 0) = %v, want ErrConfig", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("Open with a bad config wrote %d files, want none", len(entries))
	}
	cfg = DefaultConfig()
	if _, err := Open(testCtx(t), cfg, "", nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("Open(sqlite, no url, no data dir) = %v, want ErrConfig", err)
	}
}

// TestOpenSQLiteRelativeDataDir: with a relative data dir (./data, the
// default), the default store is data/tokens.db, not data/data/tokens.db.
func TestOpenSQLiteRelativeDataDir(t *testing.T) {
	t.Chdir(t.TempDir())
	s, err := Open(testCtx(t), DefaultConfig(), "data", nil)
	if err != nil {
		t.Fatalf("Open(default, data) = %v", err)
	}
	defer s.Close()
	if _, err := os.Stat(filepath.Join("data", DefaultSQLiteFile)); err != nil {
		t.Errorf("default store with data dir \"data\": %v", err)
	}
	if _, err := os.Stat(filepath.Join("data", "data")); err == nil {
		t.Error("the default store went to data/data/: the data dir was applied twice")
	}
}

// TestOpenSQLiteDefaultFile: the default store is <dataDir>/tokens.db,
// created with the data dir, readable by the owner only.
func TestOpenSQLiteDefaultFile(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	s, err := Open(testCtx(t), DefaultConfig(), dataDir, nil)
	if err != nil {
		t.Fatalf("Open(default) = %v", err)
	}
	if s.Shared() {
		t.Error("sqlite store reports Shared() = true, want false")
	}
	write := &Batch{Puts: []*token.Token{sampleToken(3)}, Index: 3}
	if err := s.Write(testCtx(t), write); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dataDir, DefaultSQLiteFile)
	for p, want := range map[string]fs.FileMode{dataDir: 0o700, path: 0o600, path + "-wal": 0o600} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("Stat(%s) = %v", p, err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %o, want %o", p, got, want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Everything is there after a reopen, through a relative URL this time.
	cfg := DefaultConfig()
	cfg.URL = "jdbc:sqlite:" + DefaultSQLiteFile
	s, err = Open(testCtx(t), cfg, dataDir, nil)
	if err != nil {
		t.Fatalf("reopen = %v", err)
	}
	defer s.Close()
	got, err := s.Get(testCtx(t), write.Puts[0].Key)
	if err != nil || got.Index != 3 {
		t.Fatalf("Get after reopen = %v, %v; want the row of index 3", got, err)
	}
	if idx, err := s.PersistedIndex(testCtx(t)); err != nil || idx != 3 {
		t.Fatalf("PersistedIndex after reopen = %d, %v; want 3", idx, err)
	}
}

func TestOpenSQLiteCreateTablesOff(t *testing.T) {
	dataDir := t.TempDir()
	cfg := DefaultConfig()
	cfg.CreateTables = false
	if _, err := Open(testCtx(t), cfg, dataDir, nil); !errors.Is(err, ErrNoTables) {
		t.Fatalf("Open(missing file, create_tables off) = %v, want ErrNoTables", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, DefaultSQLiteFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open with create_tables off created the file (%v)", err)
	}
	// An existing empty file: still no tables.
	if err := os.WriteFile(filepath.Join(dataDir, DefaultSQLiteFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(testCtx(t), cfg, dataDir, nil); !errors.Is(err, ErrNoTables) {
		t.Fatalf("Open(empty file, create_tables off) = %v, want ErrNoTables", err)
	}
}

func TestOpenSQLiteNotADatabase(t *testing.T) {
	dataDir := t.TempDir()
	garbage := []byte(strings.Repeat("this is not an sqlite database ", 200))
	if err := os.WriteFile(filepath.Join(dataDir, DefaultSQLiteFile), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(testCtx(t), DefaultConfig(), dataDir, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open(garbage file) = %v, want ErrCorrupt", err)
	}
}

func TestOpenSQLiteUnwritableDir(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores permissions; use a path under a regular file instead.
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.URL = "jdbc:sqlite:" + filepath.Join(file, "tokens.db")
		if _, err := Open(testCtx(t), cfg, "", nil); err == nil {
			t.Fatal("Open(path under a file) = nil, want an error")
		}
		return
	}
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(testCtx(t), DefaultConfig(), dir, nil); err == nil {
		t.Fatal("Open(read-only data dir) = nil, want an error")
	}
}

// TestPoolTimeout holds the only read connection with a Scan and checks
// that a Get gives up after pool_timeout with ErrUnavailable.
func TestPoolTimeout(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PoolSize, cfg.MaxOverflow, cfg.PoolTimeout = 1, 0, 100*time.Millisecond
	s, err := openSQLite(testCtx(t), cfg, filepath.Join(t.TempDir(), "t.db"), discardLog(), sqliteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tk := sampleToken(1)
	if err := s.Write(testCtx(t), &Batch{Puts: []*token.Token{tk}}); err != nil {
		t.Fatal(err)
	}
	inScan, release := make(chan struct{}), make(chan struct{})
	scanErr := make(chan error, 1)
	go func() {
		scanErr <- s.Scan(testCtx(t), func(*token.Token) error {
			close(inScan)
			<-release
			return nil
		})
	}()
	<-inScan
	start := time.Now()
	_, err = s.Get(testCtx(t), tk.Key)
	waited := time.Since(start)
	close(release)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "pool_timeout") {
		t.Fatalf("Get with every connection busy = %v, want ErrUnavailable naming pool_timeout", err)
	}
	if waited < cfg.PoolTimeout || waited > cfg.PoolTimeout+2*time.Second {
		t.Fatalf("Get waited %s, want about pool_timeout (%s)", waited, cfg.PoolTimeout)
	}
	if err := <-scanErr; err != nil {
		t.Fatalf("Scan = %v", err)
	}
	// The connection is free again: the same Get works.
	if _, err := s.Get(testCtx(t), tk.Key); err != nil {
		t.Fatalf("Get after the connection was released = %v", err)
	}
	// Writes have their own connection: a busy read pool does not block them.
	if err := s.Write(testCtx(t), &Batch{Index: 2}); err != nil {
		t.Fatalf("Write = %v", err)
	}
}

// TestQueryTimeout runs a query that never ends on the read pool and checks
// that the store's query deadline interrupts it as ErrUnavailable, while the
// caller's own cancellation stays a cancellation.
func TestQueryTimeout(t *testing.T) {
	cfg := DefaultConfig()
	cfg.QueryTimeout = 100 * time.Millisecond
	s, err := openSQLite(testCtx(t), cfg, filepath.Join(t.TempDir(), "t.db"), discardLog(), sqliteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"
	run := func(ctx context.Context) error {
		return s.read(ctx, func(ctx context.Context) error {
			var n int64
			return s.rdb.QueryRowContext(ctx, forever).Scan(&n)
		})
	}
	start := time.Now()
	err = run(testCtx(t))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "query_timeout") {
		t.Fatalf("endless query = %v, want ErrUnavailable naming query_timeout", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("endless query took %s to stop, want about %s", waited, cfg.QueryTimeout)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	time.AfterFunc(20*time.Millisecond, cancel)
	if err := run(ctx); !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("endless query canceled by the caller = %v, want context.Canceled only", err)
	}
	ctx, cancel = context.WithTimeout(testCtx(t), 20*time.Millisecond)
	defer cancel()
	if err := run(ctx); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("endless query past the caller's deadline = %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	// The pool still works afterwards.
	if err := s.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping after interrupted queries = %v", err)
	}
}
