package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tokencache/tokencache/internal/errcode"
)

// The internal RPC runs over the mux port (first byte muxRPC). A connection
// carries one request at a time: request = type byte, 4-byte big-endian
// length, JSON body; response = 4-byte length, JSON body whose "code" is
// one of the stable codes of errors.go. Connections are pooled per peer.
// Token secrets never travel: a forwarded WriteRequest carries key hashes
// only (the receiving node keeps the secret).
const (
	rpcForward     byte = 1
	rpcReadIndex   byte = 2
	rpcWaitApplied byte = 3
	rpcStats       byte = 4
	rpcLeave       byte = 5

	rpcIdleTimeout  = 2 * time.Minute
	rpcPoolIdle     = rpcClientConnsPerPeer // idle connections kept per peer: a busy peer never re-handshakes below its cap
	rpcPoolMaxAge   = 30 * time.Second
	defaultRPCDelay = 10 * time.Second
)

type rpcHeader struct {
	Code string `json:"code"`
	Msg  string `json:"msg,omitempty"`
}

// forwardRequest carries a write of the token service in its own encoding
// (a JSON object), which the cluster does not read.
type forwardRequest struct {
	Timeout time.Duration   `json:"timeout"`
	Write   json.RawMessage `json:"write"`
}

type forwardResponse struct {
	rpcHeader
	Result json.RawMessage `json:"result,omitempty"`
	// Index is the leader's commit index after the write: the receiving
	// node waits for it before answering (read-your-writes).
	Index uint64 `json:"index"`
}

type readIndexRequest struct{}

type readIndexResponse struct {
	rpcHeader
	Index uint64 `json:"index"`
}

type waitAppliedRequest struct {
	Index   uint64        `json:"index"`
	RaftID  string        `json:"raft_id"`
	Timeout time.Duration `json:"timeout"`
}

type waitAppliedResponse struct {
	rpcHeader
	Applied uint64 `json:"applied"`
}

type statsRequest struct{}

type statsResponse struct {
	rpcHeader
	NodeID      string `json:"node_id"`
	RaftID      string `json:"raft_id"`
	Applied     uint64 `json:"applied"`
	Commit      uint64 `json:"commit"`
	LastIndex   uint64 `json:"last_index"`
	Term        uint64 `json:"term"`
	LastContact int64  `json:"last_contact_ms"` // -1: never
	HasState    bool   `json:"has_state"`
	ClusterID   string `json:"cluster_id,omitempty"`
	Fingerprint string `json:"fingerprint"`
	State       string `json:"state"`
	// BootstrapVoters: the voters (node ids, in order) this node would
	// bootstrap a new cluster with, from its view of the members; empty
	// once it holds Raft state or while it has no plan (bootstrap.go).
	BootstrapVoters []string `json:"bootstrap_voters,omitempty"`
}

type leaveRequest struct {
	RaftID string `json:"raft_id"`
}

type leaveResponse struct{ rpcHeader }

// rpcClient pools connections per peer: per address and node id, because
// a connection is verified (TLS) for the node it was dialled for, and a
// call meant for another node at the same address must dial and verify
// its own.
type rpcClient struct {
	m      *mux
	slots  peerSlots // open connections per address (frame.go)
	mu     sync.Mutex
	idle   map[poolKey][]*rpcConn
	closed bool
}

// poolKey is who a pooled connection was dialled and verified for.
type poolKey struct{ addr, node string }

type rpcConn struct {
	c       net.Conn
	r       *bufio.Reader
	used    time.Time
	addr    string
	node    string // the node the connection was dialled (and, under TLS, verified) for
	release sync.Once
}

// discard closes rc and frees its slot.
func (c *rpcClient) discard(rc *rpcConn) {
	rc.c.Close()
	rc.release.Do(func() { c.slots.release(rc.addr) })
}

func newRPCClient(m *mux) *rpcClient {
	return &rpcClient{m: m, idle: make(map[poolKey][]*rpcConn)}
}

