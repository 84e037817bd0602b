package chart

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokencache/tokencache/bench"
)

// runBaseline drives the in-process bare server for 1s and returns the
// result, with a point every 250ms.
func runBaseline(t *testing.T) *bench.Result {
	t.Helper()
	c := bench.DefaultConfig()
	c.Targets, c.BaselineInProcess = []string{bench.KindBaselineHTTP}, true
	c.Connections, c.Tokens = 8, 500
	c.Warmup, c.Duration = 200*time.Millisecond, time.Second
	c.Interval = 250 * time.Millisecond
	tgt, err := bench.Open(context.Background(), &c)
	if err != nil {
		t.Fatalf("Open(baseline-http) error = %v", err)
	}
	t.Cleanup(func() {
		if err := tgt.Close(); err != nil {
			t.Errorf("Close error = %v", err)
		}
	})
	res, err := bench.Run(context.Background(), c, tgt, nil)
	if err != nil {
		t.Fatalf("Run error = %v", err)
	}
	if len(res.Series) < 3 {
		t.Fatalf("Run: %d points for 1s at 250ms, want 4 (±1)", len(res.Series))
	}
	return res
}

// TestWrite draws the chart of a run of the bare server (moved here with
// the chart from bench's TestRunBaselineHTTP).
func TestWrite(t *testing.T) {
	res := runBaseline(t)
	chart := filepath.Join(t.TempDir(), "chart.png")
	if err := Write(res, chart); err != nil {
		t.Fatalf("WriteChart error = %v", err)
	}
	f, err := os.Open(chart)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("png.Decode(chart) error = %v", err)
	}
	if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 300 {
		t.Errorf("chart is %dx%d, want at least 400x300", b.Dx(), b.Dy())
	}
	svg := filepath.Join(t.TempDir(), "chart.svg")
	if err := Write(res, svg); err != nil {
		t.Fatalf("WriteChart(svg) error = %v", err)
	}
	if b, _ := os.ReadFile(svg); !bytes.Contains(b, []byte("<svg")) {
		t.Error("chart.svg is not an SVG")
	}
	if err := Write(res, filepath.Join(t.TempDir(), "chart.gif")); err == nil {
		t.Error("Write(chart.gif) error = nil, want one")
	}
	if err := Write(&bench.Result{}, filepath.Join(t.TempDir(), "empty.png")); err == nil {
		t.Error("Write(a result without series) error = nil, want one")
	}
}
