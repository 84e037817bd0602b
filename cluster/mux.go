package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tokencache/tokencache/internal/listener"
	"github.com/tokencache/tokencache/internal/lograte"
)

// One TCP port carries Raft and the internal RPC (like rqlite's mux): the
// first byte of every connection selects the protocol. A Raft connection
// then names the Raft server ID it is meant for, and a node drops
// connections meant for another ID: after a restart under a new ID (memory
// mode, wiped data dir) the process at the old address never answers for
// the old ID, so one process can never count as two voters.
const (
	muxRaft byte = 1
	muxRPC  byte = 2

	muxHeaderTimeout = 5 * time.Second
	maxRaftIDLen     = maxIDLen + 1 + 16 // node id, "@", hex suffix; < 128 (one-byte length)
)

var (
	errPartitioned = errors.New("link cut by the partition hook")
	errNoProtocol  = errors.New("connection closed before naming its protocol")
)

// NetworkHooks is the test seam on a node's outgoing traffic (Raft, RPC and
// gossip; Config.Network): Blocked drops traffic to a peer (named by node id
// or by address), Sent sees every byte sent. Both are called from many
// goroutines at once and must not block. Nil in production.
type NetworkHooks interface {
	Blocked(from, to string) bool
	Sent(from, to string, p []byte)
}

// raftAddr is the address of a Raft server as stored in the Raft
// configuration: "host:port/raftID".
func raftAddress(hostport, raftID string) raft.ServerAddress {
	return raft.ServerAddress(hostport + "/" + raftID)
}

// splitRaftAddress undoes raftAddress.
func splitRaftAddress(a raft.ServerAddress) (hostport, raftID string) {
	s := string(a)
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// nodeOfRaftID returns the node id part of a Raft server ID ("node@suffix").
func nodeOfRaftID(id string) string {
	if i := strings.LastIndexByte(id, '@'); i >= 0 {
		return id[:i]
	}
	return id
}

// mux owns the listener and routes accepted connections.
type mux struct {
	ln        net.Listener
	advertise string
	self      string // node id
	raftID    string
	hooks     NetworkHooks
	log       *slog.Logger

	raftCh   chan net.Conn
	rpcServe func(c net.Conn, peer string)
	// onFail is called (once) when the listener fails for good: accept
	// errors that pass are retried by the listener itself (Retrying), so
	// any other is a broken port, not a reason to spin.
	onFail func(error)

	// tls, when set, wraps every connection in mutual TLS (tls.go);
	// authorize then decides whether the authenticated peer node may talk
	// to this node at all (nil until the node can tell: refused).
	tls       *tlsManager
	authorize atomic.Pointer[func(peer string) error]
	// memberIP tells whether a remote IP address is a member's (gossip or
	// Raft configuration). When every handshake slot is taken, a member's
	// connection is still let in (under its per-IP cap): strangers who
	// fill the slots cannot cut the members off. nil: no one is.
	memberIP atomic.Pointer[func(ip string) bool]
	// rpcLimit caps RPC connections per peer; pending caps connections
	// still in their handshake (frame.go).
	rpcLimit   *connLimiter
	pending    chan struct{}
	pendingIPs *connLimiter
	// Refusals anyone who reaches the port can cause are logged at most
	// once a second each, with the count they stand for.
	refusedLog, tooManyLog, unknownLog *lograte.Limiter

	mu    sync.Mutex
	conns map[net.Conn]struct{} // accepted RPC connections, closed with the mux

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup
}

func newMux(ln net.Listener, advertise, self, raftID string, hooks NetworkHooks, log *slog.Logger) *mux {
	return &mux{
		// Accept errors that pass (out of file descriptors) are retried
		// with a backoff and logged at most once a second.
		ln:         listener.NewRetrying(ln, log, nil),
		advertise:  advertise,
		self:       self,
		raftID:     raftID,
		hooks:      hooks,
		log:        log,
		raftCh:     make(chan net.Conn, 16),
		rpcLimit:   newConnLimiter(maxRPCConnsPerPeer),
		pending:    make(chan struct{}, maxPendingHandshakes),
		pendingIPs: newConnLimiter(maxPendingHandshakesPerIP),
		refusedLog: lograte.New(time.Second, nil),
		tooManyLog: lograte.New(time.Second, nil),
		unknownLog: lograte.New(time.Second, nil),
		conns:      make(map[net.Conn]struct{}),
		closed:     make(chan struct{}),
	}
}

// serve accepts connections until close.
func (m *mux) serve() {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			c, err := m.ln.Accept()
			if err != nil {
				select {
				case <-m.closed:
					return
				default:
				}
				m.log.Error("the raft/rpc port stopped accepting connections", "err", err)
				if m.onFail != nil {
					m.onFail(err)
				}
				return
			}
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.route(c)
			}()
		}
	}()
}

