package cache

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v, want nil", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Capacity", cfg.Capacity, 1_000_000},
		{"Eviction", cfg.Eviction, "lru"},
		{"Shards", cfg.Shards, 64},
		{"NegativeCapacity", cfg.NegativeCapacity, 125_000},
		{"NegativeTTL", cfg.NegativeTTL, time.Minute},
		{"UseGranularity", cfg.UseGranularity, time.Second},
		{"KeyFilter", cfg.KeyFilter, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("DefaultConfig().%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if cfg.Now == nil {
		t.Errorf("DefaultConfig().Now = nil, want time.Now")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // substrings of the error; nil = valid
	}{
		{"default", func(*Config) {}, nil},
		{"zero optional fields", func(c *Config) {
			*c = Config{Capacity: 10}
		}, nil},
		{"2q", func(c *Config) { c.Eviction = "2q" }, nil},
		{"ARC upper case", func(c *Config) { c.Eviction = "ARC" }, nil},
		{"zero capacity", func(c *Config) { c.Capacity = 0 }, []string{"cache.capacity must be positive (got 0)"}},
		{"negative capacity", func(c *Config) { c.Capacity = -5 }, []string{"cache.capacity must be positive (got -5)"}},
		{"unknown eviction", func(c *Config) { c.Eviction = "fifo" }, []string{`cache.eviction must be lru, 2q or arc (got "fifo")`}},
		{"2q of one", func(c *Config) { c.Eviction, c.Capacity = "2q", 1 }, []string{"at least 2 with cache.eviction 2q"}},
		{"shards not a power of two", func(c *Config) { c.Shards = 48 }, []string{"cache.shards must be a power of two (got 48)"}},
		{"negative shards", func(c *Config) { c.Shards = -1 }, []string{"cache.shards must not be negative"}},
		{"too many shards", func(c *Config) { c.Shards = 1 << 13 }, []string{"cache.shards must be at most 4096"}},
		{"negative negative capacity", func(c *Config) { c.NegativeCapacity = -1 }, []string{"cache.negative_capacity must not be negative"}},
		{"negative TTL", func(c *Config) { c.NegativeTTL = -time.Second }, []string{"cache.negative_ttl must not be negative (got -1s)"}},
		{"negative granularity", func(c *Config) { c.UseGranularity = -1 }, []string{"cache.use_granularity must not be negative"}},
		{"every problem at once", func(c *Config) {
			*c = Config{Capacity: -1, Eviction: "mru", Shards: 3, NegativeCapacity: -1, NegativeTTL: -1, UseGranularity: -1}
		}, []string{"cache.capacity", "cache.eviction", "cache.shards", "cache.negative_capacity", "cache.negative_ttl", "cache.use_granularity"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want an error wrapping ErrInvalidConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
			if n := strings.Count(err.Error(), "; ") + 1; n != len(tt.want) {
				t.Errorf("Validate() lists %d problems, want %d: %q", n, len(tt.want), err)
			}
			if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("New() = %v, want an error wrapping ErrInvalidConfig", err)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name                  string
		cfg                   Config
		shards, perShard, neg int
	}{
		{"defaults", DefaultConfig(), 64, 15625, 1954},
		{"zero shards picks 64", Config{Capacity: 1 << 20}, 64, 1 << 14, 2048},
		{"capacity not divisible rounds up", Config{Capacity: 1000, Shards: 16}, 16, 63, 64},
		{"small capacity uses fewer shards", Config{Capacity: 100, Shards: 64}, 8, 13, 128},
		{"tiny capacity uses one shard", Config{Capacity: 3}, 1, 3, 1024},
		{"explicit negative capacity", Config{Capacity: 1 << 16, Shards: 4, NegativeCapacity: 10}, 4, 1 << 14, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.cfg.resolve()
			if err != nil {
				t.Fatalf("resolve() = %v", err)
			}
			if s.shards != tt.shards || s.perShard != tt.perShard || s.negPerShard != tt.neg {
				t.Errorf("resolve() = shards %d, per shard %d, negative per shard %d; want %d, %d, %d",
					s.shards, s.perShard, s.negPerShard, tt.shards, tt.perShard, tt.neg)
			}
			if s.negTTL != int64(time.Minute) || s.granularity != int64(time.Second) {
				t.Errorf("resolve() = TTL %v, granularity %v; want the defaults", time.Duration(s.negTTL), time.Duration(s.granularity))
			}
			if s.now == nil || s.eviction != "lru" {
				t.Errorf("resolve() = now %v, eviction %q; want time.Now, lru", s.now != nil, s.eviction)
			}
		})
	}
}

func TestNewEveryPolicy(t *testing.T) {
	for _, ev := range []string{"lru", "2q", "arc"} {
		cfg := Config{Capacity: 2, Eviction: ev}
		c := mustNew(t, cfg)
		if got := c.Stats().Capacity; got != 2 {
			t.Errorf("New(%s).Stats().Capacity = %d, want 2", ev, got)
		}
	}
}
