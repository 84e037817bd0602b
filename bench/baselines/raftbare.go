package baselines

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/tokencache/tokencache/bench"
)

// RaftCluster is a bare hashicorp/raft cluster in this process: n voters
// on loopback TCP, each with the log store tokencache ships (raft-boltdb/v2
// behind raft.NewLogCache, fsync on every append batch) in a directory of
// its own, BatchApplyCh on, and a state machine that only counts. Applying
// commands to it measures the ceiling of the Raft library and the disk:
// no cache, no SQL, no HTTP, no forwarding.
//
// A RaftCluster is safe for concurrent use; Close stops it.
type RaftCluster struct {
	nodes  []*raftNode
	dir    string
	rmDir  bool
	leader atomic.Pointer[raft.Raft]
}

type raftNode struct {
	id    raft.ServerID
	dir   string
	r     *raft.Raft
	fsm   *countingFSM
	trans *raft.NetworkTransport
	store *raftboltdb.BoltStore
}

// raftLogCacheSize is the number of recent entries raft.NewLogCache keeps.
const raftLogCacheSize = 512

// StartRaftCluster starts an n-node cluster with its data under dir (a
// temp dir, removed by Close, when dir is empty) and waits until it has a
// leader that every node knows, or ctx is done.
func StartRaftCluster(ctx context.Context, n int, dir string) (*RaftCluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("cannot start a raft cluster of %d nodes", n)
	}
	c := &RaftCluster{dir: dir}
	if dir == "" {
		d, err := os.MkdirTemp("", "tokencache-raft-bare-")
		if err != nil {
			return nil, fmt.Errorf("cannot create the raft data dir: %w", err)
		}
		c.dir, c.rmDir = d, true
	}
	var servers []raft.Server
	for i := range n {
		node, err := newRaftNode(filepath.Join(c.dir, "node"+strconv.Itoa(i)), raft.ServerID("node"+strconv.Itoa(i)))
		if err != nil {
			return nil, errors.Join(err, c.Close())
		}
		c.nodes = append(c.nodes, node)
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: node.id, Address: node.trans.LocalAddr()})
	}
	for _, node := range c.nodes {
		if err := node.start(); err != nil {
			return nil, errors.Join(err, c.Close())
		}
	}
	if err := c.nodes[0].r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		return nil, errors.Join(fmt.Errorf("cannot bootstrap the raft cluster: %w", err), c.Close())
	}
	if err := c.waitLeader(ctx); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

func newRaftNode(dir string, id raft.ServerID) (*raftNode, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create %s: %w", dir, err)
	}
	store, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	if err != nil {
		return nil, fmt.Errorf("cannot open the raft log of %s: %w", id, err)
	}
	trans, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 10*time.Second, io.Discard)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("cannot listen for raft: %w", err), store.Close())
	}
	return &raftNode{id: id, dir: dir, fsm: &countingFSM{}, trans: trans, store: store}, nil
}

