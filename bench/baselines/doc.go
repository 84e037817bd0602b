// Package baselines holds what tokencache's load-test harness needs from
// other systems: the baseline targets that drive Redis (GET), etcd (put), a
// bare 3-node hashicorp/raft cluster and a primary-key SELECT on
// MySQL/MariaDB, the compare suite that measures tokencache against them
// (make bench-compare), and, in package chart, the chart of a result
// (gonum/plot).
//
// It is a Go module of its own, so that the daemon's module neither links
// nor lists the etcd client (with gRPC and zap), go-redis and gonum/plot:
// bench, which `tokencache bench` is built from, declares the extension
// points (bench.RegisterTarget, bench.RegisterChart, the suites of
// bench.NewCommand) and this package fills them in tokencache-bench
// (cmd/tokencache-bench), which is `tokencache bench` with every baseline.
package baselines
