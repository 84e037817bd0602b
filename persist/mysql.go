package persist

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MySQL connection settings tokencache chooses when the URL does not.
const (
	// mysqlIOTimeout is the driver's default readTimeout and writeTimeout:
	// the longest the server may stay silent within one statement before
	// the connection is dropped. Reads and writes carry shorter deadlines
	// of their own (query_timeout, the writer's timeout), which the driver
	// enforces by closing the connection; this is the backstop for what
	// carries none (Scan, closing a connection), so that a frozen server
	// can never hang a goroutine for ever. A URL's readTimeout or
	// writeTimeout (or socketTimeout) replaces it.
	mysqlIOTimeout = 30 * time.Second
	// mysqlSQLMode is the session sql_mode unless the URL sets a strict
	// one: refuse bad values instead of truncating them.
	mysqlSQLMode = "'TRADITIONAL'"
	// mysqlProgramName is sent as a connection attribute, so that the
	// server's process list says who holds a connection.
	mysqlProgramName = "program_name:tokencache"
)

// mysqlDriverConfig returns the driver configuration of one database: the
// URL's settings, the credentials of cfg, and tokencache's defaults where
// the URL chose nothing. It does not connect.
func mysqlDriverConfig(cfg Config, u *mysql.Config) (*mysql.Config, error) {
	c := u.Clone()
	c.User, c.Passwd = cfg.Username, cfg.Password
	// Dial timeout: getting a connection should not take longer than an
	// operation waits for one.
	if c.Timeout == 0 {
		c.Timeout = cfg.PoolTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = max(mysqlIOTimeout, cfg.QueryTimeout)
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = max(mysqlIOTimeout, cfg.QueryTimeout)
	}
	// A connection that finds itself on a read-only server (a demoted
	// primary after a failover) is dropped and replaced instead of failing
	// every write with ER_OPTION_PREVENTS_STATEMENT.
	c.RejectReadOnly = true
	c.CheckConnLiveness = true
	// Times are BIGINT nanoseconds; nothing is a DATETIME.
	c.ParseTime = false
	if c.ConnectionAttributes == "" {
		c.ConnectionAttributes = mysqlProgramName
	}
	if c.Params == nil {
		c.Params = map[string]string{}
	}
	mode, ok := lookupParam(c.Params, "sql_mode")
	switch {
	case !ok:
		c.Params["sql_mode"] = mysqlSQLMode
	case !strictSQLMode(mode):
		return nil, fmt.Errorf("%w: sql_mode=%s is not strict: include STRICT_TRANS_TABLES, STRICT_ALL_TABLES or TRADITIONAL (or leave sql_mode out: tokencache sets TRADITIONAL)", ErrBadURL, mode)
	}
	return c, nil
}

