package e2e

import (
	"bufio"
	"crypto/rand"
	enc "encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The cluster's identity (issue 9, scenarios 1, 2, 6 and 7): no node ever
// starts a second cluster next to the real one, a leader never adds a node
// that holds another cluster's state, a starting node never crashes on an
// internal RPC, and a node removed as dead is a voter again soon after it
// comes back.

// clusterEnv returns the environment shared by the nodes of one test
// cluster, and its admin token.
func clusterEnv(extra ...string) ([]string, string) {
	var raw [16]byte
	rand.Read(raw[:])
	admin := "e2e-admin-" + hex.EncodeToString(raw[:])
	return append([]string{
		"TOKENCACHE_ADMIN_TOKEN=" + admin,
		"TOKENCACHE_CLUSTER_NAME=e2e-" + hex.EncodeToString(raw[:4]),
		"TOKENCACHE_CLUSTER_MAX_STALENESS=2s",
	}, extra...), admin
}

func gossipAddr(p ports) string { return fmt.Sprintf("127.0.0.1:%d", p.gossip) }

// readyz returns /readyz's status and body (0 when the node does not answer).
func (n *node) readyz() (int, string) {
	var out json.RawMessage
	code, _ := n.callQuiet("GET", "/readyz", "", &out)
	return code, string(out)
}

// revokeOAuth sends POST /v1/revoke (RFC 7009) for tok and returns the status.
func (n *node) revokeOAuth(tok string) int {
	n.t.Helper()
	resp, err := http.PostForm(n.addr+"/v1/revoke", url.Values{"token": {tok}})
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestFingerprintMismatchJoinerNeverServes is scenario 1: n1 and n2 run with
// the defaults (bootstrap_expect 1), n3 joins n1 with another token expiry.
// n3 must never bootstrap a cluster of its own, never become ready (saying
// why), and never acknowledge a revocation the real cluster does not have.
func TestFingerprintMismatchJoinerNeverServes(t *testing.T) {
	env, admin := clusterEnv()
	p1, p2, p3 := freePorts(t), freePorts(t), freePorts(t)
	n1 := newProcNode(t, "a1", "", p1, env)
	n1.start()
	n2 := newProcNode(t, "a2", "", p2, env, "--join", gossipAddr(p1))
	n2.start()
	x := n1.issue(admin, map[string]any{"username": "alice", "scopes": []string{"read"}})
	waitFor(t, 20*time.Second, "x valid on n2", func() bool { c, _ := n2.validateQuiet(x.Token); return c == 200 })

	n3 := newProcNode(t, "a3", "", p3, append(env, "TOKENCACHE_TOKENS_EXPIRY=30m"), "--join", gossipAddr(p1))
	n3.launch()
	waitFor(t, 30*time.Second, "n3 to notice the fingerprint mismatch", func() bool {
		return strings.Contains(n3.logs.String(), "fingerprint mismatch")
	})
	// Give n3 time to do what it did before: bootstrap alone within ~1s.
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if code, body := n3.readyz(); code == 200 {
			t.Fatalf("n3 (fingerprint differs) /readyz = 200 %s, want 503", body)
		}
		if strings.Contains(n3.logs.String(), "bootstrapped the cluster") {
			t.Fatalf("n3 (fingerprint differs) bootstrapped a cluster of its own")
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, body := n3.readyz()
	if code != 503 || !strings.Contains(body, "fingerprint") {
		t.Errorf("n3 /readyz = %d %s, want 503 naming the fingerprint mismatch", code, body)
	}
	var st struct {
		NodeID              string `json:"node_id"`
		LeaderID            string `json:"leader_id"`
		FingerprintMismatch bool   `json:"fingerprint_mismatch"`
		NotReady            string `json:"not_ready"`
	}
	if c, _ := n3.callQuiet("GET", "/v1/cluster", admin, &st); c != 200 || !st.FingerprintMismatch ||
		!strings.Contains(st.NotReady, "fingerprint") || st.LeaderID == "a3" {
		t.Errorf("n3 GET /v1/cluster = %d %+v, want fingerprint_mismatch and a not_ready reason naming it", c, st)
	}
	// A revocation n3 acknowledges must hold on the cluster.
	if c := n3.revokeOAuth(x.Token); c == 200 {
		if c1, reason := n1.validate(x.Token); c1 == 200 {
			t.Fatalf("POST /v1/revoke on n3 = 200 while x stays valid on n1 (%d %s)", c1, reason)
		}
	}
	for _, nd := range []*node{n1, n2} {
		var s clusterStatus
		nd.callQuiet("GET", "/v1/cluster", admin, &s)
		if s.LeaderID != "a1" && s.LeaderID != "a2" {
			t.Errorf("%s sees leader %q, want a1 or a2", nodeID(nd), s.LeaderID)
		}
		for _, m := range s.Members {
			if m.ID == "a3" && m.Suffrage != "none" {
				t.Errorf("%s: a3 suffrage %q, want none", nodeID(nd), m.Suffrage)
			}
		}
	}
}

// TestJoinerNeverTakesOverLeaderlessCluster is scenario 2: f1 and f2
// bootstrap with expect 2, token X is issued, f2 dies; f3 (default expect 1)
// joins f1. f3 must not bootstrap (f1 holds the cluster's state), and once
// f2 is back the cluster adds f3 and X can be revoked everywhere.
func TestJoinerNeverTakesOverLeaderlessCluster(t *testing.T) {
	env, admin := clusterEnv()
	p1, p2, p3 := freePorts(t), freePorts(t), freePorts(t)
	join := gossipAddr(p1) + "," + gossipAddr(p2)
	f1 := newProcNode(t, "f1", "", p1, env, "--join", join, "--bootstrap-expect", "2")
	f2 := newProcNode(t, "f2", "", p2, env, "--join", join, "--bootstrap-expect", "2")
	f1.launch()
	f2.launch()
	f1.waitReady(60 * time.Second)
	f2.waitReady(60 * time.Second)
	var x issued
	waitFor(t, 20*time.Second, "issue x through f1", func() bool {
		code, _ := f1.callQuiet("POST", "/v1/tokens", admin, &x, map[string]any{"username": "alice"})
		return code == 201
	})
	waitFor(t, 20*time.Second, "x valid on f2", func() bool { c, _ := f2.validateQuiet(x.Token); return c == 200 })
	f2.cmd.Process.Signal(syscall.SIGKILL)
	<-f2.done
	waitFor(t, 30*time.Second, "f1 without a leader", func() bool {
		var s clusterStatus
		code, _ := f1.callQuiet("GET", "/v1/cluster", admin, &s)
		return code == 200 && s.LeaderID == ""
	})

	f3 := newProcNode(t, "f3", "", p3, env, "--join", gossipAddr(p1))
	f3.launch()
	waitFor(t, 30*time.Second, "f3 to see f1", func() bool {
		var s clusterStatus
		f3.callQuiet("GET", "/v1/cluster", admin, &s)
		for _, m := range s.Members {
			if m.ID == "f1" && m.Status == "alive" {
				return true
			}
		}
		return false
	})
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(f3.logs.String(), "bootstrapped the cluster") {
			t.Fatal("f3 bootstrapped a cluster next to f1's, which holds state")
		}
		if code, _ := f3.readyz(); code == 200 {
			t.Fatal("f3 is ready while the only cluster it can reach has no leader")
		}
		time.Sleep(100 * time.Millisecond)
	}

	f2.launch()
	f2.waitReady(60 * time.Second)
	f3.waitReady(60 * time.Second)
	var s clusterStatus
	f1.callQuiet("GET", "/v1/cluster", admin, &s)
	if s.LeaderID != "f1" && s.LeaderID != "f2" {
		t.Fatalf("leader after f2's return = %q, want f1 or f2: %+v", s.LeaderID, s)
	}
	if code, _ := f1.call("DELETE", "/v1/tokens/"+x.Key, admin, nil, nil); code != 200 {
		t.Fatalf("DELETE /v1/tokens/<x> through f1 = %d, want 200", code)
	}
	for _, nd := range []*node{f1, f2, f3} {
		waitFor(t, 20*time.Second, "x revoked on "+nodeID(nd), func() bool {
			c, reason := nd.validateQuiet(x.Token)
			return c == 401 && reason == "revoked"
		})
	}
}

// TestInternalRPCDuringStartup is scenario 6: internal stats RPCs hammer
// the Raft/RPC port while a node starts (fresh, then with a log and a
// snapshot to load). The node must never crash: it answers each request
// either with a well-formed answer or not at all while it starts.
func TestInternalRPCDuringStartup(t *testing.T) {
	env, admin := clusterEnv()
	p := freePorts(t)
	n := newProcNode(t, "s1", "", p, env)
	raftAddr := fmt.Sprintf("127.0.0.1:%d", p.raft)
	var answers, bad atomic.Int64
	hammer := func() (stop func()) {
		done := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-done:
						return
					default:
					}
					ok, err := statsRPC(raftAddr)
					switch {
					case ok:
						answers.Add(1)
					case err != nil:
						bad.Add(1)
						t.Errorf("stats rpc during start-up: %v", err)
					}
				}
			}()
		}
		return func() { close(done); wg.Wait() }
	}
	for i := range 4 {
		stop := hammer()
		n.launch()
		n.waitReady(60 * time.Second)
		stop()
		if strings.Contains(n.logs.String(), "panic") {
			t.Fatalf("start %d: the node panicked:\n%s", i+1, n.logs.String())
		}
		// Grow the log between starts so that start-up has more to load.
		for j := range 300 {
			n.issue(admin, map[string]any{"username": fmt.Sprintf("u%d-%d", i, j)})
		}
		if err := n.stop(syscall.SIGTERM); err != nil {
			t.Fatalf("start %d: exit = %v", i+1, err)
		}
	}
	if answers.Load() == 0 {
		t.Errorf("no stats rpc was answered while the node ran")
	}
	t.Logf("stats rpcs answered: %d", answers.Load())
}

