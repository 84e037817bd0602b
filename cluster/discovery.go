package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Discovery is memberlist gossip. It tells the leader who exists and how to
// reach them; it never carries token state, and no Raft change is made on
// its word alone (the leader also requires Raft-level silence).
//
// memberlist's Name is the node id, never the hostname; its Label is the
// cluster name, so packets of another cluster are dropped (and, with a key,
// fail authentication). Delegates never block: events go to a buffered
// channel with a non-blocking send, and the periodic reconcile refreshes
// the table from memberlist.Members() to repair dropped events.

type memberStatus int

const (
	statusAlive memberStatus = iota
	statusSuspect
	statusDead
	statusLeft
)

func (s memberStatus) String() string {
	switch s {
	case statusAlive:
		return "alive"
	case statusSuspect:
		return "suspect"
	case statusDead:
		return "dead"
	case statusLeft:
		return "left"
	}
	return "unknown"
}

func statusOf(s memberlist.NodeStateType) memberStatus {
	switch s {
	case memberlist.StateSuspect:
		return statusSuspect
	case memberlist.StateDead:
		return statusDead
	case memberlist.StateLeft:
		return statusLeft
	}
	return statusAlive
}

type member struct {
	id         string
	gossipAddr string
	meta       nodeMeta
	metaErr    error
	status     memberStatus
	since      time.Time // when status last changed
}

type memberEvent struct {
	node memberlist.Node // a copy
}

type discovery struct {
	n         *Node
	ml        *memberlist.Memberlist
	advertise string
	log       *slog.Logger
	events    chan memberEvent
	dropped   atomic.Uint64

	// latest is the last state memberlist reported for each node, copied
	// in its event callbacks (which run under memberlist's node lock).
	// refresh repairs the table from it: the nodes Members() returns are
	// memberlist's live structures, written concurrently by its gossip
	// goroutines, so only their (never changing) names may be read.
	latestMu sync.Mutex
	latest   map[string]memberlist.Node

	meta *metaDelegate
	// announceMu serializes announce: memberlist's UpdateNode is not safe
	// for concurrent calls (data race in aliveNode).
	announceMu sync.Mutex

	mu      sync.Mutex
	members map[string]*member
	warned  map[string]string   // node id -> last problem logged (log once)
	kr      *memberlist.Keyring // gossip keys; nil without encryption (keyring.go)
}

