package main

import (
	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache/bench"
	"github.com/tokencache/tokencache/bench/baselines"
)

// newCommand returns the root command: `tokencache bench` with the
// baselines registered and the compare suite.
func newCommand() *cobra.Command {
	baselines.Register()
	cmd := bench.NewCommand(baselines.NewCompareCommand())
	cmd.Use = "tokencache-bench"
	cmd.Short = "Load-test tokencache or a baseline (tokencache bench with every baseline and charts)"
	cmd.Example = `  tokencache-bench --spawn 1 --duration 30s --chart run.png
  tokencache-bench --target redis://127.0.0.1:6379 -c 64 --out redis.json
  tokencache-bench --target raft-bare --mix issue -c 16
  tokencache-bench suite standard --binary bin/tokencache --out latest.json --chart latest.png
  tokencache-bench suite compare --redis redis://127.0.0.1:6379 --etcd etcd://127.0.0.1:2379
  tokencache-bench chart run.json run.svg`
	cmd.SilenceErrors = true
	return cmd
}
