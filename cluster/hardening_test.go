package cluster

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a log sink safe for the mux's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Whoever can reach the Raft port can have a connection refused; a flood of
// refused handshakes must not flood the log: a line at most once a second,
// saying how many it left out.
func TestRefusedConnectionsLoggedAtMostOnceASecond(t *testing.T) {
	p := newTestPKI(t)
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	tm, err := newTLSManager(p.node("b", "b", time.Hour), "b", time.Now, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := newMux(ln, ln.Addr().String(), "b", "b@1", nil, log)
	m.tls = tm
	allow := func(string) error { return nil }
	m.authorize.Store(&allow)
	m.serve()
	defer m.close()
	start := time.Now()
	const attempts = 60
	for range attempts {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		// Not a TLS ClientHello: the handshake fails at once.
		_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		_, _ = io.Copy(io.Discard, c) // until the node closes it
		c.Close()
	}
	took := time.Since(start)
	lines := strings.Count(logs.String(), `msg="refusing connection"`)
	if max := int(took/time.Second) + 1; lines == 0 || lines > max {
		t.Fatalf("%d refused handshakes in %v logged %d lines, want 1 to %d:\n%s", attempts, took, lines, max, logs.String())
	}
}

// Anyone who reaches the Raft port can hold connections in their handshake
// (each for up to muxHeaderTimeout), up to the per-IP cap from each address
// they have: enough addresses fill every slot. A member's connection is
// still let in then (under its own per-IP cap); a stranger's is not.
func TestMembersConnectWhileHandshakeSlotsAreFull(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := newMux(ln, ln.Addr().String(), "b", "b@1", nil, log)
	memberIP := func(ip string) bool { return ip == "127.0.0.9" }
	m.memberIP.Store(&memberIP)
	served := make(chan string, 4)
	m.rpcServe = func(c net.Conn, _ string) {
		ip, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		served <- ip
		c.Close()
	}
	m.serve()
	defer m.close()
	dialFrom := func(ip string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatalf("dial from %s: %v", ip, err)
		}
		return c
	}
	// The attack: every slot taken by connections that never name their
	// protocol, maxPendingHandshakesPerIP from each of four addresses.
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := range maxPendingHandshakes {
		idle = append(idle, dialFrom(fmt.Sprintf("127.0.0.%d", 1+i/maxPendingHandshakesPerIP)))
	}
	waitFor(t, 5*time.Second, "every handshake slot taken", func() bool { return len(m.pending) == cap(m.pending) })
	for _, tc := range []struct {
		ip     string
		member bool
	}{{"127.0.0.9", true}, {"127.0.0.10", false}} {
		c := dialFrom(tc.ip)
		_, _ = c.Write([]byte{muxRPC})
		var got string
		select {
		case got = <-served:
		case <-time.After(2 * time.Second):
		}
		c.Close()
		if tc.member && got != tc.ip {
			t.Errorf("a member's connection (from %s) was not served while the slots were full", tc.ip)
		}
		if !tc.member && got != "" {
			t.Errorf("a stranger's connection (from %s) was served while the slots were full", tc.ip)
		}
	}
}
