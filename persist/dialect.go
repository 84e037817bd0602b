package persist

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
)

// dialect is everything that differs between the SQL databases tokencache
// supports. The store (sqlstore.go), its queries and the migration runner
// (schema.go) are written once against it; a dialect only supplies
// fragments of SQL and classifies its driver's errors. The DDL lives in the
// dialect's own numbered migration files (migrations/<name>/NNNN_*.sql).
//
// Both dialects use "?" placeholders and the same SELECT, UPDATE and DELETE
// statements (standard SQL plus LIMIT). What differs:
//   - the guarded upsert: SQLite "ON CONFLICT (token_key) DO UPDATE …
//     WHERE excluded.idx > tokens.idx", MySQL "ON DUPLICATE KEY UPDATE
//     col = IF(VALUES(idx) > idx, VALUES(col), col)";
//   - the two-argument maximum (max vs GREATEST);
//   - how to ask whether a table exists, and how to serialise migrations
//     between processes (SQLite: BEGIN IMMEDIATE; MySQL: GET_LOCK);
//   - column types (BLOB vs BINARY(16)/VARBINARY(32)/MEDIUMBLOB, STRICT
//     tables vs binary collations), in the migration files;
//   - driver errors: *sqlite.Error result codes vs *mysql.MySQLError numbers.
//
// How MySQL plugs in (mysql.go): openMySQL takes ParseURL's *mysql.Config,
// sets User and Passwd from the Config and tokencache's connection defaults
// (mysqlDriverConfig), opens one *sql.DB with mysql.NewConnector, and builds
// an SQLStore with d = mysqlDialect{}, rdb = wdb (one pool: a server has no
// single-writer rule), rgate = wgate = newGate(pool_size + max_overflow),
// shared = true, and the pool settings of Open's doc. migrate,
// prepareWrites, every query and the error translation are then the ones
// SQLite uses. Its tests (mysql_test.go) call storetest.Run with a
// Corrupter that runs UPDATE with check_constraint_checks off.
type dialect interface {
	// name is the dialect's name: the database/sql driver name and the
	// directory of its migrations.
	name() string
	// placeholder returns the bind parameter number n (1-based).
	placeholder(n int) string
	// maxParams is the most bind parameters one statement may carry.
	maxParams() int
	// upsertTail returns the clause appended to
	// "INSERT INTO tokens (cols) VALUES (…), (…)" that makes it an upsert
	// changing a stored row only when the new idx is larger, and then
	// keeping the larger last_used. cols is the column list; cols[0] is the
	// primary key.
	upsertTail(cols []string) string
	// greatest returns the larger of two non-NULL integer expressions.
	greatest(a, b string) string
	// tableExistsQuery returns a query with one parameter (a table name)
	// that answers one row with a count (0 or 1).
	tableExistsQuery() string
	// migrationsTableDDL creates the schema_migrations table if missing.
	migrationsTableDDL() string
	// migrationLock returns statements run on one connection around the
	// migrations, to keep two processes from migrating at once ("" when the
	// transaction itself is enough).
	migrationLock() (lock, unlock string)
	// insertIgnore is "INSERT … INTO" that skips rows whose primary key
	// exists.
	insertIgnore() string
	// classify maps a driver error to ErrUnavailable (the database cannot
	// be reached, is busy, full or read-only: retry later), ErrCorrupt
	// (the database file is damaged), ErrNoTables, or nil (anything else:
	// a bug or a schema problem, reported as is).
	classify(err error) error
	// alreadyApplied reports whether err, from a statement of a migration,
	// says that the statement's effect is already there (a column added by
	// an earlier, interrupted run on a database whose DDL is not
	// transactional), so that the re-run goes on.
	alreadyApplied(err error) bool
}

var (
	_ dialect = sqliteDialect{}
	_ dialect = mysqlDialect{}
)

// classifyCommon handles the errors of database/sql itself and of the
// network, which mean "cannot reach the database" for every driver.
func classifyCommon(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone), errors.As(err, &ne):
		return ErrUnavailable
	}
	return nil
}

// sqliteDialect is SQLite through modernc.org/sqlite (driver "sqlite").
type sqliteDialect struct{}

func (sqliteDialect) name() string           { return "sqlite" }
func (sqliteDialect) placeholder(int) string { return "?" }

// maxParams: SQLITE_MAX_VARIABLE_NUMBER is 32766 since SQLite 3.32.
func (sqliteDialect) maxParams() int { return 32766 }

func (sqliteDialect) upsertTail(cols []string) string {
	var b strings.Builder
	b.WriteString(" ON CONFLICT (")
	b.WriteString(cols[0])
	b.WriteString(") DO UPDATE SET ")
	for i, c := range cols[1:] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c)
		b.WriteString(" = ")
		if c == "last_used" {
			b.WriteString("NULLIF(max(COALESCE(excluded.last_used, 0), COALESCE(tokens.last_used, 0)), 0)")
		} else {
			b.WriteString("excluded.")
			b.WriteString(c)
		}
	}
	b.WriteString(" WHERE excluded.idx > tokens.idx")
	return b.String()
}

func (sqliteDialect) greatest(a, b string) string { return "max(" + a + ", " + b + ")" }

func (sqliteDialect) tableExistsQuery() string {
	return "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = ?"
}

func (sqliteDialect) migrationsTableDDL() string {
	return `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
) STRICT`
}

// migrationLock: the write connection begins every transaction with BEGIN
// IMMEDIATE, which already excludes every other writer of the file.
func (sqliteDialect) migrationLock() (string, string) { return "", "" }

func (sqliteDialect) insertIgnore() string { return "INSERT OR IGNORE INTO" }

