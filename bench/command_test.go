package bench

import (
	"bytes"
	"context"
	"image/png"
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
	r, err := ReadResult(res)
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

func TestCommandRefusesBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--mix", "validate=x", "--target", "baseline-http"}, "weight of validate"},
		{[]string{"--mix", "validate"}, "no target"},
		{[]string{"--target", "baseline-http", "--chart", "x.gif"}, ".png or .svg"},
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
