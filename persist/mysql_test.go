package persist_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/persist/mysqltest"
	"github.com/tokencache/tokencache/persist/storetest"
	"github.com/tokencache/tokencache/token"
)

// mysqlConfig returns a configuration for db.
func mysqlConfig(db mysqltest.Database) persist.Config {
	cfg := persist.DefaultConfig()
	cfg.Store, cfg.URL, cfg.Username, cfg.Password = persist.StoreMySQL, db.URL, db.User, db.Password
	return cfg
}

func openStore(t testing.TB, cfg persist.Config) persist.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := persist.Open(ctx, cfg, t.TempDir(), testLogger(t))
	if err != nil {
		t.Fatalf("Open(%s) = %v", cfg.Store, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestMySQLConformance(t *testing.T) {
	srv := mysqltest.Shared(t)
	storetest.Run(t, func(t *testing.T) persist.Store {
		db := srv.NewDatabase(t)
		return corruptibleMySQL{Store: openStore(t, mysqlConfig(db)), dbs: []mysqltest.Database{db}}
	})
}

// TestShardedMySQLConformance runs the suite on a store sharded over two
// databases of one server.
func TestShardedMySQLConformance(t *testing.T) {
	srv := mysqltest.Shared(t)
	storetest.Run(t, func(t *testing.T) persist.Store {
		a, b := srv.NewDatabase(t), srv.NewDatabase(t)
		cfg := mysqlConfig(a)
		cfg.URL, cfg.Shards = "", []string{a.URL, b.URL}
		s := openStore(t, cfg)
		if sh, ok := s.(*persist.Sharded); !ok || sh.Shards() != 2 || !s.Shared() {
			t.Fatalf("Open(2 shards) = %T, want a shared *persist.Sharded of 2", s)
		}
		return corruptibleMySQL{Store: s, dbs: []mysqltest.Database{a, b}}
	})
}

// TestShardedSQLiteConformance runs the suite on a store sharded over two
// SQLite files, so that the merging logic is checked without a server too.
func TestShardedSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) persist.Store {
		dir := t.TempDir()
		paths := []string{filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db"), filepath.Join(dir, "c.db")}
		cfg := persist.DefaultConfig()
		for _, p := range paths {
			cfg.Shards = append(cfg.Shards, "jdbc:sqlite:"+p)
		}
		return corruptibleShardedSQLite{Store: openStore(t, cfg), paths: paths}
	})
}

// corruptibleMySQL damages rows through a connection of its own with
// MariaDB's CHECK constraints and strict mode off.
type corruptibleMySQL struct {
	persist.Store
	dbs []mysqltest.Database // the shards, in order
}

var _ storetest.Corrupter = corruptibleMySQL{}

