package bench

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCmd runs `bench args…` in-process and returns stdout and stderr.
func runCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := NewCommand()
	var out, errOut bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// TestCommandRunCompare runs and compares without charts: the daemon draws
// none (bench/baselines/cmd/tokencache-bench has this test with them).
func TestCommandRunCompare(t *testing.T) {
	dir := t.TempDir()
	res := filepath.Join(dir, "a.json")
	out, _, err := runCmd(t, "--target", "baseline-http", "--baseline-in-process", "-c", "4", "--duration", "500ms", "--warmup", "0",
		"--tokens", "100", "--interval", "100ms", "--name", "base", "--out", res)
	if err != nil {
		t.Fatalf("bench error = %v", err)
	}
	for _, want := range []string{"base", "baseline-http", "p99.9", "req/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench summary lacks %q:\n%s", want, out)
		}
	}
	r, err := ReadResult(res)
	if err != nil {
		t.Fatalf("ReadResult(--out) error = %v", err)
	}
	checkSane(t, r)

	out, _, err = runCmd(t, "compare", res, res)
	if err != nil {
		t.Fatalf("bench compare error = %v", err)
	}
	if !strings.Contains(out, "1.00x") || !strings.Contains(out, "A: base") {
		t.Errorf("bench compare of a run with itself = %q, want ratios 1.00x", out)
	}
	// Without a registered chart, a chart is refused before the run and
	// names the binary that draws it.
	if _, _, err := runCmd(t, "chart", res, filepath.Join(dir, "again.svg")); !errors.Is(err, ErrNoChart) {
		t.Errorf("bench chart error = %v, want ErrNoChart", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "again.svg")); !os.IsNotExist(err) {
		t.Errorf("bench chart without a chart writer left a file (stat: %v)", err)
	}
}

func TestCommandRefusesBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--mix", "validate=x", "--target", "baseline-http"}, "weight of validate"},
		{[]string{"--mix", "validate"}, "no target"},
		{[]string{"--target", "baseline-http", "--chart", "x.gif"}, ".png or .svg"},
		{[]string{"--target", "baseline-http", "--chart", "x.png"}, "tokencache-bench"},
		{[]string{"--target", "redis://127.0.0.1:6379"}, "tokencache-bench"},
		{[]string{"suite", "compare"}, "tokencache-bench"},
		{[]string{"suite", "standard", "--chart", "x.png"}, "tokencache-bench"},
		{[]string{"--target", "baseline-http", "-c", "0"}, "connections must be at least 1"},
		{[]string{"compare", "only-one.json"}, "accepts 2 arg"},
		{[]string{"compare", "missing-a.json", "missing-b.json"}, "cannot read result"},
	}
	for _, tt := range tests {
		_, _, err := runCmd(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("bench %v error = %v, want it to mention %q", tt.args, err, tt.want)
		}
	}
}
