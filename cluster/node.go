package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tokencache/tokencache/replica"
)

// WriteHandler runs on the leader a write that another node forwarded (the
// token service implements it). The write and its result are the
// handler's own encoding; the cluster carries them without reading them.
// HandleWrite must be safe for concurrent use.
type WriteHandler interface {
	HandleWrite(ctx context.Context, write []byte) ([]byte, error)
}

// Node is one member of a tokencache cluster: gossip membership, the Raft
// group, the internal RPC and the staleness fence. It implements the
// replication the token service consumes (tokens.Replication: propose,
// forward, fence, read barriers) without importing it. All methods are safe for concurrent use; Propose,
// Forward, Consistent and WaitApplied block (bounded by their ctx).
type Node struct {
	cfg     Config
	state   *replica.Machine
	log     *slog.Logger
	baseLog *slog.Logger // the caller's logger, without this package's component tag
	// bootstrapView, when set (tests), edits the members' table that a
	// bootstrap plan is made from; set before Start.
	bootstrapView func(map[string]member)

	raftID string
	tls    *tlsManager // nil: TLS off

	svc atomic.Pointer[WriteHandler]

	// Set by Start.
	raft     *raft.Raft
	trans    *raft.NetworkTransport
	stores   *raftStores
	fsm      *fsm
	mux      *mux
	rpc      *rpcClient
	disc     *discovery
	notifyCh chan bool
	hadState bool
	raftAdv  string // advertised raft host:port

	// clusterID: identity.go (nil = none known); idMu serializes writes
	// of the data dir's cluster-id file.
	clusterID atomic.Pointer[string]
	idMu      sync.Mutex

	// jwtKeys is the digest of this node's JWT keys, announced in gossip
	// (SetJWTKeys; nil = none).
	jwtKeys atomic.Pointer[string]

	membership *membership // peers, join and reconcile state (membership.go)
	memberIPs  memberIPs   // the members' addresses, for the mux (joinauth.go)
	metrics    *metrics

	// Leadership: the term in which this node's readiness barrier applied
	// (0 = not a ready leader).
	readyTerm atomic.Uint64

	fence *fence // the staleness fence and its clock (fence.go)

	announcer *announcer // OpPersisted of a shared store's writer (announce.go)

	// Fast-forward (fastforward.go): the store's persisted index read at Start
	// (a lower bound of a shared store's), and the index of the last
	// fast-forward this node made as leader (0: none).
	startPersisted uint64
	fastForwarded  atomic.Uint64

	proposer *proposer // Propose and the applied-index waits (propose.go)

	caughtUp   atomic.Bool // Ready: joined and applied ≥ the leader's commit at join
	runCtx     context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	started    atomic.Bool
	discReady  atomic.Bool // n.disc is set (Start), for RPC handlers served before it
	closing    atomic.Bool
	closeOnce  sync.Once
	closeErr   error
	leaderStop func() // stops the running leader session; leadership goroutine only
}

// New returns a node for state. It checks cfg and the data directory's
// identity; nothing listens until Start.
func New(cfg Config, state *replica.Machine, log *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid cluster configuration: %w", err)
	}
	if state == nil {
		return nil, errors.New("cannot create cluster node: nil state")
	}
	if log == nil {
		log = cfg.Logger
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base := log // sub-loggers take their own component tag from here
	log = log.With("component", "cluster")
	n := &Node{
		cfg:      cfg,
		state:    state,
		log:      log,
		baseLog:  base,
		fence:    newFence(),
		notifyCh: make(chan bool, 16),
	}
	if cfg.RaftStore == StoreMemory {
		n.raftID = newRaftID(cfg.NodeID)
	} else {
		id, err := loadIdentity(n.raftDir(), cfg.NodeID)
		if err != nil {
			return nil, err
		}
		n.raftID = id
	}
	if err := n.initSecurity(); err != nil {
		return nil, err
	}
	n.membership = newMembership()
	n.announcer = newAnnouncer(n.closing.Load, n.proposePersisted, log)
	n.metrics = newMetrics(n)
	n.proposer = newProposer(cfg.Policy == PolicyAsync, cfg.MaxAsyncPending, state, n.IsLeader, n.metrics, log)
	return n, nil
}

// HandleWrites sets the handler of the writes that other nodes forward to
// this one while it leads (the token service). Call it before Start; until
// it is called, this node answers forwarded writes as not the leader.
func (n *Node) HandleWrites(h WriteHandler) { n.svc.Store(&h) }

