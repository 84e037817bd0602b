package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
)

// Target kinds of this package. Other kinds (Redis, etcd, MySQL, bare
// Raft) are added with RegisterTarget by bench/baselines, a module of its
// own, so that the daemon, which links this package, links none of their
// clients.
const (
	kindTokencache   = "tokencache"    // http(s)://host:port of a node
	KindBaselineHTTP = "baseline-http" // bare fasthttp server (own process, or in-process)
)

// targetKind returns the kind of a --target value.
func targetKind(s string) (string, error) {
	switch {
	case s == KindBaselineHTTP:
		return KindBaselineHTTP, nil
	case strings.HasPrefix(s, "http://"):
		return kindTokencache, nil
	}
	if k, ok := lookupTarget(s); ok {
		return k.Name, nil
	}
	return "", fmt.Errorf("unknown target %q (want %s)", s, targetUsage())
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

// JWTSeeder is a Target that can also seed tokens issued as signed JWTs
// (what validate-jwt reads).
type JWTSeeder interface {
	SeedJWT(ctx context.Context, n, conc int, progress func()) ([]Seeded, error)
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
	case KindBaselineHTTP:
		if c.BaselineInProcess {
			return newBaselineTarget(c)
		}
		return newBaselineProcessTarget(ctx, c)
	}
	k, ok := lookupTarget(c.Targets[0])
	if !ok {
		return nil, fmt.Errorf("unknown target kind %q", kind)
	}
	return k.Open(ctx, c, c.Targets[0])
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