// SQLite primary result codes (the low byte of an extended code).
const (
	sqliteBusy      = 5
	sqliteLocked    = 6
	sqliteNoMem     = 7
	sqliteReadOnly  = 8
	sqliteInterrupt = 9
	sqliteIOErr     = 10
	sqliteCorrupt   = 11
	sqliteFull      = 13
	sqliteCantOpen  = 14
	sqliteProtocol  = 15
	sqliteNotADB    = 26
)

// alreadyApplied is false: SQLite applies a migration in one transaction,
// so a statement never meets the effect of an interrupted run.
func (sqliteDialect) alreadyApplied(error) bool { return false }

func (sqliteDialect) classify(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqliteBusy, sqliteLocked, sqliteNoMem, sqliteReadOnly, sqliteInterrupt,
			sqliteIOErr, sqliteFull, sqliteCantOpen, sqliteProtocol:
			return ErrUnavailable
		case sqliteCorrupt, sqliteNotADB:
			return ErrCorrupt
		}
		return nil
	}
	return classifyCommon(err)
}

// mysqlDialect is MySQL/MariaDB through github.com/go-sql-driver/mysql
// (driver "mysql"). Its SQL is written against MariaDB 10.11 and MySQL 8.
type mysqlDialect struct{}

func (mysqlDialect) name() string           { return "mysql" }
func (mysqlDialect) placeholder(int) string { return "?" }

// maxParams: the protocol counts parameters in 16 bits.
func (mysqlDialect) maxParams() int { return 65535 }

// upsertTail uses VALUES(col), which MariaDB supports (the "AS new" row
// alias of MySQL 8.0.19 is not in MariaDB). MySQL evaluates the assignments
// left to right and later ones see the new values, so idx, which every
// condition reads, is assigned last.
func (mysqlDialect) upsertTail(cols []string) string {
	const newer = "VALUES(idx) > idx"
	var b strings.Builder
	b.WriteString(" ON DUPLICATE KEY UPDATE ")
	first := true
	for _, c := range cols[1:] {
		if c == "idx" {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(c)
		b.WriteString(" = IF(" + newer + ", ")
		if c == "last_used" {
			b.WriteString("NULLIF(GREATEST(COALESCE(VALUES(last_used), 0), COALESCE(last_used, 0)), 0)")
		} else {
			b.WriteString("VALUES(" + c + ")")
		}
		b.WriteString(", " + c + ")")
	}
	b.WriteString(", idx = IF(" + newer + ", VALUES(idx), idx)")
	return b.String()
}

func (mysqlDialect) greatest(a, b string) string { return "GREATEST(" + a + ", " + b + ")" }

func (mysqlDialect) tableExistsQuery() string {
	return "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?"
}

func (mysqlDialect) migrationsTableDDL() string {
	return `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT       NOT NULL PRIMARY KEY,
    name       VARCHAR(255) NOT NULL,
    applied_at BIGINT       NOT NULL
) ENGINE = InnoDB`
}

// migrationLock: several nodes share one MySQL database and may start at
// once; a named lock (held by the connection) lets one of them migrate. Lock
// names are server-wide, so the name carries the database (hashed: a name
// is at most 64 characters), and the shards or tenants of one server do not
// wait for each other. A node waits up to 60 s for another's migration.
func (mysqlDialect) migrationLock() (string, string) {
	const name = "CONCAT('tokencache.migrate.', SHA1(DATABASE()))"
	return "SELECT GET_LOCK(" + name + ", 60)", "SELECT RELEASE_LOCK(" + name + ")"
}

func (mysqlDialect) insertIgnore() string { return "INSERT IGNORE INTO" }

// MySQL and MariaDB server error numbers that mean "retry later".
var mysqlUnavailable = map[uint16]bool{
	1040: true, // ER_CON_COUNT_ERROR: too many connections
	1053: true, // ER_SERVER_SHUTDOWN
	1205: true, // ER_LOCK_WAIT_TIMEOUT
	1213: true, // ER_LOCK_DEADLOCK
	1317: true, // ER_QUERY_INTERRUPTED (KILL QUERY, shutdown)
	1290: true, // ER_OPTION_PREVENTS_STATEMENT (--read-only)
	1792: true, // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
	1836: true, // ER_READ_ONLY_MODE
	1927: true, // ER_CONNECTION_KILLED (MariaDB)
	1969: true, // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
	3024: true, // ER_QUERY_TIMEOUT (MySQL max_execution_time)
}

const (
	mysqlNoSuchTable  = 1146 // ER_NO_SUCH_TABLE
	mysqlDupFieldName = 1060 // ER_DUP_FIELDNAME: ADD COLUMN of a column that exists
)

// alreadyApplied reads "duplicate column" as the work of an earlier run of
// the same migration (MySQL commits each DDL statement on its own and has
// no ADD COLUMN IF NOT EXISTS).
func (mysqlDialect) alreadyApplied(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == mysqlDupFieldName
}

func (mysqlDialect) classify(err error) error {
	if errors.Is(err, mysql.ErrInvalidConn) {
		return ErrUnavailable
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch {
		case mysqlUnavailable[me.Number]:
			return ErrUnavailable
		case me.Number == mysqlNoSuchTable:
			return ErrNoTables
		}
		return nil
	}
	return classifyCommon(err)
}

// placeholders appends n comma-separated placeholders numbered from *next.
func placeholders(b *strings.Builder, d dialect, n int, next *int) {
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(d.placeholder(*next))
		*next++
	}
}

// itoa is strconv.Itoa, kept short for query building.
func itoa(n int) string { return strconv.Itoa(n) }
