// Package bench is tokencache's load-test harness (DESIGN §8): it drives a
// running node or cluster, or nodes it spawns itself, with a weighted mix of
// gateway and admin requests, and measures throughput and latency with HDR
// histograms.
//
// The same load generator also drives the baselines a result is compared
// with: Redis GET, a bare fasthttp server answering from a Go map (the HTTP
// ceiling of the machine), etcd puts, a bare hashicorp/raft cluster applying
// no-op commands, and a primary-key SELECT on MySQL/MariaDB. One generator
// means a ratio between two results measures the targets, not two tools.
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
// WriteChart draws its time series; Compare renders two results side by
// side; NewCommand is the `tokencache bench` command line.
package bench
