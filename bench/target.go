package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
)

// Target kinds.
const (
	kindTokencache   = "tokencache"    // http(s)://host:port of a node
	kindBaselineHTTP = "baseline-http" // in-process bare fasthttp server
	kindRedis        = "redis"         // redis://host:port
	kindEtcd         = "etcd"          // etcd://host:port[,host:port…]
	kindRaftBare     = "raft-bare"     // in-process 3-node hashicorp/raft
	kindMySQL        = "mysql"         // mysql://<go-sql-driver DSN>
)

// targetKind returns the kind of a --target value.
func targetKind(s string) (string, error) {
	switch {
	case s == kindBaselineHTTP:
		return kindBaselineHTTP, nil
	case s == kindRaftBare:
		return kindRaftBare, nil
	case strings.HasPrefix(s, "http://"):
		return kindTokencache, nil
	case strings.HasPrefix(s, "redis://"):
		return kindRedis, nil
	case strings.HasPrefix(s, "etcd://"):
		return kindEtcd, nil
	case strings.HasPrefix(s, "mysql://"):
		return kindMySQL, nil
	}
	return "", fmt.Errorf("unknown target %q (want http://host:port, redis://host:port, etcd://host:port[,…], mysql://DSN, baseline-http or raft-bare)", s)
}

// Target is a system under load. The runner calls Seed once, then
// NewClient once per worker, then Close.
type Target interface {
	// Info describes the target for results.
	Info() TargetInfo
	// Supports reports whether the target can run workload w.
	Supports(w Workload) bool
	// Seed creates n items (tokens or keys) with up to conc requests in
	// flight, calling progress after each, and returns them in the order
	// they were created. It may be called with n = 0.
	Seed(ctx context.Context, n, conc int, progress func()) ([]Seeded, error)
	// NewClient returns the client of one worker. pop is the population
	// the workloads draw from.
	NewClient(worker int, pop *Population) Client
	// Close releases what the target holds (and stops what it started).
	// It is idempotent.
	Close() error
}

// Client sends the requests of one worker; it is not safe for concurrent
// use. Do blocks until the request has been answered or has failed; an
// answer the workload does not expect is a *StatusError.
type Client interface {
	Do(ctx context.Context, w Workload, rng *rand.Rand) error
}

// TargetInfo describes a target in a Result.
type TargetInfo struct {
	Kind      string   `json:"kind"`
	Endpoints []string `json:"endpoints,omitempty"`
	// Nodes is the number of nodes behind the endpoints, when known
	// (spawned tokencache nodes, the bare Raft cluster).
	Nodes int `json:"nodes,omitempty"`
	// Spawned is true when the harness started the target itself.
	Spawned bool `json:"spawned,omitempty"`
	// Version of the target's software, when known.
	Version string `json:"version,omitempty"`
	// Notes say what the target does for each workload.
	Notes string `json:"notes,omitempty"`
}

// Open connects to (or starts) the target of c.
func Open(ctx context.Context, c *Config) (Target, error) {
	if c.Spawn > 0 {
		return spawnTarget(ctx, c)
	}
	kind, err := targetKind(c.Targets[0])
	if err != nil {
		return nil, err
	}
	switch kind {
	case kindTokencache:
		return newHTTPTarget(c, c.Targets, kindTokencache)
	case kindBaselineHTTP:
		if c.BaselineInProcess {
			return newBaselineTarget(c)
		}
		return newBaselineProcessTarget(ctx, c)
	case kindRedis:
		return newRedisTarget(ctx, c, c.Targets[0])
	case kindEtcd:
		return newEtcdTarget(ctx, c, c.Targets[0])
	case kindMySQL:
		return newMySQLTarget(ctx, c, c.Targets[0])
	case kindRaftBare:
		return newRaftTarget(ctx, c)
	}
	return nil, fmt.Errorf("unknown target kind %q", kind)
}

// checkSupported returns an error naming every workload of mix that t
// cannot run.
func checkSupported(t Target, mix Mix) error {
	var bad []string
	for _, w := range mix.Workloads() {
		if !t.Supports(w) {
			bad = append(bad, string(w))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("target %s cannot run %s: %w", t.Info().Kind, strings.Join(bad, ", "), ErrUnsupported)
	}
	return nil
}