func (m *mux) route(c net.Conn) {
	ip, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	if !m.pendingIPs.acquire(ip) {
		c.Close() // too many connections from this host still in their handshake
		return
	}
	slot := true
	select {
	case m.pending <- struct{}{}:
	default:
		// Every slot taken: only a member's address still gets in, bounded
		// by its per-IP cap alone.
		if f := m.memberIP.Load(); f == nil || !(*f)(ip) {
			m.pendingIPs.release(ip)
			c.Close() // too many connections still in their handshake
			return
		}
		slot = false
	}
	c, peer, proto, err := m.accept(c)
	if slot {
		<-m.pending
	}
	m.pendingIPs.release(ip)
	if err != nil {
		if errors.Is(err, errNoProtocol) {
			m.log.Debug("dropping connection", "remote", c.RemoteAddr().String(), "err", err)
		} else {
			if ok, suppressed := m.refusedLog.Allow(); ok {
				m.log.Warn("refusing connection", "remote", c.RemoteAddr().String(), "err", err, "suppressed", suppressed)
			}
		}
		c.Close()
		return
	}
	switch proto {
	case muxRaft:
		id, err := readShortString(c, maxRaftIDLen)
		if err != nil {
			c.Close()
			return
		}
		if id != m.raftID {
			// Meant for an earlier incarnation of this node (or another
			// node that had this address): never answer for it.
			m.log.Debug("dropping raft connection for another server id", "want", id, "self", m.raftID, "remote", c.RemoteAddr().String())
			c.Close()
			return
		}
		_ = c.SetReadDeadline(time.Time{})
		select {
		case m.raftCh <- c:
		case <-m.closed:
			c.Close()
		}
	case muxRPC:
		key := peer
		if key == "" {
			key, _, _ = net.SplitHostPort(c.RemoteAddr().String())
		}
		if !m.rpcLimit.acquire(key) {
			if ok, suppressed := m.tooManyLog.Allow(); ok {
				m.log.Warn("refusing rpc connection: too many open from this peer", "peer", key, "max", maxRPCConnsPerPeer, "suppressed", suppressed)
			}
			c.Close()
			return
		}
		defer m.rpcLimit.release(key)
		_ = c.SetReadDeadline(time.Time{})
		m.mu.Lock()
		select {
		case <-m.closed:
			m.mu.Unlock()
			c.Close()
			return
		default:
		}
		m.conns[c] = struct{}{}
		m.mu.Unlock()
		defer func() {
			m.mu.Lock()
			delete(m.conns, c)
			m.mu.Unlock()
		}()
		if m.rpcServe == nil {
			c.Close()
			return
		}
		m.rpcServe(c, peer)
	default:
		if ok, suppressed := m.unknownLog.Allow(); ok {
			m.log.Warn("dropping connection with unknown protocol byte", "byte", proto, "remote", c.RemoteAddr().String(), "suppressed", suppressed)
		}
		c.Close()
	}
}

