package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procCluster is a cluster of real tokencache processes on loopback.
type procCluster struct {
	t     *testing.T
	nodes []*node
	admin string
}

// startProcCluster starts n processes that join each other and bootstrap
// together (bootstrap_expect n), and waits until all are ready.
func startProcCluster(t *testing.T, n int, extraEnv ...string) *procCluster {
	t.Helper()
	return startProcClusterWith(t, n, nil, extraEnv...)
}

// startProcClusterWith is startProcCluster with more environment per node
// (nodeEnv(id), may be nil).
func startProcClusterWith(t *testing.T, n int, nodeEnv func(id string) []string, extraEnv ...string) *procCluster {
	t.Helper()
	var raw [16]byte
	rand.Read(raw[:])
	c := &procCluster{t: t, admin: "e2e-admin-" + hex.EncodeToString(raw[:])}
	ps := make([]ports, n)
	var join []string
	for i := range ps {
		ps[i] = freePorts(t)
		join = append(join, fmt.Sprintf("127.0.0.1:%d", ps[i].gossip))
	}
	env := append([]string{
		"TOKENCACHE_ADMIN_TOKEN=" + c.admin,
		"TOKENCACHE_CLUSTER_NAME=e2e-" + hex.EncodeToString(raw[:4]),
		"TOKENCACHE_CLUSTER_MAX_STALENESS=2s",
	}, extraEnv...)
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		env := env
		if nodeEnv != nil {
			env = append(slices.Clip(env), nodeEnv(id)...)
		}
		c.nodes = append(c.nodes, newProcNode(t, id, "", ps[i], env,
			"--join", strings.Join(join, ","), "--bootstrap-expect", fmt.Sprint(n)))
	}
	for _, nd := range c.nodes {
		nd.launch()
	}
	for _, nd := range c.nodes {
		nd.waitReady(60 * time.Second)
	}
	return c
}

type clusterStatus struct {
	NodeID   string `json:"node_id"`
	LeaderID string `json:"leader_id"`
	Members  []struct {
		ID       string `json:"id"`
		Suffrage string `json:"suffrage"`
		Status   string `json:"status"`
	} `json:"members"`
}

func (c *procCluster) status(n *node) (clusterStatus, bool) {
	var st clusterStatus
	code, _ := n.callQuiet("GET", "/v1/cluster", c.admin, &st)
	return st, code == 200
}

// leader waits until the running nodes agree on a leader and returns it.
func (c *procCluster) leader(timeout time.Duration) *node {
	c.t.Helper()
	var lead *node
	waitFor(c.t, timeout, "an agreed leader", func() bool {
		lead = nil
		id := ""
		for _, n := range c.nodes {
			if !n.running() {
				continue
			}
			st, ok := c.status(n)
			if !ok || st.LeaderID == "" || (id != "" && st.LeaderID != id) {
				return false
			}
			id = st.LeaderID
		}
		for _, n := range c.nodes {
			if n.running() && nodeID(n) == id {
				lead = n
			}
		}
		return lead != nil
	})
	return lead
}

func nodeID(n *node) string {
	for i, a := range n.args {
		if a == "--node-id" {
			return n.args[i+1]
		}
	}
	return ""
}

func (c *procCluster) other(not ...*node) *node {
	for _, n := range c.nodes {
		skip := !n.running()
		for _, x := range not {
			skip = skip || n == x
		}
		if !skip {
			return n
		}
	}
	c.t.Fatal("no other running node")
	return nil
}

// running returns the nodes whose process runs.
func (c *procCluster) running() []*node {
	var out []*node
	for _, n := range c.nodes {
		if n.running() {
			out = append(out, n)
		}
	}
	return out
}

// wantValidate fails the test unless every node of ns answers validate(tok)
// (the token called name) with want: "valid" (200) or a 401 reason.
func (c *procCluster) wantValidate(ns []*node, name, tok, want string) {
	c.t.Helper()
	for _, n := range ns {
		code, reason := n.validate(tok)
		if want == "valid" && code != 200 || want != "valid" && (code != 401 || reason != want) {
			c.t.Fatalf("validate(%s) on %s = %d %s, want %s", name, nodeID(n), code, reason, want)
		}
	}
}

// failover SIGKILLs n (the leader) and waits until another node
// acknowledges a write for username; it returns the token issued.
func (c *procCluster) failover(n *node, username string) issued {
	c.t.Helper()
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
	var tok issued
	waitFor(c.t, 30*time.Second, "a write after the leader died", func() bool {
		var out issued
		code, _ := c.other(n).callQuiet("POST", "/v1/tokens", c.admin, &out, map[string]any{"username": username})
		tok = out
		return code == 201
	})
	return tok
}

