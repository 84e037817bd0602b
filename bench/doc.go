// Package bench is tokencache's load-test harness (DESIGN §8): it drives a
// running node or cluster, or nodes it spawns itself, with a weighted mix of
// gateway and admin requests, and measures throughput and latency with HDR
// histograms.
//
// The same load generator also drives the baselines a result is compared
// with, so that a ratio between two results measures the targets, not two
// tools. This package has the one baseline that needs nothing the daemon
// does not already link: a bare fasthttp server answering from a Go map
// (the HTTP ceiling of the machine). The baselines that need other
// systems' clients (Redis GET, etcd puts, a bare hashicorp/raft cluster, a
// primary-key SELECT on MySQL/MariaDB), the compare suite that runs them
// and the chart (gonum/plot) live in bench/baselines, a module of its own
// built into tokencache-bench; it adds them through RegisterTarget,
// RegisterChart and NewCommand's suites, so the daemon, which links this
// package for `tokencache bench`, links none of them.
//
// Closed loop (Config.Connections workers, each sending its next request
// when the previous one has answered) measures capacity. Open loop
// (Config.Rate requests per second on a fixed schedule) measures latency at
// a given load; every latency is taken from the request's intended send
// time, so a stall of the target inflates the latencies of every request
// that should have been sent during it (coordinated omission corrected, as
// in wrk2 and HdrHistogram's RecordCorrectedValue).
//
// Run drives one Target and returns a Result (JSON, schema SchemaVersion);
// WriteChart draws its time series (with the registered chart); Compare
// renders two results side by side; RunCompare measures groups of targets
// interleaved; NewCommand is the `tokencache bench` command line.
package bench
