package baselines

import (
	"context"
	"strings"

	"github.com/tokencache/tokencache/bench"
	"github.com/tokencache/tokencache/bench/baselines/chart"
)

// Target kinds of this package.
const (
	kindRedis    = "redis"     // redis://host:port
	kindEtcd     = "etcd"      // etcd://host:port[,host:port…]
	kindRaftBare = "raft-bare" // in-process 3-node hashicorp/raft
	kindMySQL    = "mysql"     // mysql://<go-sql-driver DSN>
)

// Kinds returns the target kinds of this package.
func Kinds() []bench.TargetKind {
	return []bench.TargetKind{
		{Name: kindRedis, Usage: "redis://host:port", ValueSize: true,
			Match: func(s string) bool { return strings.HasPrefix(s, "redis://") },
			Open: func(ctx context.Context, c *bench.Config, target string) (bench.Target, error) {
				return newRedisTarget(ctx, c, target)
			}},
		{Name: kindEtcd, Usage: "etcd://host:port[,…]", ValueSize: true,
			Match: func(s string) bool { return strings.HasPrefix(s, "etcd://") },
			Open: func(ctx context.Context, c *bench.Config, target string) (bench.Target, error) {
				return newEtcdTarget(ctx, c, target)
			}},
		{Name: kindMySQL, Usage: "mysql://DSN",
			Match: func(s string) bool { return strings.HasPrefix(s, "mysql://") },
			Open: func(ctx context.Context, c *bench.Config, target string) (bench.Target, error) {
				return newMySQLTarget(ctx, c, target)
			}},
		{Name: kindRaftBare, Usage: kindRaftBare,
			Match: func(s string) bool { return s == kindRaftBare },
			Open: func(ctx context.Context, c *bench.Config, _ string) (bench.Target, error) {
				return newRaftTarget(ctx, c)
			}},
	}
}

// Register adds the target kinds of this package and the chart to the
// harness (bench.RegisterTarget, bench.RegisterChart). tokencache-bench
// calls it before it builds its command; tests call it from TestMain.
func Register() {
	for _, k := range Kinds() {
		bench.RegisterTarget(k)
	}
	bench.RegisterChart(chart.Write)
}