func newDiscovery(n *Node) (*discovery, error) {
	c := n.cfg
	d := &discovery{
		n:       n,
		log:     n.baseLog.With("component", "memberlist"),
		events:  make(chan memberEvent, 256),
		latest:  make(map[string]memberlist.Node),
		members: make(map[string]*member),
		warned:  make(map[string]string),
	}
	meta, err := n.localMeta().encode()
	if err != nil {
		return nil, err
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.NodeID
	mc.Label = c.Name
	mc.ProbeInterval = c.Gossip.ProbeInterval
	mc.ProbeTimeout = c.Gossip.ProbeTimeout
	mc.GossipInterval = c.Gossip.GossipInterval
	mc.PushPullInterval = c.Gossip.PushPullInterval
	mc.TCPTimeout = c.Gossip.TCPTimeout
	mc.SuspicionMult = c.Gossip.SuspicionMult
	mc.DeadNodeReclaimTime = c.Gossip.DeadNodeReclaimTime
	mc.Logger = newStdLogger(d.log)
	d.meta = &metaDelegate{}
	d.meta.meta.Store(&meta)
	mc.Delegate = d.meta
	mc.Events = &eventDelegate{d: d}
	mc.Alive = &aliveDelegate{d: d}
	mc.Merge = &mergeDelegate{d: d}
	mc.Conflict = &conflictDelegate{d: d}
	if c.EncryptKey != "" {
		if mc.Keyring, err = c.gossipKeyring(); err != nil { // keyring.go
			return nil, err
		}
		d.kr = mc.Keyring
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	host, port, err := splitHostPort(c.GossipAddr)
	if err != nil {
		return nil, fmt.Errorf("cannot parse cluster.gossip_addr: %w", err)
	}
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{host}, BindPort: port, Logger: mc.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot listen on gossip address %s: %w", c.GossipAddr, err)
	}
	mc.BindAddr, mc.BindPort = host, nt.GetAutoBindPort()
	advHost, advPort, err := splitHostPort(c.gossipAdvertise())
	if err != nil {
		nt.Shutdown()
		return nil, fmt.Errorf("cannot parse cluster.gossip_advertise: %w", err)
	}
	if advPort == 0 {
		advPort = nt.GetAutoBindPort()
	}
	mc.AdvertiseAddr, mc.AdvertisePort = advHost, advPort
	d.advertise = net.JoinHostPort(advHost, strconv.Itoa(advPort))
	mc.Transport = nt
	if n.cfg.Network != nil {
		mc.Transport = &hookedTransport{Transport: nt, hooks: n.cfg.Network, self: c.NodeID}
	}
	d.ml, err = memberlist.Create(mc)
	if err != nil {
		nt.Shutdown()
		return nil, fmt.Errorf("cannot start gossip: %w", err)
	}
	return d, nil
}

func splitHostPort(hp string) (string, int, error) {
	host, ps, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(ps)
	if err != nil {
		return "", 0, err
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, p, nil
}

// localMeta is what this node announces.
func (n *Node) localMeta() nodeMeta {
	return nodeMeta{
		ID:          n.cfg.NodeID,
		RaftID:      n.raftID,
		RaftAddr:    n.raftAdv,
		HTTPAddr:    n.cfg.HTTPAddr,
		Fingerprint: n.cfg.Fingerprint,
		Cluster:     n.cfg.Name,
		Expect:      n.cfg.BootstrapExpect,
		ClusterID:   n.ClusterID(),
		HasState:    n.hasRaftState(),
		JWTKeys:     n.JWTKeys(),
	}
}

// announce re-encodes this node's metadata and gossips it (a change of
// cluster id, or of holding Raft state).
func (d *discovery) announce() {
	d.announceMu.Lock()
	defer d.announceMu.Unlock()
	b, err := d.n.localMeta().encode()
	if err != nil {
		d.log.Error("cannot announce node metadata", "err", err)
		return
	}
	d.meta.meta.Store(&b)
	if d.ml == nil {
		return
	}
	if err := d.ml.UpdateNode(d.n.cfg.Gossip.TCPTimeout); err != nil {
		d.log.Debug("cannot broadcast node metadata", "err", err)
	}
}

// eventLoop applies gossip events to the member table.
func (d *discovery) eventLoop(ctx context.Context) {
	t := time.NewTicker(d.n.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-d.events:
			d.apply(&ev.node)
			d.n.membership.kick()
		case <-t.C:
			d.refresh()
		}
	}
}

// apply records one node's state.
func (d *discovery) apply(node *memberlist.Node) {
	st := statusOf(node.State)
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.members[node.Name]
	if m == nil {
		m = &member{id: node.Name, status: -1}
		d.members[node.Name] = m
	}
	m.gossipAddr = net.JoinHostPort(node.Addr.String(), strconv.Itoa(int(node.Port)))
	if len(node.Meta) > 0 {
		m.meta, m.metaErr = decodeMeta(node.Meta)
	}
	if m.status != st {
		m.status, m.since = st, time.Now()
		if m.id != d.n.cfg.NodeID {
			d.log.Info("member "+st.String(), "member", m.id, "addr", m.gossipAddr)
		}
	}
	if m.metaErr == nil && m.meta.Fingerprint != d.n.cfg.Fingerprint && st == statusAlive {
		d.warnOnce(m.id, "fingerprint", func() {
			d.log.Error("MEMBER SETTINGS DIFFER: fingerprint mismatch; this node will never vote and gets no entries",
				"member", m.id, "its_fingerprint", m.meta.Fingerprint, "ours", d.n.cfg.Fingerprint)
		})
	}
}

func (d *discovery) warnOnce(id, what string, f func()) {
	if d.warned[id] == what {
		return
	}
	d.warned[id] = what
	f()
}

// refresh repairs the table from memberlist's own view (events may have been
// dropped): members it lists are updated from their latest reported state;
// members it no longer lists that we still think alive are dead.
func (d *discovery) refresh() {
	if d.ml == nil {
		return
	}
	seen := make(map[string]bool)
	for _, node := range d.ml.Members() {
		seen[node.Name] = true
	}
	var nodes []memberlist.Node
	d.latestMu.Lock()
	for name, node := range d.latest {
		if seen[name] {
			nodes = append(nodes, node)
		}
	}
	d.latestMu.Unlock()
	for i := range nodes {
		d.apply(&nodes[i])
	}
	d.mu.Lock()
	for id, m := range d.members {
		switch {
		case !seen[id] && (m.status == statusAlive || m.status == statusSuspect):
			m.status, m.since = statusDead, time.Now()
		case (m.status == statusDead || m.status == statusLeft) && time.Since(m.since) > reconnectTimeout:
			delete(d.members, id) // long gone; a reconcile removed it from Raft
			delete(d.warned, id)
			d.latestMu.Lock()
			delete(d.latest, id)
			d.latestMu.Unlock()
		}
	}
	d.mu.Unlock()
}

// snapshot returns a copy of the member table.
func (d *discovery) snapshot() map[string]member {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]member, len(d.members))
	for id, m := range d.members {
		out[id] = *m
	}
	return out
}

// member returns one member.
func (d *discovery) member(id string) (member, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, ok := d.members[id]
	if !ok {
		return member{}, false
	}
	return *m, true
}

