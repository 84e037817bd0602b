package cache

import (
	"fmt"
	"math/bits"
	"strings"
	"time"
)

// Eviction policies (Config.Eviction).
const (
	EvictionLRU = "lru"
	Eviction2Q  = "2q"
	EvictionARC = "arc"
)

// ParseEviction returns the eviction policy named by s, in any case ("ARC"
// is arc); "" is the default, lru. ok is false for an unknown name. It is
// the one rule for cache.eviction: Validate, New and the daemon's
// configuration check all use it.
func ParseEviction(s string) (policy string, ok bool) {
	switch p := strings.ToLower(s); p {
	case "":
		return EvictionLRU, true
	case EvictionLRU, Eviction2Q, EvictionARC:
		return p, true
	}
	return "", false
}

// Defaults applied by DefaultConfig and, for zero fields, by New.
const (
	DefaultCapacity       = 1_000_000
	DefaultShards         = 64
	DefaultNegativeTTL    = time.Minute
	DefaultUseGranularity = time.Second

	// minNegativeCapacity is the floor of the derived NegativeCapacity.
	minNegativeCapacity = 1024
	// maxShards bounds Config.Shards: more shards than cores times a few
	// buys nothing and costs memory per shard.
	maxShards = 1 << 12
	// minPerShard is the smallest number of records a shard is given: a
	// small Capacity uses fewer shards rather than shards of one record
	// (which would make the bound Capacity meaningless, since each shard
	// rounds up, and which 2Q cannot represent).
	minPerShard = 8
)

// Config configures a Cache.
type Config struct {
	// Capacity is the number of cached (evictable) records (cache.capacity).
	// Pinned changes come on top of it and are bounded by the write path.
	Capacity int
	// Eviction is "lru" (default), "2q" or "arc" (cache.eviction).
	Eviction string
	// Shards is the number of independently locked shards; a power of two.
	// 0 picks the default (64). It is an upper bound: a Capacity under
	// 8 records per shard uses fewer shards, so that the per-shard
	// capacities (Capacity/Shards, rounded up) add up to about Capacity.
	Shards int
	// NegativeCapacity bounds how many unknown keys are remembered, so that
	// asking again for a key the store does not have costs no query.
	// 0 picks the default (Capacity/8, at least 1024).
	NegativeCapacity int
	// NegativeTTL is how long an unknown key is remembered (0 = 1m). Writes
	// through the log clear the entry at once; the TTL only bounds how long
	// a row added behind tokencache's back stays invisible.
	NegativeTTL time.Duration
	// UseGranularity is the resolution of last-used tracking: a use is
	// recorded (and later replicated) only when the previously recorded use
	// is older than this. 0 picks the default (1s).
	UseGranularity time.Duration
	// KeyFilter keeps a Bloom filter of every key the store holds, so that
	// a flood of random, well-formed tokens costs no store query at all.
	KeyFilter bool
	// Now is the clock (for TTLs and lag); nil = time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults (capacity 1,000,000, lru).
//
// Every field is set explicitly: Capacity 1,000,000, Eviction "lru",
// 64 shards, NegativeCapacity Capacity/8 (125,000), NegativeTTL 1m,
// UseGranularity 1s, KeyFilter on (it costs 1.25 bytes per stored key
// and is used only once BuildKeyFilter has succeeded), Now time.Now.
func DefaultConfig() Config {
	return Config{
		Capacity:         DefaultCapacity,
		Eviction:         EvictionLRU,
		Shards:           DefaultShards,
		NegativeCapacity: DefaultCapacity / 8,
		NegativeTTL:      DefaultNegativeTTL,
		UseGranularity:   DefaultUseGranularity,
		KeyFilter:        true,
		Now:              time.Now,
	}
}

// Validate reports every problem with c.
//
// Fields documented as "0 picks the default" may be zero; nothing else may
// be zero or negative, and no value means "unbounded". The error wraps
// ErrInvalidConfig and lists every problem, separated by "; ".
func (c Config) Validate() error {
	var errs []string
	if c.Capacity <= 0 {
		errs = append(errs, fmt.Sprintf("cache.capacity must be positive (got %d)", c.Capacity))
	}
	eviction, ok := ParseEviction(c.Eviction)
	if !ok {
		errs = append(errs, fmt.Sprintf("cache.eviction must be lru, 2q or arc (got %q), in any case (lru, 2q, arc, LRU, 2Q, ARC)", c.Eviction))
	}
	switch {
	case c.Shards < 0:
		errs = append(errs, fmt.Sprintf("cache.shards must not be negative (got %d)", c.Shards))
	case c.Shards > maxShards:
		errs = append(errs, fmt.Sprintf("cache.shards must be at most %d (got %d)", maxShards, c.Shards))
	case c.Shards != 0 && c.Shards&(c.Shards-1) != 0:
		errs = append(errs, fmt.Sprintf("cache.shards must be a power of two (got %d)", c.Shards))
	}
	if eviction == Eviction2Q && c.Capacity == 1 {
		// 2Q keeps a ghost list of half its size; golang-lru rejects size 0.
		errs = append(errs, "cache.capacity must be at least 2 with cache.eviction 2q")
	}
	if c.NegativeCapacity < 0 {
		errs = append(errs, fmt.Sprintf("cache.negative_capacity must not be negative (got %d): use 0 (automatic) or a positive count", c.NegativeCapacity))
	}
	if c.NegativeTTL < 0 {
		errs = append(errs, fmt.Sprintf("cache.negative_ttl must not be negative (got %s)", c.NegativeTTL))
	}
	if c.UseGranularity < 0 {
		errs = append(errs, fmt.Sprintf("cache.use_granularity must not be negative (got %s)", c.UseGranularity))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(errs, "; "))
}

// settings is a validated Config with every default resolved.
type settings struct {
	capacity    int
	eviction    string
	shards      int // power of two, <= the configured number
	perShard    int // ceil(capacity / shards)
	negPerShard int // ceil(negative capacity / shards)
	negTTL      int64
	granularity int64
	keyFilter   bool
	now         func() time.Time
}

// resolve validates c and fills in the defaults.
func (c Config) resolve() (settings, error) {
	if err := c.Validate(); err != nil {
		return settings{}, err
	}
	eviction, _ := ParseEviction(c.Eviction) // valid: checked above
	s := settings{
		capacity:    c.Capacity,
		eviction:    eviction,
		shards:      c.Shards,
		negTTL:      int64(c.NegativeTTL),
		granularity: int64(c.UseGranularity),
		keyFilter:   c.KeyFilter,
		now:         c.Now,
	}
	if s.shards == 0 {
		s.shards = DefaultShards
	}
	// A small cache uses fewer shards, so that ceil(capacity/shards) stays
	// close to capacity and each shard holds at least minPerShard records.
	if most := floorPow2(max(1, s.capacity/minPerShard)); s.shards > most {
		s.shards = most
	}
	s.perShard = ceilDiv(s.capacity, s.shards)
	neg := c.NegativeCapacity
	if neg == 0 {
		neg = max(s.capacity/8, minNegativeCapacity)
	}
	s.negPerShard = max(ceilDiv(neg, s.shards), 1)
	if s.negTTL == 0 {
		s.negTTL = int64(DefaultNegativeTTL)
	}
	if s.granularity == 0 {
		s.granularity = int64(DefaultUseGranularity)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// floorPow2 returns the largest power of two <= n (n >= 1).
func floorPow2(n int) int { return 1 << (bits.Len(uint(n)) - 1) }
