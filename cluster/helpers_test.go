package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tokencache/tokencache/cache"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// chaos reports whether the long fault loops run (make chaos).
func chaos() bool { return os.Getenv("TOKENCACHE_CHAOS") == "1" }

// waitFor polls cond every 10ms until it holds or timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testLogger sends logs to t.Log (quiet unless the test fails or -v).
func testLogger(tb testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(&tbWriter{tb: tb}, &slog.HandlerOptions{Level: level}))
}

type tbWriter struct {
	mu   sync.Mutex
	tb   testing.TB
	done bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tbWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// freePort returns a port free for both TCP and UDP on 127.0.0.1.
func freePort(tb testing.TB) int {
	tb.Helper()
	// Below Linux's ephemeral range (32768–60999): a port the kernel picked
	// for :0 may be handed out again as the source port of an outgoing
	// connection before the node binds it ("address already in use").
	for range 200 {
		port := int(nextPort.Add(1))%12000 + 20000
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port
	}
	tb.Fatal("cannot find a free port")
	return 0
}

// nextPort walks the ports freePort tries, from a random start, so that two
// test processes at once rarely try the same ones.
var nextPort = func() *atomic.Int64 {
	var p atomic.Int64
	p.Store(rand.Int64N(12000))
	return &p
}()

// testNet is the partition hook: it cuts links between nodes (Raft, RPC and
// gossip, in both directions) and records every byte sent.
type testNet struct {
	mu    sync.Mutex
	cut   map[[2]string]bool
	addrs map[string]string // host:port -> node id
	tap   func(from, to string, p []byte)
}

func newTestNet() *testNet {
	return &testNet{cut: make(map[[2]string]bool), addrs: make(map[string]string)}
}

func (tn *testNet) register(addr, node string) {
	tn.mu.Lock()
	tn.addrs[addr] = node
	tn.mu.Unlock()
}

func (tn *testNet) resolve(s string) string {
	if id, ok := tn.addrs[s]; ok {
		return id
	}
	return s
}

func (tn *testNet) Blocked(from, to string) bool {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return tn.cut[[2]string{tn.resolve(from), tn.resolve(to)}]
}

func (tn *testNet) Sent(from, to string, p []byte) {
	tn.mu.Lock()
	tap := tn.tap
	tn.mu.Unlock()
	if tap != nil {
		tap(from, tn.resolve(to), p)
	}
}

func (tn *testNet) setTap(f func(from, to string, p []byte)) {
	tn.mu.Lock()
	tn.tap = f
	tn.mu.Unlock()
}

// cutLink cuts a-b in both directions.
func (tn *testNet) cutLink(a, b string) {
	tn.mu.Lock()
	tn.cut[[2]string{a, b}] = true
	tn.cut[[2]string{b, a}] = true
	tn.mu.Unlock()
}

// partition cuts every link between the groups.
func (tn *testNet) partition(groups ...[]string) {
	for i, g := range groups {
		for _, h := range groups[i+1:] {
			for _, a := range g {
				for _, b := range h {
					tn.cutLink(a, b)
				}
			}
		}
	}
}

func (tn *testNet) heal() {
	tn.mu.Lock()
	tn.cut = make(map[[2]string]bool)
	tn.mu.Unlock()
}

// clusterOpts shapes a test cluster. Zero values take the defaults noted.
type clusterOpts struct {
	r            *int   // replication count (default 1)
	expect       int    // bootstrap_expect (default: n)
	policy       string // default sync
	raftStore    string // default memory
	persist      string // default memory
	snapThresh   uint64
	trailingLogs uint64
	staleness    time.Duration // default 1s
	name         string        // cluster name (default "test")
	fingerprint  func(i int) string
	logLevel     slog.Level
	// commitTimeout overrides CommitTimeout (default 10ms).
	commitTimeout time.Duration
	// deadCleanup overrides DeadServerCleanup (default 2s).
	deadCleanup time.Duration
	idPrefix    string // node ids are <idPrefix>1…; default "n"
	encryptKey  func(i int) string
	// tls, when set, gives node i (id) its TLS files (security_test.go).
	tls func(i int, id string) TLSConfig
	// beforeStart, when set, sees each node between New and Start.
	beforeStart func(n *Node)
	// prodTiming uses the production raft timing (benchmarks: a saturated
	// 2-core machine must not lose its leader for nothing).
	prodTiming bool
	// store, when set, gives each node its token store instead of
	// persist.Open(persist) in its data dir (a shared store for all nodes).
	store func(tn *testNode) (persist.Store, error)
	// formats, when set, gives each node its token formats (nil: opaque
	// alone).
	formats func(tn *testNode) *token.Formats
}

func intp(v int) *int { return &v }

type testNode struct {
	id    string
	cfg   Config
	node  *Node
	svc   *tokens.Service
	state *tokens.State
	cache *cache.Cache
	store persist.Store
	dir   string
	down  bool
	logw  *tbWriter
}

type testCluster struct {
	// mu guards the fields of testNode that restarts replace (node, svc,
	// state, cache, store, down) against tests that read them concurrently.
	mu    sync.RWMutex
	t     testing.TB
	net   *testNet
	opts  clusterOpts
	nodes []*testNode
	ports map[string][2]int // node id -> gossip, raft port
}

func testConfig(tc *testCluster, i int, id string) Config {
	o := tc.opts
	cfg := DefaultConfig()
	cfg.NodeID = id
	cfg.Name = o.name
	ports := tc.ports[id]
	cfg.GossipAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	cfg.RaftAddr = fmt.Sprintf("127.0.0.1:%d", ports[1])
	cfg.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", 18000+i)
	for _, other := range tc.nodeIDs() {
		if other != id {
			cfg.Join = append(cfg.Join, fmt.Sprintf("127.0.0.1:%d", tc.ports[other][0]))
		}
	}
	cfg.BootstrapExpect = o.expect
	cfg.ReplicationCount = *o.r
	cfg.Policy = o.policy
	cfg.RaftStore = o.raftStore
	cfg.MaxStaleness = o.staleness
	// Short, but not so short that a loaded 2-core machine running -race
	// with five nodes in one process loses leaders for nothing.
	cfg.HeartbeatTimeout = 250 * time.Millisecond
	cfg.ElectionTimeout = 250 * time.Millisecond
	cfg.LeaderLease = 150 * time.Millisecond
	cfg.CommitTimeout = 10 * time.Millisecond
	cfg.ReconcileInterval = 200 * time.Millisecond
	cfg.ServerStabilization = 300 * time.Millisecond
	cfg.DeadServerCleanup = o.deadCleanup
	cfg.JoinRetryMax = 300 * time.Millisecond
	cfg.SnapshotInterval = 100 * time.Millisecond
	if o.prodTiming {
		d := DefaultConfig()
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLease = d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLease
		cfg.CommitTimeout, cfg.MaxStaleness, cfg.SnapshotInterval = d.CommitTimeout, d.MaxStaleness, d.SnapshotInterval
	}
	if o.commitTimeout > 0 {
		cfg.CommitTimeout = o.commitTimeout
	}
	if o.snapThresh > 0 {
		cfg.SnapshotThreshold = o.snapThresh
	}
	if o.trailingLogs > 0 {
		cfg.TrailingLogs = o.trailingLogs
	}
	cfg.Gossip = GossipConfig{
		ProbeInterval: 200 * time.Millisecond, ProbeTimeout: 150 * time.Millisecond,
		GossipInterval: 20 * time.Millisecond, PushPullInterval: time.Second,
		TCPTimeout: 500 * time.Millisecond, SuspicionMult: 2, DeadNodeReclaimTime: time.Second,
	}
	if o.encryptKey != nil {
		cfg.EncryptKey = o.encryptKey(i)
	}
	if o.tls != nil {
		cfg.TLS = o.tls(i, id)
	}
	cfg.Fingerprint = "fp-1"
	if o.fingerprint != nil {
		cfg.Fingerprint = o.fingerprint(i)
	}
	return cfg
}

func (tc *testCluster) nodeIDs() []string {
	ids := make([]string, 0, len(tc.ports))
	for i := 0; i < len(tc.ports); i++ {
		ids = append(ids, fmt.Sprintf("%s%d", tc.opts.idPrefix, i+1))
	}
	return ids
}

// newTestCluster starts n full nodes (cache, store, tokens.State,
// tokens.Service, cluster.Node, wired like production), all at once, and
// waits until one leader leads them all and every node is ready.
func newTestCluster(t testing.TB, n int, o clusterOpts) *testCluster {
	t.Helper()
	tc := startTestCluster(t, n, o)
	tc.waitFormed(n)
	return tc
}

// startTestCluster starts the nodes without waiting for anything.
func startTestCluster(t testing.TB, n int, o clusterOpts) *testCluster {
	t.Helper()
	tc := buildTestCluster(t, n, o)
	tc.startNodes(tc.nodes...)
	return tc
}

// buildTestCluster prepares n nodes (ports, configurations, data dirs)
// without starting any: tests may change a node's cfg or dir, then start
// them with startNodes. Nodes not started yet count as down.
func buildTestCluster(t testing.TB, n int, o clusterOpts) *testCluster {
	t.Helper()
	if o.r == nil {
		o.r = intp(1)
	}
	if o.expect == 0 {
		o.expect = n
	}
	if o.policy == "" {
		o.policy = PolicySync
	}
	if o.raftStore == "" {
		o.raftStore = StoreMemory
	}
	if o.persist == "" {
		o.persist = "memory"
	}
	if o.staleness == 0 {
		o.staleness = time.Second
	}
	if o.name == "" {
		o.name = "test"
	}
	if o.idPrefix == "" {
		o.idPrefix = "n"
	}
	if o.deadCleanup == 0 {
		o.deadCleanup = 2 * time.Second
	}
	if o.logLevel == 0 {
		o.logLevel = slog.LevelInfo
	}
	tc := &testCluster{t: t, net: newTestNet(), opts: o, ports: make(map[string][2]int)}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%s%d", o.idPrefix, i+1)
		gp, rp := freePort(t), freePort(t)
		tc.ports[id] = [2]int{gp, rp}
		tc.net.register(fmt.Sprintf("127.0.0.1:%d", gp), id)
		tc.net.register(fmt.Sprintf("127.0.0.1:%d", rp), id)
	}
	for i, id := range tc.nodeIDs() {
		tc.nodes = append(tc.nodes, &testNode{id: id, cfg: testConfig(tc, i, id), dir: t.TempDir(), down: true})
	}
	t.Cleanup(tc.closeAll)
	return tc
}

