package persist

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tokencache/tokencache/token"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestMigrationFiles checks the embedded migrations of every dialect: named
// NNNN_*.sql from 0001 without gaps, the same versions everywhere, and
// split into statements that each look like one.
func TestMigrationFiles(t *testing.T) {
	var versions [][]string
	for _, d := range []dialect{sqliteDialect{}, mysqlDialect{}} {
		ms, err := loadMigrations(d)
		if err != nil {
			t.Fatalf("loadMigrations(%s) = %v", d.name(), err)
		}
		var names []string
		for _, m := range ms {
			names = append(names, m.name)
			for _, st := range m.stmts {
				if strings.Contains(st, ";") || strings.HasPrefix(st, "--") {
					t.Errorf("%s/%s: statement %q was not split right", d.name(), m.name, st)
				}
			}
		}
		versions = append(versions, names)
	}
	if !slices.Equal(versions[0], versions[1]) {
		t.Errorf("sqlite migrations %v and mysql migrations %v differ", versions[0], versions[1])
	}
	if SchemaVersion() != len(versions[0]) || SchemaVersion() < 1 {
		t.Errorf("SchemaVersion() = %d, want %d", SchemaVersion(), len(versions[0]))
	}
}

func TestReadMigrationsRejectsBadSets(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := map[string]fstest.MapFS{
		"gap":       {"m/0001_a.sql": file("SELECT 1;"), "m/0003_c.sql": file("SELECT 1;")},
		"duplicate": {"m/0001_a.sql": file("SELECT 1;"), "m/0001_b.sql": file("SELECT 1;")},
		"bad name":  {"m/1_a.sql": file("SELECT 1;")},
		"not sql":   {"m/0001_a.txt": file("SELECT 1;")},
		"empty":     {"m/0001_a.sql": file("-- nothing\n")},
		"none":      {"m/.keep": file("")},
	}
	for name, fsys := range tests {
		if ms, err := readMigrations(fsys, "m"); err == nil {
			t.Errorf("readMigrations(%s) = %d migrations, nil; want an error", name, len(ms))
		}
	}
}

func TestSplitStatements(t *testing.T) {
	got := splitStatements("-- header\nCREATE TABLE a (\n  x INT -- trailing\n);\n\n  -- indented comment\nINSERT INTO a VALUES (1);\r\nSELECT 2")
	want := []string{"CREATE TABLE a (\n  x INT -- trailing\n)", "INSERT INTO a VALUES (1)", "SELECT 2"}
	if !slices.Equal(got, want) {
		t.Fatalf("splitStatements = %q, want %q", got, want)
	}
}

