package baselines

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tokencache/tokencache/bench"
)

// mysqlTarget is the floor of a cache miss: a primary-key SELECT of a
// token-shaped row (~200 bytes) on MySQL/MariaDB through
// go-sql-driver/mysql, in a table of its own that Close drops.
type mysqlTarget struct {
	info    bench.TargetInfo
	db      *sql.DB
	sel     *sql.Stmt
	timeout time.Duration

	closeOnce sync.Once
	closeErr  error
}

var _ bench.Target = (*mysqlTarget)(nil)

const mysqlTable = "tokencache_bench_tokens"

func newMySQLTarget(ctx context.Context, c *bench.Config, target string) (*mysqlTarget, error) {
	dsn := strings.TrimPrefix(target, "mysql://")
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("cannot use target mysql://…: want a go-sql-driver DSN (user:pass@tcp(host:port)/db): %w", err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, fmt.Errorf("cannot open mysql: %w", err)
	}
	db.SetMaxOpenConns(c.Workers() + c.SeedConcurrency)
	db.SetMaxIdleConns(c.Workers() + c.SeedConcurrency)
	t := &mysqlTarget{db: db, timeout: c.Timeout}
	cctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	var version string
	if err := db.QueryRowContext(cctx, "SELECT VERSION()").Scan(&version); err != nil {
		return nil, errors.Join(fmt.Errorf("cannot reach mysql at %s: %w", cfg.Addr, err), db.Close())
	}
	ddl := []string{
		"DROP TABLE IF EXISTS " + mysqlTable,
		`CREATE TABLE ` + mysqlTable + ` (
			token_key   VARCHAR(22)  NOT NULL PRIMARY KEY,
			secret_hash BINARY(32)   NOT NULL,
			username    VARCHAR(64)  NOT NULL,
			realm       VARCHAR(64)  NOT NULL,
			type        VARCHAR(16)  NOT NULL,
			scopes      VARCHAR(255) NOT NULL,
			created     BIGINT       NOT NULL,
			expires     BIGINT       NOT NULL,
			raft_index  BIGINT       NOT NULL
		) ENGINE = InnoDB`,
	}
	for _, q := range ddl {
		if _, err := db.ExecContext(cctx, q); err != nil {
			return nil, errors.Join(fmt.Errorf("cannot create %s: %w", mysqlTable, err), db.Close())
		}
	}
	t.sel, err = db.PrepareContext(cctx, "SELECT token_key, secret_hash, username, realm, type, scopes, created, expires, raft_index FROM "+
		mysqlTable+" WHERE token_key = ?")
	if err != nil {
		return nil, errors.Join(fmt.Errorf("cannot prepare the select: %w", err), t.Close())
	}
	t.info = bench.TargetInfo{
		Kind: kindMySQL, Endpoints: []string{cfg.Addr}, Nodes: 1, Version: version,
		Notes: "validate/validate-miss: prepared primary-key SELECT of a token-shaped row; unknown: SELECT of a missing key",
	}
	return t, nil
}

func (t *mysqlTarget) Info() bench.TargetInfo { return t.info }

func (t *mysqlTarget) Supports(w bench.Workload) bool {
	return w == bench.Validate || w == bench.ValidateMiss || w == bench.Unknown
}

// mysqlKey returns a random 22-character key.
func mysqlKey(rng *rand.Rand) string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], rng.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rng.Uint64())
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Seed inserts n rows in multi-row INSERTs of 500.
func (t *mysqlTarget) Seed(ctx context.Context, n, conc int, progress func()) ([]bench.Seeded, error) {
	const batch = 500
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	keys := make([]string, n)
	for i := range keys {
		keys[i] = mysqlKey(rng)
	}
	now := time.Now().Unix()
	return bench.SeedBatches(ctx, keys, batch, conc, progress, func(part []string, first int) error {
		var q strings.Builder
		q.WriteString("INSERT INTO " + mysqlTable + " VALUES ")
		args := make([]any, 0, len(part)*9)
		for i, k := range part {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?,?,?,?,?,?,?,?,?)")
			h := sha256.Sum256([]byte(k))
			args = append(args, k, h[:], fmt.Sprintf("bench-%d", (first+i)%1000), "default", "user",
				"read write", now, now+3600, first+i+1)
		}
		cctx, cancel := context.WithTimeout(ctx, t.timeout)
		defer cancel()
		if _, err := t.db.ExecContext(cctx, q.String(), args...); err != nil {
			return fmt.Errorf("cannot seed %s: %w", mysqlTable, err)
		}
		return nil
	})
}

func (t *mysqlTarget) NewClient(_ int, pop *bench.Population) bench.Client {
	return &mysqlClient{t: t, pop: pop}
}

type mysqlClient struct {
	t   *mysqlTarget
	pop *bench.Population
	row struct {
		key, user, realm, typ, scopes string
		hash                          []byte
		created, expires, index       int64
	}
}

func (c *mysqlClient) Do(ctx context.Context, w bench.Workload, rng *rand.Rand) error {
	var key string
	switch w {
	case bench.Validate:
		key = c.pop.Hot(rng.Uint64()).Token
	case bench.ValidateMiss:
		key = c.pop.NextCold().Token
	case bench.Unknown:
		key = mysqlKey(rng)
	default:
		return bench.ErrUnsupported
	}
	ctx, cancel := context.WithTimeout(ctx, c.t.timeout)
	defer cancel()
	r := &c.row
	err := c.t.sel.QueryRowContext(ctx, key).Scan(&r.key, &r.hash, &r.user, &r.realm, &r.typ, &r.scopes, &r.created, &r.expires, &r.index)
	switch {
	case w == bench.Unknown && errors.Is(err, sql.ErrNoRows):
		return nil
	case w == bench.Unknown && err == nil:
		return errors.New("a random key was found")
	case errors.Is(err, sql.ErrNoRows):
		return errNotFound
	}
	return err
}

// Close drops the table and closes the pool.
func (t *mysqlTarget) Close() error {
	t.closeOnce.Do(func() {
		var errs []error
		if t.sel != nil {
			errs = append(errs, t.sel.Close())
		}
		ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
		defer cancel()
		if _, err := t.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+mysqlTable); err != nil {
			errs = append(errs, fmt.Errorf("cannot drop %s: %w", mysqlTable, err))
		}
		errs = append(errs, t.db.Close())
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}
