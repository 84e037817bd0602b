package baselines

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tokencache/tokencache/bench"
)

// etcdTarget is the replicated-write baseline: puts (and serializable
// gets, deletes) through go.etcd.io/etcd/client/v3, 32-byte keys and
// Config.ValueSize-byte values, as in etcd's own benchmark. Workers share
// gRPC connections, etcdWorkersPerConn per connection (etcd's documented
// benchmark uses 1000 clients on 100 connections).
type etcdTarget struct {
	info    bench.TargetInfo
	clients []*clientv3.Client
	value   string
	timeout time.Duration

	closeOnce sync.Once
	closeErr  error
}

var _ bench.Target = (*etcdTarget)(nil)

const etcdWorkersPerConn = 8

func newEtcdTarget(ctx context.Context, c *bench.Config, target string) (*etcdTarget, error) {
	rest := strings.TrimPrefix(target, "etcd://")
	var eps []string
	for ep := range strings.SplitSeq(rest, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			eps = append(eps, ep)
		}
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("cannot use target %q: want etcd://host:port[,host:port…]", target)
	}
	t := &etcdTarget{value: strings.Repeat("v", c.ValueSize), timeout: c.Timeout}
	conns := (c.Workers() + etcdWorkersPerConn - 1) / etcdWorkersPerConn
	for range conns {
		cl, err := clientv3.New(clientv3.Config{
			Endpoints:   eps,
			DialTimeout: c.Timeout,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("cannot connect to etcd %v: %w", eps, err), t.Close())
		}
		t.clients = append(t.clients, cl)
	}
	sctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	st, err := t.clients[0].Status(sctx, eps[0])
	if err != nil {
		return nil, errors.Join(fmt.Errorf("cannot reach etcd at %s: %w", eps[0], err), t.Close())
	}
	t.info = bench.TargetInfo{
		Kind: kindEtcd, Endpoints: eps, Nodes: len(eps), Version: st.Version,
		Notes: fmt.Sprintf("issue: put of a 32-byte key, %d-byte value; validate: serializable get; unknown: get of a missing key; revoke: delete; %d workers per gRPC connection",
			c.ValueSize, etcdWorkersPerConn),
	}
	return t, nil
}

func (t *etcdTarget) Info() bench.TargetInfo { return t.info }

func (t *etcdTarget) Supports(w bench.Workload) bool {
	switch w {
	case bench.Validate, bench.ValidateMiss, bench.Unknown, bench.Issue, bench.Revoke:
		return true
	}
	return false
}

// Seed puts n keys.
func (t *etcdTarget) Seed(ctx context.Context, n, conc int, progress func()) ([]bench.Seeded, error) {
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	keys := make([]string, n)
	for i := range keys {
		keys[i] = redisKey(rng)
	}
	return bench.SeedParallel(ctx, n, conc, progress, func(i int) (bench.Seeded, error) {
		cctx, cancel := context.WithTimeout(ctx, t.timeout)
		defer cancel()
		if _, err := t.clients[i%len(t.clients)].Put(cctx, keys[i], t.value); err != nil {
			return bench.Seeded{}, fmt.Errorf("cannot seed etcd: %w", err)
		}
		return bench.Seeded{Token: keys[i], Key: keys[i]}, nil
	})
}

func (t *etcdTarget) NewClient(worker int, pop *bench.Population) bench.Client {
	return &etcdClient{t: t, cl: t.clients[worker/etcdWorkersPerConn%len(t.clients)], pop: pop}
}

type etcdClient struct {
	t   *etcdTarget
	cl  *clientv3.Client
	pop *bench.Population
}

func (c *etcdClient) Do(ctx context.Context, w bench.Workload, rng *rand.Rand) error {
	ctx, cancel := context.WithTimeout(ctx, c.t.timeout)
	defer cancel()
	switch w {
	case bench.Validate, bench.ValidateMiss, bench.Unknown:
		var key string
		switch w {
		case bench.Validate:
			key = c.pop.Hot(rng.Uint64()).Token
		case bench.ValidateMiss:
			key = c.pop.NextCold().Token
		default:
			key = redisKey(rng)
		}
		resp, err := c.cl.Get(ctx, key, clientv3.WithSerializable())
		switch {
		case err != nil:
			return err
		case w == bench.Unknown && resp.Count != 0:
			return errors.New("a random key was found")
		case w != bench.Unknown && resp.Count == 0:
			return errNotFound
		}
		return nil
	case bench.Issue:
		key := redisKey(rng)
		if _, err := c.cl.Put(ctx, key, c.t.value); err != nil {
			return err
		}
		c.pop.AddRevocable(key)
		return nil
	case bench.Revoke:
		key, ok := c.pop.TakeRevocable()
		if !ok {
			return bench.ErrExhausted
		}
		_, err := c.cl.Delete(ctx, key)
		return err
	}
	return bench.ErrUnsupported
}

// Close closes the connections. The keys stay: the scripts run a private,
// throwaway etcd.
func (t *etcdTarget) Close() error {
	t.closeOnce.Do(func() {
		var errs []error
		for _, cl := range t.clients {
			errs = append(errs, cl.Close())
		}
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}
