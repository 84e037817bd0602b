package e2e

import (
	bin "encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// sqlProxy is a TCP proxy in front of a MySQL server that counts the
// statements clients send (COM_QUERY and COM_STMT_EXECUTE packets), so that
// a test can tell how many queries an operation cost, and that can hold
// every byte in both directions (a link that went silent) until released.
type sqlProxy struct {
	t       testing.TB
	ln      net.Listener
	target  string
	queries atomic.Int64

	mu    sync.Mutex
	held  bool
	thaw  chan struct{} // closed on release
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// MySQL command bytes (the first byte of a packet with sequence id 0).
const (
	comQuery       = 0x03
	comStmtExecute = 0x17
)

func startSQLProxy(t testing.TB, target string) *sqlProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &sqlProxy{t: t, ln: ln, target: target, thaw: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(p.thaw)
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

// Addr returns the proxy's host:port.
func (p *sqlProxy) Addr() string { return p.ln.Addr().String() }

// Queries returns how many statements went through so far.
func (p *sqlProxy) Queries() int64 { return p.queries.Load() }

// Hold stops forwarding in both directions; connections stay open.
func (p *sqlProxy) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.held {
		p.held, p.thaw = true, make(chan struct{})
	}
}

// Release forwards again what was held and everything after.
func (p *sqlProxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held {
		p.held = false
		close(p.thaw)
	}
}

func (p *sqlProxy) wait() {
	p.mu.Lock()
	ch := p.thaw
	p.mu.Unlock()
	<-ch
}

func (p *sqlProxy) close() {
	p.Release()
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *sqlProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
}

func (p *sqlProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.track(c)
		p.track(s)
		p.wg.Go(func() { p.clientToServer(c, s) })
		p.wg.Go(func() { p.copy(c, s) })
	}
}

// clientToServer forwards packet by packet and counts commands.
func (p *sqlProxy) clientToServer(c, s net.Conn) {
	defer c.Close()
	defer s.Close()
	var hdr [4]byte
	buf := make([]byte, 64<<10)
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := int(bin.LittleEndian.Uint32(append(hdr[:3:3], 0)))
		if n > len(buf) {
			buf = make([]byte, n)
		}
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return
		}
		if hdr[3] == 0 && n > 0 && (buf[0] == comQuery || buf[0] == comStmtExecute) {
			p.queries.Add(1)
		}
		p.wait()
		if _, err := s.Write(hdr[:]); err != nil {
			return
		}
		if _, err := s.Write(buf[:n]); err != nil {
			return
		}
	}
}

func (p *sqlProxy) copy(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.wait()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