// get returns an idle pooled connection to addr (reused true), or dials one
// within the per-peer connection slots.
func (c *rpcClient) get(ctx context.Context, addr, node string, timeout time.Duration) (rc *rpcConn, reused bool, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, false, ErrClosed
	}
	key := poolKey{addr, node}
	for conns := c.idle[key]; len(conns) > 0; conns = c.idle[key] {
		rc := conns[len(conns)-1]
		c.idle[key] = conns[:len(conns)-1]
		if time.Since(rc.used) < rpcPoolMaxAge {
			c.mu.Unlock()
			return rc, true, nil
		}
		c.discard(rc)
	}
	c.mu.Unlock()
	if err := c.slots.acquire(ctx, addr); err != nil {
		return nil, false, err
	}
	conn, err := c.m.dial(addr, node, []byte{muxRPC}, timeout)
	if err != nil {
		c.slots.release(addr)
		return nil, false, err
	}
	return &rpcConn{c: conn, r: bufio.NewReader(conn), addr: addr, node: node}, false, nil
}

// dropIdle closes every idle connection to addr: one of them turned out
// dead (the peer restarted), so the others, opened to the same process,
// are too. Without this, each of them failed one later call, and a
// restarted server's health polls kept failing once per stale connection
// (each failure restarts its stabilization).
func (c *rpcClient) dropIdle(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, conns := range c.idle {
		if key.addr != addr {
			continue
		}
		for _, rc := range conns {
			c.discard(rc)
		}
		delete(c.idle, key)
	}
}

// idempotentRPC reports whether an rpc of type typ may be sent again after a
// failed attempt: it changes nothing on the peer.
func idempotentRPC(typ byte) bool { return typ == rpcStats || typ == rpcReadIndex }

func (c *rpcClient) put(addr string, rc *rpcConn) {
	rc.used = time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	key := poolKey{addr, rc.node}
	if c.closed || len(c.idle[key]) >= rpcPoolIdle {
		c.discard(rc)
		return
	}
	c.idle[key] = append(c.idle[key], rc)
}

func (c *rpcClient) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, conns := range c.idle {
		for _, rc := range conns {
			c.discard(rc)
		}
	}
	c.idle = nil
}

// call sends one request to the node at addr and decodes its answer into
// resp. sent reports whether any byte of the request may have reached the
// peer: when it is false the request certainly did nothing there. When a
// pooled connection turns out dead, every idle connection to addr is
// dropped, and a request that changes nothing (stats, read index) is sent
// once more on a new connection.
func (c *rpcClient) call(ctx context.Context, addr, node string, typ byte, req, resp any) (sent bool, err error) {
	sent, reused, err := c.callOnce(ctx, addr, node, typ, req, resp)
	if err != nil && reused && ctx.Err() == nil {
		c.dropIdle(addr)
		if idempotentRPC(typ) {
			sent, _, err = c.callOnce(ctx, addr, node, typ, req, resp)
		}
	}
	return sent, err
}

func (c *rpcClient) callOnce(ctx context.Context, addr, node string, typ byte, req, resp any) (sent, reused bool, err error) {
	body, err := json.Marshal(req)
	if err != nil {
		return false, false, fmt.Errorf("cannot encode rpc request: %w", err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(defaultRPCDelay)
	}
	timeout := time.Until(deadline)
	if timeout <= 0 {
		return false, false, fmt.Errorf("cannot call %s: %w", node, context.DeadlineExceeded)
	}
	rc, reused, err := c.get(ctx, addr, node, timeout)
	if err != nil {
		return false, false, err
	}
	// Abort the exchange when ctx is canceled (not only at its deadline).
	stop := context.AfterFunc(ctx, func() { _ = rc.c.SetDeadline(time.Now()) })
	defer stop()
	_ = rc.c.SetDeadline(deadline)
	frame := make([]byte, 5, 5+len(body))
	frame[0] = typ
	binary.BigEndian.PutUint32(frame[1:], uint32(len(body)))
	frame = append(frame, body...)
	if _, err := rc.c.Write(frame); err != nil {
		c.discard(rc)
		return true, reused, fmt.Errorf("cannot send rpc to %s: %w", node, err)
	}
	out, err := readFrame(rc.r, maxRPCAnswer)
	if err != nil {
		c.discard(rc)
		return true, reused, fmt.Errorf("cannot read rpc answer from %s: %w", node, err)
	}
	if !stop() {
		// ctx ended while we read: the deadline was disturbed.
		c.discard(rc)
	} else {
		_ = rc.c.SetDeadline(time.Time{})
		c.put(addr, rc)
	}
	if err := json.Unmarshal(out, resp); err != nil {
		return true, false, fmt.Errorf("cannot decode rpc answer from %s: %w", node, err)
	}
	return true, false, nil
}

// serveRPC answers requests on one connection until it closes. peer is
// the node its TLS certificate names ("" without TLS).
func (n *Node) serveRPC(c net.Conn, peer string) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		_ = c.SetReadDeadline(time.Now().Add(rpcIdleTimeout))
		typ, err := r.ReadByte()
		if err != nil {
			return
		}
		_ = c.SetReadDeadline(time.Now().Add(rpcFrameTimeout))
		body, err := readFrame(r, maxRPCRequest)
		if err != nil {
			if errors.Is(err, errFrameTooLarge) {
				n.log.Warn("closing rpc connection: request frame too large", "remote", c.RemoteAddr().String(), "peer", peer, "err", err)
			}
			return
		}
		_ = c.SetReadDeadline(time.Time{})
		resp := n.handleRPC(typ, body, peer)
		out, err := json.Marshal(resp)
		if err != nil {
			out, _ = json.Marshal(rpcHeader{Code: string(errcode.Internal), Msg: "cannot encode answer: " + err.Error()})
		}
		frame := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(out)), uint32(len(out)))
		frame = append(frame, out...)
		_ = c.SetWriteDeadline(time.Now().Add(defaultRPCDelay))
		if _, err := c.Write(frame); err != nil {
			return
		}
	}
}