func (n *Node) service() WriteHandler {
	if p := n.svc.Load(); p != nil {
		return *p
	}
	return nil
}

// ID returns the node id.
func (n *Node) ID() string { return n.cfg.NodeID }

// RaftID returns this incarnation's Raft server ID.
func (n *Node) RaftID() string { return n.raftID }

func (n *Node) raftDir() string { return filepath.Join(n.cfg.DataDir, raftDirName) }

// Start opens the Raft/RPC port and the gossip port, starts Raft, joins the
// cluster in the background and returns. The node answers stale until it
// has a leader; Ready reports when it has caught up.
func (n *Node) Start(ctx context.Context) (err error) {
	if !n.started.CompareAndSwap(false, true) {
		return errors.New("cannot start cluster node: already started")
	}
	n.runCtx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.abortStart()
		}
	}()

	ln, err := net.Listen("tcp", n.cfg.RaftAddr)
	if err != nil {
		return fmt.Errorf("cannot listen on raft address %s: %w", n.cfg.RaftAddr, err)
	}
	n.raftAdv = advertiseFor(n.cfg.raftAdvertise(), ln.Addr())
	n.mux = newMux(ln, n.raftAdv, n.cfg.NodeID, n.raftID, n.cfg.Network, n.baseLog.With("component", "mux"))
	n.mux.rpcServe = n.serveRPC
	n.mux.onFail = func(err error) { go n.onHalt(fmt.Errorf("cannot accept on the raft port: %w", err)) }
	n.mux.tls = n.tls
	n.rpc = newRPCClient(n.mux)

	dir := n.raftDir()
	raftLog := n.baseLog.With("component", "raft")
	hcl := newHCLogger(raftLog)
	n.stores, err = openRaftStores(n.cfg, dir, hcl.StandardWriter(&hclogStdOpts))
	if err != nil {
		return err
	}
	n.hadState, err = raft.HasExistingState(n.stores.logs, n.stores.stable, n.stores.snaps)
	if err != nil {
		return fmt.Errorf("cannot inspect raft state: %w", err)
	}
	// The cluster this directory's state belongs to (identity.go), before
	// raft can restore a snapshot that carries one.
	if n.cfg.RaftStore != StoreMemory {
		id, err := loadClusterID(dir)
		if err != nil {
			return err
		}
		if id != "" {
			n.clusterID.Store(&id)
		}
	}
	n.fsm = newFSM(n.runCtx, n.state, n.baseLog.With("component", "fsm"), n.onHalt)
	n.fsm.onClusterID = n.adoptClusterID
	// The store's persisted index, before raft can elect this node: the
	// leader must not accept a write at an index the store is already past
	// (fastforward.go), and the token service, which loads it too,
	// starts after the node.
	if n.startPersisted, err = n.state.LoadPersistedIndex(ctx); err != nil {
		return err
	}
	if !n.hadState && !n.state.SharedStore() && n.startPersisted > 0 {
		n.fsm.foreign.Store(true)
		n.log.Info("new raft log over a local store that already holds data: the store is kept only if this node "+
			"leads the new log before any write; otherwise the leader's state replaces it",
			"persisted_index", n.startPersisted)
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &raftLayer{m: n.mux, addr: raftNetAddr(raftAddress(n.raftAdv, n.raftID))},
		MaxPool: 3,
		Timeout: transportTimeout(n.cfg),
		Logger:  hcl.Named("transport"),
		// No pipelined replication (raft.go, noPipelining).
		MaxRPCsInFlight: noPipelining,
	})
	rc := raftConfig(n.cfg, n.raftID, n.notifyCh, hcl)
	n.raft, err = raft.NewRaft(rc, n.fsm, n.stores.logs, n.stores.stable, n.stores.snaps, n.trans)
	if err != nil {
		return fmt.Errorf("cannot start raft: %w", err)
	}
	n.fsm.raft.Store(n.raft)
	n.proposer.bind(n.raft, n.fsm, n.stores.logs)
	obsCh := make(chan raft.Observation, 64)
	n.raft.RegisterObserver(raft.NewObserver(obsCh, true, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation, raft.LeaderObservation,
			raft.PeerObservation:
			return true
		}
		return false
	}))
	// Only now does the port answer: every handler behind it (Raft's
	// transport, the internal RPC) needs raft. Until here the port is bound
	// (its address is known and advertised) but connections wait in the
	// listen backlog; before, an RPC arriving during a long start (a large
	// log or snapshot to load) met a nil raft and crashed the process.
	n.mux.serve()

	n.disc, err = newDiscovery(n)
	if err != nil {
		return err
	}
	// The port already serves: handlers that run before this point must
	// not read n.disc (discReady orders the write before their read).
	n.discReady.Store(true)
	n.authorizePeers()
	if len(n.cfg.Join) == 0 {
		n.membership.joined.Store(true)
	}

	n.fence.set(fmt.Errorf("%w: not yet in contact with a leader", replica.ErrStale))
	n.goRun(func(ctx context.Context) { n.observe(ctx, obsCh) })
	n.goRun(n.leadershipLoop)
	n.goRun(n.disc.eventLoop)
	n.goRun(n.disc.reconnectLoop)
	n.goRun(n.fenceLoop)
	n.goRun(n.reconcileLoop)
	n.goRun(n.freshnessLoop)
	n.goRun(n.proposer.nudgeLoop)
	if n.tls != nil {
		n.goRun(n.tls.watch)
	}
	n.goRun(n.identityLoop)
	if !n.hadState {
		n.goRun(n.bootstrapLoop)
	}
	if len(n.cfg.Join) > 0 {
		n.goRun(n.disc.joinLoop)
	}
	n.log.Info("cluster node started", "raft_id", n.raftID, "raft_addr", n.raftAdv,
		"gossip_addr", n.disc.advertise, "existing_state", n.hadState, "raft_store", n.cfg.RaftStore, "cluster_id", n.ClusterID())
	return nil
}

