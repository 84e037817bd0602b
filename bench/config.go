package bench

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is one run of the harness. Start from DefaultConfig.
type Config struct {
	// Name labels the run in results and compare tables (default: the
	// target kind and mix).
	Name string `json:"name"`
	// Targets: tokencache base URLs (http://host:port, round-robin), or one
	// of baseline-http and the kinds added by RegisterTarget (tokencache-bench:
	// redis://host:port, etcd://host:port[,host:port…], raft-bare,
	// mysql://<go-sql-driver DSN>). Empty with Spawn > 0.
	Targets []string `json:"targets"`
	// Spawn starts this many tokencache nodes on loopback for the run
	// (temp data dirs, torn down after); 0 drives Targets.
	Spawn int `json:"spawn,omitempty"`
	// Mix is the weighted choice of workloads.
	Mix Mix `json:"mix"`
	// Connections is the number of concurrent connections (closed loop:
	// one worker each; open loop: the most requests in flight).
	Connections int `json:"connections"`
	// Pipeline > 1 sends up to this many requests at once on each HTTP
	// connection (fasthttp.PipelineClient); Connections×Pipeline workers.
	Pipeline int `json:"pipeline"`
	// Rate > 0 selects the open loop: requests per second across all
	// workers on a fixed schedule.
	Rate float64 `json:"rate,omitempty"`
	// Warmup runs the mix unrecorded before the measured Duration.
	Warmup   time.Duration `json:"-"`
	Duration time.Duration `json:"-"`
	// Timeout bounds one request.
	Timeout time.Duration `json:"-"`
	// Tokens is the seeded, readable population; Hot of them (the newest)
	// are read by validate, introspect and authz, the rest by
	// validate-miss. Hot 0 = Tokens/10 when the mix has validate-miss,
	// else all of them.
	Tokens int `json:"tokens"`
	Hot    int `json:"hot"`
	// RevokePool is the number of extra tokens seeded for revoke (issue
	// adds the tokens it creates). -1 = automatic: 20000 when the mix has
	// revoke, else 0.
	RevokePool int `json:"revoke_pool"`
	// SeedConcurrency is how many seeding requests are in flight at once.
	SeedConcurrency int `json:"-"`
	// AdminToken authorises issue and revoke on tokencache (default: env
	// TOKENCACHE_ADMIN_TOKEN, or <data dir>/admin.token of spawned nodes).
	AdminToken string `json:"-"`
	// Prefix of generated random tokens (the node's tokens.prefix).
	Prefix string `json:"-"`
	// Spawned nodes: the binary (default: go build ./cmd/tokencache, or
	// the tokencache next to this executable), the cache capacity they get
	// (0 = automatic: 2×Hot when the mix has validate-miss) and extra
	// environment (KEY=VALUE) for every node.
	Binary        string   `json:"-"`
	CacheCapacity int      `json:"cache_capacity,omitempty"`
	SpawnEnv      []string `json:"-"`
	// KeepLogs keeps the spawned nodes' logs (stderr) and data dirs in this
	// directory instead of a removed temp dir.
	KeepDir string `json:"-"`
	// BaselineInProcess runs the baseline-http server in this process
	// instead of a child process (`tokencache bench baseline-server`).
	BaselineInProcess bool `json:"-"`
	// BaselineArgs are the arguments, after this executable, that run its
	// baseline-server command (default: bench baseline-server; see
	// BaselineArgs).
	BaselineArgs []string `json:"-"`
	// ValueSize is the value size of the key-value baselines (Redis, etcd)
	// and the command size of raft-bare.
	ValueSize int `json:"value_size"`
	// Interval is the width of one point of the time series.
	Interval time.Duration `json:"-"`
	// Progress prints a live progress line to ProgressOut.
	Progress bool `json:"-"`
}

// DefaultConfig returns the configuration of `tokencache bench` without
// flags: 64 connections, validate only, 5 s warm-up and 30 s measured.
func DefaultConfig() Config {
	return Config{
		Mix:             MustParseMix("validate"),
		Connections:     64,
		Pipeline:        1,
		Warmup:          5 * time.Second,
		Duration:        30 * time.Second,
		Timeout:         10 * time.Second,
		Tokens:          10000,
		RevokePool:      -1,
		SeedConcurrency: 32,
		Prefix:          "tc",
		ValueSize:       200,
		Interval:        time.Second,
	}
}

