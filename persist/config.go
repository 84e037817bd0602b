package persist

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Store kinds (persist.store).
const (
	StoreMemory = "memory"
	StoreSQLite = "sqlite"
	StoreMySQL  = "mysql"
	// StoreNone disables the token store: only JWTs are usable, and only
	// their revocations are kept (see None).
	StoreNone = "none"
)

// Config configures the persistence layer: the persist.* keys of DESIGN §7
// that reach the database. The write mode and the writer's batching knobs
// (persist.write_mode, batch_size, flush_interval, max_pending) configure
// the store writer, replica.WriterConfig, and are declared there. The zero
// value is not usable; start from DefaultConfig. A Config is a plain value
// and safe to copy.
//
// Config never prints its password: String, GoString, Format (every fmt
// verb) and LogValue (log/slog) all redact it.
type Config struct {
	// Store is "memory", "sqlite" (default), "mysql" or "none"
	// (persist.store).
	Store string
	// URL is the JDBC-style location of the database (persist.url):
	// "jdbc:sqlite:<path>" (relative paths are relative to the data dir;
	// "jdbc:sqlite::memory:" for tests) or
	// "jdbc:mysql://host[:port]/db[?param=value&…]". Empty selects
	// "jdbc:sqlite:<data_dir>/tokens.db" for sqlite; mysql requires one.
	// Credentials never go in the URL (see ParseURL).
	URL string
	// Shards, when not empty, spreads the tokens over several databases of
	// the same kind (persist.shards, tokenserver's sharded `databases`):
	// each entry is a URL of the same form as URL, and it replaces URL. A
	// token's row lives in the shard ShardOf picks from its key. The order
	// is part of the data: never reorder the list (see Sharded).
	Shards []string
	// Username and Password authenticate to a server database
	// (persist.username, persist.password). The password is redacted
	// wherever a Config is printed or logged.
	Username string
	Password string

	// PoolSize is the number of connections kept open when idle
	// (persist.pool_size, default 5). Under load the overflow connections
	// stay open too, and are closed once no more than PoolSize were needed
	// at once for 10s (see Open). It must
	// be at least 1 (tokenserver's "0 = no limit" is not supported: a zero
	// never means unbounded here; use MaxOverflow -1 for no limit).
	PoolSize int
	// MaxOverflow is how many connections may be opened beyond PoolSize
	// under load, and closed again once the load is gone (persist.max_overflow,
	// default 10; -1 = unlimited). PoolSize+MaxOverflow is database/sql
	// SetMaxOpenConns.
	MaxOverflow int
	// PoolRecycle is the age after which a connection is closed and
	// replaced instead of reused (persist.pool_recycle, default -1 = never;
	// 0 also means never): database/sql SetConnMaxLifetime.
	PoolRecycle time.Duration
	// PoolTimeout is how long an operation waits for a free connection
	// when PoolSize+MaxOverflow are all in use (persist.pool_timeout,
	// default 30s). Past it the operation fails with ErrUnavailable.
	PoolTimeout time.Duration
	// QueryTimeout is the deadline of each read statement once it has a
	// connection (default 2s). A read that takes longer fails with
	// ErrUnavailable, so that a miss answers 503 quickly instead of hanging.
	// Writes and Scan are bounded by the caller's context only.
	QueryTimeout time.Duration
	// CreateTables creates missing tables and applies pending migrations
	// at start (persist.create_tables, default true). When false, missing
	// tables are ErrNoTables and an older schema is ErrSchemaOutdated.
	CreateTables bool
}

// Defaults (DESIGN §7 and tokenserver's pool settings).
const (
	DefaultPoolSize     = 5
	DefaultMaxOverflow  = 10
	DefaultPoolRecycle  = time.Duration(-1)
	DefaultPoolTimeout  = 30 * time.Second
	DefaultQueryTimeout = 2 * time.Second
	// DefaultSQLiteFile is the file name of the default SQLite store in the
	// data dir.
	DefaultSQLiteFile = "tokens.db"
)

// maxShards bounds persist.shards (a typo, not a setting, beyond it).
const maxShards = 1024

// DefaultConfig returns the defaults: SQLite in the data dir, pool 5+10,
// never recycle, 30s pool timeout, 2s query timeout, create tables.
func DefaultConfig() Config {
	return Config{
		Store:        StoreSQLite,
		PoolSize:     DefaultPoolSize,
		MaxOverflow:  DefaultMaxOverflow,
		PoolRecycle:  DefaultPoolRecycle,
		PoolTimeout:  DefaultPoolTimeout,
		QueryTimeout: DefaultQueryTimeout,
		CreateTables: true,
	}
}

