package persist

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The schema is a sequence of versioned migrations per dialect, embedded in
// the binary: migrations/<dialect>/NNNN_<what>.sql, numbered from 0001
// without gaps, one file per version, the same versions for every dialect.
// A file holds statements separated by a ';' at the end of a line; lines
// starting with "--" are comments. The schema_migrations table records
// which versions a database has (version, file name, time applied).
//
// Each migration is applied in one transaction together with its row in
// schema_migrations (SQLite; MySQL commits DDL implicitly, so its files are
// written to be re-runnable). A database whose highest version is above
// what this binary knows is refused (ErrSchemaTooNew): an older binary must
// not write rows a newer schema may interpret differently.
//
//go:embed migrations
var migrationFiles embed.FS

type migration struct {
	version int
	name    string // file name, recorded in schema_migrations
	stmts   []string
}

// loadMigrations returns the migrations of d in version order.
func loadMigrations(d dialect) ([]migration, error) {
	return readMigrations(migrationFiles, path.Join("migrations", d.name()))
}

func readMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("cannot read migrations %s: %w", dir, err)
	}
	var ms []migration
	for _, e := range entries { // fs.ReadDir sorts by name
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("cannot read migrations %s: unexpected entry %q", dir, e.Name())
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || len(num) != 4 {
			return nil, fmt.Errorf("cannot read migrations %s: %q is not named NNNN_<what>.sql", dir, e.Name())
		}
		if v != len(ms)+1 {
			return nil, fmt.Errorf("cannot read migrations %s: %q has version %d, want %d (no gaps, no duplicates)", dir, e.Name(), v, len(ms)+1)
		}
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("cannot read migration %s: %w", e.Name(), err)
		}
		stmts := splitStatements(string(body))
		if len(stmts) == 0 {
			return nil, fmt.Errorf("cannot read migration %s: no statements", e.Name())
		}
		ms = append(ms, migration{version: v, name: e.Name(), stmts: stmts})
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("cannot read migrations %s: none found", dir)
	}
	return ms, nil
}

// splitStatements splits a migration file into statements: comment lines
// ("--") are dropped and a statement ends with a ';' at the end of a line.
func splitStatements(body string) []string {
	var stmts []string
	var cur strings.Builder
	for line := range strings.SplitSeq(body, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		if cur.Len() > 0 {
			cur.WriteByte('\n')
		}
		cur.WriteString(strings.TrimRight(line, " \t\r"))
		if strings.HasSuffix(trimmed, ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}

// SchemaVersion returns the schema version this binary creates and
// understands (the same for every dialect; a test checks it).
func SchemaVersion() int { return schemaVersion0() }

var schemaVersion0 = sync.OnceValue(func() int {
	ms, err := loadMigrations(sqliteDialect{})
	if err != nil {
		return 0
	}
	return len(ms)
})

// migrate brings the database to the newest of ms, or checks that it is
// there when create is false. It returns the version the database had
// before. db must be the connection pool that writes.
func migrate(ctx context.Context, db *sql.DB, d dialect, ms []migration, create bool, log *slog.Logger) (int, error) {
	latest := len(ms)
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("cannot connect to migrate the schema: %w", classified(d, err))
	}
	defer conn.Close()

	if lock, unlock := d.migrationLock(); lock != "" {
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, lock).Scan(&got); err != nil {
			return 0, fmt.Errorf("cannot lock the schema for migration: %w", classified(d, err))
		}
		if got.Int64 != 1 {
			return 0, fmt.Errorf("cannot lock the schema for migration: another process holds the lock: %w", ErrUnavailable)
		}
		defer func() {
			// Best effort: the lock also goes when the connection closes.
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), unlock)
		}()
	}

	exists, err := tableExists(ctx, conn, d, "schema_migrations")
	if err != nil {
		return 0, err
	}
	current := 0
	if exists {
		if current, err = schemaVersion(ctx, conn); err != nil {
			return 0, fmt.Errorf("cannot read the schema version: %w", classified(d, err))
		}
	}
	switch {
	case current > latest:
		return current, fmt.Errorf("cannot use the database: it has schema version %d, this binary knows up to %d: %w", current, latest, ErrSchemaTooNew)
	case current == 0 && !create:
		return 0, fmt.Errorf("cannot use the database: no tokencache schema found: %w", ErrNoTables)
	case current < latest && !create:
		return current, fmt.Errorf("cannot use the database: it has schema version %d, this binary needs %d: %w", current, latest, ErrSchemaOutdated)
	}

	for _, m := range ms[current:] {
		applied, err := applyMigration(ctx, conn, d, m)
		if err != nil {
			return current, err
		}
		if applied {
			log.Info("applied schema migration", "version", m.version, "file", m.name)
		}
	}

	for _, table := range []string{"tokens", "meta"} {
		ok, err := tableExists(ctx, conn, d, table)
		if err != nil {
			return current, err
		}
		if !ok {
			return current, fmt.Errorf("cannot use the database: table %s is missing although schema_migrations says version %d: %w", table, latest, ErrNoTables)
		}
	}
	return current, nil
}

// applyMigration applies m in one transaction unless another process got
// there first. It reports whether it applied m.
func applyMigration(ctx context.Context, conn *sql.Conn, d dialect, m migration) (bool, error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("cannot begin migration %s: %w", m.name, classified(d, err))
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, d.migrationsTableDDL()); err != nil {
		return false, fmt.Errorf("cannot create schema_migrations: %w", classified(d, err))
	}
	// Read again under the write lock: another process may have migrated
	// since the check above.
	v, err := schemaVersion(ctx, tx)
	if err != nil {
		return false, fmt.Errorf("cannot read the schema version: %w", classified(d, err))
	}
	if v >= m.version {
		return false, nil
	}
	for i, stmt := range m.stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil && !d.alreadyApplied(err) {
			return false, fmt.Errorf("cannot apply migration %s (statement %d): %w", m.name, i+1, classified(d, err))
		}
	}
	ins := "INSERT INTO schema_migrations (version, name, applied_at) VALUES (" +
		d.placeholder(1) + ", " + d.placeholder(2) + ", " + d.placeholder(3) + ")"
	if _, err := tx.ExecContext(ctx, ins, m.version, m.name, time.Now().UnixNano()); err != nil {
		return false, fmt.Errorf("cannot record migration %s: %w", m.name, classified(d, err))
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("cannot commit migration %s: %w", m.name, classified(d, err))
	}
	return true, nil
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func schemaVersion(ctx context.Context, q queryRower) (int, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, err
	}
	return int(v.Int64), nil
}

func tableExists(ctx context.Context, q queryRower, d dialect, table string) (bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, d.tableExistsQuery(), table).Scan(&n); err != nil {
		return false, fmt.Errorf("cannot check for table %s: %w", table, classified(d, err))
	}
	return n > 0, nil
}

// classified wraps err with the sentinel its dialect maps it to, if any,
// so that callers can test errors.Is(err, ErrUnavailable) and still read the
// driver's message.
func classified(d dialect, err error) error {
	if s := d.classify(err); s != nil && !errors.Is(err, s) {
		return fmt.Errorf("%w: %w", s, err)
	}
	return err
}
