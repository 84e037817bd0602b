package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// SuiteTokens and SuiteHot size the standard population: 2,000 hot tokens
// and 18,000 cold ones, more than the 4,000-token cache of the node spawned
// for it, so validate-miss always misses.
const (
	SuiteTokens = 20000
	SuiteHot    = 2000
)

// standardCases are the runs of `make bench` (7 × (warm-up + duration)).
var standardCases = []struct {
	name  string
	mix   string
	conns int
	rate  float64
}{
	{"validate c=64", "validate", 64, 0},
	{"validate c=256", "validate", 256, 0},
	{"validate-miss c=64", "validate-miss", 64, 0},
	{"unknown c=64", "unknown", 64, 0},
	{"mixed c=64", "validate=80,introspect=5,authz=5,issue=5,revoke=5", 64, 0},
	{"issue c=16", "issue", 16, 0},
	{"validate open 10k/s", "validate", 64, 10000},
}

// mainCase is the run whose chart `make bench` writes.
const mainCase = "mixed c=64"

// RunStandardSuite runs standardCases against one spawned node (or
// o.Targets) seeded once, and returns every run.
func RunStandardSuite(ctx context.Context, o SuiteOptions) (*SuiteResult, error) {
	base := DefaultConfig()
	base.Targets, base.AdminToken, base.Binary = o.Targets, o.AdminToken, o.Binary
	if len(o.Targets) == 0 {
		base.Spawn = 1
	}
	base.Warmup, base.Duration = o.Warmup, o.Duration
	base.Tokens, base.Hot, base.RevokePool = orDefault(o.Tokens, SuiteTokens), orDefault(o.Hot, SuiteHot), orDefault(o.RevokePool, 20000)
	base.Connections = 256 // the most any case uses: sizes the client pools
	base.Mix = MustParseMix("validate,validate-miss,unknown,introspect,authz,issue,revoke")
	t, err := Open(ctx, &base)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	sess, err := Prepare(ctx, base, t, o.Progress)
	if err != nil {
		return nil, err
	}
	res := &SuiteResult{Schema: SuiteSchemaVersion, Kind: "standard", Started: time.Now().UTC().Truncate(time.Second), Machine: currentMachine()}
	for _, sc := range standardCases {
		c := base
		c.Name, c.Mix, c.Connections, c.Rate = sc.name, MustParseMix(sc.mix), sc.conns, sc.rate
		r, err := sess.Measure(ctx, c, o.Progress)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sc.name, err)
		}
		res.Runs = append(res.Runs, r)
		o.logRun(r)
		if err := o.chart(r); err != nil {
			return nil, err
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	return res, t.Close()
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// MainRun returns the run of a standard suite whose chart is the suite's.
func (s *SuiteResult) MainRun() *Result {
	for _, r := range s.Runs {
		if r.Name == mainCase {
			return r
		}
	}
	if len(s.Runs) > 0 {
		return s.Runs[0]
	}
	return nil
}

func (o *SuiteOptions) logRun(r *Result) {
	if o.Log == nil {
		return
	}
	fmt.Fprintf(o.Log, "%-44s %12s req/s  p50 %8s  p99 %8s  errors %d\n", r.Name, FormatCount(r.Throughput),
		FormatMicros(r.Latency.P50), FormatMicros(r.Latency.P99), r.Errors)
}

func (o *SuiteOptions) chart(r *Result) error {
	if o.ChartsDir == "" {
		return nil
	}
	name := strings.NewReplacer(" ", "_", "/", "_", "=", "", ",", "_", "+", "_").Replace(r.Name)
	return WriteChart(r, filepath.Join(o.ChartsDir, name+".png"))
}
