package baselines

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache/bench"
)

// Options configures the compare suite.
type Options struct {
	bench.SuiteOptions
	// Baselines; an empty one skips its side.
	Redis    string // redis://host:port
	Etcd     string // etcd://host:port (single member)
	Etcd3    string // etcd://h1:p1,h2:p2,h3:p3
	MySQLDSN string // go-sql-driver DSN
	// Levels of the compare cases: validate connections and issue clients.
	ValidateConns []int
	IssueClients  []int
}

// RunCompareSuite runs the groups of `make bench-compare` (Groups) with
// bench.RunCompare: rounds interleaved, medians and ratios to tokencache.
func RunCompareSuite(ctx context.Context, o Options) (*bench.SuiteResult, error) {
	return bench.RunCompare(ctx, o.SuiteOptions, Groups(o))
}

// Groups builds the groups of `make bench-compare` from o.
func Groups(o Options) []bench.CompareGroup {
	base := bench.DefaultConfig()
	base.Warmup, base.Duration, base.Binary, base.BaselineArgs = o.Warmup, o.Duration, o.Binary, o.BaselineArgs
	validate := base
	validate.Mix, validate.Tokens = bench.MustParseMix("validate"), bench.SuiteTokens
	with := func(c bench.Config, f func(*bench.Config)) bench.Config { f(&c); return c }

	vg := bench.CompareGroup{Name: "validate", Levels: o.ValidateConns}
	vg.Sides = append(vg.Sides, bench.CompareSide{Name: "tokencache (1 node)", Config: with(validate, func(c *bench.Config) { c.Spawn = 1 })})
	if o.Redis != "" {
		vg.Sides = append(vg.Sides, bench.CompareSide{Name: "redis GET", Config: with(validate, func(c *bench.Config) { c.Targets = []string{o.Redis} })})
	}
	vg.Sides = append(vg.Sides, bench.CompareSide{Name: "baseline-http", Config: with(validate, func(c *bench.Config) { c.Targets = []string{bench.KindBaselineHTTP} })})

	// A flood of random tokens against cache hits, on one node each: the
	// key filter and the negative cache must answer it at the speed of a
	// hit, with no store read per request.
	unknown := base
	unknown.Mix, unknown.Tokens = bench.MustParseMix("unknown"), bench.SuiteTokens
	ug := bench.CompareGroup{Name: "unknown", Levels: []int{64}, Sides: []bench.CompareSide{
		{Name: "tokencache validate (cache hit)", Config: with(validate, func(c *bench.Config) { c.Spawn = 1 })},
		{Name: "tokencache unknown (random tokens)", Config: with(unknown, func(c *bench.Config) { c.Spawn = 1 })},
	}}

	miss := base
	miss.Mix, miss.Tokens, miss.Hot = bench.MustParseMix("validate-miss"), bench.SuiteTokens, bench.SuiteHot
	mg := bench.CompareGroup{Name: "validate-miss", Levels: []int{64}}
	if o.MySQLDSN == "" {
		mg.Skip = "validate-miss vs MariaDB SELECT: no MySQL DSN (TOKENCACHE_TEST_MYSQL_DSN)"
	} else if env, err := mysqlSpawnEnv(o.MySQLDSN); err != nil {
		mg.Skip = "validate-miss: " + err.Error()
	} else {
		mg.Sides = []bench.CompareSide{
			{Name: "tokencache (1 node, MySQL)", Config: with(miss, func(c *bench.Config) { c.Spawn, c.SpawnEnv = 1, env })},
			{Name: "MariaDB PK SELECT", Config: with(miss, func(c *bench.Config) { c.Targets = []string{"mysql://" + o.MySQLDSN} })},
		}
	}

	issue := base
	issue.Mix, issue.Tokens = bench.MustParseMix("issue"), 0
	ig := bench.CompareGroup{Name: "issue", Levels: o.IssueClients}
	clusterEnv := []string{"TOKENCACHE_CLUSTER_REPLICATION_POLICY=sync", "TOKENCACHE_PERSIST_WRITE_MODE=through"}
	tcName := "tokencache (3 nodes, sync, SQLite write-through)"
	if env, err := mysqlSpawnEnv(o.MySQLDSN); o.MySQLDSN != "" && err == nil {
		clusterEnv = append(clusterEnv, env...)
		tcName = "tokencache (3 nodes, sync, MySQL write-through)"
	}
	ig.Sides = append(ig.Sides, bench.CompareSide{Name: tcName, Config: with(issue, func(c *bench.Config) { c.Spawn, c.SpawnEnv = 3, clusterEnv })})
	if o.Etcd3 != "" {
		ig.Sides = append(ig.Sides, bench.CompareSide{Name: "etcd put (3 members)", Config: with(issue, func(c *bench.Config) { c.Targets = []string{o.Etcd3} })})
	}
	ig.Sides = append(ig.Sides, bench.CompareSide{Name: "bare raft (3 nodes)", Config: with(issue, func(c *bench.Config) { c.Targets = []string{kindRaftBare} })})

	i1 := bench.CompareGroup{Name: "issue single node", Levels: []int{16}}
	i1.Sides = append(i1.Sides, bench.CompareSide{Name: "tokencache (1 node, sync, SQLite)", Config: with(issue, func(c *bench.Config) {
		c.Spawn, c.SpawnEnv = 1, []string{"TOKENCACHE_PERSIST_WRITE_MODE=through"}
	})})
	if o.Etcd != "" {
		i1.Sides = append(i1.Sides, bench.CompareSide{Name: "etcd put (1 member)", Config: with(issue, func(c *bench.Config) { c.Targets = []string{o.Etcd} })})
	} else {
		i1.Skip = "issue single node: no single-member etcd (--etcd)"
	}
	return []bench.CompareGroup{vg, ug, mg, ig, i1}
}

