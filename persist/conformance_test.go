package persist_test

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/persist/storetest"
	"github.com/tokencache/tokencache/token"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) persist.Store {
		s := persist.NewMemory()
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) persist.Store {
		path := filepath.Join(t.TempDir(), "tokens.db")
		return corruptibleSQLite{Store: openSQLite(t, "jdbc:sqlite:"+path), path: path}
	})
}

// TestSQLiteMemoryConformance runs the suite on "jdbc:sqlite::memory:",
// whose single connection serves reads and writes alike.
func TestSQLiteMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) persist.Store {
		return openSQLite(t, "jdbc:sqlite::memory:")
	})
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func openSQLite(t testing.TB, url string) persist.Store {
	t.Helper()
	cfg := persist.DefaultConfig()
	cfg.URL = url
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := persist.Open(ctx, cfg, t.TempDir(), testLogger(t))
	if err != nil {
		t.Fatalf("Open(%s) = %v", url, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// corruptibleSQLite damages rows through a connection of its own that
// ignores the table's CHECK constraints.
type corruptibleSQLite struct {
	persist.Store
	path string
}

var _ storetest.Corrupter = corruptibleSQLite{}

func (c corruptibleSQLite) Corrupt(tb testing.TB, k token.Key, column string, value any) {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+c.path+"?_pragma=busy_timeout(5000)&_pragma=ignore_check_constraints(1)")
	if err != nil {
		tb.Fatalf("cannot open %s to damage it: %v", c.path, err)
	}
	defer db.Close()
	res, err := db.Exec("UPDATE tokens SET "+column+" = ? WHERE token_key = ?", value, k[:])
	if err != nil {
		tb.Fatalf("cannot damage row %s (%s = %v): %v", k, column, value, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		tb.Fatalf("damaging row %s changed %d rows (%v), want 1", k, n, err)
	}
}
