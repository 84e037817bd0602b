package cluster_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/tokencache/tokencache/cluster"
	"github.com/tokencache/tokencache/cluster/clustertest"
	"github.com/tokencache/tokencache/internal/nodecert"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// pkiOpts gives every node of o a certificate of p for its id.
func pkiOpts(p *cluster.TestPKI, o clustertest.Options) clustertest.Options {
	o.TLS = func(_ int, id string) cluster.TLSConfig { return p.NodeTLS(id, id, time.Hour) }
	return o
}

// rawForwardFrame is the attack of the issue: an RPC connection (0x02), a
// forward (0x01), a length and a JSON WriteRequest.Issue of the sender's
// choosing: an admin token without expiry.
func rawForwardFrame(tb testing.TB, k token.Key) []byte {
	tb.Helper()
	var h token.Hash
	h[0] = 1
	scopes, err := token.ParseScopes("admin read write")
	if err != nil {
		tb.Fatal(err)
	}
	req := cluster.ForwardRequest{Timeout: 5 * time.Second, Write: clustertest.WriteJSON(tb, &tokens.WriteRequest{Issue: &tokens.IssueSpec{
		Request: tokens.IssueRequest{Username: "mallory", Type: token.TypeUser, Scopes: scopes, NoExpire: true},
		Key:     k, Hash: h,
	}})}
	body, err := json.Marshal(req)
	if err != nil {
		tb.Fatal(err)
	}
	frame := []byte{cluster.MuxRPC, cluster.RPCForward, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(frame[2:], uint32(len(body)))
	return append(frame, body...)
}

// sendRaw writes p to addr and returns what came back until the peer
// closed the connection or 3s passed.
func sendRaw(tb testing.TB, addr string, p []byte) []byte {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	_, _ = c.Write(p)
	out, _ := io.ReadAll(c)
	return out
}

func wantNoToken(tb testing.TB, tn *clustertest.Node, k token.Key) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if t, _, err := tn.Svc.Info(ctx, k); err == nil && t != nil {
		tb.Fatalf("Info(%s) on %s = token of %q with scopes %q: the attacker minted a token", k, tn.ID, t.Username, t.Scopes)
	}
}

// Attack 1: one raw frame to the leader's Raft port mints an admin token.
// Under TLS the connection ends in the handshake: the frame is never
// parsed.
func TestRawFrameWithoutCertificateIsRefused(t *testing.T) {
	pki := cluster.NewTestPKI(t)
	tc := clustertest.New(t, 3, pkiOpts(pki, clustertest.Options{}))
	leader := tc.WaitLeader()
	k := token.NewKey()
	out := sendRaw(t, leader.Node.RaftAdv(), rawForwardFrame(t, k))
	if bytes.Contains(out, []byte(`"code"`)) {
		t.Fatalf("the leader answered a raw frame: %q", out)
	}
	wantNoToken(t, leader, k)
	// The cluster still works for its own nodes.
	iss := clustertest.Issue(t, tc.Followers()[0], "alice")
	clustertest.WantValid(t, leader, iss.Token, token.StateValid)
}

// A client that completes a TLS handshake with a certificate of another CA
// is refused too, and so is a certificate of the cluster's CA that names a
// node the cluster does not know (it cannot forward).
func TestForeignCertificateCannotForward(t *testing.T) {
	pki := cluster.NewTestPKI(t)
	tc := clustertest.New(t, 3, pkiOpts(pki, clustertest.Options{}))
	leader := tc.WaitLeader()
	other := cluster.NewTestPKI(t)
	for _, tcase := range []struct {
		name  string
		files cluster.TLSConfig
	}{
		{"another CA", other.NodeTLS("x", leader.ID, time.Hour)}, // even naming the leader's id
		{"unknown node", pki.NodeTLS("rogue", "n9", time.Hour)},
	} {
		t.Run(tcase.name, func(t *testing.T) {
			pair, err := tls.LoadX509KeyPair(tcase.files.CertFile, tcase.files.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := net.DialTimeout("tcp", leader.Node.RaftAdv(), time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			_ = raw.SetDeadline(time.Now().Add(3 * time.Second))
			c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS13})
			k := token.NewKey()
			_ = c.Handshake() // TLS 1.3: the server's verdict on our certificate comes with the first read
			_, _ = c.Write(rawForwardFrame(t, k))
			out, _ := io.ReadAll(c)
			if bytes.Contains(out, []byte(`"code"`)) {
				t.Fatalf("the leader answered: %q", out)
			}
			wantNoToken(t, leader, k)
		})
	}
}

