package clustertest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tokencache/tokencache/cache"
	"github.com/tokencache/tokencache/cluster"
	"github.com/tokencache/tokencache/internal/testport"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/replica"
	"github.com/tokencache/tokencache/tokens"
)

// The node is the replication the token service consumes, and the service
// the handler of the writes the node receives; neither package imports the
// other, so this package, which links both, checks the fit.
var (
	_ tokens.Replication   = (*cluster.Node)(nil)
	_ cluster.WriteHandler = (*tokens.Service)(nil)
)

// Node is one node of a test cluster and the parts it is built from. A
// restart replaces Node, Svc, State, Cache and Store (read them through
// Cluster.SvcOf from goroutines that run during restarts). Cfg and Dir are
// used at the next start: a test may change them while the node is down.
type Node struct {
	ID    string
	Cfg   cluster.Config
	Node  *cluster.Node
	Svc   *tokens.Service
	State *replica.Machine
	Cache *cache.Cache
	Store persist.Store
	Dir   string
	Down  bool // stopped, or not started yet
	logw  *tbWriter
}

// Cluster is a set of in-process nodes on loopback, joined through one
// partition hook (Net). The methods that fail the test on error
// (StartNodes, RestartAll, Restart, WaitLeader, WaitFormed, Configuration,
// Node) must run on the test's goroutine; StartNode, StopNode, Kill, Up,
// Leader, Followers and SvcOf are safe from others.
type Cluster struct {
	// mu guards the fields of Node that restarts replace (Node, Svc,
	// State, Cache, Store, Down) against tests that read them concurrently.
	mu    sync.RWMutex
	T     testing.TB
	Net   *Net
	Opts  Options // with the defaults filled in
	Nodes []*Node
	ports map[string][2]int // node id -> gossip, raft port
}

// NodeIDs returns the ids of the nodes, in order.
func (tc *Cluster) NodeIDs() []string {
	ids := make([]string, 0, len(tc.ports))
	for i := 0; i < len(tc.ports); i++ {
		ids = append(ids, fmt.Sprintf("%s%d", tc.Opts.IDPrefix, i+1))
	}
	return ids
}

// New starts n full nodes (cache, store, replica.Machine, tokens.Service,
// cluster.Node, wired like production), all at once, and waits until one
// leader leads them all and every node is ready. The nodes stop when the
// test ends.
func New(t testing.TB, n int, o Options) *Cluster {
	t.Helper()
	tc := Start(t, n, o)
	tc.WaitFormed(n)
	return tc
}

// Start starts the nodes without waiting for anything.
func Start(t testing.TB, n int, o Options) *Cluster {
	t.Helper()
	tc := Build(t, n, o)
	tc.StartNodes(tc.Nodes...)
	return tc
}

// Build prepares n nodes (ports, configurations, data dirs) without
// starting any: tests may change a node's Cfg or Dir, then start them with
// StartNodes. Nodes not started yet count as down.
func Build(t testing.TB, n int, o Options) *Cluster {
	t.Helper()
	o = o.withDefaults(n)
	tc := &Cluster{T: t, Net: newNet(), Opts: o, ports: make(map[string][2]int)}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%s%d", o.IDPrefix, i+1)
		gp, rp := testport.Free(t), testport.Free(t)
		tc.ports[id] = [2]int{gp, rp}
		tc.Net.register(fmt.Sprintf("127.0.0.1:%d", gp), id)
		tc.Net.register(fmt.Sprintf("127.0.0.1:%d", rp), id)
	}
	for i, id := range tc.NodeIDs() {
		tc.Nodes = append(tc.Nodes, &Node{ID: id, Cfg: tc.Config(i, id), Dir: t.TempDir(), Down: true})
	}
	t.Cleanup(tc.CloseAll)
	return tc
}