// startNodes starts the given (stopped or never started) nodes all at once,
// on their addresses and data dirs.
func (tc *testCluster) startNodes(nodes ...*testNode) {
	tc.t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, tn := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = tc.startNode(tn)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			tc.t.Fatal(err)
		}
	}
}

// restartAll stops every node gracefully, then starts them all again at
// once on the same addresses and data dirs (a whole-cluster restart; with
// raft_store memory every node starts a new Raft log), and waits until the
// cluster is formed again.
func (tc *testCluster) restartAll() *testNode {
	tc.t.Helper()
	tc.closeAll()
	tc.net.heal()
	tc.startNodes(tc.nodes...)
	return tc.waitFormed(len(tc.nodes))
}

// startNode builds and starts one node (also used for restarts).
func (tc *testCluster) startNode(tn *testNode) error {
	tn.logw = &tbWriter{tb: tc.t}
	log := slog.New(slog.NewTextHandler(tn.logw, &slog.HandlerOptions{Level: tc.opts.logLevel})).With("n", tn.id)
	ccfg := cache.DefaultConfig()
	ccfg.Capacity = 100_000
	ccfg.KeyFilter = false
	c, err := cache.New(ccfg)
	if err != nil {
		return err
	}
	var store persist.Store
	if tc.opts.store != nil {
		store, err = tc.opts.store(tn)
	} else {
		pcfg := persist.DefaultConfig()
		pcfg.Store = tc.opts.persist
		store, err = persist.Open(context.Background(), pcfg, tn.dir, log)
	}
	if err != nil {
		return err
	}
	wcfg := tokens.DefaultWriterConfig()
	wcfg.FlushInterval = 5 * time.Millisecond
	state, err := tokens.NewState(wcfg, c, store, log)
	if err != nil {
		return err
	}
	cfg := tn.cfg
	cfg.DataDir = tn.dir
	node, err := New(cfg, state, log)
	if err != nil {
		return err
	}
	node.hooks = tc.net
	if tc.opts.beforeStart != nil {
		tc.opts.beforeStart(node)
	}
	scfg := tokens.DefaultConfig()
	scfg.WriteTimeout = 5 * time.Second
	scfg.ReapInterval = time.Hour
	if tc.opts.formats != nil {
		scfg.Formats = tc.opts.formats(tn)
	}
	svc, err := tokens.New(scfg, state, node, node, log)
	if err != nil {
		return err
	}
	node.SetService(svc)
	if err := node.Start(context.Background()); err != nil {
		return err
	}
	if err := svc.Start(context.Background()); err != nil {
		return err
	}
	tc.mu.Lock()
	tn.node, tn.svc, tn.state, tn.cache, tn.store, tn.down = node, svc, state, c, store, false
	tc.mu.Unlock()
	return nil
}

