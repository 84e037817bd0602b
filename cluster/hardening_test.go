package cluster

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokencache/tokencache/token"
)

// Under TLS only the leader's word moves what a follower knows of the
// commit index: a member that asks a follower to wait for an index far past
// any log must not close that follower's fence (its lag clause closes a
// node that stays behind a commit index it knows of for MaxStaleness).
func TestWaitAppliedCommitOnlyFromTheLeader(t *testing.T) {
	tc := newTestCluster(t, 3, clusterOpts{})
	l := tc.waitFormed(3)
	fs := tc.followers()
	other, victim := fs[0], fs[1]
	iss := issue(t, l, "alice")
	waitFor(t, 5*time.Second, victim.id+" validates the token", func() bool {
		st, err := validate(victim, iss.Token)
		return err == nil && st == token.StateValid
	})
	victim.node.handleWaitApplied(&waitAppliedRequest{Index: 1 << 60, RaftID: victim.node.raftID, Timeout: 100 * time.Millisecond}, other.id)
	time.Sleep(victim.cfg.MaxStaleness + time.Second)
	wantValid(t, victim, iss.Token, token.StateValid)
}

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