// handleRPC answers one request. peer is the node the connection's TLS
// certificate names ("" without TLS).
func (n *Node) handleRPC(typ byte, body []byte, peer string) any {
	bad := func(err error) any {
		return rpcHeader{Code: string(errcode.Invalid), Msg: "bad rpc request: " + err.Error()}
	}
	if n.runCtx.Err() != nil {
		return rpcHeader{Code: string(errcode.ShuttingDown), Msg: "node is shutting down"}
	}
	switch typ {
	case rpcForward:
		var req forwardRequest
		if err := json.Unmarshal(body, &req); err != nil || req.Write == nil {
			return bad(errors.Join(err, errors.New("no write")))
		}
		return n.handleForward(&req)
	case rpcReadIndex:
		return n.handleReadIndex()
	case rpcWaitApplied:
		var req waitAppliedRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return bad(err)
		}
		return n.handleWaitApplied(&req, peer)
	case rpcStats:
		return n.handleStats()
	case rpcLeave:
		var req leaveRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return bad(err)
		}
		return n.handleLeave(&req, peer)
	}
	return rpcHeader{Code: string(errcode.Invalid), Msg: fmt.Sprintf("unknown rpc type %d", typ)}
}

// handlerCtx returns a context for a request that allows timeout, less a
// little so that the answer reaches the caller before its own deadline.
func (n *Node) handlerCtx(timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		timeout = defaultRPCDelay
	}
	timeout -= min(timeout/10, 100*time.Millisecond)
	return context.WithTimeout(n.runCtx, timeout)
}

func (n *Node) handleForward(req *forwardRequest) forwardResponse {
	if !n.IsLeader() {
		return forwardResponse{rpcHeader: rpcHeader{Code: codeNotLeader, Msg: "not the leader"}}
	}
	svc := n.service()
	if svc == nil {
		return forwardResponse{rpcHeader: rpcHeader{Code: codeNotLeader, Msg: "leader has no token service yet"}}
	}
	ctx, cancel := n.handlerCtx(req.Timeout)
	defer cancel()
	res, err := svc.HandleWrite(ctx, req.Write)
	if err != nil {
		return forwardResponse{rpcHeader: rpcHeader{Code: errorCode(err), Msg: err.Error()}}
	}
	// The forwarding node waits until it applied the write: let it learn
	// the commit now rather than with the next append. The index it waits
	// for is read before the nudge (see nudge).
	idx := n.raft.CommitIndex()
	n.proposer.nudge()
	return forwardResponse{rpcHeader: rpcHeader{Code: codeOK}, Result: res, Index: idx}
}

func (n *Node) handleReadIndex() readIndexResponse {
	if !n.IsLeader() {
		return readIndexResponse{rpcHeader: rpcHeader{Code: codeNotLeader, Msg: "not the leader"}}
	}
	ctx, cancel := n.handlerCtx(2 * n.cfg.ElectionTimeout)
	defer cancel()
	idx, err := n.readIndexLocal(ctx)
	if err != nil {
		return readIndexResponse{rpcHeader: rpcHeader{Code: codeNotLeader, Msg: err.Error()}}
	}
	// The follower waits until it applied idx, which it learns is
	// committed only with the next append: nudge one now.
	n.proposer.nudge()
	return readIndexResponse{rpcHeader: rpcHeader{Code: codeOK}, Index: idx}
}