// TestClusterProcesses runs three real processes and checks, with real
// signals, the cluster's promises: forwarding, read-your-writes on every
// node, leader SIGKILL and failover, catch-up after a restart, the fence of
// a SIGSTOPped node (it never answers valid for a token revoked while it was
// stopped), and a whole-cluster SIGKILL and restart with nothing lost.
func TestClusterProcesses(t *testing.T) {
	// No lifetime limit: the test issues a token that never expires.
	c := startProcCluster(t, 3, "TOKENCACHE_TOKENS_MAX_LIFETIME=-1")
	lead := c.leader(30 * time.Second)
	st, _ := c.status(lead)
	voters := 0
	for _, m := range st.Members {
		if m.Suffrage == "voter" && m.Status == "alive" {
			voters++
		}
	}
	if voters != 3 {
		t.Fatalf("voters = %d, want 3 (replication_count 1): %+v", voters, st.Members)
	}

	// A write sent to a follower is forwarded; every node answers it at once.
	fol := c.other(lead)
	t1 := fol.issue(c.admin, map[string]any{"username": "alice", "scopes": []string{"read"}})
	c.wantValidate(c.nodes, "t1", t1.Token, "valid")

	// Leader SIGKILL: a new leader is elected and writes resume.
	killed := lead
	killedAt := time.Now()
	t2 := c.failover(killed, "bob")
	t.Logf("failover: leader SIGKILL to the next acknowledged write took %s", time.Since(killedAt).Round(time.Millisecond))
	survivor := c.other(killed)
	if code, _ := survivor.call("DELETE", "/v1/tokens/"+t1.Key, c.admin, nil, nil); code != 200 {
		t.Fatalf("revoke(t1) with one node down = %d, want 200", code)
	}
	c.wantValidate(c.running(), "t1", t1.Token, "revoked")

	// The killed node comes back, catches up, and answers like the others.
	killed.start()
	waitFor(t, 30*time.Second, "the restarted node to catch up", func() bool {
		c1, r1 := killed.validateQuiet(t1.Token)
		c2, _ := killed.validateQuiet(t2.Token)
		return c1 == 401 && r1 == "revoked" && c2 == 200
	})

	// SIGSTOP a follower, revoke t2 meanwhile: the revoke waits until the
	// stopped node's fence has closed, and on SIGCONT the node answers
	// revoked or stale, never valid.
	lead = c.leader(30 * time.Second)
	paused := c.other(lead)
	if code, _ := paused.validate(t2.Token); code != 200 {
		t.Fatalf("validate(t2) on %s before the pause = %d", nodeID(paused), code)
	}
	paused.cmd.Process.Signal(syscall.SIGSTOP)
	start := time.Now()
	code, _ := lead.call("DELETE", "/v1/tokens/"+t2.Key, c.admin, nil, nil)
	t.Logf("revoke with one node stopped acknowledged after %s", time.Since(start).Round(time.Millisecond))
	if code != 200 {
		paused.cmd.Process.Signal(syscall.SIGCONT)
		t.Fatalf("revoke(t2) with a stopped follower = %d, want 200", code)
	}
	paused.cmd.Process.Signal(syscall.SIGCONT)
	if code, reason := paused.validateQuiet(t2.Token); code == 200 {
		t.Fatalf("a node resumed from SIGSTOP answered valid (%s) for a token revoked while it was stopped", reason)
	}
	waitFor(t, 30*time.Second, "the resumed node to answer revoked", func() bool {
		code, reason := paused.validateQuiet(t2.Token)
		return code == 401 && reason == "revoked"
	})

	// Whole-cluster SIGKILL and restart: every acknowledged write is back.
	t3 := lead.issue(c.admin, map[string]any{"username": "carol", "no_expire": true})
	for _, n := range c.nodes {
		n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.done
	}
	for _, n := range c.nodes {
		n.launch()
	}
	for _, n := range c.nodes {
		n.waitReady(60 * time.Second)
	}
	c.leader(30 * time.Second)
	for _, n := range c.nodes {
		waitFor(t, 30*time.Second, "every write back after a whole-cluster restart on "+nodeID(n), func() bool {
			c1, r1 := n.validateQuiet(t1.Token)
			c2, r2 := n.validateQuiet(t2.Token)
			c3, _ := n.validateQuiet(t3.Token)
			return c1 == 401 && r1 == "revoked" && c2 == 401 && r2 == "revoked" && c3 == 200
		})
	}

	// cluster leave: a follower leaves for good and its process exits; the
	// two others stay a working cluster without it.
	lead = c.leader(30 * time.Second)
	leaver := c.other(lead)
	var left struct{ Left bool }
	code, hdr := leaver.call("POST", "/v1/cluster/leave", c.admin, nil, &left)
	if code != 200 || !left.Left || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("POST /v1/cluster/leave = %d %+v (Cache-Control %q), want 200 {left:true} no-store", code, left, hdr.Get("Cache-Control"))
	}
	select {
	case <-leaver.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the node that left the cluster did not exit")
	}
	if leaver.exitErr != nil {
		t.Errorf("the node that left exited with %v, want 0", leaver.exitErr)
	}
	lead = c.leader(30 * time.Second)
	var last clusterStatus
	defer func() {
		if t.Failed() {
			t.Logf("last status seen by the leader: %+v", last)
		}
	}()
	waitFor(t, 30*time.Second, "the leaver out of the Raft configuration", func() bool {
		st, ok := c.status(lead)
		if !ok {
			return false
		}
		last = st
		for _, m := range st.Members {
			if m.ID == nodeID(leaver) && m.Suffrage != "none" {
				return false
			}
		}
		return true
	})
	t4 := lead.issue(c.admin, map[string]any{"username": "dave"})
	for _, n := range c.nodes {
		if n != leaver {
			if code, reason := n.validate(t4.Token); code != 200 {
				t.Errorf("%s after the leave: validate = %d %s, want 200", nodeID(n), code, reason)
			}
		}
	}
}