func (c corruptibleMySQL) Corrupt(tb testing.TB, k token.Key, column string, value any) {
	tb.Helper()
	db := c.dbs[persist.ShardOf(k, len(c.dbs))].DB(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION check_constraint_checks = 0, sql_mode = ''"); err != nil {
		tb.Fatalf("cannot turn checks off to damage a row: %v", err)
	}
	res, err := conn.ExecContext(ctx, "UPDATE tokens SET "+column+" = ? WHERE token_key = ?", value, k[:])
	if err != nil {
		tb.Fatalf("cannot damage row %s (%s = %v): %v", k, column, value, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		tb.Fatalf("damaging row %s changed %d rows (%v), want 1", k, n, err)
	}
}

type corruptibleShardedSQLite struct {
	persist.Store
	paths []string
}

func (c corruptibleShardedSQLite) Corrupt(tb testing.TB, k token.Key, column string, value any) {
	tb.Helper()
	corruptibleSQLite{path: c.paths[persist.ShardOf(k, len(c.paths))]}.Corrupt(tb, k, column, value)
}

// TestMySQLCaseAndPadding: MariaDB compares _bin text PAD SPACE and its
// default collations case-insensitively. Keys, usernames and names must be
// exact: "alice" and "alice " are two users, and keys differing in case
// are two tokens (the conformance suite checks keys; this checks the
// schema's columns directly).
func TestMySQLCaseAndPadding(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.NewDatabase(t)
	s := openStore(t, mysqlConfig(db))
	ctx := context.Background()
	now := token.At(time.Now())
	mk := func(idx uint64, user, name string) *token.Token {
		tk := &token.Token{Key: token.NewKey(), Hash: token.Hash{1}, Index: idx, Created: now, Username: user,
			Realm: "default", Scopes: "read", Format: token.FormatOpaque, Type: token.TypeUser}
		tk.SetExtra(token.Extra{Name: name})
		return tk
	}
	a, b, c := mk(1, "alice", "laptop"), mk(2, "alice ", "laptop"), mk(3, "alice", "laptop ")
	if err := s.Write(ctx, &persist.Batch{Puts: []*token.Token{a, b, c}, Index: 3}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user, name string
		want       *token.Token
	}{{"alice", "laptop", a}, {"alice ", "laptop", b}, {"alice", "laptop ", c}, {"ALICE", "laptop", nil}} {
		got, err := s.Named(ctx, tc.user, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if tc.want == nil && len(got) != 0 || tc.want != nil && (len(got) != 1 || got[0].Key != tc.want.Key) {
			t.Errorf("Named(%q, %q) = %d rows, want exactly %v", tc.user, tc.name, len(got), tc.want)
		}
	}
	// The schema itself: the table's columns as the server reports them.
	rows, err := db.DB(t).QueryContext(ctx, `SELECT column_name, data_type, COALESCE(collation_name, '')
		FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'tokens'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var col, typ, coll string
		if err := rows.Scan(&col, &typ, &coll); err != nil {
			t.Fatal(err)
		}
		if coll != "" && !strings.HasSuffix(coll, "_bin") {
			t.Errorf("column %s has collation %s, want a binary one", col, coll)
		}
		switch col {
		case "token_key", "parent_key", "hash", "username", "name":
			if typ != "varbinary" {
				t.Errorf("column %s is %s, want varbinary", col, typ)
			}
		}
	}
}

// TestMySQLConcurrentOpen: several nodes starting at once on an empty
// database migrate it exactly once (GET_LOCK) and all open.
func TestMySQLConcurrentOpen(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.NewDatabase(t)
	const nodes = 6
	var wg sync.WaitGroup
	errs := make(chan error, nodes)
	for range nodes {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, err := persist.Open(ctx, mysqlConfig(db), "", nil)
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
			t.Errorf("concurrent Open = %v", err)
		}
	}
	var n, versions int
	if err := db.DB(t).QueryRow("SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations").Scan(&n, &versions); err != nil {
		t.Fatal(err)
	}
	if n != persist.SchemaVersion() || versions != n {
		t.Errorf("schema_migrations has %d rows (%d versions), want %d", n, versions, persist.SchemaVersion())
	}
}

// TestMySQLShardPlacement: a database remembers which shard it is; opening
// it at another place (reordered shards, a different count, or as a plain
// store) is refused before anything is written.
func TestMySQLShardPlacement(t *testing.T) {
	srv := mysqltest.Shared(t)
	a, b := srv.NewDatabase(t), srv.NewDatabase(t)
	cfg := mysqlConfig(a)
	cfg.URL, cfg.Shards = "", []string{a.URL, b.URL}
	s := openStore(t, cfg)
	// Rows land in the shard of their key, and only there.
	var keys [2][]token.Key
	var puts []*token.Token
	now := token.At(time.Now())
	for i := range 40 {
		tk := &token.Token{Key: token.NewKey(), Hash: token.Hash{1}, Index: uint64(i + 1), Created: now,
			Username: "u", Realm: "default", Scopes: "read", Format: token.FormatOpaque, Type: token.TypeSession}
		puts = append(puts, tk)
		keys[persist.ShardOf(tk.Key, 2)] = append(keys[persist.ShardOf(tk.Key, 2)], tk.Key)
	}
	if err := s.Write(context.Background(), &persist.Batch{Puts: puts, Index: 40}); err != nil {
		t.Fatal(err)
	}
	for i, d := range []mysqltest.Database{a, b} {
		var n int
		var idx int64
		if err := d.DB(t).QueryRow("SELECT COUNT(*), (SELECT value FROM meta WHERE name = 'persisted_index') FROM tokens").Scan(&n, &idx); err != nil {
			t.Fatal(err)
		}
		if n != len(keys[i]) || idx != 40 {
			t.Errorf("shard %d holds %d rows at persisted index %d, want %d at 40", i, n, idx, len(keys[i]))
		}
		if len(keys[i]) == 0 {
			t.Errorf("no key of 40 went to shard %d", i)
		}
	}
	s.Close()

	for _, tc := range []struct {
		name   string
		url    string
		shards []string
	}{
		{"reordered", "", []string{b.URL, a.URL}},
		{"one more", "", []string{a.URL, b.URL, srv.NewDatabase(t).URL}},
		{"not sharded", a.URL, nil},
	} {
		cfg := mysqlConfig(a)
		cfg.URL, cfg.Shards = tc.url, tc.shards
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		s, err := persist.Open(ctx, cfg, "", nil)
		cancel()
		if !errors.Is(err, persist.ErrConfig) || !strings.Contains(err.Error(), "holds shard") {
			if s != nil {
				s.Close()
			}
			t.Errorf("Open(%s) = %v, want ErrConfig about the shard placement", tc.name, err)
		}
	}
}

// TestMySQLOpenErrors: configuration mistakes are reported clearly, before
// or at the first connection, and never repeat the password.
func TestMySQLOpenErrors(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.NewDatabase(t)
	tests := []struct {
		name   string
		change func(*persist.Config)
		want   []string
	}{
		{"wrong password", func(c *persist.Config) { c.Password = "wr0ng-Pa55" }, []string{"Access denied", "persist.password"}},
		{"unknown database", func(c *persist.Config) { c.URL += "_missing" }, []string{"Unknown database", "create the database"}},
		{"JDBC-only parameter", func(c *persist.Config) { c.URL += "?useFastDateParsing=false" }, []string{"useFastDateParsing", "neither"}},
		{"unknown session variable", func(c *persist.Config) { c.URL += "?no_such_variable=1" }, []string{"no_such_variable", "session variable"}},
		{"lax sql_mode", func(c *persist.Config) { c.URL += "?sql_mode=%27ANSI%27" }, []string{"not strict"}},
		{"latin1", func(c *persist.Config) { c.URL += "?charset=latin1" }, []string{"utf8mb4"}},
		{"tables missing", func(c *persist.Config) { c.CreateTables = false }, []string{"create_tables"}},
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			cfg := mysqlConfig(db)
			tc.change(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := persist.Open(ctx, cfg, "", nil)
			if err == nil {
				s.Close()
				t.Fatalf("Open = nil error, want one mentioning %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open = %v, want it to mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), db.Password) || strings.Contains(err.Error(), "wr0ng-Pa55") {
				t.Errorf("Open error repeats the password: %v", err)
			}
		})
	}
}

// TestMySQLJDBCParameters: a Connector/J URL works as it is: its
// parameters are translated or ignored, not sent to the server.
func TestMySQLJDBCParameters(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.NewDatabase(t)
	cfg := mysqlConfig(db)
	cfg.URL += "?useSSL=false&useUnicode=true&characterEncoding=UTF-8&serverTimezone=UTC&connectTimeout=5000&socketTimeout=20000&autoReconnect=true&rewriteBatchedStatements=true"
	s := openStore(t, cfg)
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping over a Connector/J URL = %v", err)
	}
}

// TestMySQLConnectionSettings: every connection runs in strict mode with
// utf8mb4, whatever the server's defaults (the test server's are latin1
// and a lax sql_mode).
func TestMySQLConnectionSettings(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.NewDatabase(t)
	s := openStore(t, mysqlConfig(db))
	got := persist.MySQLSessionForTest(t, s)
	if !strings.Contains(got["sql_mode"], "STRICT_TRANS_TABLES") {
		t.Errorf("session sql_mode = %q, want a strict mode", got["sql_mode"])
	}
	for _, v := range []string{"character_set_client", "character_set_connection", "character_set_results"} {
		if got[v] != "utf8mb4" {
			t.Errorf("session %s = %q, want utf8mb4", v, got[v])
		}
	}
	t.Logf("session: %v", got)
}

// TestMySQLBatchedGet: concurrent Gets are read in batches (getbatch.go),
// and each still gets its own answer: its row, ErrNotFound for a key the
// store lacks, ErrCorrupt for the one damaged row only, and ctx.Err() at
// once for a caller whose context ended.
func TestMySQLBatchedGet(t *testing.T) {
	db := mysqltest.Shared(t).NewDatabase(t)
	cfg := mysqlConfig(db)
	cfg.PoolSize = 2 // few workers: Gets queue up and batch
	s := openStore(t, cfg)
	c := corruptibleMySQL{Store: s, dbs: []mysqltest.Database{db}}
	const n = 300
	rows := make([]*token.Token, n)
	for i := range rows {
		rows[i] = &token.Token{Key: token.NewKey(), Hash: token.Hash{byte(i), 1}, Index: uint64(i + 1),
			Created: token.At(time.Now()), Username: "u" + strings.Repeat("x", i%7), Realm: "default",
			Scopes: "read", Format: token.FormatOpaque, Type: token.TypeSession}
	}
	if err := s.Write(context.Background(), &persist.Batch{Puts: rows, Index: n}); err != nil {
		t.Fatal(err)
	}
	bad := rows[n/2]
	c.Corrupt(t, bad.Key, "type", "admin")

	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := g; i < 4*n; i += 64 {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				var k token.Key
				want := (*token.Token)(nil)
				if i%4 == 3 {
					k = token.NewKey() // never stored
				} else {
					want = rows[i%n]
					k = want.Key
				}
				got, err := s.Get(ctx, k)
				cancel()
				switch {
				case want == nil:
					if !errors.Is(err, persist.ErrNotFound) {
						t.Errorf("Get(absent %s) = %v, %v; want ErrNotFound", k, got, err)
					}
				case want == bad:
					if !errors.Is(err, persist.ErrCorrupt) || got != nil {
						t.Errorf("Get(corrupt %s) = %v, %v; want ErrCorrupt", k, got, err)
					}
				case err != nil || got == nil || got.Key != want.Key || got.Hash != want.Hash || got.Username != want.Username:
					t.Errorf("Get(%s) = %+v, %v; want %+v", k, got, err, want)
				}
			}
		})
	}
	wg.Wait()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Get(ctx, rows[0].Key); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context = %v, want context.Canceled", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(context.Background(), rows[0].Key); !errors.Is(err, persist.ErrUnavailable) {
		t.Errorf("Get after Close = %v, want ErrUnavailable", err)
	}
}
