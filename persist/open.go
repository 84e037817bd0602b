package persist

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Open opens the store cfg selects, applying pending schema migrations when
// cfg.CreateTables is set. dataDir is node.data_dir: the default SQLite file
// lives there and relative SQLite paths are resolved against it. log may be
// nil; the store tags it with component=persist. Open blocks until the
// database answers (or ctx ends).
//
//   - memory: a Memory store. Nothing in it survives a restart of the whole
//     cluster (each node rebuilds it from the Raft log and snapshots).
//   - none: a None store: a Memory store that keeps only the revocation
//     tombstones of JWTs, for a cluster that uses JWTs alone.
//   - sqlite: an SQLStore over a file (default <dataDir>/tokens.db), local
//     to this node (Shared is false).
//   - mysql: an SQLStore over a MySQL or MariaDB database
//     (go-sql-driver/mysql), shared by every node (Shared is true: only the
//     leader writes it). See mysqlDriverConfig for the connection settings
//     tokencache adds to the URL's (timeouts, strict sql_mode, utf8mb4).
//
// With cfg.Shards, every listed database is opened (in parallel) and the
// store is a *Sharded over them; otherwise a database records that it is
// not sharded, so that it is never silently used as one shard of several.
//
// The tokenserver pool settings map onto database/sql like this:
//
//	pool_size     connections kept open when idle. Under load every open
//	              connection is kept for reuse (SetMaxIdleConns(pool_size +
//	              max_overflow)); the ones beyond pool_size are closed once
//	              the pool has needed no more than pool_size at once for
//	              10s (pool.go: database/sql would otherwise close and
//	              reopen connections per query under a steady load).
//	max_overflow  SetMaxOpenConns(pool_size + max_overflow): the most open
//	              at once; -1 is no limit (SetMaxOpenConns(0)).
//	pool_recycle  SetConnMaxLifetime: a connection older than this is closed
//	              instead of reused; -1 (or 0) never.
//	pool_timeout  how long an operation waits for one of the
//	              pool_size + max_overflow connections to be free. database/sql
//	              itself would wait until the context ends, so the store keeps
//	              its own counter of connections in use and fails the wait
//	              after pool_timeout with ErrUnavailable ("no database
//	              connection became free within persist.pool_timeout").
//	              With max_overflow -1 there is nothing to wait for.
//
// On SQLite these settings govern the pool of read connections. Writes go
// through one dedicated connection (SQLite has one writer at a time; a
// single write connection makes writers queue in Go instead of spinning on
// SQLITE_BUSY), which still waits at most pool_timeout. An in-memory SQLite
// database has exactly one connection for everything, since each SQLite
// connection to ":memory:" would see a database of its own.
func Open(ctx context.Context, cfg Config, dataDir string, log *slog.Logger) (Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "persist")
	switch cfg.Store {
	case StoreMemory:
		log.Info("using the memory store: nothing in it survives a restart of the whole cluster")
		return NewMemory(), nil
	case StoreNone:
		log.Info("the token store is disabled: only JWTs are usable, and only their revocations are kept (in memory)")
		return NewNone(), nil
	case StoreSQLite, StoreMySQL:
		if len(cfg.Shards) > 0 {
			s, err := openSharded(ctx, cfg, dataDir, log)
			if err != nil {
				return nil, err
			}
			return s, nil
		}
		raw := cfg.URL
		if raw == "" && cfg.Store == StoreSQLite {
			if dataDir == "" {
				return nil, fmt.Errorf("cannot open the sqlite store: persist.url is empty and no data dir was given: %w", ErrConfig)
			}
			raw = DefaultSQLiteURL
		}
		s, err := openOne(ctx, cfg, raw, dataDir, 0, 1, log)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("cannot open store %q: %w", cfg.Store, ErrConfig)
}