// advertiseFor returns adv, with the bound port filled in when adv's port
// is 0 or adv is empty.
func advertiseFor(adv string, bound net.Addr) string {
	ta, _ := bound.(*net.TCPAddr)
	host, port, err := net.SplitHostPort(adv)
	if err != nil || ta == nil {
		return adv
	}
	if port == "0" {
		port = strconv.Itoa(ta.Port)
	}
	return net.JoinHostPort(host, port)
}

// goRun runs f on its own goroutine until the node closes (n.wg waits).
func (n *Node) goRun(f func(ctx context.Context)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f(n.runCtx)
	}()
}

// abortStart releases what a failed Start opened.
func (n *Node) abortStart() {
	n.closeOnce.Do(func() {}) // a later Close has nothing left to do
	n.closing.Store(true)
	_ = n.stop()
}

// onHalt is called (once, on its own goroutine) when the FSM halts or the
// Raft port fails for good: the node stops taking part in Raft, so it
// neither votes nor acknowledges entries, and its fence answers stale.
func (n *Node) onHalt(err error) {
	n.fence.set(fmt.Errorf("%w: %w", replica.ErrStale, err))
	if n.raft != nil {
		_ = n.raft.Shutdown().Error()
	}
}

// Close leaves the cluster gracefully and stops the node: leadership
// transfer when leader (up to 3 tries), memberlist Leave, Raft shutdown,
// then the listeners and the log store. It is idempotent; ctx bounds the
// graceful steps (the rest always runs).
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() {
		if !n.started.Load() {
			n.closing.Store(true)
			return
		}
		n.closing.Store(true)
		n.fence.set(fmt.Errorf("%w: node is shutting down", replica.ErrStale))
		// 1. Hand leadership over, so that writes resume within one
		//    round trip instead of an election timeout.
		if n.raft.State() == raft.Leader {
			n.transferLeadership(ctx)
		}
		// 2. Tell gossip we leave on purpose (the leader removes us from
		//    Raft once we are also silent there).
		if err := n.disc.leave(ctx); err != nil {
			// Nobody left to tell (the whole cluster stops), or the
			// network is down: the others find out by probing.
			n.log.Warn("leaving gossip", "err", err)
		}
		// 3. Stop Raft; then everything else.
		n.closeErr = n.stop()
		n.log.Info("cluster node stopped")
	})
	return n.closeErr
}