// mysqlSpawnEnv turns a go-sql-driver DSN into the persist settings of a
// spawned node.
func mysqlSpawnEnv(dsn string) ([]string, error) {
	if dsn == "" {
		return nil, errors.New("no MySQL DSN")
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("cannot parse the MySQL DSN: %w", err)
	}
	env := []string{
		"TOKENCACHE_PERSIST_STORE=mysql",
		"TOKENCACHE_PERSIST_URL=jdbc:mysql://" + cfg.Addr + "/" + cfg.DBName,
		"TOKENCACHE_PERSIST_USERNAME=" + cfg.User,
	}
	if cfg.Passwd != "" {
		env = append(env, "TOKENCACHE_PERSIST_PASSWORD="+cfg.Passwd)
	}
	return env, nil
}

// NewCompareCommand returns `suite compare`, added under `bench suite` by
// tokencache-bench.
func NewCompareCommand() *cobra.Command {
	o := Options{SuiteOptions: bench.SuiteOptions{Warmup: 5 * time.Second, Duration: 30 * time.Second, Rounds: 3},
		ValidateConns: []int{64, 256}, IssueClients: []int{1, 16, 64}}
	var out string
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Run the baseline comparison (make bench-compare)",
		Long: `For each case, tokencache and its baselines measured in turn, --rounds
times (A B C A B C …), then a table of medians and ratios to tokencache:
validate vs Redis GET vs baseline-http at 64 and 256 connections;
validate-miss vs a primary-key SELECT on MariaDB; issue on 3 nodes (sync,
MySQL write-through) vs a 3-member etcd put vs bare Raft at 1, 16 and 64
clients; issue on 1 node vs a single etcd member. A side whose endpoint is
not given is left out (bench/scripts/compare.sh starts them).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.ChartsDir != "" && !bench.CanChart() {
				return fmt.Errorf("--charts-dir: %w", bench.ErrNoChart)
			}
			if o.MySQLDSN == "" {
				o.MySQLDSN = os.Getenv("TOKENCACHE_TEST_MYSQL_DSN")
			}
			if o.Rounds < 1 {
				return fmt.Errorf("--rounds must be at least 1, got %d", o.Rounds)
			}
			o.BaselineArgs = bench.BaselineArgs(cmd)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o.Progress, o.Log = cmd.ErrOrStderr(), cmd.ErrOrStderr()
			res, err := RunCompareSuite(ctx, o)
			return bench.FinishSuite(cmd.OutOrStdout(), res, err, out, "")
		},
	}
	f := cmd.Flags()
	bench.AddSuiteFlags(f, &o.SuiteOptions, &out)
	f.IntVar(&o.Rounds, "rounds", o.Rounds, "rounds of each case")
	f.StringVar(&o.Redis, "redis", "", "redis://host:port of a private Redis")
	f.StringVar(&o.Etcd, "etcd", "", "etcd://host:port of a single-member etcd")
	f.StringVar(&o.Etcd3, "etcd3", "", "etcd://h1:p1,h2:p2,h3:p3 of a 3-member etcd cluster")
	f.StringVar(&o.MySQLDSN, "mysql-dsn", "", "go-sql-driver DSN of a MariaDB/MySQL database (default env TOKENCACHE_TEST_MYSQL_DSN)")
	f.IntSliceVar(&o.ValidateConns, "validate-conns", o.ValidateConns, "connection levels of the validate case")
	f.IntSliceVar(&o.IssueClients, "issue-clients", o.IssueClients, "client levels of the issue case")
	f.StringSliceVar(&o.Cases, "cases", nil, "cases to run, comma-separated: validate, unknown, validate-miss, issue, issue-single (default all)")
	return cmd
}