func lookupParam(params map[string]string, name string) (string, bool) {
	for k, v := range params {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

func strictSQLMode(mode string) bool {
	m := strings.ToUpper(mode)
	return strings.Contains(m, "STRICT_TRANS_TABLES") || strings.Contains(m, "STRICT_ALL_TABLES") || strings.Contains(m, "TRADITIONAL")
}

// openMySQL opens (and migrates, when allowed) the MySQL or MariaDB
// database of raw, one shard of shards. See Open for the pool settings.
func openMySQL(ctx context.Context, cfg Config, raw string, shard, shards int, log *slog.Logger) (*SQLStore, error) {
	u, err := ParseURL(raw, "")
	if err != nil {
		return nil, fmt.Errorf("cannot open the mysql store: %w", err)
	}
	if u.Kind != StoreMySQL {
		return nil, fmt.Errorf("cannot open the mysql store: persist.url is a %s URL: %w", u.Kind, ErrConfig)
	}
	mc, err := mysqlDriverConfig(cfg, u.MySQL)
	if err != nil {
		return nil, fmt.Errorf("cannot open the mysql store: %w", err)
	}
	what := "mysql database " + mc.DBName + " at " + mc.Addr
	for _, n := range u.Notes {
		log.Info("persist.url: "+n, "database", what)
	}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", what, err)
	}
	d := mysqlDialect{}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(cfg.maxOpen())
	db.SetConnMaxLifetime(cfg.connMaxLifetime())
	g := newGate(cfg.maxOpen(), "the connections (pool_size + max_overflow)")
	s := &SQLStore{
		d:            d,
		rdb:          db,
		wdb:          db,
		rgate:        g,
		wgate:        g,
		shared:       true,
		what:         what,
		poolTimeout:  cfg.PoolTimeout,
		queryTimeout: cfg.QueryTimeout,
		q:            buildQueries(d),
	}
	s.rstmts.db, s.wstmts.db = db, db
	s.trims = []*trimmer{startTrimmer(db, g, cfg.PoolSize, cfg.maxOpen(), overflowIdle)}
	fail := func(err error) (*SQLStore, error) {
		_ = s.Close()
		return nil, fmt.Errorf("cannot open %s: %w", what, err)
	}

	// Migrations run on a connection of their own without I/O timeouts: a
	// schema change on a large table may keep the server silent for longer
	// than any statement of normal operation. Open's ctx bounds it.
	from, err := func() (int, error) {
		mc2 := mc.Clone()
		mc2.ReadTimeout, mc2.WriteTimeout = 0, 0
		conn2, err := mysql.NewConnector(mc2)
		if err != nil {
			return 0, err
		}
		mdb := sql.OpenDB(conn2)
		defer mdb.Close()
		mdb.SetMaxOpenConns(1)
		ms, err := loadMigrations(d)
		if err != nil {
			return 0, err
		}
		return migrate(ctx, mdb, d, ms, cfg.CreateTables, log)
	}()
	if err != nil {
		return fail(explainMySQL(err))
	}
	if err := s.claimShard(ctx, shard, shards); err != nil {
		return fail(err)
	}
	if err := s.prepareWrites(ctx); err != nil {
		return fail(explainMySQL(err))
	}
	if err := s.Ping(ctx); err != nil {
		return fail(err)
	}
	s.gets = newGetBatcher(s, cfg.PoolSize)
	var version, mode string
	if err := db.QueryRowContext(ctx, "SELECT VERSION(), @@SESSION.sql_mode").Scan(&version, &mode); err != nil {
		return fail(classified(d, err))
	}
	log.Info("opened mysql store", "database", mc.DBName, "addr", mc.Addr, "user", mc.User, "server_version", version,
		"schema_version", SchemaVersion(), "schema_version_before", from, "shard", shard, "shards", shards,
		"pool_size", cfg.PoolSize, "pool_max", cfg.maxOpen(), "pool_recycle", cfg.connMaxLifetime(),
		"pool_timeout", cfg.PoolTimeout, "query_timeout", cfg.QueryTimeout,
		"dial_timeout", mc.Timeout, "read_timeout", mc.ReadTimeout, "write_timeout", mc.WriteTimeout,
		"tls", mc.TLSConfig, "sql_mode", mode)
	return s, nil
}

// MySQL errors that mean the configuration is wrong, not the server down.
const (
	mysqlAccessDenied     = 1045 // ER_ACCESS_DENIED_ERROR
	mysqlDBAccessDenied   = 1044 // ER_DBACCESS_DENIED_ERROR
	mysqlBadDB            = 1049 // ER_BAD_DB_ERROR
	mysqlUnknownVariable  = 1193 // ER_UNKNOWN_SYSTEM_VARIABLE
	mysqlWrongValueForVar = 1231 // ER_WRONG_VALUE_FOR_VAR
)

// explainMySQL adds what to do to the errors an operator meets at first
// start. The driver's message never contains the password.
func explainMySQL(err error) error {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return err
	}
	switch me.Number {
	case mysqlAccessDenied:
		return fmt.Errorf("%w (check persist.username and persist.password / TOKENCACHE_PERSIST_PASSWORD)", err)
	case mysqlDBAccessDenied, mysqlBadDB:
		return fmt.Errorf("%w (create the database and grant the user ALL on it: see docs/persistence.md)", err)
	case mysqlUnknownVariable, mysqlWrongValueForVar:
		return fmt.Errorf("%w (a persist.url parameter that is not a driver parameter is sent to the server as a session variable)", err)
	}
	return err
}
