package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// NewCommand returns `tokencache bench`: one load-test run, plus the
// subcommands compare, chart and suite. suites are added under `bench
// suite` beside standard (tokencache-bench adds compare).
func NewCommand(suites ...*cobra.Command) *cobra.Command {
	c := DefaultConfig()
	var (
		mix, out, chart, dataDir string
		quiet                    bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test a tokencache node or cluster, or a baseline",
		Long: `Load-test a running tokencache node or cluster (--target, repeatable,
round-robin), nodes spawned for the run (--spawn N), or a baseline with the
same load generator: baseline-http (a bare fasthttp server answering from a
Go map). tokencache-bench (make bench-tools) is this command with the
baselines that need other systems' clients, and charts: redis://host:port
(GET), etcd://host:port[,…] (put), raft-bare (a bare 3-node hashicorp/raft
cluster), mysql://DSN (primary-key SELECT), --chart and 'suite compare'.

Closed loop by default (-c connections, each sending when the last request
has answered); --rate R runs an open loop at R requests/s whose latencies
are measured from each request's intended send time (coordinated omission
corrected). See bench/README.md for every figure of the output.`,
		Example: `  tokencache bench --spawn 1 --duration 30s
  tokencache bench --target http://127.0.0.1:8080 --admin-token "$TOKEN" --mix validate=90,issue=5,revoke=5 -c 128
  tokencache bench --target baseline-http -c 64 --out base.json --chart base.png
  tokencache bench --spawn 1 --rate 20000 --duration 60s --out open.json
  tokencache bench compare base.json tc.json`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := ParseMix(mix)
			if err != nil {
				return err
			}
			c.Mix = m
			if c.AdminToken == "" {
				c.AdminToken = os.Getenv("TOKENCACHE_ADMIN_TOKEN")
			}
			if c.AdminToken == "" && dataDir != "" {
				b, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
				if err != nil {
					return fmt.Errorf("cannot read the admin token: %w", err)
				}
				c.AdminToken = strings.TrimSpace(string(b))
			}
			if err := c.Validate(); err != nil {
				return err
			}
			if chart != "" && !strings.HasSuffix(chart, ".png") && !strings.HasSuffix(chart, ".svg") {
				return fmt.Errorf("--chart %s: the name must end in .png or .svg", chart)
			}
			if err := checkChart(chart); err != nil {
				return err
			}
			c.BaselineArgs = BaselineArgs(cmd)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runCommand(ctx, c, out, chart, quiet, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&c.Targets, "target", nil, "target: http://host:port of a tokencache node (repeatable: round-robin), baseline-http, or (tokencache-bench) redis://host:port, etcd://host:port[,host:port…], mysql://DSN, raft-bare")
	f.IntVar(&c.Spawn, "spawn", 0, "spawn N tokencache nodes on loopback for the run (temp data dirs, torn down after)")
	f.StringVar(&mix, "mix", "validate", "workload mix, weighted: validate, validate-miss, unknown, issue, revoke, introspect, authz, validate-jwt, issue-jwt (e.g. validate=90,issue=5,revoke=5)")
	f.IntVarP(&c.Connections, "connections", "c", c.Connections, "concurrent connections (closed loop: one worker each; open loop: most requests in flight)")
	f.Float64Var(&c.Rate, "rate", 0, "open loop: requests per second on a fixed schedule (0 = closed loop)")
	f.IntVar(&c.Pipeline, "pipeline", c.Pipeline, "HTTP pipelining: requests in flight per connection (1 = off)")
	f.DurationVarP(&c.Duration, "duration", "d", c.Duration, "measured duration")
	f.DurationVar(&c.Warmup, "warmup", c.Warmup, "unrecorded warm-up before the measured duration")
	f.DurationVar(&c.Timeout, "timeout", c.Timeout, "timeout of one request")
	f.IntVar(&c.Tokens, "tokens", c.Tokens, "tokens (or keys) seeded before the run, for the read workloads")
	f.IntVar(&c.Hot, "hot", 0, "the newest N seeded tokens are read by validate/introspect/authz, the rest by validate-miss (0 = tokens/10 with validate-miss, else all)")
	f.IntVar(&c.RevokePool, "revoke-pool", c.RevokePool, "extra tokens seeded for revoke to consume (-1 = 20000 when the mix has revoke)")
	f.IntVar(&c.SeedConcurrency, "seed-concurrency", c.SeedConcurrency, "seeding requests in flight")
	f.StringVar(&c.AdminToken, "admin-token", "", "admin token for issue/revoke/seeding (default: env TOKENCACHE_ADMIN_TOKEN, or <--data-dir>/admin.token)")
	f.StringVar(&dataDir, "data-dir", "", "data dir of the target node, to read admin.token from")
	f.StringVar(&c.Prefix, "prefix", c.Prefix, "token prefix of the target (tokens.prefix), for random unknown tokens")
	f.StringVar(&c.Binary, "binary", "", "tokencache binary for --spawn (default: this executable, a tokencache next to it, or go build ./cmd/tokencache)")
	f.IntVar(&c.CacheCapacity, "cache-capacity", 0, "cache.capacity of spawned nodes (0 = 2×hot when the mix has validate-miss, else the default)")
	f.StringArrayVar(&c.SpawnEnv, "spawn-env", nil, "KEY=VALUE added to the environment of spawned nodes, repeatable (e.g. TOKENCACHE_PERSIST_STORE=mysql)")
	f.StringVar(&c.KeepDir, "keep-dir", "", "keep spawned nodes' data dirs and logs in this dir instead of a removed temp dir")
	f.BoolVar(&c.BaselineInProcess, "baseline-in-process", false, "baseline-http: serve from this process instead of a child process (shares the generator's CPU and GC: lower than the real ceiling)")
	f.IntVar(&c.ValueSize, "value-size", c.ValueSize, "value size in bytes for redis/etcd, command size for raft-bare")
	f.DurationVar(&c.Interval, "interval", c.Interval, "width of one point of the time series")
	f.StringVar(&c.Name, "name", "", "label of the run in results and compare tables")
	f.StringVarP(&out, "out", "o", "", "write the result as JSON to this file")
	f.StringVar(&chart, "chart", "", "draw throughput and latency over time into this .png or .svg file (tokencache-bench)")
	f.BoolVar(&c.Progress, "progress", false, "print the progress line even when stderr is not a terminal")
	f.BoolVarP(&quiet, "quiet", "q", false, "do not print the summary")
	cmd.AddCommand(newCompareCommand(), newChartCommand(), newSuiteCommand(suites...), newBaselineServerCommand())
	return cmd
}

// runCommand opens the target, runs, writes the outputs and closes the
// target (also on error or interrupt).
func runCommand(ctx context.Context, c Config, out, chart string, quiet bool, stdout, stderr io.Writer) (err error) {
	t, err := Open(ctx, &c)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := t.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cannot close the target: %w", cerr))
		}
	}()
	res, err := Run(ctx, c, t, stderr)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "interrupted: %.1fs measured\n", res.Seconds)
	}
	if !quiet {
		fmt.Fprint(stdout, Summary(res))
	}
	if out != "" {
		if err := res.WriteFile(out); err != nil {
			return err
		}
	}
	if chart != "" {
		if err := WriteChart(res, chart); err != nil {
			return err
		}
	}
	return nil
}

func newCompareCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "compare A.json B.json",
		Short: "Show two results side by side with ratios B/A",
		Long: `Show two results (written by --out) side by side: throughput, p50, p90,
p99, p99.9, max and errors of A and B, and the ratio B/A. Suite files
(written by 'bench suite') are compared run by run, matched by name.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := ReadResults(args[0])
			if err != nil {
				return err
			}
			b, err := ReadResults(args[1])
			if err != nil {
				return err
			}
			return writeCompare(cmd.OutOrStdout(), a, b)
		},
	}
}

// writeCompare compares two single results, or two suites run by run.
func writeCompare(w io.Writer, a, b []*Result) error {
	if len(a) == 1 && len(b) == 1 {
		_, err := io.WriteString(w, Compare(a[0], b[0]))
		return err
	}
	byName := map[string]*Result{}
	for _, r := range b {
		byName[r.Name] = r
	}
	n := 0
	for _, ra := range a {
		rb := byName[ra.Name]
		if rb == nil {
			continue
		}
		if n > 0 {
			fmt.Fprintln(w, strings.Repeat("-", 72))
		}
		fmt.Fprint(w, Compare(ra, rb))
		n++
	}
	if n == 0 {
		return errors.New("the two files have no run name in common")
	}
	return nil
}

func newChartCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "chart RESULT.json OUT.png|OUT.svg",
		Short: "Draw the chart of a result written by --out (tokencache-bench)",
		Args:  cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			rs, err := ReadResults(args[0])
			if err != nil {
				return err
			}
			if len(rs) != 1 {
				return fmt.Errorf("%s holds %d runs; chart one result file", args[0], len(rs))
			}
			return WriteChart(rs[0], args[1])
		},
	}
}

func newSuiteCommand(suites ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "suite",
		Short: "Run a suite of runs: standard (make bench), compare (tokencache-bench: make bench-compare)",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				if args[0] == "compare" {
					return errors.New("the compare suite drives other systems' clients: run it with tokencache-bench (make bench-compare)")
				}
				return fmt.Errorf("unknown suite %q for %q", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(newStandardSuiteCommand())
	cmd.AddCommand(suites...)
	return cmd
}

func newStandardSuiteCommand() *cobra.Command {
	o := SuiteOptions{Warmup: 5 * time.Second, Duration: 30 * time.Second}
	var out, chart string
	cmd := &cobra.Command{
		Use:   "standard",
		Short: "Run the standard suite (make bench)",
		Long: `Seven runs against one spawned node (or --target URLs) seeded once:
