package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokencache/tokencache/bench"
)

// runCmd runs `tokencache-bench args…` in-process and returns stdout and
// stderr.
func runCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newCommand()
	var out, errOut bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// checkSane fails unless r has throughput and ordered, non-zero
// percentiles (Result.Check, as bench's own tests check).
func checkSane(t *testing.T, r *bench.Result) {
	t.Helper()
	if err := r.Check(); err != nil {
		t.Error(err)
	}
}

// TestCommandRunCompareChart is bench's test of the same name, with the
// chart: tokencache-bench draws it.
func TestCommandRunCompareChart(t *testing.T) {
	dir := t.TempDir()
	res, png1 := filepath.Join(dir, "a.json"), filepath.Join(dir, "a.png")
	out, _, err := runCmd(t, "--target", "baseline-http", "--baseline-in-process", "-c", "4", "--duration", "500ms", "--warmup", "0",
		"--tokens", "100", "--interval", "100ms", "--name", "base", "--out", res, "--chart", png1)
	if err != nil {
		t.Fatalf("bench error = %v", err)
	}
	for _, want := range []string{"base", "baseline-http", "p99.9", "req/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench summary lacks %q:\n%s", want, out)
		}
	}
	r, err := bench.ReadResult(res)
	if err != nil {
		t.Fatalf("ReadResult(--out) error = %v", err)
	}
	checkSane(t, r)
	f, err := os.Open(png1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(f); err != nil {
		t.Errorf("--chart is not a PNG: %v", err)
	}
	f.Close()

	out, _, err = runCmd(t, "compare", res, res)
	if err != nil {
		t.Fatalf("bench compare error = %v", err)
	}
	if !strings.Contains(out, "1.00x") || !strings.Contains(out, "A: base") {
		t.Errorf("bench compare of a run with itself = %q, want ratios 1.00x", out)
	}
	svg := filepath.Join(dir, "again.svg")
	if _, _, err := runCmd(t, "chart", res, svg); err != nil {
		t.Fatalf("bench chart error = %v", err)
	}
	if b, _ := os.ReadFile(svg); !bytes.Contains(b, []byte("<svg")) {
		t.Error("bench chart did not write an SVG")
	}
}

// TestCommandHasBaselines: the baselines' targets are accepted, the compare
// suite is a subcommand, and the baseline server runs as
// `tokencache-bench baseline-server`.
func TestCommandHasBaselines(t *testing.T) {
	_, _, err := runCmd(t, "--target", "redis://127.0.0.1:1", "--timeout", "1s", "--duration", "1s")
	if err == nil || !strings.Contains(err.Error(), "cannot reach redis") {
		t.Errorf("bench --target redis://127.0.0.1:1 error = %v, want it to try redis", err)
	}
	out, _, err := runCmd(t, "suite", "compare", "--help")
	if err != nil || !strings.Contains(out, "--etcd3") {
		t.Errorf("suite compare --help = %v, %q; want the compare flags", err, out)
	}
	cmd := newCommand()
	suite, _, err := cmd.Find([]string{"suite", "compare"})
	if err != nil || suite.Name() != "compare" {
		t.Fatalf("Find(suite compare) = %v, %v", suite, err)
	}
	if got := strings.Join(bench.BaselineArgs(suite), " "); got != "baseline-server" {
		t.Errorf("BaselineArgs(suite compare) = %q, want baseline-server", got)
	}
}
