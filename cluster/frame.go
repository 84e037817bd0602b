package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// RPC frames and connection limits. A request frame is small: the largest
// legitimate one is an OpTouch batch of 10,000 keys (about 0.6 MiB of
// JSON) or an issue carrying the largest credentials an HTTP body allows
// (64 KiB by default, sealed and base64-encoded); maxRPCRequest leaves
// room for both (TestMaxRPCRequestFitsLargestWrite measures them). A
// frame that declares more is refused from its 4-byte header, before any
// byte of its body is read or allocated, and the connection is closed.
// Bodies are read incrementally (the buffer grows with the bytes that
// arrived, never to the declared length up front), under a deadline per
// frame. Answers may be larger (a revocation lists every descendant), but
// only a peer the dialer chose and authenticated sends them, and they are
// read the same way.
const (
	maxRPCRequest = 2 << 20   // bytes of one request body
	maxRPCAnswer  = 256 << 20 // bytes of one answer body
	// rpcFrameTimeout bounds reading one request once its first byte
	// arrived (slow senders cannot pin a handler).
	rpcFrameTimeout = 10 * time.Second
	// maxRPCConnsPerPeer caps the RPC connections one peer (its node id
	// under TLS, else its IP address) may hold open to this node; the
	// client side keeps under rpcClientConnsPerPeer, half of it, so that
	// connections a peer just closed and this side has not yet noticed
	// never push it over.
	maxRPCConnsPerPeer    = 256
	rpcClientConnsPerPeer = maxRPCConnsPerPeer / 2
	// maxPendingHandshakes caps connections that have not yet named their
	// protocol (or finished their TLS handshake), in all and per remote IP
	// address (so that one host cannot take every slot); each has
	// muxHeaderTimeout to get there.
	maxPendingHandshakes      = 1024
	maxPendingHandshakesPerIP = 2 * rpcClientConnsPerPeer // above what one legitimate peer opens at once
)

var errFrameTooLarge = errors.New("rpc frame too large")

// readFrame reads a 4-byte big-endian length and a body of at most max
// bytes. A larger declared length fails at once (errFrameTooLarge), with
// nothing read beyond the header.
func readFrame(r io.Reader, max int) ([]byte, error) {
	var lb [4]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(lb[:])
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes declared, at most %d", errFrameTooLarge, n, max)
	}
	var b bytes.Buffer
	b.Grow(int(min(n, 64<<10)))
	if _, err := io.CopyN(&b, r, int64(n)); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// connLimiter counts open connections per key; acquire fails once a key
// holds max. Safe for concurrent use.
type connLimiter struct {
	max  int
	mu   sync.Mutex
	open map[string]int
}

func newConnLimiter(max int) *connLimiter {
	return &connLimiter{max: max, open: make(map[string]int)}
}

func (l *connLimiter) acquire(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] >= l.max {
		return false
	}
	l.open[key]++
	return true
}

func (l *connLimiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] <= 1 {
		delete(l.open, key)
		return
	}
	l.open[key]--
}

// peerSlots is the client side: at most rpcClientConnsPerPeer connections
// to one address, waiting (within ctx) for a free one.
type peerSlots struct {
	mu    sync.Mutex
	slots map[string]chan struct{}
}

func (p *peerSlots) acquire(ctx context.Context, addr string) error {
	p.mu.Lock()
	if p.slots == nil {
		p.slots = make(map[string]chan struct{})
	}
	ch := p.slots[addr]
	if ch == nil {
		ch = make(chan struct{}, rpcClientConnsPerPeer)
		p.slots[addr] = ch
	}
	p.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cannot open an rpc connection to %s: %d already open: %w", addr, rpcClientConnsPerPeer, ctx.Err())
	}
}

func (p *peerSlots) release(addr string) {
	p.mu.Lock()
	ch := p.slots[addr]
	p.mu.Unlock()
	if ch != nil {
		<-ch
	}
}