// leaderMismatch returns a reason when the current leader announces another
// fingerprint than ours (this node must not serve), else "".
func (d *discovery) leaderMismatch() string {
	_, leader := d.n.leaderRPCAddr()
	if leader == "" || leader == d.n.cfg.NodeID {
		return ""
	}
	m, ok := d.member(leader)
	if !ok || m.metaErr != nil || m.meta.Fingerprint == d.n.cfg.Fingerprint {
		return ""
	}
	return fmt.Sprintf("this node's settings fingerprint %q differs from the leader's %q", d.n.cfg.Fingerprint, m.meta.Fingerprint)
}

// joinLoop joins the configured addresses, retrying with backoff until one
// answers (the node serves locally meanwhile).
func (d *discovery) joinLoop(ctx context.Context) {
	backoff := min(d.n.cfg.Gossip.ProbeInterval, time.Second)
	for attempt := 1; ; attempt++ {
		addrs := d.resolveJoin(ctx)
		if len(addrs) > 0 {
			n, err := d.ml.Join(addrs)
			if n > 0 {
				d.log.Info("joined the cluster", "contacted", n, "attempt", attempt)
				d.n.membership.joined.Store(true)
				d.refresh()
				d.n.membership.kick()
				return
			}
			if attempt == 1 || attempt%10 == 0 {
				d.log.Warn("cannot join the cluster yet; retrying", "addrs", strings.Join(addrs, ","), "attempt", attempt, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, d.n.cfg.JoinRetryMax)
	}
}

// reconnectTimeout is how long a dead member is tried again (serf's
// reconnect_timeout is 72h; a node gone for a day comes back by joining).
const reconnectTimeout = 24 * time.Hour

// reconnectInterval is how often a dead member is tried again.
func (c Config) reconnectInterval() time.Duration {
	return min(30*time.Second, max(time.Second, 10*c.Gossip.ProbeInterval))
}

// reconnectLoop repairs healed partitions, as serf's reconnect does:
// memberlist never probes or pushes state to nodes it thinks dead, so after
// a partition heals each side may go on thinking the other dead for good.
// Every interval it joins one dead member at random (a push/pull exchange:
// both sides learn the other is alive and refute their death), and the
// configured join list when no other member is alive.
func (d *discovery) reconnectLoop(ctx context.Context) {
	t := time.NewTicker(d.n.cfg.reconnectInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var dead []string
		alive := 0
		for id, m := range d.snapshot() {
			switch {
			case id == d.n.cfg.NodeID:
			case m.status == statusAlive || m.status == statusSuspect:
				alive++
			case m.status == statusDead && time.Since(m.since) < reconnectTimeout && m.gossipAddr != "":
				dead = append(dead, m.gossipAddr)
			}
		}
		var addrs []string
		if len(dead) > 0 {
			addrs = append(addrs, dead[rand.IntN(len(dead))])
		}
		if alive == 0 && d.n.membership.joined.Load() {
			addrs = append(addrs, d.resolveJoin(ctx)...)
		}
		if len(addrs) == 0 {
			continue
		}
		if n, err := d.ml.Join(addrs); n > 0 {
			d.log.Debug("reconnected to gossip members", "contacted", n)
			d.refresh()
		} else {
			d.log.Debug("cannot reconnect to dead gossip members", "addrs", strings.Join(addrs, ","), "err", err)
		}
	}
}

// resolveJoin expands the join list (dns+name:port resolves to every
// address of name) and drops this node's own address.
func (d *discovery) resolveJoin(ctx context.Context) []string {
	var out []string
	for _, j := range d.n.cfg.Join {
		if !strings.HasPrefix(j, dnsJoinPrefix) {
			if j != d.advertise {
				out = append(out, j)
			}
			continue
		}
		host, port, err := net.SplitHostPort(strings.TrimPrefix(j, dnsJoinPrefix))
		if err != nil {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ips, err := net.DefaultResolver.LookupHost(rctx, host)
		cancel()
		if err != nil {
			d.log.Warn("cannot resolve join address", "addr", j, "err", err)
			continue
		}
		for _, ip := range ips {
			if a := net.JoinHostPort(ip, port); a != d.advertise {
				out = append(out, a)
			}
		}
	}
	return out
}

// leave announces a graceful leave to gossip.
func (d *discovery) leave(ctx context.Context) error {
	if d.ml == nil {
		return nil
	}
	timeout := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(min(time.Until(dl), timeout), time.Millisecond)
	}
	if err := d.ml.Leave(timeout); err != nil {
		return fmt.Errorf("cannot leave gossip: %w", err)
	}
	return nil
}

func (d *discovery) shutdown() {
	if d.ml != nil {
		_ = d.ml.Shutdown()
	}
}

// checkPeer decides whether a node announced by gossip may join our view.
func (d *discovery) checkPeer(node *memberlist.Node) error {
	meta, err := decodeMeta(node.Meta)
	if err != nil {
		return fmt.Errorf("node %q: %w", node.Name, err)
	}
	if meta.ID != node.Name {
		return fmt.Errorf("node %q announces node id %q", node.Name, meta.ID)
	}
	if meta.Cluster != d.n.cfg.Name {
		return fmt.Errorf("node %q belongs to cluster %q, not %q", node.Name, meta.Cluster, d.n.cfg.Name)
	}
	if ours := d.n.ClusterID(); ours != "" && meta.ClusterID != "" && meta.ClusterID != ours {
		// Both hold state of a cluster, not the same one: merging would
		// let one cluster's leader replace the other's logs.
		return fmt.Errorf("node %q belongs to cluster id %s, this node to %s (a node that holds state of one cluster never joins another: wipe its data dir to move it)",
			node.Name, meta.ClusterID, ours)
	}
	if node.Name == d.n.cfg.NodeID {
		// News about this node: an earlier incarnation (memberlist refutes
		// it), or another live process with our name (the conflict
		// delegate reports it). Either way not a reason to refuse a merge.
		return nil
	}
	if meta.RaftAddr == d.n.raftAdv {
		return fmt.Errorf("node %q claims this node's raft address %s", node.Name, meta.RaftAddr)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, m := range d.members {
		if id != node.Name && m.metaErr == nil && m.meta.RaftAddr == meta.RaftAddr &&
			(m.status == statusAlive || m.status == statusSuspect) {
			return fmt.Errorf("node %q claims raft address %s of live node %q", node.Name, meta.RaftAddr, id)
		}
	}
	return nil
}

func (d *discovery) reject(node *memberlist.Node, err error) error {
	d.mu.Lock()
	d.warnOnce(node.Name, err.Error(), func() {
		d.log.Error("rejecting gossip member with conflicting identity", "member", node.Name, "err", err)
	})
	d.mu.Unlock()
	return err
}

// metaDelegate serves this node's metadata; it carries no token state.
type metaDelegate struct{ meta atomic.Pointer[[]byte] }

func (m *metaDelegate) NodeMeta(limit int) []byte {
	b := *m.meta.Load()
	if len(b) > limit {
		return nil // never panic memberlist; encode checked the size already
	}
	return b
}
func (m *metaDelegate) NotifyMsg([]byte)                           {}
func (m *metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (m *metaDelegate) LocalState(join bool) []byte                { return nil }
func (m *metaDelegate) MergeRemoteState(buf []byte, join bool)     {}

// eventDelegate queues events without ever blocking memberlist.
type eventDelegate struct{ d *discovery }

func (e *eventDelegate) send(n *memberlist.Node) {
	cp := *n
	cp.Meta = slices.Clone(n.Meta)
	e.d.latestMu.Lock()
	e.d.latest[cp.Name] = cp
	e.d.latestMu.Unlock()
	select {
	case e.d.events <- memberEvent{node: cp}:
	default:
		e.d.dropped.Add(1) // the periodic refresh repairs it
	}
}

func (e *eventDelegate) NotifyJoin(n *memberlist.Node)   { e.send(n) }
func (e *eventDelegate) NotifyLeave(n *memberlist.Node)  { e.send(n) }
func (e *eventDelegate) NotifyUpdate(n *memberlist.Node) { e.send(n) }

type aliveDelegate struct{ d *discovery }

func (a *aliveDelegate) NotifyAlive(peer *memberlist.Node) error {
	if err := a.d.checkPeer(peer); err != nil {
		return a.d.reject(peer, err)
	}
	return nil
}

type mergeDelegate struct{ d *discovery }

func (m *mergeDelegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, p := range peers {
		if err := m.d.checkPeer(p); err != nil {
			return m.d.reject(p, fmt.Errorf("refusing to merge: %w", err))
		}
	}
	return nil
}

type conflictDelegate struct{ d *discovery }

func (c *conflictDelegate) NotifyConflict(existing, other *memberlist.Node) {
	c.d.log.Error("NODE NAME CONFLICT: two nodes use one node id", "node", existing.Name,
		"existing_addr", existing.Address(), "other_addr", other.Address())
}

// hookedTransport applies NetworkHooks to gossip (tests): packets and streams to
// a blocked peer are dropped.
type hookedTransport struct {
	memberlist.Transport
	hooks NetworkHooks
	self  string
}

func (t *hookedTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.hooks.Blocked(t.self, addr) {
		return time.Now(), nil // lost on the wire
	}
	return t.Transport.WriteTo(b, addr)
}

func (t *hookedTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.hooks.Blocked(t.self, addr) {
		return nil, fmt.Errorf("cannot dial %s: %w", addr, errPartitioned)
	}
	return t.Transport.DialTimeout(addr, timeout)
}