func (n *Node) handleWaitApplied(req *waitAppliedRequest, peer string) waitAppliedResponse {
	if req.RaftID != n.raftID {
		return waitAppliedResponse{rpcHeader: rpcHeader{Code: string(errcode.NotFound), Msg: "no server " + req.RaftID + " here"}}
	}
	// The index is committed: the leader asks only after its commit. Only
	// the leader's word counts (under TLS, where the caller is known): a
	// commit index noted here is one the fence's lag clause holds this node
	// to, and another member's, or an index past any log, would close the
	// fence until a restart. A leader this node does not know as leader yet
	// is still answered; the lag clause just does not hear of its index.
	if _, leader := n.leaderRPCAddr(); peer == "" || peer == leader {
		n.proposer.noteCommit(req.Index)
	}
	ctx, cancel := n.handlerCtx(req.Timeout)
	defer cancel()
	if err := n.proposer.waitApplied(ctx, req.Index); err != nil {
		return waitAppliedResponse{rpcHeader: rpcHeader{Code: errorCode(err), Msg: err.Error()}, Applied: n.state.AppliedIndex()}
	}
	return waitAppliedResponse{rpcHeader: rpcHeader{Code: codeOK}, Applied: n.state.AppliedIndex()}
}

func (n *Node) handleStats() statsResponse {
	st := n.localStats()
	st.BootstrapVoters = n.bootstrapVoters()
	return st
}

func (n *Node) localStats() statsResponse {
	lc := int64(-1)
	if t := n.raft.LastContact(); !t.IsZero() {
		lc = time.Since(t).Milliseconds()
	}
	return statsResponse{
		rpcHeader:   rpcHeader{Code: codeOK},
		NodeID:      n.cfg.NodeID,
		RaftID:      n.raftID,
		Applied:     n.state.AppliedIndex(),
		Commit:      n.raft.CommitIndex(),
		LastIndex:   n.raft.LastIndex(),
		Term:        n.raft.CurrentTerm(),
		LastContact: lc,
		HasState:    n.hasRaftState(),
		ClusterID:   n.ClusterID(),
		Fingerprint: n.cfg.Fingerprint,
		State:       n.raft.State().String(),
	}
}

// handleLeave removes the server that asks to leave. Under TLS a node may
// only ask for itself: another member's certificate cannot remove it.
func (n *Node) handleLeave(req *leaveRequest, peer string) leaveResponse {
	if peer != "" && nodeOfRaftID(req.RaftID) != peer {
		return leaveResponse{rpcHeader{Code: string(errcode.Invalid),
			Msg: fmt.Sprintf("node %s may not ask for %s to leave", peer, req.RaftID)}}
	}
	if !n.IsLeader() {
		return leaveResponse{rpcHeader{Code: codeNotLeader, Msg: "not the leader"}}
	}
	ctx, cancel := n.handlerCtx(4 * n.cfg.ElectionTimeout)
	defer cancel()
	// Gossip may still call the node alive here (its leave reaches the
	// members over the next gossip rounds): reconcile must not add it back.
	n.membership.peers.markLeft(req.RaftID)
	if err := n.removeServer(ctx, req.RaftID, "asked to leave"); err != nil {
		return leaveResponse{rpcHeader{Code: string(errcode.Internal), Msg: err.Error()}}
	}
	return leaveResponse{rpcHeader{Code: codeOK}}
}

// removeServer removes id from the Raft configuration and remembers it for
// WaitApplied.
func (n *Node) removeServer(ctx context.Context, id, reason string) error {
	cf := n.raft.GetConfiguration()
	if err := waitFuture(ctx, cf); err != nil {
		return fmt.Errorf("cannot read the raft configuration: %s", err.Error())
	}
	var addr string
	found := false
	for _, s := range cf.Configuration().Servers {
		if string(s.ID) == id {
			addr, _ = splitRaftAddress(s.Address)
			found = true
		}
	}
	if !found {
		return nil
	}
	n.membership.peers.markRemoved(id, addr)
	if err := waitFuture(ctx, n.raft.RemoveServer(raft.ServerID(id), cf.Index(), 0)); err != nil {
		return fmt.Errorf("cannot remove server %s: %s", id, err.Error())
	}
	n.log.Info("removed raft server", "server", id, "reason", reason)
	return nil
}