// StartExtra starts one node for cfg outside any test cluster (a rogue, a
// late joiner with its own configuration), with o's defaults; it crashes
// when the test ends.
func StartExtra(t testing.TB, cfg cluster.Config, o Options) *Node {
	t.Helper()
	tn := &Node{ID: cfg.NodeID, Cfg: cfg, Dir: t.TempDir()}
	tc := &Cluster{T: t, Net: newNet(), Opts: o.withDefaults(1), Nodes: []*Node{tn}}
	if err := tc.StartNode(tn); err != nil {
		t.Fatalf("start %s: %v", cfg.NodeID, err)
	}
	t.Cleanup(func() { tc.StopNode(tn, false) })
	return tn
}

// StartNodes starts the given (stopped or never started) nodes all at
// once, on their addresses and data dirs.
func (tc *Cluster) StartNodes(nodes ...*Node) {
	tc.T.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, tn := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = tc.StartNode(tn)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			tc.T.Fatal(err)
		}
	}
}

// RestartAll stops every node gracefully, then starts them all again at
// once on the same addresses and data dirs (a whole-cluster restart; with
// raft_store memory every node starts a new Raft log), and waits until the
// cluster is formed again. It returns the leader.
func (tc *Cluster) RestartAll() *Node {
	tc.T.Helper()
	tc.CloseAll()
	tc.Net.Heal()
	tc.StartNodes(tc.Nodes...)
	return tc.WaitFormed(len(tc.Nodes))
}

// StartNode builds and starts one node (also used for restarts), and
// returns the first error.
func (tc *Cluster) StartNode(tn *Node) error {
	tn.logw = &tbWriter{tb: tc.T}
	log := slog.New(slog.NewTextHandler(tn.logw, &slog.HandlerOptions{Level: tc.Opts.LogLevel})).With("n", tn.ID)
	ccfg := cache.DefaultConfig()
	ccfg.Capacity = 100_000
	ccfg.KeyFilter = false
	c, err := cache.New(ccfg)
	if err != nil {
		return err
	}
	var store persist.Store
	if tc.Opts.Store != nil {
		store, err = tc.Opts.Store(tn)
	} else {
		pcfg := persist.DefaultConfig()
		pcfg.Store = tc.Opts.Persist
		store, err = persist.Open(context.Background(), pcfg, tn.Dir, log)
	}
	if err != nil {
		return err
	}
	wcfg := replica.DefaultWriterConfig()
	wcfg.FlushInterval = 5 * time.Millisecond
	state, err := replica.NewMachine(wcfg, c, store, log)
	if err != nil {
		return err
	}
	cfg := tn.Cfg
	cfg.DataDir = tn.Dir
	cfg.Network = tc.Net
	node, err := cluster.New(cfg, state, log)
	if err != nil {
		return err
	}
	if tc.Opts.BeforeStart != nil {
		tc.Opts.BeforeStart(node)
	}
	scfg := tokens.DefaultConfig()
	scfg.WriteTimeout = 5 * time.Second
	scfg.ReapInterval = time.Hour
	if tc.Opts.Formats != nil {
		scfg.Formats = tc.Opts.Formats(tn)
	}
	svc, err := tokens.New(scfg, state, node, log)
	if err != nil {
		return err
	}
	node.HandleWrites(svc)
	if err := node.Start(context.Background()); err != nil {
		return err
	}
	if err := svc.Start(context.Background()); err != nil {
		return err
	}
	tc.mu.Lock()
	tn.Node, tn.Svc, tn.State, tn.Cache, tn.Store, tn.Down = node, svc, state, c, store, false
	tc.mu.Unlock()
	return nil
}

// CloseAll stops every running node gracefully, all at once.
func (tc *Cluster) CloseAll() {
	var wg sync.WaitGroup
	for _, tn := range tc.Up() {
		if tn.Node == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tc.StopNode(tn, true)
		}()
	}
	wg.Wait()
}

