//go:build benchsmoke

// The smoke test of spawn mode builds the real tokencache binary and runs
// `tokencache bench --spawn 1 --duration 2s` against it. It needs a daemon
// that serves, so it runs from `make test` with -tags benchsmoke, apart
// from the package's quick tests:
//
//	go test -tags benchsmoke -run Smoke -count=1 ./bench/

package bench

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// buildTokencache builds ./cmd/tokencache into a temp dir removed at cleanup.
func buildTokencache(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, _, err := BuildBinary(ctx)
	if err != nil {
		t.Fatalf("BuildBinary error = %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(bin)) })
	return bin
}

// TestSpawnSmoke runs `tokencache bench --spawn 1`; tokencache-bench has
// the same smoke test with --chart.
func TestSpawnSmoke(t *testing.T) {
	bin := buildTokencache(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "r.json")
	stdout, stderr, err := runCmd(t, "--spawn", "1", "--binary", bin, "--duration", "2s", "--warmup", "500ms",
		"--tokens", "1000", "-c", "16", "--out", out)
	if err != nil {
		t.Fatalf("bench --spawn 1 error = %v\nstderr:\n%s", err, stderr)
	}
	t.Log(stdout)
	r, err := ReadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, r)
	if r.Errors != 0 || !r.Target.Spawned || r.Target.Kind != kindTokencache || r.Seeding == nil || r.Seeding.Items != 1000 {
		t.Errorf("spawn run: errors %v, target %+v, seeding %+v; want no errors, a spawned tokencache, 1000 seeded", r.ErrorsByKind, r.Target, r.Seeding)
	}
}

// TestSpawnEveryWorkloadSmoke drives every workload against a spawned node
// with a small cache, so that validate-miss really misses (the node signs
// JWTs with a key the harness generates, for validate-jwt and issue-jwt).
func TestSpawnEveryWorkloadSmoke(t *testing.T) {
	bin := buildTokencache(t)
	c := DefaultConfig()
	c.Spawn, c.Binary = 1, bin
	c.Mix = MustParseMix("validate=4,validate-miss=2,unknown=1,introspect=1,authz=1,issue=1,revoke=1,validate-jwt=2,issue-jwt=1")
	c.Connections, c.Tokens, c.Hot, c.RevokePool = 8, 2000, 200, 500
	c.Warmup, c.Duration = 300*time.Millisecond, 2*time.Second
	tgt, err := Open(context.Background(), &c)
	if err != nil {
		t.Fatalf("Open(--spawn 1) error = %v", err)
	}
	ht := tgt.(*httpTarget)
	sess, err := Prepare(context.Background(), c, tgt, nil)
	if err != nil {
		tgt.Close()
		t.Fatalf("Prepare error = %v", err)
	}
	res, err := sess.Measure(context.Background(), c, nil)
	if err != nil {
		tgt.Close()
		t.Fatalf("Measure error = %v", err)
	}
	checkSane(t, res)
	for _, w := range c.Mix.Workloads() {
		if wr := res.Workloads[w]; wr == nil || wr.Requests == 0 || wr.Errors != 0 {
			t.Errorf("workload %s: %+v, want requests and no errors", w, wr)
		}
	}
	// validate-miss alone: the node's own counters show that (nearly)
	// every request missed its cache of 2×hot tokens.
	miss := c
	miss.Mix = MustParseMix("validate-miss")
	mr, err := sess.Measure(context.Background(), miss, nil)
	if err != nil {
		tgt.Close()
		t.Fatalf("Measure(validate-miss) error = %v", err)
	}
	checkSane(t, mr)
	if got := mr.TargetCounters["cache_misses"]; got < 0.9*float64(mr.Requests) || mr.Errors != 0 {
		t.Errorf("validate-miss: %d requests, %v errors, node counters %v; want ≥ 90%% cache misses", mr.Requests, mr.ErrorsByKind, mr.TargetCounters)
	}
	t.Logf("validate-miss: %.0f req/s, p50 %dµs, p99 %dµs, counters %v", mr.Throughput, mr.Latency.P50, mr.Latency.P99, mr.TargetCounters)
	// Close stops the node by pid: nothing is left running.
	var pids []int
	if ht.cluster != nil {
		for _, p := range ht.cluster.procs {
			pids = append(pids, p.Process.Pid)
		}
	}
	if err := tgt.Close(); err != nil {
		t.Errorf("Close error = %v", err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("node pid %d still exists after Close (kill -0: %v)", pid, err)
		}
	}
	if len(pids) != 1 {
		t.Errorf("spawned %d node processes, want 1", len(pids))
	}
}