func (tc *testCluster) closeAll() {
	var wg sync.WaitGroup
	for _, tn := range tc.up() {
		if tn.node == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tc.stopNode(tn, true)
		}()
	}
	wg.Wait()
}

// stopNode stops a node: gracefully (transfer, leave, shutdown), or as a
// crash (its links cut first, no goodbye).
func (tc *testCluster) stopNode(tn *testNode, graceful bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tn.svc.Drain()
	if graceful {
		if err := tn.node.Close(ctx); err != nil {
			tc.t.Logf("%s: Close: %v", tn.id, err)
		}
	} else {
		for _, other := range tc.nodes {
			if other != tn {
				tc.net.cutLink(tn.id, other.id)
			}
		}
		tn.node.crash()
	}
	if err := tn.svc.Close(ctx); err != nil {
		tc.t.Logf("%s: service Close: %v", tn.id, err)
	}
	tn.store.Close()
	tc.mu.Lock()
	tn.down = true
	tc.mu.Unlock()
	tn.logw.stop()
}

// crash stops the node without any graceful step (no leadership transfer,
// no gossip leave): the closest an in-process test gets to kill -9.
func (n *Node) crash() {
	n.closeOnce.Do(func() {
		n.closing.Store(true)
		_ = n.raft.Shutdown().Error()
		n.cancel()
		n.disc.shutdown()
		_ = n.trans.Close()
		n.mux.close()
		n.rpc.close()
		n.wg.Wait()
		if n.stores.closer != nil {
			_ = n.stores.closer.Close()
		}
	})
}

