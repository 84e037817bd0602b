//go:build benchsmoke

// The smoke test builds the real tokencache binary and runs
// `tokencache-bench --spawn 1 --duration 2s --chart r.png` against it,
// from `make test` with -tags benchsmoke:
//
//	cd bench/baselines && go test -tags benchsmoke -run Smoke -count=1 ./...

package main

import (
	"context"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokencache/tokencache/bench"
)

// TestSpawnSmoke is bench's test of the same name, with the chart.
func TestSpawnSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, _, err := bench.BuildBinary(ctx)
	if err != nil {
		t.Fatalf("BuildBinary error = %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(bin)) })
	dir := t.TempDir()
	out, chart := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.png")
	stdout, stderr, err := runCmd(t, "--spawn", "1", "--binary", bin, "--duration", "2s", "--warmup", "500ms",
		"--tokens", "1000", "-c", "16", "--out", out, "--chart", chart)
	if err != nil {
		t.Fatalf("bench --spawn 1 error = %v\nstderr:\n%s", err, stderr)
	}
	t.Log(stdout)
	r, err := bench.ReadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, r)
	if r.Errors != 0 || !r.Target.Spawned || r.Target.Kind != "tokencache" || r.Seeding == nil || r.Seeding.Items != 1000 {
		t.Errorf("spawn run: errors %v, target %+v, seeding %+v; want no errors, a spawned tokencache, 1000 seeded", r.ErrorsByKind, r.Target, r.Seeding)
	}
	f, err := os.Open(chart)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("chart is not a PNG: %v", err)
	}
}