// Validate reports every problem of c.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Targets) == 0 && c.Spawn <= 0 {
		add("no target: give --target URL (repeatable) or --spawn N")
	}
	if len(c.Targets) > 0 && c.Spawn > 0 {
		add("--target and --spawn exclude each other")
	}
	if c.Spawn < 0 || c.Spawn > 9 {
		add("--spawn must be between 1 and 9, got %d", c.Spawn)
	}
	if len(c.Targets) > 1 {
		for _, t := range c.Targets {
			if kind, _ := targetKind(t); kind != kindTokencache {
				add("only tokencache URLs can be combined, got %q among %d targets", t, len(c.Targets))
			}
		}
	}
	for _, t := range c.Targets {
		if _, err := targetKind(t); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Mix.IsZero() {
		add("the workload mix is empty")
	}
	if c.Connections < 1 {
		add("connections must be at least 1, got %d", c.Connections)
	}
	if c.Pipeline < 1 {
		add("pipeline must be at least 1, got %d", c.Pipeline)
	}
	if c.Rate < 0 {
		add("rate must not be negative, got %v", c.Rate)
	}
	if c.Duration <= 0 {
		add("duration must be positive, got %v", c.Duration)
	}
	if c.Warmup < 0 {
		add("warmup must not be negative, got %v", c.Warmup)
	}
	if c.Timeout <= 0 {
		add("timeout must be positive, got %v", c.Timeout)
	}
	if c.Interval < 10*time.Millisecond {
		add("interval must be at least 10ms, got %v", c.Interval)
	}
	needTokens := c.Mix.Has(Validate) || c.Mix.Has(ValidateMiss) || c.Mix.Has(Introspect) || c.Mix.Has(Authz) || c.Mix.Has(ValidateJWT)
	if needTokens && c.Tokens < 1 {
		add("the mix reads tokens: --tokens must be at least 1")
	}
	if c.Tokens < 0 {
		add("tokens must not be negative, got %d", c.Tokens)
	}
	if c.Hot < 0 || (c.Hot > c.Tokens && c.Tokens > 0) {
		add("hot must be between 0 and --tokens (%d), got %d", c.Tokens, c.Hot)
	}
	if c.Mix.Has(ValidateMiss) && c.Tokens > 0 && c.hot() >= c.Tokens {
		add("validate-miss needs cold tokens: --hot (%d) must be less than --tokens (%d)", c.hot(), c.Tokens)
	}
	if c.RevokePool < -1 {
		add("revoke-pool must be -1 (automatic) or at least 0, got %d", c.RevokePool)
	}
	if c.SeedConcurrency < 1 {
		add("seed concurrency must be at least 1, got %d", c.SeedConcurrency)
	}
	if c.CacheCapacity < 0 {
		add("cache capacity must not be negative, got %d", c.CacheCapacity)
	}
	if c.Spawn > 0 && c.Mix.Has(ValidateMiss) && c.cacheCapacity() >= c.Tokens-c.hot() {
		add("validate-miss: the cold tokens (%d) must outnumber the spawned nodes' cache capacity (%d)",
			c.Tokens-c.hot(), c.cacheCapacity())
	}
	if c.ValueSize < 1 {
		add("value size must be at least 1, got %d", c.ValueSize)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid bench configuration: %w", errors.Join(errs...))
	}
	return nil
}

// hot resolves Config.Hot 0.
func (c *Config) hot() int {
	if c.Hot > 0 {
		return c.Hot
	}
	if c.Mix.Has(ValidateMiss) {
		return max(c.Tokens/10, 1)
	}
	return c.Tokens
}

// revokePool resolves Config.RevokePool -1.
func (c *Config) revokePool() int {
	if c.RevokePool >= 0 {
		return c.RevokePool
	}
	if c.Mix.Has(Revoke) {
		return 20000
	}
	return 0
}

// cacheCapacity resolves Config.CacheCapacity 0 for spawned nodes (0 still
// means "the daemon's default" when the mix has no validate-miss).
func (c *Config) cacheCapacity() int {
	if c.CacheCapacity > 0 || !c.Mix.Has(ValidateMiss) {
		return c.CacheCapacity
	}
	return 2 * c.hot()
}

// Workers is the number of goroutines that send requests: Connections × Pipeline.
func (c *Config) Workers() int { return c.Connections * c.Pipeline }

// defaultName is the run's label when Config.Name is empty.
func (c *Config) defaultName() string {
	kind := kindTokencache
	if len(c.Targets) > 0 {
		kind, _ = targetKind(c.Targets[0])
	}
	return fmt.Sprintf("%s %s c=%d", kind, strings.ReplaceAll(c.Mix.String(), ",", "+"), c.Connections)
}