// kill crashes node i and forgets its links' cuts towards the rest later
// (heal).
func (tc *testCluster) kill(tn *testNode) { tc.stopNode(tn, false) }

// restart starts a stopped node again on the same addresses and data dir.
func (tc *testCluster) restart(tn *testNode) {
	tc.t.Helper()
	for _, other := range tc.nodes {
		tc.net.mu.Lock()
		delete(tc.net.cut, [2]string{tn.id, other.id})
		delete(tc.net.cut, [2]string{other.id, tn.id})
		tc.net.mu.Unlock()
	}
	if err := tc.startNode(tn); err != nil {
		tc.t.Fatalf("restart %s: %v", tn.id, err)
	}
}

func (tc *testCluster) up() []*testNode {
	tc.mu.RLock()
	defer tc.mu.RUnlock()
	var out []*testNode
	for _, tn := range tc.nodes {
		if !tn.down {
			out = append(out, tn)
		}
	}
	return out
}

// leader returns the ready leader among running nodes, or nil.
func (tc *testCluster) leader() *testNode {
	for _, tn := range tc.up() {
		if tn.node.IsLeader() {
			return tn
		}
	}
	return nil
}

func (tc *testCluster) waitLeader() *testNode {
	tc.t.Helper()
	var l *testNode
	waitFor(tc.t, 20*time.Second, "a ready leader", func() bool { l = tc.leader(); return l != nil })
	return l
}