// statsRPC sends one internal stats request (mux byte 2, then type 4 and a
// length-prefixed JSON body) to addr. It reports whether a well-formed
// answer came back; err is set only for an answer that is not one.
func statsRPC(addr string) (bool, error) {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		time.Sleep(time.Millisecond)
		return false, nil
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	frame := []byte{2, 4, 0, 0, 0, 2, '{', '}'}
	if _, err := c.Write(frame); err != nil {
		return false, nil
	}
	r := bufio.NewReader(c)
	var lb [4]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return false, nil // closed while starting or stopping
	}
	body := make([]byte, enc.BigEndian.Uint32(lb[:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return false, nil
	}
	var resp struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || resp.Code == "" {
		return false, fmt.Errorf("malformed answer %q", body)
	}
	return resp.Code == "ok", nil
}

// TestRemovedNodeBecomesVoterAgain is scenario 7: a follower killed and
// removed as dead, then restarted with its data dir, is promoted back to
// voter within the stabilization time (plus slack), not minutes later.
func TestRemovedNodeBecomesVoterAgain(t *testing.T) {
	// The leader polls health every min(reconcile interval, heartbeat
	// timeout) = 2s here, so half the time its last poll is over 1s old and
	// a GET /v1/cluster (this test polls it, as the operator who found the
	// fault did) refreshes the stats itself. That refresh used to count as
	// an unhealthy answer and restart the node's stabilization.
	c := startProcCluster(t, 3,
		"TOKENCACHE_CLUSTER_DEAD_SERVER_CLEANUP=2s",
		"TOKENCACHE_CLUSTER_RECONCILE_INTERVAL=2s",
		"TOKENCACHE_CLUSTER_ELECTION_TIMEOUT=2s",
		"TOKENCACHE_CLUSTER_MAX_STALENESS=5s")
	lead := c.leader(30 * time.Second)
	fol := c.other(lead)
	id := nodeID(fol)
	suffrage := func() (string, bool) {
		st, ok := c.status(lead)
		if !ok {
			return "", false
		}
		for _, m := range st.Members {
			if m.ID == id {
				return m.Suffrage, true
			}
		}
		return "none", true
	}
	fol.cmd.Process.Signal(syscall.SIGKILL)
	<-fol.done
	killed := time.Now()
	waitFor(t, 60*time.Second, id+" removed from the raft configuration", func() bool {
		s, ok := suffrage()
		return ok && s == "none"
	})
	t.Logf("%s removed %s after SIGKILL", id, time.Since(killed).Round(time.Millisecond))
	// In the field the node came back a minute later: by then raft's
	// replication to the removed server, and its heartbeat loop, had
	// ended. Restarting at once can let that old loop see the node back
	// and report a resume, which hid the fault.
	time.Sleep(5 * time.Second)
	fol.launch()
	restarted := time.Now()
	// Stabilization is 10s; allow three times that and the reconcile.
	waitFor(t, 40*time.Second, id+" a voter again", func() bool {
		if c.leader(30*time.Second) != lead {
			t.Fatalf("leadership moved; the test needs a stable leader")
		}
		s, ok := suffrage()
		return ok && s == "voter"
	})
	t.Logf("%s voter again %s after its restart", id, time.Since(restarted).Round(time.Millisecond))
	st, _ := c.status(lead)
	t.Logf("status: %+v", st)
}