// accept runs the TLS handshake (when TLS is on) and authorizes the peer,
// then reads the protocol byte, all within muxHeaderTimeout. Under TLS
// nothing the peer sends is parsed before its certificate was verified.
func (m *mux) accept(c net.Conn) (net.Conn, string, byte, error) {
	_ = c.SetDeadline(time.Now().Add(muxHeaderTimeout))
	peer := ""
	if m.tls != nil {
		tc, id, err := m.tls.server(c)
		if err != nil {
			return c, "", 0, err
		}
		c, peer = tc, id
		auth := m.authorize.Load()
		if auth == nil {
			return c, peer, 0, fmt.Errorf("%w: node %q: this node is still starting", ErrPeerUnknown, peer)
		}
		if err := (*auth)(peer); err != nil {
			return c, peer, 0, err
		}
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return c, peer, 0, fmt.Errorf("%w: %w", errNoProtocol, err)
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, peer, b[0], nil
}

// dial opens a connection to hostport (the node toNode) and writes header.
func (m *mux) dial(hostport, toNode string, header []byte, timeout time.Duration) (net.Conn, error) {
	if m.hooks != nil && m.hooks.Blocked(m.self, toNode) {
		return nil, fmt.Errorf("cannot dial %s: %w", hostport, errPartitioned)
	}
	c, err := net.DialTimeout("tcp", hostport, timeout)
	if err != nil {
		return nil, fmt.Errorf("cannot dial %s: %w", hostport, err)
	}
	if m.hooks != nil {
		c = &hookedConn{Conn: c, hooks: m.hooks, from: m.self, to: toNode}
	}
	if m.tls != nil {
		_ = c.SetDeadline(time.Now().Add(timeout))
		tc, err := m.tls.client(c, toNode)
		if err != nil {
			c.Close()
			return nil, err
		}
		c = tc
		_ = c.SetDeadline(time.Time{})
	}
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(header); err != nil {
		c.Close()
		return nil, fmt.Errorf("cannot write header to %s: %w", hostport, err)
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

func (m *mux) close() {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		close(m.closed)
		for c := range m.conns {
			c.Close()
		}
		m.mu.Unlock()
		m.ln.Close()
	})
	m.wg.Wait()
}

// hookedConn applies NetworkHooks to an outgoing connection: once its link is
// cut, every read and write fails and the connection is closed (so the
// other side sees it end too).
type hookedConn struct {
	net.Conn
	hooks    NetworkHooks
	from, to string
}

func (c *hookedConn) Read(p []byte) (int, error) {
	if c.hooks.Blocked(c.from, c.to) {
		c.Conn.Close()
		return 0, errPartitioned
	}
	return c.Conn.Read(p)
}

func (c *hookedConn) Write(p []byte) (int, error) {
	if c.hooks.Blocked(c.from, c.to) {
		c.Conn.Close()
		return 0, errPartitioned
	}
	c.hooks.Sent(c.from, c.to, p)
	return c.Conn.Write(p)
}

// raftLayer is the raft.StreamLayer over the mux.
type raftLayer struct {
	m    *mux
	addr raftNetAddr
}

var _ raft.StreamLayer = (*raftLayer)(nil)

type raftNetAddr string

func (a raftNetAddr) Network() string { return "tcp" }
func (a raftNetAddr) String() string  { return string(a) }

func (l *raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftCh:
		return c, nil
	case <-l.m.closed:
		return nil, net.ErrClosed
	}
}

// Close is called by raft's transport; the mux closes with the node.
func (l *raftLayer) Close() error { return nil }

func (l *raftLayer) Addr() net.Addr { return l.addr }

func (l *raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	hostport, id := splitRaftAddress(address)
	if id == "" {
		return nil, fmt.Errorf("cannot dial raft address %q: no server id", address)
	}
	header := append([]byte{muxRaft}, appendShortString(nil, id)...)
	return l.m.dial(hostport, nodeOfRaftID(id), header, timeout)
}

func appendShortString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readShortString(r io.Reader, max int) (string, error) {
	var lb [1]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return "", err
	}
	n := int(lb[0])
	if n >= 0x80 || n > max {
		return "", fmt.Errorf("string length %d over %d", n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}
