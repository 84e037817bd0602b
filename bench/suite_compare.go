package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-sql-driver/mysql"
)

// compareSide is one system of a compare case.
type compareSide struct {
	name string
	cfg  Config // target, mix and what Open needs
}

// compareGroup is a set of sides measured at several levels (connections
// or clients), interleaved: for each level, rounds × (side 1, side 2, …).
type compareGroup struct {
	name   string
	levels []int
	sides  []compareSide
	skip   string // why the group cannot run, if it cannot
}

// key is the group's name in SuiteOptions.Cases.
func (g compareGroup) key() string {
	return strings.ReplaceAll(strings.TrimSuffix(g.name, " node"), " ", "-")
}

// compareGroups builds the groups of `make bench-compare` from o.
func compareGroups(o SuiteOptions) []compareGroup {
	base := DefaultConfig()
	base.Warmup, base.Duration, base.Binary = o.Warmup, o.Duration, o.Binary
	validate := base
	validate.Mix, validate.Tokens = MustParseMix("validate"), suiteTokens
	with := func(c Config, f func(*Config)) Config { f(&c); return c }

	vg := compareGroup{name: "validate", levels: o.ValidateConns}
	vg.sides = append(vg.sides, compareSide{"tokencache (1 node)", with(validate, func(c *Config) { c.Spawn = 1 })})
	if o.Redis != "" {
		vg.sides = append(vg.sides, compareSide{"redis GET", with(validate, func(c *Config) { c.Targets = []string{o.Redis} })})
	}
	vg.sides = append(vg.sides, compareSide{"baseline-http", with(validate, func(c *Config) { c.Targets = []string{kindBaselineHTTP} })})

	// A flood of random tokens against cache hits, on one node each: the
	// key filter and the negative cache must answer it at the speed of a
	// hit, with no store read per request.
	unknown := base
	unknown.Mix, unknown.Tokens = MustParseMix("unknown"), suiteTokens
	ug := compareGroup{name: "unknown", levels: []int{64}, sides: []compareSide{
		{"tokencache validate (cache hit)", with(validate, func(c *Config) { c.Spawn = 1 })},
		{"tokencache unknown (random tokens)", with(unknown, func(c *Config) { c.Spawn = 1 })},
	}}

	miss := base
	miss.Mix, miss.Tokens, miss.Hot = MustParseMix("validate-miss"), suiteTokens, suiteHot
	mg := compareGroup{name: "validate-miss", levels: []int{64}}
	if o.MySQLDSN == "" {
		mg.skip = "validate-miss vs MariaDB SELECT: no MySQL DSN (TOKENCACHE_TEST_MYSQL_DSN)"
	} else if env, err := mysqlSpawnEnv(o.MySQLDSN); err != nil {
		mg.skip = "validate-miss: " + err.Error()
	} else {
		mg.sides = []compareSide{
			{"tokencache (1 node, MySQL)", with(miss, func(c *Config) { c.Spawn, c.SpawnEnv = 1, env })},
			{"MariaDB PK SELECT", with(miss, func(c *Config) { c.Targets = []string{"mysql://" + o.MySQLDSN} })},
		}
	}

	issue := base
	issue.Mix, issue.Tokens = MustParseMix("issue"), 0
	ig := compareGroup{name: "issue", levels: o.IssueClients}
	clusterEnv := []string{"TOKENCACHE_CLUSTER_REPLICATION_POLICY=sync", "TOKENCACHE_PERSIST_WRITE_MODE=through"}
	tcName := "tokencache (3 nodes, sync, SQLite write-through)"
	if env, err := mysqlSpawnEnv(o.MySQLDSN); o.MySQLDSN != "" && err == nil {
		clusterEnv = append(clusterEnv, env...)
		tcName = "tokencache (3 nodes, sync, MySQL write-through)"
	}
	ig.sides = append(ig.sides, compareSide{tcName, with(issue, func(c *Config) { c.Spawn, c.SpawnEnv = 3, clusterEnv })})
	if o.Etcd3 != "" {
		ig.sides = append(ig.sides, compareSide{"etcd put (3 members)", with(issue, func(c *Config) { c.Targets = []string{o.Etcd3} })})
	}
	ig.sides = append(ig.sides, compareSide{"bare raft (3 nodes)", with(issue, func(c *Config) { c.Targets = []string{kindRaftBare} })})

	i1 := compareGroup{name: "issue single node", levels: []int{16}}
	i1.sides = append(i1.sides, compareSide{"tokencache (1 node, sync, SQLite)", with(issue, func(c *Config) {
		c.Spawn, c.SpawnEnv = 1, []string{"TOKENCACHE_PERSIST_WRITE_MODE=through"}
	})})
	if o.Etcd != "" {
		i1.sides = append(i1.sides, compareSide{"etcd put (1 member)", with(issue, func(c *Config) { c.Targets = []string{o.Etcd} })})
	} else {
		i1.skip = "issue single node: no single-member etcd (--etcd)"
	}
	return []compareGroup{vg, ug, mg, ig, i1}
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

// RunCompareSuite runs the compare groups: each group's targets are opened
// and seeded once, then for each level the sides are measured in turn,
// o.Rounds times (A B C A B C …), so that drift of the machine hits every
// side alike; the table holds the medians.
func RunCompareSuite(ctx context.Context, o SuiteOptions) (*SuiteResult, error) {
	res := &SuiteResult{Schema: SuiteSchemaVersion, Kind: "compare", Started: time.Now().UTC().Truncate(time.Second),
		Machine: currentMachine(), Rounds: o.Rounds}
	for _, g := range compareGroups(o) {
		if len(o.Cases) > 0 && !slices.Contains(o.Cases, g.key()) {
			continue
		}
		if g.skip != "" {
			res.Skipped = append(res.Skipped, g.skip)
			if o.Log != nil {
				fmt.Fprintf(o.Log, "skipped: %s\n", g.skip)
			}
			continue
		}
		if err := runGroup(ctx, o, g, res); err != nil {
			return res, fmt.Errorf("compare %s: %w", g.name, err)
		}
	}
	return res, nil
}

func runGroup(ctx context.Context, o SuiteOptions, g compareGroup, res *SuiteResult) (err error) {
	maxLevel := slices.Max(g.levels)
	sessions := make([]*Session, len(g.sides))
	for i, s := range g.sides {
		c := s.cfg
		c.Connections = maxLevel
		t, err := Open(ctx, &c)
		if err != nil {
			return fmt.Errorf("cannot open %s: %w", s.name, err)
		}
		defer func() {
			if cerr := t.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("cannot close %s: %w", s.name, cerr))
			}
		}()
		if sessions[i], err = Prepare(ctx, c, t, o.Progress); err != nil {
			return fmt.Errorf("cannot prepare %s: %w", s.name, err)
		}
	}
	for _, level := range g.levels {
		caseName := fmt.Sprintf("%s c=%d", g.name, level)
		runs := make([][]*Result, len(g.sides))
		for round := range o.Rounds {
			for i, s := range g.sides {
				c := s.cfg
				c.Connections = level
				c.Name = fmt.Sprintf("%s | %s | round %d", caseName, s.name, round+1)
				r, err := sessions[i].Measure(ctx, c, o.Progress)
				if err != nil {
					return fmt.Errorf("%s: %w", c.Name, err)
				}
				runs[i] = append(runs[i], r)
				res.Runs = append(res.Runs, r)
				o.logRun(r)
				if err := o.chart(r); err != nil {
					return err
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
		res.Table = append(res.Table, medianRows(caseName, g.sides, runs)...)
	}
	return nil
}

// medianRows summarises one case: the median of each side's rounds and
// the ratios to the first side.
func medianRows(caseName string, sides []compareSide, runs [][]*Result) []MedianRow {
	rows := make([]MedianRow, len(sides))
	for i, s := range sides {
		var thr []float64
		var p50, p99 []int64
		var errs int64
		for _, r := range runs[i] {
			thr = append(thr, r.Throughput)
			p50 = append(p50, r.Latency.P50)
			p99 = append(p99, r.Latency.P99)
			errs += r.Errors
		}
		rows[i] = MedianRow{Case: caseName, Side: s.name, Rounds: len(runs[i]), Throughput: median(thr),
			P50: int64(median(toFloats(p50))), P99: int64(median(toFloats(p99))), Errors: errs}
	}
	for i := 1; i < len(rows); i++ {
		if rows[0].Throughput > 0 {
			rows[i].ThroughputRatio = round2(rows[i].Throughput / rows[0].Throughput)
		}
		if rows[0].P99 > 0 {
			rows[i].P99Ratio = round2(float64(rows[i].P99) / float64(rows[0].P99))
		}
	}
	return rows
}

func toFloats(v []int64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// median returns the median of v (the mean of the two middle values for an
// even count), 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// MedianTable renders the compare table: one block per case, the first
// side is the reference of the ratios.
func MedianTable(rows []MedianRow) string {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "case\tside\trounds\treq/s (median)\tp50\tp99\terrors\treq/s vs first\tp99 vs first\n")
	prev := ""
	for _, r := range rows {
		name := r.Case
		if name == prev {
			name = ""
		} else if prev != "" {
			fmt.Fprintf(tw, "\t\t\t\t\t\t\t\t\n")
		}
		prev = r.Case
		thrRatio, p99Ratio := "1.00x", "1.00x"
		if r.ThroughputRatio != 0 || r.P99Ratio != 0 {
			thrRatio, p99Ratio = fmt.Sprintf("%.2fx", r.ThroughputRatio), fmt.Sprintf("%.2fx", r.P99Ratio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n", name, r.Side, r.Rounds, formatCount(r.Throughput),
			formatMicros(r.P50), formatMicros(r.P99), r.Errors, thrRatio, p99Ratio)
	}
	tw.Flush()
	return trimLines(sb.String())
}