// openRaw opens a writer pool on a fresh SQLite file, without migrating.
func openRaw(t *testing.T) (*sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.db")
	db, err := sql.Open("sqlite", sqliteDSN(path, true, "NORMAL"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db, path
}

func testMigrations(extra ...string) []migration {
	ms, _ := loadMigrations(sqliteDialect{})
	for i, body := range extra {
		ms = append(ms, migration{version: len(ms) + 1, name: "test_" + string(rune('a'+i)) + ".sql", stmts: splitStatements(body)})
	}
	return ms
}

func versionOf(t *testing.T, db *sql.DB) int {
	t.Helper()
	v, err := schemaVersion(testCtx(t), db)
	if err != nil {
		t.Fatalf("schemaVersion = %v", err)
	}
	return v
}

func TestMigrate(t *testing.T) {
	d := sqliteDialect{}
	ctx := testCtx(t)
	db, _ := openRaw(t)
	one, two := testMigrations(), testMigrations("CREATE TABLE extra (x INTEGER);")

	if _, err := migrate(ctx, db, d, one, false, discardLog()); !errors.Is(err, ErrNoTables) {
		t.Fatalf("migrate(empty, create=false) = %v, want ErrNoTables", err)
	}
	if ok, _ := tableExists(ctx, db, d, "tokens"); ok {
		t.Fatal("migrate(create=false) created tables")
	}
	if from, err := migrate(ctx, db, d, one, true, discardLog()); err != nil || from != 0 {
		t.Fatalf("migrate(empty, create=true) = %d, %v; want 0, nil", from, err)
	}
	if from, err := migrate(ctx, db, d, one, true, discardLog()); err != nil || from != len(one) {
		t.Fatalf("migrate again = %d, %v; want %d, nil", from, err, len(one))
	}
	if _, err := migrate(ctx, db, d, one, false, discardLog()); err != nil {
		t.Fatalf("migrate(current, create=false) = %v, want nil", err)
	}
	// A binary with one more migration and create_tables off refuses the
	// older schema; with create_tables on it upgrades.
	if _, err := migrate(ctx, db, d, two, false, discardLog()); !errors.Is(err, ErrSchemaOutdated) {
		t.Fatalf("migrate(older schema, create=false) = %v, want ErrSchemaOutdated", err)
	}
	if from, err := migrate(ctx, db, d, two, true, discardLog()); err != nil || from != len(one) {
		t.Fatalf("migrate(older schema, create=true) = %d, %v; want %d, nil", from, err, len(one))
	}
	if v := versionOf(t, db); v != len(two) {
		t.Fatalf("version after upgrade = %d, want %d", v, len(two))
	}
	// The older binary now meets a newer schema and refuses it.
	for _, create := range []bool{true, false} {
		if _, err := migrate(ctx, db, d, one, create, discardLog()); !errors.Is(err, ErrSchemaTooNew) {
			t.Fatalf("migrate(newer schema, create=%v) = %v, want ErrSchemaTooNew", create, err)
		}
	}
}

// TestMigrationIsOneTransaction: a migration that fails half-way leaves
// neither its first statements nor its version behind.
func TestMigrationIsOneTransaction(t *testing.T) {
	d := sqliteDialect{}
	ctx := testCtx(t)
	db, _ := openRaw(t)
	ms := testMigrations("CREATE TABLE half (x INTEGER);\nINSERT INTO no_such_table VALUES (1);")
	if _, err := migrate(ctx, db, d, ms, true, discardLog()); err == nil || !strings.Contains(err.Error(), "statement 2") {
		t.Fatalf("migrate(failing migration) = %v, want an error naming statement 2", err)
	}
	if v := versionOf(t, db); v != len(ms)-1 {
		t.Fatalf("version after a failed migration = %d, want %d", v, len(ms)-1)
	}
	if ok, _ := tableExists(ctx, db, d, "half"); ok {
		t.Fatal("table of the failed migration exists, want it rolled back")
	}
}

func TestMigrateMissingTable(t *testing.T) {
	d := sqliteDialect{}
	ctx := testCtx(t)
	db, _ := openRaw(t)
	ms := testMigrations()
	if _, err := migrate(ctx, db, d, ms, true, discardLog()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DROP TABLE meta"); err != nil {
		t.Fatal(err)
	}
	if _, err := migrate(ctx, db, d, ms, false, discardLog()); !errors.Is(err, ErrNoTables) {
		t.Fatalf("migrate(meta dropped) = %v, want ErrNoTables", err)
	}
}

// TestConcurrentOpensMigrateOnce opens one new file from several goroutines
// at once: every Open succeeds and the migration is recorded once.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.db")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			s, err := openSQLite(testCtx(t), DefaultConfig(), path, discardLog(), sqliteOptions{})
			if err == nil {
				err = s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent open = %v", err)
		}
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil || n != SchemaVersion() {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", n, err, SchemaVersion())
	}
}

// TestUpgradeFromVersion1: a SQLite file written by a binary of schema
// version 1 (before the audience column) opens under this one, is migrated,
// keeps its rows as they were (no audience), and stores a JWT's audience.
func TestUpgradeFromVersion1(t *testing.T) {
	ctx := testCtx(t)
	db, path := openRaw(t)
	ms, err := loadMigrations(sqliteDialect{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrate(ctx, db, sqliteDialect{}, ms[:1], true, discardLog()); err != nil {
		t.Fatal(err)
	}
	// A row as version 1 wrote it: the 20 columns of 0001_tokens.sql.
	k := token.Key{1, 2, 3}
	if _, err := db.Exec(`INSERT INTO tokens (token_key, idx, hash, format, type, username, realm, scopes, created, expires, end_of_use)
		VALUES (?, 5, ?, 'opaque', 'user', 'alice', 'default', 'read', 1000, 2000, 2000)`, k[:], bytes.Repeat([]byte{7}, 32)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE meta SET value = 5 WHERE name = 'persisted_index'"); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()

	s, err := openSQLite(ctx, DefaultConfig(), path, discardLog(), sqliteOptions{})
	if err != nil {
		t.Fatalf("open a version-1 file = %v", err)
	}
	defer s.Close()
	old, err := s.Get(ctx, k)
	if err != nil || old.Username != "alice" || old.Ext != nil || old.Expires != 2000 {
		t.Fatalf("Get(row of version 1) = %+v, %v; want alice's row without extras", old, err)
	}
	jwt := &token.Token{Key: token.Key{4}, Index: 6, Created: 1000, Expires: 3000, Username: "bob", Realm: "default",
		Format: token.FormatJWT, Type: token.TypeUser}
	jwt.SetExtra(token.Extra{Audience: "api billing"})
	if err := s.Write(ctx, &Batch{Puts: []*token.Token{jwt}, Index: 6}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, jwt.Key); err != nil || got.Audience() != "api billing" {
		t.Fatalf("Get(jwt) = %+v, %v; want audience %q", got, err, "api billing")
	}
	if v := SchemaVersion(); v != 2 {
		t.Errorf("SchemaVersion() = %d, want 2", v)
	}
}
