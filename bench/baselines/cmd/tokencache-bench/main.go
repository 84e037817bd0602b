// Command tokencache-bench is `tokencache bench` with every baseline: the
// same load generator, suites and results, plus the targets that need other
// systems' clients (redis://, etcd://, mysql://, raft-bare), the compare
// suite (make bench-compare) and charts (--chart, chart, --charts-dir).
// It is built from the bench/baselines module, so the daemon links none of
// them; nodes it spawns run the tokencache binary next to it (or --binary).
//
//	tokencache-bench --spawn 1 --duration 30s --chart run.png
//	tokencache-bench suite compare --redis redis://127.0.0.1:6379 --rounds 3
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:]))
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string) int {
	cmd := newCommand()
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "error: %v\n", err)
		return 1
	}
	return 0
}