func (n *raftNode) start() error {
	cfg := raft.DefaultConfig()
	cfg.LocalID = n.id
	cfg.BatchApplyCh = true
	cfg.HeartbeatTimeout = 500 * time.Millisecond
	cfg.ElectionTimeout = 500 * time.Millisecond
	cfg.LeaderLeaseTimeout = 250 * time.Millisecond
	cfg.Logger = hclog.NewNullLogger()
	logs, err := raft.NewLogCache(raftLogCacheSize, n.store)
	if err != nil {
		return fmt.Errorf("cannot create the raft log cache: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(n.dir, 2, hclog.NewNullLogger())
	if err != nil {
		return fmt.Errorf("cannot create the raft snapshot store: %w", err)
	}
	n.r, err = raft.NewRaft(cfg, n.fsm, logs, n.store, snaps, n.trans)
	if err != nil {
		return fmt.Errorf("cannot start raft node %s: %w", n.id, err)
	}
	return nil
}

// waitLeader polls until one node is leader and every node knows it.
func (c *RaftCluster) waitLeader(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if r := c.findLeader(); r != nil {
			_, id := r.LeaderWithID()
			agreed := true
			for _, n := range c.nodes {
				if _, lid := n.r.LeaderWithID(); lid != id {
					agreed = false
				}
			}
			if agreed {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("raft cluster elected no leader: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// findLeader returns the node that is leader now, or nil, and remembers it.
func (c *RaftCluster) findLeader() *raft.Raft {
	for _, n := range c.nodes {
		if n.r != nil && n.r.State() == raft.Leader {
			c.leader.Store(n.r)
			return n.r
		}
	}
	return nil
}

// Apply replicates cmd through the leader and waits until it is committed
// and applied there (as tokencache's sync policy does).
func (c *RaftCluster) Apply(cmd []byte, timeout time.Duration) error {
	r := c.leader.Load()
	if r == nil || r.State() != raft.Leader {
		if r = c.findLeader(); r == nil {
			return raft.ErrNotLeader
		}
	}
	return r.Apply(cmd, timeout).Error()
}

// Applied returns the number of commands each node's state machine has
// applied, in node order.
func (c *RaftCluster) Applied() []uint64 {
	out := make([]uint64, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.fsm.n.Load()
	}
	return out
}

// Dir is where the nodes keep their logs.
func (c *RaftCluster) Dir() string { return c.dir }

// Close shuts every node down and removes a temp data dir.
func (c *RaftCluster) Close() error {
	var errs []error
	for _, n := range c.nodes {
		if n.r != nil {
			errs = append(errs, n.r.Shutdown().Error())
			n.r = nil
		}
		if n.trans != nil {
			errs = append(errs, n.trans.Close())
			n.trans = nil
		}
		if n.store != nil {
			errs = append(errs, n.store.Close())
			n.store = nil
		}
	}
	c.nodes = nil
	if c.rmDir && c.dir != "" {
		errs = append(errs, os.RemoveAll(c.dir))
		c.dir = ""
	}
	return errors.Join(errs...)
}

// countingFSM applies no-op commands by counting them.
type countingFSM struct{ n atomic.Uint64 }

func (f *countingFSM) Apply(*raft.Log) any { f.n.Add(1); return nil }

func (f *countingFSM) Snapshot() (raft.FSMSnapshot, error) {
	return countSnapshot(f.n.Load()), nil
}

func (f *countingFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	v, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("cannot restore the counting state machine: %w", err)
	}
	f.n.Store(v)
	return nil
}

type countSnapshot uint64

func (s countSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(strconv.AppendUint(nil, uint64(s), 10)); err != nil {
		return errors.Join(err, sink.Cancel())
	}
	return sink.Close()
}

func (countSnapshot) Release() {}

// raftTarget drives a RaftCluster: issue applies a no-op command of
// Config.ValueSize bytes through the leader.
type raftTarget struct {
	info    bench.TargetInfo
	c       *RaftCluster
	cmd     []byte
	timeout time.Duration
	once    sync.Once
	err     error
}

var _ bench.Target = (*raftTarget)(nil)

// raftBareNodes is the size of the bare cluster.
const raftBareNodes = 3

func newRaftTarget(ctx context.Context, c *bench.Config) (*raftTarget, error) {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rc, err := StartRaftCluster(wctx, raftBareNodes, "")
	if err != nil {
		return nil, err
	}
	return &raftTarget{
		info: bench.TargetInfo{
			Kind: kindRaftBare, Nodes: raftBareNodes, Spawned: true, Version: "hashicorp/raft v1.8.0",
			Notes: fmt.Sprintf("issue: raft.Apply of a %d-byte no-op command on the leader, 3 voters on loopback TCP, "+
				"raft-boltdb/v2 behind NewLogCache(%d), BatchApplyCh", c.ValueSize, raftLogCacheSize),
		},
		c:       rc,
		cmd:     make([]byte, c.ValueSize),
		timeout: c.Timeout,
	}, nil
}

func (t *raftTarget) Info() bench.TargetInfo         { return t.info }
func (t *raftTarget) Supports(w bench.Workload) bool { return w == bench.Issue }
func (t *raftTarget) Cluster() *RaftCluster          { return t.c }
func (t *raftTarget) NewClient(int, *bench.Population) bench.Client {
	return raftClient{t}
}

func (t *raftTarget) Seed(_ context.Context, n, _ int, _ func()) ([]bench.Seeded, error) {
	if n > 0 {
		return nil, errors.New("raft-bare has nothing to seed: its only workload is issue")
	}
	return nil, nil
}

func (t *raftTarget) Close() error {
	t.once.Do(func() { t.err = t.c.Close() })
	return t.err
}

type raftClient struct{ t *raftTarget }

func (c raftClient) Do(_ context.Context, w bench.Workload, _ *rand.Rand) error {
	if w != bench.Issue {
		return bench.ErrUnsupported
	}
	return c.t.c.Apply(c.t.cmd, c.t.timeout)
}