// stop shuts Raft down, then stops the goroutines, gossip, the transport,
// the mux, the RPC pool and the log store (Close's last step, all of Crash,
// and what a failed Start opened: each part it did not reach is nil).
func (n *Node) stop() error {
	var errs []error
	if n.raft != nil {
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("cannot shut raft down: %w", err))
		}
	}
	n.cancel()
	if n.disc != nil {
		n.disc.shutdown()
	}
	if n.trans != nil {
		_ = n.trans.Close()
	}
	if n.mux != nil {
		n.mux.close()
	}
	if n.rpc != nil {
		n.rpc.close()
	}
	n.wg.Wait()
	if n.stores != nil && n.stores.closer != nil {
		if err := n.stores.closer.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cannot close raft log store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Crash stops the node without any graceful step: no leadership transfer,
// no gossip leave, no fence set first. It exists for tests (package
// clustertest): the closest an in-process node gets to kill -9. Production
// code calls Close. Crash and Close share one once: whichever runs first
// stops the node, the other does nothing.
func (n *Node) Crash() {
	n.closeOnce.Do(func() {
		n.closing.Store(true)
		if n.started.Load() {
			_ = n.stop()
		}
	})
}

func (n *Node) transferLeadership(ctx context.Context) {
	if !n.hasOtherVoter(ctx) {
		return
	}
	for i := 0; i < 3; i++ {
		if ctx.Err() != nil || n.raft.State() != raft.Leader {
			return
		}
		err := waitFuture(ctx, n.raft.LeadershipTransfer())
		if err == nil {
			n.log.Info("transferred leadership")
			return
		}
		n.log.Warn("cannot transfer leadership", "try", i+1, "err", err)
	}
}

// hasOtherVoter reports whether the configuration has a voter besides this
// node (someone to hand leadership to).
func (n *Node) hasOtherVoter(ctx context.Context) bool {
	cf := n.raft.GetConfiguration()
	if waitFuture(ctx, cf) != nil {
		return false
	}
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != n.raftID {
			return true
		}
	}
	return false
}

// Leave removes this node from the cluster for good (tokencache cluster
// leave): it hands leadership over, asks the leader to remove it from the
// Raft configuration, and leaves gossip. Close it afterwards. It returns
// ErrLastServer if no other server could take the log, or an error wrapping
// ErrLeaveFailed and its reason; the node then keeps running as a member.
func (n *Node) Leave(ctx context.Context) error {
	err := n.leave(ctx)
	if err != nil && !errors.Is(err, ErrLastServer) {
		return fmt.Errorf("%w: %w", ErrLeaveFailed, err)
	}
	return err
}

func (n *Node) leave(ctx context.Context) error {
	if !n.started.Load() || n.closing.Load() {
		return ErrClosed
	}
	cf := n.raft.GetConfiguration()
	if err := waitFuture(ctx, cf); err != nil {
		return fmt.Errorf("cannot read the raft configuration: %s", err.Error())
	}
	others := 0
	for _, s := range cf.Configuration().Servers {
		if string(s.ID) != n.raftID {
			others++
		}
	}
	if others == 0 {
		return ErrLastServer
	}
	if n.raft.State() == raft.Leader {
		n.transferLeadership(ctx)
	}
	// Leave gossip first, then ask the leader to remove this server. The
	// leave reaches the other members over the next gossip rounds; until
	// then the leader may still see this node alive, so it also records
	// the id as left (handleLeave) and its reconcile never adds it back.
	if err := n.disc.leave(ctx); err != nil {
		n.log.Warn("leaving gossip", "err", err)
	}
	backoff := 20 * time.Millisecond
	for {
		addr, leaderNode := n.leaderRPCAddr()
		if addr != "" && leaderNode != n.cfg.NodeID {
			var resp leaveResponse
			_, err := n.rpc.call(ctx, addr, leaderNode, rpcLeave, leaveRequest{RaftID: n.raftID}, &resp)
			if err == nil && resp.Code == codeOK {
				break
			}
			if err == nil && resp.Code != codeNotLeader {
				return fmt.Errorf("leader answered: %w", errorFromCode(resp.Code, resp.Msg))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no leader removed this node: %w", ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
	n.log.Info("left the cluster: out of gossip and removed from the raft configuration")
	return nil
}

// waitFuture waits for f, bounded by ctx.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// running reports whether the node has started and is not closing; the
// methods other packages call check it first.
func (n *Node) running() bool {
	return n.started.Load() && !n.closing.Load() && n.raft != nil
}

// notRunning is the error of a method called before Start or after Close.
func (n *Node) notRunning() error {
	if !n.started.Load() {
		return fmt.Errorf("%w: cluster node not started", replica.ErrNoLeader)
	}
	return fmt.Errorf("%w: cluster node closing", replica.ErrShuttingDown)
}

// leaderRPCAddr returns the host:port and node id of the current leader, or
// "" when none is known.
func (n *Node) leaderRPCAddr() (string, string) {
	if n.raft == nil {
		return "", ""
	}
	addr, id := n.raft.LeaderWithID()
	if addr == "" || id == "" {
		return "", ""
	}
	hostport, rid := splitRaftAddress(addr)
	if rid == "" {
		rid = string(id)
	}
	return hostport, nodeOfRaftID(rid)
}
