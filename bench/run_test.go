package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// checkSane fails unless r has throughput and ordered, non-zero percentiles
// (Result.Check).
func checkSane(t *testing.T, r *Result) {
	t.Helper()
	if err := r.Check(); err != nil {
		t.Error(err)
	}
}

// TestRunBaselineHTTP drives the in-process bare server for 1s, closed loop
// (bench/baselines/chart draws the chart of such a run).
func TestRunBaselineHTTP(t *testing.T) {
	c := DefaultConfig()
	c.Targets, c.BaselineInProcess = []string{KindBaselineHTTP}, true
	c.Connections, c.Tokens = 8, 500
	c.Warmup, c.Duration = 200*time.Millisecond, time.Second
	c.Interval = 250 * time.Millisecond
	tgt, err := Open(context.Background(), &c)
	if err != nil {
		t.Fatalf("Open(baseline-http) error = %v", err)
	}
	t.Cleanup(func() {
		if err := tgt.Close(); err != nil {
			t.Errorf("Close error = %v", err)
		}
	})
	var progress bytes.Buffer
	c.Progress = true
	res, err := Run(context.Background(), c, tgt, &progress)
	if err != nil {
		t.Fatalf("Run error = %v", err)
	}
	checkSane(t, res)
	if res.Errors != 0 || res.Seeding == nil || res.Seeding.Items != 500 || res.Target.Kind != KindBaselineHTTP {
		t.Errorf("Run = errors %d, seeding %+v, kind %q; want 0 errors, 500 seeded, baseline-http", res.Errors, res.Seeding, res.Target.Kind)
	}
	if len(res.Series) < 3 || len(res.Series) > 5 {
		t.Errorf("Run: %d points for 1s at 250ms, want 4 (±1)", len(res.Series))
	}
	if !strings.Contains(progress.String(), "req/s") || !strings.Contains(progress.String(), "seeding") {
		t.Errorf("progress output %q lacks the seeding bar or the progress line", progress.String())
	}
}

// TestRunEveryWorkload runs every workload against the bare server: each
// request must get the answer the workload expects (no errors), revoke
// must consume the pool, issue refill it, and validate-miss walk the cold
// tokens.
func TestRunEveryWorkload(t *testing.T) {
	c := DefaultConfig()
	c.Targets, c.BaselineInProcess = []string{KindBaselineHTTP}, true
	c.Mix = MustParseMix("validate=3,validate-miss=1,unknown=1,issue=1,revoke=1,introspect=1,authz=1")
	c.Connections, c.Tokens, c.Hot, c.RevokePool = 4, 300, 100, 200
	c.Warmup, c.Duration = 0, 700*time.Millisecond
	tgt, err := Open(context.Background(), &c)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	sess, err := Prepare(context.Background(), c, tgt, nil)
	if err != nil {
		t.Fatalf("Prepare error = %v", err)
	}
	if p := sess.Population(); p.HotLen() != 100 || p.ColdLen() != 200 || p.RevocableLen() != 200 {
		t.Fatalf("population hot %d cold %d revocable %d, want 100, 200, 200", p.HotLen(), p.ColdLen(), p.RevocableLen())
	}
	res, err := sess.Measure(context.Background(), c, nil)
	if err != nil {
		t.Fatalf("Measure error = %v", err)
	}
	checkSane(t, res)
	for _, w := range Workloads {
		if !tgt.Supports(w) {
			continue // the JWT workloads: tokencache only (TestSpawnEveryWorkloadSmoke)
		}
		wr := res.Workloads[w]
		if wr == nil || wr.Requests == 0 {
			t.Errorf("workload %s: no requests", w)
			continue
		}
		if wr.Errors != 0 {
			t.Errorf("workload %s: %d errors %v, want 0", w, wr.Errors, wr.ErrorsByKind)
		}
	}
	if res.Config.Hot != 100 || res.Config.Cold != 200 || res.Config.RevokePool != 200 {
		t.Errorf("result config hot/cold/pool = %d/%d/%d, want 100/200/200", res.Config.Hot, res.Config.Cold, res.Config.RevokePool)
	}
}

// TestRunCountsHTTPErrors: a wrong admin token makes issue fail with 401s,
// counted as http_4xx, and a stopped server as connection errors.
func TestRunCountsHTTPErrors(t *testing.T) {
	srv, err := StartBaselineServer("127.0.0.1:0", "right", "tc")
	if err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Targets = []string{srv.URL()}
	c.AdminToken = "wrong"
	c.Mix = MustParseMix("issue")
	c.Connections, c.Warmup, c.Duration = 2, 0, 200*time.Millisecond
	tgt, err := Open(context.Background(), &c)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	res, err := Run(context.Background(), c, tgt, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || res.Errors != res.Requests || res.ErrorsByKind[KindStatus4xx] != res.Errors || res.Throughput != 0 {
		t.Errorf("wrong admin token: requests %d errors %v throughput %v, want every request an http_4xx", res.Requests, res.ErrorsByKind, res.Throughput)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	c.AdminToken = "right"
	res, err = Run(context.Background(), c, tgt, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || res.ErrorsByKind[KindConnection] != res.Errors {
		t.Errorf("stopped server: errors %v, want only connection errors", res.ErrorsByKind)
	}
}

// TestRunPipelined drives the bare server through fasthttp's
// PipelineClient: 2 connections × 4 requests in flight = 8 workers.
func TestRunPipelined(t *testing.T) {
	c := DefaultConfig()
	c.Targets, c.BaselineInProcess = []string{KindBaselineHTTP}, true
	c.Mix = MustParseMix("validate=8,unknown=1,issue=1")
	c.Connections, c.Pipeline, c.Tokens = 2, 4, 200
	c.Warmup, c.Duration = 0, 300*time.Millisecond
	tgt, err := Open(context.Background(), &c)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	res, err := Run(context.Background(), c, tgt, nil)
	if err != nil {
		t.Fatalf("Run error = %v", err)
	}
	checkSane(t, res)
	if res.Errors != 0 || res.Config.Workers != 8 || !strings.Contains(res.Target.Notes, "pipelining") {
		t.Errorf("pipelined run: errors %v, workers %d, notes %q; want 0, 8, pipelining noted", res.ErrorsByKind, res.Config.Workers, res.Target.Notes)
	}
}
