package bench

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// TestMain doubles as the baseline server process of
// TestBaselineServerProcess (the test binary stands in for tokencache).
func TestMain(m *testing.M) {
	if os.Getenv("BENCH_TEST_BASELINE_SERVER") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := serveBaseline(ctx, os.Stdout, "127.0.0.1:0", os.Getenv("TOKENCACHE_BENCH_BASELINE_ADMIN"), "tc")
		stop()
		if err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestBaselineServerProcess runs the baseline server in a child process,
// drives it, and stops it by pid.
func TestBaselineServerProcess(t *testing.T) {
	p, err := startBaselineProcess(context.Background(), []string{os.Args[0]},
		[]string{"BENCH_TEST_BASELINE_SERVER=1", "TOKENCACHE_BENCH_BASELINE_ADMIN=adm"})
	if err != nil {
		t.Fatalf("startBaselineProcess error = %v", err)
	}
	pid := p.cmd.Process.Pid
	c := DefaultConfig()
	c.Targets = []string{KindBaselineHTTP}
	c.Connections, c.Tokens, c.Warmup, c.Duration = 4, 200, 0, 300*time.Millisecond
	tgt, err := baselineTarget(&c, p.url, "adm", p.Close, "test")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), c, tgt, nil)
	if err != nil {
		tgt.Close()
		t.Fatalf("Run error = %v", err)
	}
	checkSane(t, res)
	if res.Errors != 0 {
		t.Errorf("errors %v, want none", res.ErrorsByKind)
	}
	if err := tgt.Close(); err != nil {
		t.Errorf("Close error = %v", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("baseline server pid %d still exists after Close (kill -0: %v)", pid, err)
	}
	// A binary without the command fails fast with a clear error.
	if _, err := startBaselineProcess(context.Background(), []string{"/bin/false"}, nil); err == nil {
		t.Error("startBaselineProcess(/bin/false) error = nil, want one")
	}
}
