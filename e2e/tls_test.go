package e2e

import (
	"bytes"
	be "encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tlsCLI runs the tokencache binary (the tls commands) and fails on error.
func tlsCLI(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("tokencache %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestClusterMutualTLS runs three processes with mutual TLS on the Raft/RPC
// port and an encrypted gossip, with certificates made by `tokencache tls`:
// writes are forwarded and revoked across nodes, a raw frame without a
// certificate mints nothing, every node's certificate is replaced while
// writes flow (none fails), and the cluster survives a leader SIGKILL.
func TestClusterMutualTLS(t *testing.T) {
	dir := t.TempDir()
	tlsCLI(t, "tls", "ca", "create", "--dir", dir)
	for _, id := range []string{"n1", "n2", "n3"} {
		tlsCLI(t, "tls", "cert", "create", "--dir", dir, "--node", id)
	}
	c := startProcClusterWith(t, 3, func(id string) []string {
		return []string{
			"TOKENCACHE_CLUSTER_TLS_CA_FILE=" + filepath.Join(dir, "tokencache-ca.pem"),
			"TOKENCACHE_CLUSTER_TLS_CERT_FILE=" + filepath.Join(dir, id+".pem"),
			"TOKENCACHE_CLUSTER_TLS_KEY_FILE=" + filepath.Join(dir, id+"-key.pem"),
		}
	}, "TOKENCACHE_CLUSTER_ENCRYPT_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	lead := c.leader(30 * time.Second)
	for _, n := range c.nodes {
		if got := strings.Count(n.logs.String(), "loaded the cluster TLS files"); got != 1 {
			t.Fatalf("%s logged %d TLS loads at start, want 1", nodeID(n), got)
		}
	}

	// Issue through a follower (forwarded over mutual TLS), revoke through
	// another node.
	fol := c.other(lead)
	t1 := fol.issue(c.admin, map[string]any{"username": "alice", "scopes": []string{"read"}})
	c.wantValidate(c.nodes, "t1", t1.Token, "valid")
	if code, _ := c.other(fol).call("DELETE", "/v1/tokens/"+t1.Key, c.admin, nil, nil); code != 200 {
		t.Fatalf("revoke(t1) = %d, want 200", code)
	}
	c.wantValidate(c.nodes, "t1", t1.Token, "revoked")

	// The attack of the issue: a raw forward frame to the leader's port.
	frame := []byte{2, 1, 0, 0, 0, 0}
	body := []byte(`{"timeout":5000000000,"write":{"issue":{"request":{"Username":"mallory","Type":"user","Scopes":"admin read write","NoExpire":true},` +
		`"key":"uot7mNLMz51AOXneteiBig","hash":[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}}}`)
	be.BigEndian.PutUint32(frame[2:], uint32(len(body)))
	if conn, err := net.DialTimeout("tcp", lead.arg("--raft-addr"), time.Second); err == nil {
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		conn.Write(append(frame, body...))
		out, _ := io.ReadAll(conn)
		conn.Close()
		if bytes.Contains(out, []byte(`"code"`)) {
			t.Fatalf("the leader answered a raw frame: %q", out)
		}
	}
	if code, _ := lead.callQuiet("GET", "/v1/tokens/uot7mNLMz51AOXneteiBig", c.admin, nil); code == 200 {
		t.Fatal("the raw frame minted a token")
	}

	// Certificate reload while writes flow through a follower (forwarded:
	// RPC and Raft both cross the reloads). No write may fail.
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stopOnce sync.Once
	stopWriters := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	t.Cleanup(stopWriters) // before the processes are killed
	writer := c.other(lead)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				code, _ := writer.callQuiet("POST", "/v1/tokens", c.admin, nil, map[string]any{"username": fmt.Sprintf("w%d-%d", w, i)})
				if code == 201 {
					ok.Add(1)
				} else {
					failed.Add(1)
					t.Errorf("write during the certificate reload = %d, want 201", code)
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	newDir := filepath.Join(dir, "new")
	for _, n := range c.nodes {
		id := nodeID(n)
		tlsCLI(t, "tls", "cert", "create", "--dir", newDir, "--node", id,
			"--ca", filepath.Join(dir, "tokencache-ca.pem"), "--ca-key", filepath.Join(dir, "tokencache-ca-key.pem"))
		for _, f := range []string{id + ".pem", id + "-key.pem"} {
			if err := os.Rename(filepath.Join(newDir, f), filepath.Join(dir, f)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, n := range c.nodes {
		waitFor(t, 30*time.Second, "the new certificate loaded on "+nodeID(n), func() bool {
			return strings.Count(n.logs.String(), "loaded the cluster TLS files") >= 2
		})
	}
	time.Sleep(2 * time.Second) // new connections, pooled ones aging out
	stopWriters()
	t.Logf("writes during the certificate reload: %d acknowledged, %d failed", ok.Load(), failed.Load())
	if ok.Load() == 0 {
		t.Fatal("no write went through during the certificate reload")
	}

	// Leader SIGKILL: the survivors elect a leader over new TLS connections
	// and writes resume; a revoke reaches both.
	killed := c.leader(30 * time.Second)
	t2 := c.failover(killed, "bob")
	if code, _ := c.other(killed).call("DELETE", "/v1/tokens/"+t2.Key, c.admin, nil, nil); code != 200 {
		t.Fatalf("revoke(t2) with the old leader dead = %d, want 200", code)
	}
	c.wantValidate(c.running(), "t2", t2.Token, "revoked")
	// The killed node comes back with its new certificate and catches up.
	killed.start()
	waitFor(t, 30*time.Second, "the restarted node to catch up", func() bool {
		code, reason := killed.validateQuiet(t2.Token)
		return code == 401 && reason == "revoked"
	})
}
