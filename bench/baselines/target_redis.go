package baselines

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache/bench"
)

// redisTarget is the key-value read ceiling: GET of 32-byte keys holding
// Config.ValueSize-byte values (a validate answer's size), through
// github.com/redis/go-redis/v9 with one pooled connection per worker.
type redisTarget struct {
	info  bench.TargetInfo
	cl    *redis.Client
	value string

	mu     sync.Mutex
	seeded []string // keys to delete at Close

	closeOnce sync.Once
	closeErr  error
}

var _ bench.Target = (*redisTarget)(nil)

// redisKeyPrefix marks the harness's keys (8 bytes + 24 hex = 32 bytes).
const redisKeyPrefix = "tcbench:"

func newRedisTarget(ctx context.Context, c *bench.Config, target string) (*redisTarget, error) {
	addr := strings.TrimPrefix(target, "redis://")
	if addr == "" || strings.Contains(addr, "/") {
		return nil, fmt.Errorf("cannot use target %q: want redis://host:port", target)
	}
	cl := redis.NewClient(&redis.Options{
		Addr:            addr,
		PoolSize:        c.Workers() + c.SeedConcurrency,
		MinIdleConns:    c.Workers(),
		ReadTimeout:     c.Timeout,
		WriteTimeout:    c.Timeout,
		DialTimeout:     c.Timeout,
		PoolTimeout:     c.Timeout,
		MaxRetries:      -1, // count every failure
		DisableIdentity: true,
	})
	info, err := cl.Info(ctx, "server").Result()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("cannot reach redis at %s: %w", addr, err), cl.Close())
	}
	t := &redisTarget{
		info: bench.TargetInfo{
			Kind: kindRedis, Endpoints: []string{addr}, Nodes: 1, Version: infoField(info, "redis_version"),
			Notes: fmt.Sprintf("validate/validate-miss: GET of a seeded 32-byte key (%d-byte value); unknown: GET of a missing key; issue: SET; revoke: DEL", c.ValueSize),
		},
		cl:    cl,
		value: strings.Repeat("v", c.ValueSize),
	}
	return t, nil
}

// infoField returns a field of the INFO answer.
func infoField(info, name string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

func (t *redisTarget) Info() bench.TargetInfo { return t.info }

func (t *redisTarget) Supports(w bench.Workload) bool {
	switch w {
	case bench.Validate, bench.ValidateMiss, bench.Unknown, bench.Issue, bench.Revoke:
		return true
	}
	return false
}

// redisKey returns a random 32-byte key.
func redisKey(rng *rand.Rand) string {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:], rng.Uint64())
	binary.LittleEndian.PutUint32(b[8:], rng.Uint32())
	return redisKeyPrefix + hex.EncodeToString(b[:])
}

// Seed SETs n keys, pipelined in batches of 100.
func (t *redisTarget) Seed(ctx context.Context, n, conc int, progress func()) ([]bench.Seeded, error) {
	const batch = 100
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	keys := make([]string, n)
	for i := range keys {
		keys[i] = redisKey(rng)
	}
	t.mu.Lock()
	t.seeded = append(t.seeded, keys...)
	t.mu.Unlock()
	return bench.SeedBatches(ctx, keys, batch, conc, progress, func(part []string, _ int) error {
		pipe := t.cl.Pipeline()
		for _, k := range part {
			pipe.Set(ctx, k, t.value, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("cannot seed redis: %w", err)
		}
		return nil
	})
}

func (t *redisTarget) NewClient(_ int, pop *bench.Population) bench.Client {
	return &redisClient{t: t, pop: pop}
}

type redisClient struct {
	t   *redisTarget
	pop *bench.Population
}

// errNotFound is a read of a seeded key that found nothing.
var errNotFound = errors.New("seeded key not found")

func (c *redisClient) Do(ctx context.Context, w bench.Workload, rng *rand.Rand) error {
	cl := c.t.cl
	switch w {
	case bench.Validate, bench.ValidateMiss:
		key := c.pop.Hot(rng.Uint64()).Token
		if w == bench.ValidateMiss {
			key = c.pop.NextCold().Token
		}
		err := cl.Get(ctx, key).Err()
		if errors.Is(err, redis.Nil) {
			return errNotFound
		}
		return err
	case bench.Unknown:
		err := cl.Get(ctx, redisKey(rng)).Err()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		if err == nil {
			return errors.New("a random key was found")
		}
		return err
	case bench.Issue:
		key := redisKey(rng)
		if err := cl.Set(ctx, key, c.t.value, 0).Err(); err != nil {
			return err
		}
		c.t.mu.Lock()
		c.t.seeded = append(c.t.seeded, key)
		c.t.mu.Unlock()
		c.pop.AddRevocable(key)
		return nil
	case bench.Revoke:
		key, ok := c.pop.TakeRevocable()
		if !ok {
			return bench.ErrExhausted
		}
		return cl.Del(ctx, key).Err()
	}
	return bench.ErrUnsupported
}

// Close deletes the keys the harness created and closes the pool.
func (t *redisTarget) Close() error {
	t.closeOnce.Do(func() {
		ctx := context.Background()
		t.mu.Lock()
		keys := t.seeded
		t.seeded = nil
		t.mu.Unlock()
		var errs []error
		for i := 0; i < len(keys); i += 1000 {
			if err := t.cl.Unlink(ctx, keys[i:min(i+1000, len(keys))]...).Err(); err != nil {
				errs = append(errs, fmt.Errorf("cannot delete the seeded keys: %w", err))
				break
			}
		}
		errs = append(errs, t.cl.Close())
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}