validate at 64 and 256 connections, validate-miss, unknown, a mix of every
workload, issue at 16 clients, and validate in an open loop at 10,000/s.
Writes a suite JSON (--out) and the chart of the mixed run (--chart,
tokencache-bench).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkChart(chart); err != nil {
				return err
			}
			if o.ChartsDir != "" && !CanChart() {
				return fmt.Errorf("--charts-dir: %w", ErrNoChart)
			}
			if o.AdminToken == "" {
				o.AdminToken = os.Getenv("TOKENCACHE_ADMIN_TOKEN")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o.Progress, o.Log = cmd.ErrOrStderr(), cmd.ErrOrStderr()
			res, err := RunStandardSuite(ctx, o)
			return FinishSuite(cmd.OutOrStdout(), res, err, out, chart)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.Targets, "target", nil, "tokencache URLs to drive instead of a spawned node")
	f.StringVar(&o.AdminToken, "admin-token", "", "with --target: the admin token (default env TOKENCACHE_ADMIN_TOKEN)")
	AddSuiteFlags(f, &o, &out)
	f.StringVar(&chart, "chart", "", "draw the chart of the mixed run into this .png or .svg file (tokencache-bench)")
	return cmd
}

// AddSuiteFlags registers the flags every suite has: --binary, --warmup,
// --duration, --charts-dir and --out.
func AddSuiteFlags(f *pflag.FlagSet, o *SuiteOptions, out *string) {
	f.StringVar(&o.Binary, "binary", "", "tokencache binary for spawned nodes")
	f.DurationVar(&o.Warmup, "warmup", o.Warmup, "warm-up of each run")
	f.DurationVarP(&o.Duration, "duration", "d", o.Duration, "measured duration of each run")
	f.StringVar(&o.ChartsDir, "charts-dir", "", "draw a chart per run into this directory (tokencache-bench)")
	f.StringVarP(out, "out", "o", "", "write the suite result (every run) as JSON to this file")
}

// FinishSuite writes what a suite run returned (res, possibly partial,
// and err): the JSON file out, then the summaries (standard) or the table
// of medians (compare), and the chart of the standard suite's main run.
// It returns err joined with its own errors.
func FinishSuite(w io.Writer, res *SuiteResult, err error, out, chart string) error {
	if res == nil || len(res.Runs) == 0 {
		return err
	}
	if out != "" {
		err = errors.Join(err, res.WriteFile(out))
	}
	if res.Kind == "compare" {
		fmt.Fprintf(w, "\nmedians of %d rounds (machine: %s)\n\n%s", res.Rounds, machineLine(res.Machine), MedianTable(res.Table))
		for _, s := range res.Skipped {
			fmt.Fprintf(w, "skipped: %s\n", s)
		}
		return err
	}
	for _, r := range res.Runs {
		fmt.Fprintf(w, "\n%s", Summary(r))
	}
	if chart != "" {
		err = errors.Join(err, WriteChart(res.MainRun(), chart))
	}
	return err
}

// BaselineArgs returns the arguments, after this executable, that start
// its hidden baseline-server command, seen from cmd or any command under
// the bench command: ["bench", "baseline-server"] in tokencache,
// ["baseline-server"] in tokencache-bench.
func BaselineArgs(cmd *cobra.Command) []string {
	for c := cmd; c != nil; c = c.Parent() {
		for _, sub := range c.Commands() {
			if sub.Name() == baselineServerName {
				return append(strings.Fields(c.CommandPath())[1:], baselineServerName)
			}
		}
	}
	return []string{"bench", baselineServerName}
}
