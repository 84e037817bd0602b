package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// CompareSide is one system of a compare case.
type CompareSide struct {
	Name   string
	Config Config // target, mix and what Open needs
}

// CompareGroup is a set of sides measured at several levels (connections
// or clients), interleaved: for each level, rounds × (side 1, side 2, …).
// The first side is the reference of the ratios.
type CompareGroup struct {
	Name   string
	Levels []int
	Sides  []CompareSide
	Skip   string // why the group cannot run, if it cannot
}

// Key is the group's name in SuiteOptions.Cases.
func (g CompareGroup) Key() string {
	return strings.ReplaceAll(strings.TrimSuffix(g.Name, " node"), " ", "-")
}

// RunCompare runs compare groups (the cases of `bench suite compare`,
// defined by bench/baselines): each group's targets are opened and seeded
// once, then for each level the sides are measured in turn, o.Rounds times
// (A B C A B C …), so that drift of the machine hits every side alike; the
// table holds the medians. o.Cases selects groups by Key.
func RunCompare(ctx context.Context, o SuiteOptions, groups []CompareGroup) (*SuiteResult, error) {
	if o.Rounds < 1 {
		return nil, fmt.Errorf("--rounds must be at least 1, got %d", o.Rounds)
	}
	res := &SuiteResult{Schema: SuiteSchemaVersion, Kind: "compare", Started: time.Now().UTC().Truncate(time.Second),
		Machine: currentMachine(), Rounds: o.Rounds}
	for _, g := range groups {
		if len(o.Cases) > 0 && !slices.Contains(o.Cases, g.Key()) {
			continue
		}
		if g.Skip != "" {
			res.Skipped = append(res.Skipped, g.Skip)
			if o.Log != nil {
				fmt.Fprintf(o.Log, "skipped: %s\n", g.Skip)
			}
			continue
		}
		if err := runGroup(ctx, o, g, res); err != nil {
			return res, fmt.Errorf("compare %s: %w", g.Name, err)
		}
	}
	return res, nil
}

func runGroup(ctx context.Context, o SuiteOptions, g CompareGroup, res *SuiteResult) (err error) {
	maxLevel := slices.Max(g.Levels)
	sessions := make([]*Session, len(g.Sides))
	for i, s := range g.Sides {
		c := s.Config
		c.Connections = maxLevel
		t, err := Open(ctx, &c)
		if err != nil {
			return fmt.Errorf("cannot open %s: %w", s.Name, err)
		}
		defer func() {
			if cerr := t.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("cannot close %s: %w", s.Name, cerr))
			}
		}()
		if sessions[i], err = Prepare(ctx, c, t, o.Progress); err != nil {
			return fmt.Errorf("cannot prepare %s: %w", s.Name, err)
		}
	}
	for _, level := range g.Levels {
		caseName := fmt.Sprintf("%s c=%d", g.Name, level)
		runs := make([][]*Result, len(g.Sides))
		for round := range o.Rounds {
			for i, s := range g.Sides {
				c := s.Config
				c.Connections = level
				c.Name = fmt.Sprintf("%s | %s | round %d", caseName, s.Name, round+1)
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
		res.Table = append(res.Table, medianRows(caseName, g.Sides, runs)...)
	}
	return nil
}

// medianRows summarises one case: the median of each side's rounds and
// the ratios to the first side.
func medianRows(caseName string, sides []CompareSide, runs [][]*Result) []MedianRow {
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
		rows[i] = MedianRow{Case: caseName, Side: s.Name, Rounds: len(runs[i]), Throughput: median(thr),
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
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n", name, r.Side, r.Rounds, FormatCount(r.Throughput),
			FormatMicros(r.P50), FormatMicros(r.P99), r.Errors, thrRatio, p99Ratio)
	}
	tw.Flush()
	return trimLines(sb.String())
}