// Validate reports every problem with c in one error (wrapping ErrConfig),
// or nil. It parses the URL but does not touch the database. The password
// never appears in the error.
func (c Config) Validate() error {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }

	switch c.Store {
	case StoreMemory, StoreSQLite, StoreMySQL, StoreNone:
	default:
		add("persist.store %q is not one of memory, sqlite, mysql, none", c.Store)
	}
	switch c.Store {
	case StoreSQLite:
		if c.URL != "" {
			// The data dir only matters for relative paths; any
			// non-empty placeholder lets the syntax be checked here.
			u, err := ParseURL(c.URL, ".")
			if err != nil {
				add("%v", err)
			} else if u.Kind != StoreSQLite {
				add("persist.url is a %s URL but persist.store is sqlite", u.Kind)
			}
		}
	case StoreMySQL:
		switch {
		case len(c.Shards) > 0:
		case c.URL == "":
			add("persist.url is required for persist.store mysql (jdbc:mysql://host:3306/db)")
		default:
			if u, err := ParseURL(c.URL, "."); err != nil {
				add("%v", err)
			} else if u.Kind != StoreMySQL {
				add("persist.url is a %s URL but persist.store is mysql", u.Kind)
			} else if _, err := mysqlDriverConfig(c, u.MySQL); err != nil {
				add("%v", err)
			}
		}
		if c.Username == "" {
			add("persist.username is required for persist.store mysql")
		}
	}
	if len(c.Shards) > 0 {
		if c.Store == StoreMemory || c.Store == StoreNone {
			add("persist.shards is not used by the %s store", c.Store)
		}
		if len(c.Shards) > maxShards {
			add("persist.shards lists %d databases, at most %d are supported", len(c.Shards), maxShards)
		}
		seen := make(map[string]int, len(c.Shards))
		for i, raw := range c.Shards {
			if j, dup := seen[raw]; dup {
				add("persist.shards[%d] repeats persist.shards[%d]: each shard needs its own database", i, j)
				continue
			}
			seen[raw] = i
			if c.Store == StoreMemory || c.Store == StoreNone {
				continue
			}
			u, err := ParseURL(raw, ".")
			switch {
			case err != nil:
				add("persist.shards[%d]: %v", i, err)
			case u.Kind != c.Store:
				add("persist.shards[%d] is a %s URL but persist.store is %s", i, u.Kind, c.Store)
			case u.Kind == StoreSQLite && u.Path == SQLiteMemory:
				add("persist.shards[%d]: an in-memory SQLite database cannot be a shard", i)
			case u.Kind == StoreMySQL:
				if _, err := mysqlDriverConfig(c, u.MySQL); err != nil {
					add("persist.shards[%d]: %v", i, err)
				}
			}
		}
	}

	if c.PoolSize < 1 {
		add("persist.pool_size must be at least 1, got %d (use max_overflow: -1 for no connection limit)", c.PoolSize)
	}
	if c.MaxOverflow < -1 {
		add("persist.max_overflow must be -1 (unlimited) or at least 0, got %d", c.MaxOverflow)
	}
	if c.PoolTimeout <= 0 {
		add("persist.pool_timeout must be positive, got %s", c.PoolTimeout)
	}
	if c.QueryTimeout <= 0 {
		add("persist.query_timeout must be positive, got %s", c.QueryTimeout)
	}
	if len(probs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrConfig, strings.Join(probs, "; "))
}

// maxOpen returns the database/sql SetMaxOpenConns value: PoolSize +
// MaxOverflow, or 0 (database/sql's "no limit") when MaxOverflow is -1.
func (c Config) maxOpen() int {
	if c.MaxOverflow < 0 {
		return 0
	}
	return c.PoolSize + c.MaxOverflow
}

// connMaxLifetime returns the database/sql SetConnMaxLifetime value:
// PoolRecycle, or 0 (never) when it is zero or negative.
func (c Config) connMaxLifetime() time.Duration {
	if c.PoolRecycle <= 0 {
		return 0
	}
	return c.PoolRecycle
}

const redacted = "[redacted]"

// redact returns a copy of c whose password, when set, is replaced, and
// whose URL has any userinfo password (refused by Validate, but a Config can
// be printed before it is validated) replaced too.
func (c Config) redact() redactedConfig {
	if c.Password != "" {
		c.Password = redacted
	}
	c.URL = RedactURL(c.URL)
	c.Shards = redactURLs(c.Shards)
	return redactedConfig(c)
}

func redactURLs(urls []string) []string {
	if urls == nil {
		return nil
	}
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = RedactURL(u)
	}
	return out
}

// redactedConfig has Config's fields and none of its methods, so that fmt
// prints it field by field without recursing into Config.Format.
type redactedConfig Config

// String returns c in fmt's %+v form with the password redacted.
func (c Config) String() string { return fmt.Sprintf("%+v", c.redact()) }

// GoString returns c in fmt's %#v form with the password redacted.
func (c Config) GoString() string {
	s := fmt.Sprintf("%#v", c.redact())
	return strings.Replace(s, "persist.redactedConfig", "persist.Config", 1)
}

// Format implements fmt.Formatter so that no verb (%v, %+v, %#v, %s, %q,
// %x, %d, …) can print the password.
func (c Config) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, c.GoString())
		return
	}
	_, _ = io.WriteString(f, c.String())
}

// LogValue implements slog.LogValuer: the settings an operator needs, with
// the password reduced to whether it is set.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("store", c.Store),
		slog.String("url", RedactURL(c.URL)),
		slog.Any("shards", redactURLs(c.Shards)),
		slog.String("username", c.Username),
		slog.Bool("password_set", c.Password != ""),
		slog.Int("pool_size", c.PoolSize),
		slog.Int("max_overflow", c.MaxOverflow),
		slog.Duration("pool_recycle", c.PoolRecycle),
		slog.Duration("pool_timeout", c.PoolTimeout),
		slog.Duration("query_timeout", c.QueryTimeout),
		slog.Bool("create_tables", c.CreateTables),
	)
}