// StopNode stops a node: gracefully (transfer, leave, shutdown), or as a
// crash (its links cut first, no goodbye).
func (tc *Cluster) StopNode(tn *Node, graceful bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tn.Svc.Drain()
	if graceful {
		if err := tn.Node.Close(ctx); err != nil {
			tc.T.Logf("%s: Close: %v", tn.ID, err)
		}
	} else {
		for _, other := range tc.Nodes {
			if other != tn {
				tc.Net.CutLink(tn.ID, other.ID)
			}
		}
		tn.Node.Crash()
	}
	if err := tn.Svc.Close(ctx); err != nil {
		tc.T.Logf("%s: service Close: %v", tn.ID, err)
	}
	tn.Store.Close()
	tc.mu.Lock()
	tn.Down = true
	tc.mu.Unlock()
	tn.logw.stop()
}

// Kill crashes tn: its links to the others are cut, then it stops without
// any graceful step. Restart or Heal restores the links.
func (tc *Cluster) Kill(tn *Node) { tc.StopNode(tn, false) }

// Restart starts a stopped node again on the same addresses and data dir,
// with its links to the others restored.
func (tc *Cluster) Restart(tn *Node) {
	tc.T.Helper()
	tc.Net.healNode(tn.ID, tc.NodeIDs())
	if err := tc.StartNode(tn); err != nil {
		tc.T.Fatalf("restart %s: %v", tn.ID, err)
	}
}

// Up returns the running nodes.
func (tc *Cluster) Up() []*Node {
	tc.mu.RLock()
	defer tc.mu.RUnlock()
	var out []*Node
	for _, tn := range tc.Nodes {
		if !tn.Down {
			out = append(out, tn)
		}
	}
	return out
}

// Leader returns the ready leader among running nodes, or nil.
func (tc *Cluster) Leader() *Node {
	for _, tn := range tc.Up() {
		if tn.Node.IsLeader() {
			return tn
		}
	}
	return nil
}

// WaitLeader waits up to 20s for a ready leader and returns it.
func (tc *Cluster) WaitLeader() *Node {
	tc.T.Helper()
	var l *Node
	WaitFor(tc.T, 20*time.Second, "a ready leader", func() bool { l = tc.Leader(); return l != nil })
	return l
}

// Followers returns the running nodes that do not lead.
func (tc *Cluster) Followers() []*Node {
	var out []*Node
	for _, tn := range tc.Up() {
		if !tn.Node.IsLeader() {
			out = append(out, tn)
		}
	}
	return out
}

// Configuration returns the Raft configuration as tn knows it.
func (tc *Cluster) Configuration(tn *Node) raft.Configuration {
	tc.T.Helper()
	c, err := tn.Node.RaftConfiguration(context.Background())
	if err != nil {
		tc.T.Fatalf("RaftConfiguration: %v", err)
	}
	return c
}

// CountSuffrage counts the voters and non-voters of c.
func CountSuffrage(c raft.Configuration) (voters, nonvoters int) {
	for _, s := range c.Servers {
		if s.Suffrage == raft.Voter {
			voters++
		} else {
			nonvoters++
		}
	}
	return
}

// WaitFormed waits until a leader has all n nodes in its configuration and
// every running node is ready, and returns the leader.
func (tc *Cluster) WaitFormed(n int) *Node {
	tc.T.Helper()
	var l *Node
	WaitFor(tc.T, 30*time.Second, fmt.Sprintf("%d nodes in the raft configuration", n), func() bool {
		l = tc.Leader()
		return l != nil && len(tc.Configuration(l).Servers) == n
	})
	for _, tn := range tc.Up() {
		WaitFor(tc.T, 20*time.Second, tn.ID+" ready", func() bool { return tn.Node.Ready(context.Background(), true) == nil })
	}
	return l
}

// Node returns the node with id, or fails the test.
func (tc *Cluster) Node(id string) *Node {
	for _, tn := range tc.Nodes {
		if tn.ID == id {
			return tn
		}
	}
	tc.T.Fatalf("no node %s", id)
	return nil
}

// SvcOf returns tn's current service and whether tn runs, for goroutines
// that run while nodes restart.
func (tc *Cluster) SvcOf(tn *Node) (*tokens.Service, bool) {
	tc.mu.RLock()
	defer tc.mu.RUnlock()
	return tn.Svc, !tn.Down
}
