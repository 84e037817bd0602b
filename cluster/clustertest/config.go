package clustertest

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/tokencache/tokencache/cluster"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

// Options shapes a test cluster. Zero values take the defaults noted.
type Options struct {
	R            *int   // replication count (default 1)
	Expect       int    // bootstrap_expect (default: n)
	Policy       string // default sync
	RaftStore    string // default memory
	Persist      string // default memory
	SnapThresh   uint64
	TrailingLogs uint64
	Staleness    time.Duration // default 1s
	Name         string        // cluster name (default "test")
	Fingerprint  func(i int) string
	LogLevel     slog.Level // default info
	// CommitTimeout overrides CommitTimeout (default 10ms).
	CommitTimeout time.Duration
	// DeadCleanup overrides DeadServerCleanup (default 2s).
	DeadCleanup time.Duration
	IDPrefix    string // node ids are <IDPrefix>1…; default "n"
	EncryptKey  func(i int) string
	// TLS, when set, gives node i (id) its TLS files.
	TLS func(i int, id string) cluster.TLSConfig
	// BeforeStart, when set, sees each node between New and Start.
	BeforeStart func(n *cluster.Node)
	// ProdTiming uses the production raft timing (benchmarks: a saturated
	// 2-core machine must not lose its leader for nothing).
	ProdTiming bool
	// Store, when set, gives each node its token store instead of
	// persist.Open(Persist) in its data dir (a shared store for all nodes).
	Store func(tn *Node) (persist.Store, error)
	// Formats, when set, gives each node its token formats (nil: opaque
	// alone).
	Formats func(tn *Node) *token.Formats
}

// Intp returns a pointer to v (Options.R).
func Intp(v int) *int { return &v }

// withDefaults returns o with its zero values replaced by the defaults, for
// a cluster of n nodes.
func (o Options) withDefaults(n int) Options {
	if o.R == nil {
		o.R = Intp(1)
	}
	if o.Expect == 0 {
		o.Expect = n
	}
	if o.Policy == "" {
		o.Policy = cluster.PolicySync
	}
	if o.RaftStore == "" {
		o.RaftStore = cluster.StoreMemory
	}
	if o.Persist == "" {
		o.Persist = "memory"
	}
	if o.Staleness == 0 {
		o.Staleness = time.Second
	}
	if o.Name == "" {
		o.Name = "test"
	}
	if o.IDPrefix == "" {
		o.IDPrefix = "n"
	}
	if o.DeadCleanup == 0 {
		o.DeadCleanup = 2 * time.Second
	}
	if o.LogLevel == 0 {
		o.LogLevel = slog.LevelInfo
	}
	return o
}

// Config returns the cluster configuration of node i (id): loopback
// addresses, every other node to join, short timings. An id outside the
// cluster gets port 0 for gossip and Raft (a node to start with StartExtra).
func (tc *Cluster) Config(i int, id string) cluster.Config {
	o := tc.Opts
	cfg := cluster.DefaultConfig()
	cfg.NodeID = id
	cfg.Name = o.Name
	ports := tc.ports[id]
	cfg.GossipAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	cfg.RaftAddr = fmt.Sprintf("127.0.0.1:%d", ports[1])
	cfg.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", 18000+i)
	for _, other := range tc.NodeIDs() {
		if other != id {
			cfg.Join = append(cfg.Join, fmt.Sprintf("127.0.0.1:%d", tc.ports[other][0]))
		}
	}
	cfg.BootstrapExpect = o.Expect
	cfg.ReplicationCount = *o.R
	cfg.Policy = o.Policy
	cfg.RaftStore = o.RaftStore
	cfg.MaxStaleness = o.Staleness
	// Short, but not so short that a loaded 2-core machine running -race
	// with five nodes in one process loses leaders for nothing.
	cfg.HeartbeatTimeout = 250 * time.Millisecond
	cfg.ElectionTimeout = 250 * time.Millisecond
	cfg.LeaderLease = 150 * time.Millisecond
	cfg.CommitTimeout = 10 * time.Millisecond
	cfg.ReconcileInterval = 200 * time.Millisecond
	cfg.ServerStabilization = 300 * time.Millisecond
	cfg.DeadServerCleanup = o.DeadCleanup
	cfg.JoinRetryMax = 300 * time.Millisecond
	cfg.SnapshotInterval = 100 * time.Millisecond
	if o.ProdTiming {
		d := cluster.DefaultConfig()
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLease = d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLease
		cfg.CommitTimeout, cfg.MaxStaleness, cfg.SnapshotInterval = d.CommitTimeout, d.MaxStaleness, d.SnapshotInterval
	}
	if o.CommitTimeout > 0 {
		cfg.CommitTimeout = o.CommitTimeout
	}
	if o.SnapThresh > 0 {
		cfg.SnapshotThreshold = o.SnapThresh
	}
	if o.TrailingLogs > 0 {
		cfg.TrailingLogs = o.TrailingLogs
	}
	cfg.Gossip = cluster.GossipConfig{
		ProbeInterval: 200 * time.Millisecond, ProbeTimeout: 150 * time.Millisecond,
		GossipInterval: 20 * time.Millisecond, PushPullInterval: time.Second,
		TCPTimeout: 500 * time.Millisecond, SuspicionMult: 2, DeadNodeReclaimTime: time.Second,
	}
	if o.EncryptKey != nil {
		cfg.EncryptKey = o.EncryptKey(i)
	}
	if o.TLS != nil {
		cfg.TLS = o.TLS(i, id)
	}
	cfg.Fingerprint = "fp-1"
	if o.Fingerprint != nil {
		cfg.Fingerprint = o.Fingerprint(i)
	}
	return cfg
}
