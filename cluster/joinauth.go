package cluster

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Authorised joins. Gossip only proposes members; before the leader adds
// one to the Raft configuration (or moves it to another address), and
// before a node bootstraps with its peers, it calls the member at the Raft
// address its gossip metadata announces and asks for its stats:
//
//   - under TLS the handshake proves the peer holds a certificate of the
//     cluster's CA that names the node id of the metadata (the dialer
//     refuses any other, tls.go), so a member cannot claim another node's
//     id, nor join with a certificate of another CA;
//   - the answer must name the same node and Raft ID as the metadata
//     (without TLS this only catches confusion, not an attacker);
//   - before an add, checkNotForeign (membership.go) refuses a member that
//     holds the Raft state of another cluster (identity.go), from the same
//     answer.
//
// A member that fails is left out of reconcile passes for joinRefusedFor,
// so that it cannot hold up the changes planned after it.

const joinRefusedFor = 5 * time.Second

// joinRefusals remembers members whose check failed recently.
type joinRefusals struct {
	mu    sync.Mutex
	until map[string]time.Time // raft id -> retry after
}

func (j *joinRefusals) refuse(id string, now time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.until == nil {
		j.until = make(map[string]time.Time)
	}
	j.until[id] = now.Add(joinRefusedFor)
}

func (j *joinRefusals) refused(id string, now time.Time) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	t, ok := j.until[id]
	if ok && !now.Before(t) {
		delete(j.until, id)
		return false
	}
	return ok
}

// authorizeServer checks the member raftID at addr before it enters the
// Raft configuration or moves (see above), and returns its stats answer.
func (n *Node) authorizeServer(ctx context.Context, raftID string, addr raft.ServerAddress) (*statsResponse, error) {
	hostport, _ := splitRaftAddress(addr)
	node := nodeOfRaftID(raftID)
	cctx, cancel := context.WithTimeout(ctx, max(n.healthInterval(), time.Second))
	defer cancel()
	var resp statsResponse
	_, err := n.rpc.call(cctx, hostport, node, rpcStats, statsRequest{}, &resp)
	if err == nil {
		err = verifyPeerStats(node, raftID, &resp)
	}
	if err != nil {
		n.membership.refusals.refuse(raftID, time.Now())
		return nil, fmt.Errorf("cannot verify member %s at %s before adding it: %w", raftID, hostport, err)
	}
	return &resp, nil
}

// verifyPeerStats checks that a stats answer from the node the caller
// dialled (node, announcing raftID in gossip) names that node and that
// Raft ID.
func verifyPeerStats(node, raftID string, resp *statsResponse) error {
	if resp.Code != codeOK {
		return errorFromCode(resp.Code, resp.Msg)
	}
	if resp.NodeID != node || resp.RaftID != raftID {
		return fmt.Errorf("%w: gossip announces node %q as %q, but it answers as node %q, %q",
			ErrPeerIdentity, node, raftID, resp.NodeID, resp.RaftID)
	}
	return nil
}

// initSecurity loads the TLS material (New fails on unusable files) and
// warns when cluster.insecure is set.
func (n *Node) initSecurity() error {
	if n.cfg.TLS.Enabled() {
		m, err := newTLSManager(n.cfg.TLS, n.cfg.NodeID, n.cfg.now, n.baseLog.With("component", "tls"))
		if err != nil {
			return fmt.Errorf("cannot set up cluster TLS: %w", err)
		}
		n.tls = m
	}
	if n.cfg.Insecure {
		n.log.Warn("cluster.insecure is set: this node accepts cluster connections without checking who sends them "+
			"unless TLS and the gossip key are configured; anyone who can reach its Raft or gossip port may join the cluster and mint tokens",
			"tls", n.tls != nil, "gossip_encryption", n.cfg.EncryptKey != "", "exposed", n.cfg.exposed())
	}
	return nil
}

// authorizePeers lets the mux accept authenticated peers once this node
// can tell who is a member (under TLS; without it, every peer is let in),
// and tells it the members' addresses, which it still lets in when
// strangers hold every handshake slot.
func (n *Node) authorizePeers() {
	ip := n.isMemberIP
	n.mux.memberIP.Store(&ip)
	if n.tls == nil {
		return
	}
	f := n.knownPeer
	n.mux.authorize.Store(&f)
}

// memberIPs caches the IP addresses of the members: the gossip and Raft
// addresses that alive gossip members announce, and the servers of the Raft
// configuration. It is recomputed at most once every memberIPsFor, by one
// caller while the others read the last set: the mux asks only while every
// handshake slot is taken, and then possibly once per connection of a
// flood, which must not queue behind a Raft configuration read.
type memberIPs struct {
	cur        atomic.Pointer[memberIPSet]
	refreshing atomic.Bool
}

type memberIPSet struct {
	at  time.Time
	ips map[string]bool
}

const memberIPsFor = time.Second

// isMemberIP reports whether ip is a member's address (memberIPs).
func (n *Node) isMemberIP(ip string) bool {
	c := &n.memberIPs
	set := c.cur.Load()
	if (set == nil || time.Since(set.at) >= memberIPsFor) && c.refreshing.CompareAndSwap(false, true) {
		set = &memberIPSet{at: time.Now(), ips: n.collectMemberIPs()}
		c.cur.Store(set)
		c.refreshing.Store(false)
	}
	return set != nil && set.ips[ip]
}

func (n *Node) collectMemberIPs() map[string]bool {
	ips := make(map[string]bool)
	add := func(hostport string) {
		if host, _, err := net.SplitHostPort(hostport); err == nil {
			ips[host] = true
		}
	}
	if n.disc != nil {
		for _, m := range n.disc.snapshot() {
			if m.status == statusAlive || m.status == statusSuspect {
				add(m.gossipAddr)
				add(m.meta.RaftAddr)
			}
		}
	}
	ctx, cancel := context.WithTimeout(n.runCtx, time.Second)
	defer cancel()
	if cf, err := n.RaftConfiguration(ctx); err == nil {
		for _, s := range cf.Servers {
			hostport, _ := splitRaftAddress(s.Address)
			add(hostport)
		}
	}
	return ips
}

// knownPeer accepts a peer whose certificate names a gossip member (alive
// or not: a restarting member is known before gossip confirms it) or a
// server of the Raft configuration.
func (n *Node) knownPeer(peer string) error {
	if peer == n.cfg.NodeID {
		return nil
	}
	if _, ok := n.disc.member(peer); ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(n.runCtx, time.Second)
	defer cancel()
	cf := n.raft.GetConfiguration()
	if err := waitFuture(ctx, cf); err == nil {
		for _, s := range cf.Configuration().Servers {
			if nodeOfRaftID(string(s.ID)) == peer {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: its certificate names node %q, which is neither a gossip member nor a raft server here", ErrPeerUnknown, peer)
}