func (tc *testCluster) followers() []*testNode {
	var out []*testNode
	for _, tn := range tc.up() {
		if !tn.node.IsLeader() {
			out = append(out, tn)
		}
	}
	return out
}

// configuration returns the leader's Raft configuration.
func (tc *testCluster) configuration(tn *testNode) raft.Configuration {
	tc.t.Helper()
	f := tn.node.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		tc.t.Fatalf("GetConfiguration: %v", err)
	}
	return f.Configuration()
}

func countSuffrage(c raft.Configuration) (voters, nonvoters int) {
	for _, s := range c.Servers {
		if s.Suffrage == raft.Voter {
			voters++
		} else {
			nonvoters++
		}
	}
	return
}

// waitFormed waits until a leader has all n nodes in its configuration and
// every node is ready.
func (tc *testCluster) waitFormed(n int) *testNode {
	tc.t.Helper()
	var l *testNode
	waitFor(tc.t, 30*time.Second, fmt.Sprintf("%d nodes in the raft configuration", n), func() bool {
		l = tc.leader()
		return l != nil && len(tc.configuration(l).Servers) == n
	})
	for _, tn := range tc.up() {
		waitFor(tc.t, 20*time.Second, tn.id+" ready", func() bool { return tn.node.Ready(context.Background(), true) == nil })
	}
	return l
}

func (tc *testCluster) node(id string) *testNode {
	for _, tn := range tc.nodes {
		if tn.id == id {
			return tn
		}
	}
	tc.t.Fatalf("no node %s", id)
	return nil
}

// issue issues a token through tn.
func issue(tb testing.TB, tn *testNode, user string) tokens.Issued {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iss, err := tn.svc.Issue(ctx, tokens.IssueRequest{Username: user, Type: token.TypeUser, Scopes: "read"})
	if err != nil {
		tb.Fatalf("Issue on %s: %v", tn.id, err)
	}
	return iss
}

// validate returns the state tn answers for text, or the error when it
// cannot decide.
func validate(tn *testNode, text string) (token.State, error) {
	v := tn.svc.Validate(context.Background(), []byte(text))
	return v.State, v.Err
}

// wantValid checks the state tn answers for text. A node whose fence is
// closed for a moment (a new leader, a heal) is given up to 3s to open it;
// any definite answer is checked at once.
func wantValid(tb testing.TB, tn *testNode, text string, want token.State) {
	tb.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		st, err := validate(tn, text)
		if errors.Is(err, tokens.ErrStale) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err != nil || st != want {
			tb.Fatalf("Validate on %s = %v, %v; want %v", tn.id, st, err, want)
		}
		return
	}
}

// containsSecret reports whether p contains the secret of a token text.
func containsSecret(p []byte, text string) bool {
	i := strings.LastIndexByte(text, '.')
	return i >= 0 && bytes.Contains(p, []byte(text[i+1:]))
}

// svcOf returns tn's current service, for goroutines that run while nodes
// restart.
func (tc *testCluster) svcOf(tn *testNode) (*tokens.Service, bool) {
	tc.mu.RLock()
	defer tc.mu.RUnlock()
	return tn.svc, !tn.down
}