// openOne opens the SQL database at raw as shard of shards.
func openOne(ctx context.Context, cfg Config, raw, dataDir string, shard, shards int, log *slog.Logger) (*SQLStore, error) {
	if cfg.Store == StoreMySQL {
		return openMySQL(ctx, cfg, raw, shard, shards, log)
	}
	u, err := ParseURL(raw, dataDir)
	if err != nil {
		return nil, fmt.Errorf("cannot open the sqlite store: %w", err)
	}
	if u.Kind != StoreSQLite {
		return nil, fmt.Errorf("cannot open the sqlite store: persist.url is a %s URL: %w", u.Kind, ErrConfig)
	}
	return openSQLite(ctx, cfg, u.Path, log, sqliteOptions{shard: shard, shards: shards})
}

// openSharded opens every database of cfg.Shards, in parallel, as one
// Sharded store.
func openSharded(ctx context.Context, cfg Config, dataDir string, log *slog.Logger) (*Sharded, error) {
	if cfg.URL != "" && !slices.Contains(cfg.Shards, cfg.URL) {
		log.Warn("persist.shards is set: persist.url is ignored", "url", RedactURL(cfg.URL))
	}
	n := len(cfg.Shards)
	stores := make([]*SQLStore, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, raw := range cfg.Shards {
		wg.Go(func() {
			stores[i], errs[i] = openOne(ctx, cfg, raw, dataDir, i, n, log)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("shard %d: %w", i, errs[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, s := range stores {
			if s != nil {
				_ = s.Close()
			}
		}
		return nil, fmt.Errorf("cannot open the sharded %s store: %w", cfg.Store, err)
	}
	shards := make([]Store, n)
	for i, s := range stores {
		shards[i] = s
	}
	log.Info("opened sharded store", "store", cfg.Store, "shards", n)
	return NewSharded(shards)
}

// SQLite settings tokencache chooses (the URL takes no parameters).
const (
	// sqliteBusyTimeoutMS is how long a connection waits for a lock held by
	// another connection or process before SQLITE_BUSY (ErrUnavailable).
	// With WAL, readers never wait for the writer; only a second writer
	// (another process on the same file) or a checkpoint can make one wait.
	sqliteBusyTimeoutMS = 5000
	// sqliteSynchronous is the durability of a commit. In WAL mode FULL
	// syncs the WAL on every commit, so a committed write survives a power
	// loss or an OS crash; NORMAL syncs only at checkpoints, so the last
	// commits before a power loss may roll back (the database stays
	// consistent). write_mode "through" promises that an acknowledged write
	// is committed, so FULL. The cost is one fsync per transaction, i.e. per
	// batch, not per row (measured in sqlite_bench_test.go).
	sqliteSynchronous = "FULL"
)

// sqliteOptions are knobs for tests and benchmarks.
type sqliteOptions struct {
	synchronous   string // "" = sqliteSynchronous
	shard, shards int    // which shard of how many (0 of 0 or 1: not sharded)
}

// openSQLite opens (creating when allowed) the SQLite database at path, or
// a private in-memory one for SQLiteMemory.
func openSQLite(ctx context.Context, cfg Config, path string, log *slog.Logger, opt sqliteOptions) (*SQLStore, error) {
	if opt.synchronous == "" {
		opt.synchronous = sqliteSynchronous
	}
	d := sqliteDialect{}
	inMemory := path == SQLiteMemory
	if !inMemory {
		if err := prepareSQLiteFile(path, cfg.CreateTables); err != nil {
			return nil, err
		}
	}
	wdb, err := sql.Open(d.name(), sqliteDSN(path, true, opt.synchronous))
	if err != nil {
		return nil, fmt.Errorf("cannot open sqlite database %s: %w", path, err)
	}
	s := &SQLStore{
		d:            d,
		wdb:          wdb,
		shared:       false,
		what:         "sqlite database " + path,
		poolTimeout:  cfg.PoolTimeout,
		queryTimeout: cfg.QueryTimeout,
		q:            buildQueries(d),
	}
	// The write connection is never recycled: it is the only writer, and
	// for :memory: it is the database.
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	if inMemory {
		s.rdb, s.wgate = wdb, newGate(1, "the connections (1 for :memory:)")
		s.rgate = s.wgate
	} else {
		s.wgate = newGate(1, "the write connections (SQLite has one writer)")
		rdb, err := sql.Open(d.name(), sqliteDSN(path, false, opt.synchronous))
		if err != nil {
			_ = wdb.Close()
			return nil, fmt.Errorf("cannot open sqlite database %s: %w", path, err)
		}
		rdb.SetMaxOpenConns(cfg.maxOpen())
		rdb.SetConnMaxLifetime(cfg.connMaxLifetime())
		s.rdb, s.rgate = rdb, newGate(cfg.maxOpen(), "the read connections (pool_size + max_overflow)")
		s.trims = []*trimmer{startTrimmer(rdb, s.rgate, cfg.PoolSize, cfg.maxOpen(), overflowIdle)}
	}

	ms, err := loadMigrations(d)
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	s.rstmts.db, s.wstmts.db = s.rdb, s.wdb
	from, err := migrate(ctx, wdb, d, ms, cfg.CreateTables, log)
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("cannot open %s: %w", s.what, err)
	}
	var mode string
	if err := wdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("cannot open %s: cannot read journal_mode: %w", s.what, classified(d, err))
	}
	if !inMemory && !strings.EqualFold(mode, "wal") {
		log.Warn("sqlite is not in WAL mode: readers will block the writer", "path", path, "journal_mode", mode)
	}
	if err := s.claimShard(ctx, opt.shard, max(opt.shards, 1)); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("cannot open %s: %w", s.what, err)
	}
	if err := s.prepareWrites(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("cannot open %s: %w", s.what, err)
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("cannot open %s: %w", s.what, err)
	}
	log.Info("opened sqlite store", "path", path, "schema_version", SchemaVersion(), "schema_version_before", from,
		"journal_mode", mode, "synchronous", opt.synchronous,
		"read_pool_size", cfg.PoolSize, "read_pool_max", cfg.maxOpen(), "pool_timeout", cfg.PoolTimeout,
		"query_timeout", cfg.QueryTimeout)
	return s, nil
}

// prepareSQLiteFile creates the directory (0700) and an empty database
// file (0600: it holds hashes and sealed credentials; SQLite gives its -wal
// and -shm files the same mode) when they are missing and create allows it.
func prepareSQLiteFile(path string, create bool) error {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("cannot open sqlite database %s: %w: %w", path, ErrUnavailable, err)
	case !create:
		return fmt.Errorf("cannot open sqlite database %s: the file does not exist: %w", path, ErrNoTables)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("cannot create the directory of sqlite database %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil // created meanwhile by another process
	}
	if err != nil {
		return fmt.Errorf("cannot create sqlite database %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot create sqlite database %s: %w", path, err)
	}
	return nil
}

// sqliteDSN returns the modernc.org/sqlite DSN of a write or read pool. The
// write pool begins every transaction with BEGIN IMMEDIATE, so that a write
// takes the write lock up front instead of failing to upgrade a read lock
// later, and has a 64 MiB page cache, so that a large batch does not spill
// dirty pages to the WAL and read them back before it commits (the default
// 2 MiB made batches of 1000 rows several times slower); the read pool is
// query_only, so that a bug can never write through it. Statement journals
// and sorts stay in memory (temp_store). Foreign keys stay off: rows are
// versioned by idx, not related by keys.
func sqliteDSN(path string, writer bool, synchronous string) string {
	var b strings.Builder
	if path == SQLiteMemory {
		b.WriteString(SQLiteMemory)
	} else {
		b.WriteString("file:")
		b.WriteString(strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path))
	}
	b.WriteString("?_pragma=busy_timeout(")
	b.WriteString(itoa(sqliteBusyTimeoutMS))
	b.WriteString(")&_pragma=foreign_keys(0)&_pragma=temp_store(MEMORY)&_pragma=synchronous(")
	b.WriteString(synchronous)
	b.WriteString(")")
	if writer {
		b.WriteString("&_pragma=journal_mode(WAL)&_txlock=immediate&_pragma=cache_size(-65536)")
	} else {
		b.WriteString("&_pragma=query_only(1)")
	}
	return b.String()
}