// Attack 2: a rogue node that knows the gossip key (or is on a network
// without one) joins with a certificate of another CA, or with a
// certificate of the cluster's CA for another node id. It is never added
// to Raft (so it never votes nor receives rows) and cannot forward writes.
func TestRogueNodeCannotJoin(t *testing.T) {
	for _, tcase := range []struct {
		name  string
		files func(pki *cluster.TestPKI) func() (*cluster.TLSManager, error)
	}{
		{"another CA", func(*cluster.TestPKI) func() (*cluster.TLSManager, error) {
			other := cluster.NewTestPKI(t)
			files := other.NodeTLS("n4", "n4", time.Hour)
			return func() (*cluster.TLSManager, error) {
				return cluster.NewTLSManager(files, "n4", time.Now, clustertest.Logger(t, 0))
			}
		}},
		{"certificate for another node", func(pki *cluster.TestPKI) func() (*cluster.TLSManager, error) {
			// The rogue runs as n4 but holds n2's certificate; its own start
			// check would refuse that, so the test installs it afterwards.
			files := pki.NodeTLS("rogue-n2", "n2", time.Hour)
			return func() (*cluster.TLSManager, error) {
				return cluster.NewTLSManager(files, "n2", time.Now, clustertest.Logger(t, 0))
			}
		}},
	} {
		t.Run(tcase.name, func(t *testing.T) {
			pki := cluster.NewTestPKI(t)
			key := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
			o := pkiOpts(pki, clustertest.Options{EncryptKey: func(int) string { return key }})
			tc := clustertest.New(t, 3, o)
			leader := tc.WaitLeader()
			before := clustertest.Issue(t, leader, "alice")

			// The rogue: same gossip key, same fingerprint, joins n1.
			cfg := tc.Config(4, "n4")
			cfg.GossipAddr = "127.0.0.1:0"
			cfg.RaftAddr = "127.0.0.1:0"
			cfg.Join = []string{tc.Node("n1").Node.GossipAdvertise()}
			cfg.TLS = pki.NodeTLS("n4", "n4", time.Hour) // passes its own start check
			rogue := startRogue(t, cfg, tcase.files(pki))

			// It reaches gossip...
			clustertest.WaitFor(t, 10*time.Second, "the rogue in the leader's gossip", func() bool {
				l := tc.Leader() // nil while an election runs (a loaded machine)
				if l == nil {
					return false
				}
				_, ok := l.Node.GossipMember("n4")
				return ok
			})
			// ...but never Raft, over many reconcile passes.
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) {
				for _, s := range tc.Configuration(tc.WaitLeader()).Servers {
					if cluster.NodeOfRaftID(string(s.ID)) == "n4" {
						t.Fatalf("the rogue is in the raft configuration: %+v", s)
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
			if got := rogue.State.AppliedIndex(); got != 0 {
				t.Fatalf("the rogue applied up to index %d: it received the log", got)
			}
			// It cannot forward a write either.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			k := token.NewKey()
			var h token.Hash
			h[0] = 1
			_, err := rogue.Node.Forward(ctx, clustertest.WriteJSON(t, &tokens.WriteRequest{Issue: &tokens.IssueSpec{
				Request: tokens.IssueRequest{Username: "mallory", Type: token.TypeUser}, Key: k, Hash: h}}))
			if err == nil {
				t.Fatal("Forward from the rogue = nil error, want a refusal")
			}
			wantNoToken(t, tc.Leader(), k)
			clustertest.WantValid(t, tc.Leader(), before.Token, token.StateValid)
		})
	}
}

// startRogue starts a node for cfg whose TLS material then comes from mk.
func startRogue(t *testing.T, cfg cluster.Config, mk func() (*cluster.TLSManager, error)) *clustertest.Node {
	t.Helper()
	rogueTLS, err := mk()
	if err != nil {
		t.Fatalf("rogue TLS: %v", err)
	}
	return startExtra(t, cfg, func(n *cluster.Node) { n.SetTLS(rogueTLS) })
}

// startExtra starts one node for cfg outside any test cluster.
func startExtra(t *testing.T, cfg cluster.Config, beforeStart func(*cluster.Node)) *clustertest.Node {
	t.Helper()
	return clustertest.StartExtra(t, cfg, clustertest.Options{BeforeStart: beforeStart})
}

// Attack 3: a frame that declares 200 MiB is refused from its header:
// nothing is allocated for it and the connection is closed at once.
func TestOversizedFrameRefusedWithoutAllocating(t *testing.T) {
	tc := clustertest.New(t, 1, clustertest.Options{})
	leader := tc.WaitLeader()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, err := net.DialTimeout("tcp", leader.Node.RaftAdv(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hdr := []byte{cluster.MuxRPC, cluster.RPCForward, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hdr[2:], 200<<20)
	if _, err := c.Write(hdr); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	var b [1]byte
	_, err = c.Read(b[:])
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection is still open 2s after a header declaring 200 MiB: the node waits for the body")
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("allocations grew by %d MiB after a header declaring 200 MiB", grew>>20)
	}
}

// Certificates are reloaded without a restart: an unusable file (here an
// expired certificate) is refused and the current one stays; a good one is
// taken and presented on the next connection.
func TestTLSReload(t *testing.T) {
	pki := cluster.NewTestPKI(t)
	tc := clustertest.New(t, 3, pkiOpts(pki, clustertest.Options{}))
	n1 := tc.Node("n1")
	before := n1.Node.TLSSerial()
	presented := func() string {
		raw, err := net.DialTimeout("tcp", n1.Node.RaftAdv(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		c, err := tc.Node("n2").Node.TLSClient(raw, "n1")
		if err != nil {
			t.Fatalf("TLS dial of n1 as n2: %v", err)
		}
		return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	if got := presented(); got != before.String() {
		t.Fatalf("n1 presents serial %s, want %s", got, before)
	}

	exp, err := nodecert.CreateNode(pki.CA(), nodecert.NodeSpec{NodeID: "n1", Now: time.Now().Add(-48 * time.Hour), Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	pki.Write("n1-cert.pem", exp.CertPEM)
	pki.Write("n1-key.pem", exp.KeyPEM)
	if err := n1.Node.ReloadTLS(); err == nil {
		t.Fatal("ReloadTLS with an expired certificate = nil, want an error")
	}
	if got := presented(); got != before.String() {
		t.Fatalf("after a failed reload n1 presents serial %s, want the old %s", got, before)
	}

	pki.NodeTLS("n1", "n1", time.Hour)
	if err := n1.Node.ReloadTLS(); err != nil {
		t.Fatalf("ReloadTLS = %v", err)
	}
	after := n1.Node.TLSSerial()
	if after.Cmp(before) == 0 {
		t.Fatal("ReloadTLS kept the old certificate")
	}
	if got := presented(); got != after.String() {
		t.Fatalf("n1 presents serial %s, want the new %s", got, after)
	}
	iss := clustertest.Issue(t, n1, "alice")
	for _, tn := range tc.Nodes {
		clustertest.WaitFor(t, 10*time.Second, "the token valid on "+tn.ID, func() bool {
			st, err := clustertest.Validate(tn, iss.Token)
			return err == nil && st == token.StateValid
		})
	}
}

// Gossip key rotation with memberlist's keyring (keyring.go): install the
// new key everywhere, use it everywhere, remove the old one everywhere.
// Gossip stays healthy at every step, and at the end a node holding only
// the old key cannot join while one with the new key can.
func TestGossipKeyRotation(t *testing.T) {
	const keyA = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	const keyB = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
	tc := clustertest.New(t, 3, clustertest.Options{EncryptKey: func(int) string { return keyA }})
	allAlive := func() bool {
		for _, tn := range tc.Nodes {
			ms := tn.Node.GossipSnapshot()
			alive := 0
			for _, m := range ms {
				if m.Alive() {
					alive++
				}
			}
			if alive != 3 {
				return false
			}
		}
		return true
	}
	for _, step := range []struct {
		name      string
		primary   string
		secondary []string
	}{
		{"install", keyA, []string{keyB}},
		{"use", keyB, []string{keyA}},
		{"remove", keyB, nil},
	} {
		for _, tn := range tc.Nodes {
			if err := tn.Node.SetGossipKeys(step.primary, step.secondary); err != nil {
				t.Fatalf("%s: SetGossipKeys on %s: %v", step.name, tn.ID, err)
			}
		}
		// Several probe and push/pull rounds (200ms, 1s) under the new keys.
		end := time.Now().Add(2500 * time.Millisecond)
		for time.Now().Before(end) {
			if !allAlive() {
				t.Fatalf("%s: a member is not alive during the rotation", step.name)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got := len(tc.Nodes[0].Node.GossipKeyring().GetKeys()); got != 1+len(step.secondary) {
			t.Fatalf("%s: keyring holds %d keys, want %d", step.name, got, 1+len(step.secondary))
		}
	}
	iss := clustertest.Issue(t, tc.Node("n1"), "alice")
	clustertest.WaitFor(t, 10*time.Second, "the token valid on n3 (replication under the new key)", func() bool {
		st, err := clustertest.Validate(tc.Node("n3"), iss.Token)
		return err == nil && st == token.StateValid
	})

	join := func(id, key string) *clustertest.Node {
		cfg := tc.Config(4, id)
		cfg.GossipAddr, cfg.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
		cfg.Join = []string{tc.Node("n1").Node.GossipAdvertise()}
		cfg.EncryptKey = key
		return startExtra(t, cfg, nil)
	}
	join("old", keyA)
	time.Sleep(2 * time.Second)
	if _, ok := tc.Node("n1").Node.GossipMember("old"); ok {
		t.Fatal("a node with only the removed key joined gossip")
	}
	join("new", keyB)
	clustertest.WaitFor(t, 10*time.Second, "a node with the new key in gossip", func() bool {
		_, ok := tc.Node("n1").Node.GossipMember("new")
		return ok
	})
}

// One peer may hold at most cluster.MaxRPCConnsPerPeer RPC connections: the next
// one is closed at once, and a slot frees when one of them closes.
func TestRPCConnectionsPerPeerCapped(t *testing.T) {
	tc := clustertest.New(t, 1, clustertest.Options{})
	addr := tc.WaitLeader().Node.RaftAdv()
	open := func() net.Conn {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte{cluster.MuxRPC}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	closedSoon := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		var b [1]byte
		_, err := c.Read(b[:])
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range cluster.MaxRPCConnsPerPeer {
		conns = append(conns, open())
	}
	// Every one of them is being served (the last is checked: the mux
	// routes in order of acceptance only loosely, so give it time).
	time.Sleep(200 * time.Millisecond)
	if closedSoon(conns[len(conns)-1]) {
		t.Fatalf("connection %d of %d was closed", cluster.MaxRPCConnsPerPeer, cluster.MaxRPCConnsPerPeer)
	}
	extra := open()
	defer extra.Close()
	if !closedSoon(extra) {
		t.Fatalf("connection %d from one peer is still open, want it closed (cap %d)", cluster.MaxRPCConnsPerPeer+1, cluster.MaxRPCConnsPerPeer)
	}
	conns[0].Close()
	conns = conns[1:]
	clustertest.WaitFor(t, 5*time.Second, "a slot freed by a closed connection", func() bool {
		c := open()
		defer c.Close()
		return !closedSoon(c)
	})
}

// Under TLS a node may ask only for itself to leave: the leader refuses a
// leave of one server sent over another member's connection, and the
// server stays in the configuration.
func TestLeaveOnlyForItself(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{})
	l := tc.WaitFormed(3)
	var other, victim *clustertest.Node
	for _, f := range tc.Followers() {
		if other == nil {
			other = f
		} else {
			victim = f
		}
	}
	resp := l.Node.HandleLeave(&cluster.LeaveRequest{RaftID: victim.Node.RaftID()}, other.ID)
	if resp.Code == cluster.CodeOK {
		t.Fatalf("leave of %s asked by %s = ok, want a refusal", victim.ID, other.ID)
	}
	found := false
	for _, s := range tc.Configuration(l).Servers {
		found = found || string(s.ID) == victim.Node.RaftID()
	}
	if !found {
		t.Fatalf("%s left the configuration on %s's word", victim.ID, other.ID)
	}
}
