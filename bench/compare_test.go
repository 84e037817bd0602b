package bench

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("cannot read golden file (run go test -update once): %v", err)
	}
	if !bytes.Equal([]byte(got), want) {
		t.Errorf("%s differs from the output; got:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestCompareGolden(t *testing.T) {
	a := sampleResult("tokencache validate c=64", 1)
	b := sampleResult("redis GET c=64", 0.5) // twice the throughput, half the latency
	b.Target = TargetInfo{Kind: "redis", Endpoints: []string{"127.0.0.1:6379"}, Nodes: 1, Version: "7.0.15"}
	b.Errors, b.ErrorsByKind = 0, nil
	b.Workloads[Issue].Errors, b.Workloads[Issue].ErrorsByKind = 0, nil
	golden(t, "compare.golden", Compare(a, b))
}

func TestCompareSuiteFiles(t *testing.T) {
	var buf bytes.Buffer
	a := []*Result{sampleResult("x", 1), sampleResult("y", 1)}
	b := []*Result{sampleResult("y", 2)}
	if err := writeCompare(&buf, a, b); err != nil {
		t.Fatalf("writeCompare error = %v", err)
	}
	if !bytes.Contains(buf.Bytes(), []byte("A: y")) || bytes.Contains(buf.Bytes(), []byte("A: x")) {
		t.Errorf("writeCompare(suites) = %q, want only the run both have (y)", buf.String())
	}
	if err := writeCompare(&buf, a[:1], []*Result{sampleResult("z", 1), sampleResult("w", 1)}); err == nil {
		t.Error("writeCompare(no common name) error = nil, want one")
	}
}

func TestMedianTableGolden(t *testing.T) {
	sides := []CompareSide{{Name: "tokencache (1 node)"}, {Name: "redis GET"}, {Name: "baseline-http"}}
	mk := func(thr float64, p50, p99 int64) *Result {
		return &Result{Throughput: thr, Latency: Latency{P50: p50, P99: p99}}
	}
	runs := [][]*Result{
		{mk(30000, 900, 4000), mk(32000, 850, 3500), mk(10000, 2000, 9000)}, // median 30,000 / 900 / 4,000
		{mk(60000, 400, 2000), mk(58000, 420, 2100), mk(61000, 390, 1900)},
		{mk(90000, 300, 1500), mk(91000, 290, 1400), mk(89000, 310, 1600)},
	}
	rows := medianRows("validate c=64", sides, runs)
	if rows[0].Throughput != 30000 || rows[0].P99 != 4000 || rows[1].ThroughputRatio != 2 || rows[2].P99Ratio != 0.38 {
		t.Errorf("medianRows = %+v, want medians 30000/4000 and ratios 2.00, 0.38", rows)
	}
	rows = append(rows, medianRows("issue c=1", sides[:2], [][]*Result{{mk(500, 1900, 4000)}, {mk(600, 1500, 3000)}})...)
	golden(t, "median_table.golden", MedianTable(rows))
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
