package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/internal/nodecert"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// testPKI is a development CA in a temporary directory.
type testPKI struct {
	tb  testing.TB
	dir string
	ca  nodecert.Files
}

func newTestPKI(tb testing.TB) *testPKI {
	tb.Helper()
	ca, err := nodecert.CreateCA("test CA", time.Now(), 24*time.Hour)
	if err != nil {
		tb.Fatalf("CreateCA: %v", err)
	}
	p := &testPKI{tb: tb, dir: tb.TempDir(), ca: ca}
	p.write("ca.pem", ca.CertPEM)
	return p
}

func (p *testPKI) write(name string, b []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		p.tb.Fatalf("WriteFile: %v", err)
	}
	return path
}

// node writes a certificate naming certID and returns the files of node
// (file names are per node, so that two certificates for one id differ).
func (p *testPKI) node(node, certID string, validity time.Duration) TLSConfig {
	p.tb.Helper()
	f, err := nodecert.CreateNode(p.ca, nodecert.NodeSpec{NodeID: certID, IPs: []net.IP{net.ParseIP("127.0.0.1")},
		Now: time.Now(), Validity: validity})
	if err != nil {
		p.tb.Fatalf("CreateNode(%s): %v", certID, err)
	}
	return TLSConfig{
		CAFile:   filepath.Join(p.dir, "ca.pem"),
		CertFile: p.write(node+"-cert.pem", f.CertPEM),
		KeyFile:  p.write(node+"-key.pem", f.KeyPEM),
	}
}

func (p *testPKI) opts(o clusterOpts) clusterOpts {
	o.tls = func(_ int, id string) TLSConfig { return p.node(id, id, time.Hour) }
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
	req := forwardRequest{Timeout: 5 * time.Second, Write: writeJSON(tb, &tokens.WriteRequest{Issue: &tokens.IssueSpec{
		Request: tokens.IssueRequest{Username: "mallory", Type: token.TypeUser, Scopes: scopes, NoExpire: true},
		Key:     k, Hash: h,
	}})}
	body, err := json.Marshal(req)
	if err != nil {
		tb.Fatal(err)
	}
	frame := []byte{muxRPC, rpcForward, 0, 0, 0, 0}
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

func wantNoToken(tb testing.TB, tn *testNode, k token.Key) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if t, _, err := tn.svc.Info(ctx, k); err == nil && t != nil {
		tb.Fatalf("Info(%s) on %s = token of %q with scopes %q: the attacker minted a token", k, tn.id, t.Username, t.Scopes)
	}
}

// Attack 1: one raw frame to the leader's Raft port mints an admin token.
// Under TLS the connection ends in the handshake: the frame is never
// parsed.
func TestRawFrameWithoutCertificateIsRefused(t *testing.T) {
	pki := newTestPKI(t)
	tc := newTestCluster(t, 3, pki.opts(clusterOpts{}))
	leader := tc.waitLeader()
	k := token.NewKey()
	out := sendRaw(t, leader.node.raftAdv, rawForwardFrame(t, k))
	if bytes.Contains(out, []byte(`"code"`)) {
		t.Fatalf("the leader answered a raw frame: %q", out)
	}
	wantNoToken(t, leader, k)
	// The cluster still works for its own nodes.
	iss := issue(t, tc.followers()[0], "alice")
	wantValid(t, leader, iss.Token, token.StateValid)
}

// A client that completes a TLS handshake with a certificate of another CA
// is refused too, and so is a certificate of the cluster's CA that names a
// node the cluster does not know (it cannot forward).
func TestForeignCertificateCannotForward(t *testing.T) {
	pki := newTestPKI(t)
	tc := newTestCluster(t, 3, pki.opts(clusterOpts{}))
	leader := tc.waitLeader()
	other := newTestPKI(t)
	for _, tcase := range []struct {
		name  string
		files TLSConfig
	}{
		{"another CA", other.node("x", leader.id, time.Hour)}, // even naming the leader's id
		{"unknown node", pki.node("rogue", "n9", time.Hour)},
	} {
		t.Run(tcase.name, func(t *testing.T) {
			pair, err := tls.LoadX509KeyPair(tcase.files.CertFile, tcase.files.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := net.DialTimeout("tcp", leader.node.raftAdv, time.Second)
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
		files func(pki *testPKI) func() (*tlsManager, error)
	}{
		{"another CA", func(*testPKI) func() (*tlsManager, error) {
			other := newTestPKI(t)
			files := other.node("n4", "n4", time.Hour)
			return func() (*tlsManager, error) { return newTLSManager(files, "n4", time.Now, testLogger(t, 0)) }
		}},
		{"certificate for another node", func(pki *testPKI) func() (*tlsManager, error) {
			// The rogue runs as n4 but holds n2's certificate; its own start
			// check would refuse that, so the test installs it afterwards.
			files := pki.node("rogue-n2", "n2", time.Hour)
			return func() (*tlsManager, error) { return newTLSManager(files, "n2", time.Now, testLogger(t, 0)) }
		}},
	} {
		t.Run(tcase.name, func(t *testing.T) {
			pki := newTestPKI(t)
			key := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
			o := pki.opts(clusterOpts{encryptKey: func(int) string { return key }})
			tc := newTestCluster(t, 3, o)
			leader := tc.waitLeader()
			before := issue(t, leader, "alice")

			// The rogue: same gossip key, same fingerprint, joins n1.
			cfg := testConfig(tc, 4, "n4")
			cfg.GossipAddr = "127.0.0.1:0"
			cfg.RaftAddr = "127.0.0.1:0"
			cfg.Join = []string{tc.node("n1").node.disc.advertise}
			cfg.TLS = pki.node("n4", "n4", time.Hour) // passes its own start check
			rogue := startRogue(t, cfg, tcase.files(pki))

			// It reaches gossip...
			waitFor(t, 10*time.Second, "the rogue in the leader's gossip", func() bool {
				_, ok := tc.leader().node.disc.member("n4")
				return ok
			})
			// ...but never Raft, over many reconcile passes.
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) {
				for _, s := range tc.configuration(tc.leader()).Servers {
					if nodeOfRaftID(string(s.ID)) == "n4" {
						t.Fatalf("the rogue is in the raft configuration: %+v", s)
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
			if got := rogue.state.AppliedIndex(); got != 0 {
				t.Fatalf("the rogue applied up to index %d: it received the log", got)
			}
			// It cannot forward a write either.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			k := token.NewKey()
			var h token.Hash
			h[0] = 1
			_, err := rogue.node.Forward(ctx, writeJSON(t, &tokens.WriteRequest{Issue: &tokens.IssueSpec{
				Request: tokens.IssueRequest{Username: "mallory", Type: token.TypeUser}, Key: k, Hash: h}}))
			if err == nil {
				t.Fatal("Forward from the rogue = nil error, want a refusal")
			}
			wantNoToken(t, tc.leader(), k)
			wantValid(t, tc.leader(), before.Token, token.StateValid)
		})
	}
}

// startRogue starts a node for cfg whose TLS material then comes from mk.
func startRogue(t *testing.T, cfg Config, mk func() (*tlsManager, error)) *testNode {
	t.Helper()
	rogueTLS, err := mk()
	if err != nil {
		t.Fatalf("rogue TLS: %v", err)
	}
	return startExtra(t, cfg, func(n *Node) { n.tls = rogueTLS })
}

// startExtra starts one node for cfg outside any test cluster.
func startExtra(t *testing.T, cfg Config, beforeStart func(*Node)) *testNode {
	t.Helper()
	tn := &testNode{id: cfg.NodeID, cfg: cfg, dir: t.TempDir()}
	tc := &testCluster{t: t, net: newTestNet(), opts: clusterOpts{r: intp(1), policy: PolicySync, raftStore: StoreMemory,
		persist: "memory", staleness: time.Second, beforeStart: beforeStart}}
	tc.nodes = []*testNode{tn}
	if err := tc.startNode(tn); err != nil {
		t.Fatalf("start %s: %v", cfg.NodeID, err)
	}
	t.Cleanup(func() { tc.stopNode(tn, false) })
	return tn
}

// Attack 3: a frame that declares 200 MiB is refused from its header:
// nothing is allocated for it and the connection is closed at once.
func TestOversizedFrameRefusedWithoutAllocating(t *testing.T) {
	tc := newTestCluster(t, 1, clusterOpts{})
	leader := tc.waitLeader()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, err := net.DialTimeout("tcp", leader.node.raftAdv, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hdr := []byte{muxRPC, rpcForward, 0, 0, 0, 0}
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

// The request bound leaves room for the largest writes a node forwards.
func TestMaxRPCRequestFitsLargestWrite(t *testing.T) {
	touches := make([]persist.Touch, 10_000) // tokens.maxTouchBatch
	for i := range touches {
		touches[i] = persist.Touch{Key: token.NewKey(), At: token.At(time.Now())}
	}
	body, _ := json.Marshal(forwardRequest{Timeout: time.Second, Write: writeJSON(t, &tokens.WriteRequest{Touch: touches})})
	t.Logf("touch batch of %d keys: %d bytes", len(touches), len(body))
	if len(body) > maxRPCRequest/2 {
		t.Fatalf("a touch batch is %d bytes, over half of maxRPCRequest (%d)", len(body), maxRPCRequest)
	}
	sealed := bytes.Repeat([]byte{0xff}, 64<<10+64) // 64 KiB of credentials, sealed
	var h token.Hash
	body, _ = json.Marshal(forwardRequest{Timeout: time.Second, Write: writeJSON(t, &tokens.WriteRequest{Issue: &tokens.IssueSpec{
		Request: tokens.IssueRequest{Username: string(bytes.Repeat([]byte{'u'}, 255)), Type: token.TypeUser},
		Key:     token.NewKey(), Hash: h, CredentialsSealed: sealed}})})
	t.Logf("issue with 64 KiB of credentials: %d bytes", len(body))
	if len(body) > maxRPCRequest/2 {
		t.Fatalf("an issue is %d bytes, over half of maxRPCRequest (%d)", len(body), maxRPCRequest)
	}
}

// Certificates are reloaded without a restart: an unusable file (here an
// expired certificate) is refused and the current one stays; a good one is
// taken and presented on the next connection.
func TestTLSReload(t *testing.T) {
	pki := newTestPKI(t)
	tc := newTestCluster(t, 3, pki.opts(clusterOpts{}))
	n1 := tc.node("n1")
	before := n1.node.tls.cur.Load().leaf.SerialNumber
	presented := func() string {
		raw, err := net.DialTimeout("tcp", n1.node.raftAdv, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		c, err := tc.node("n2").node.tls.client(raw, "n1")
		if err != nil {
			t.Fatalf("TLS dial of n1 as n2: %v", err)
		}
		return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	if got := presented(); got != before.String() {
		t.Fatalf("n1 presents serial %s, want %s", got, before)
	}

	exp, err := nodecert.CreateNode(pki.ca, nodecert.NodeSpec{NodeID: "n1", Now: time.Now().Add(-48 * time.Hour), Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	pki.write("n1-cert.pem", exp.CertPEM)
	pki.write("n1-key.pem", exp.KeyPEM)
	if err := n1.node.ReloadTLS(); err == nil {
		t.Fatal("ReloadTLS with an expired certificate = nil, want an error")
	}
	if got := presented(); got != before.String() {
		t.Fatalf("after a failed reload n1 presents serial %s, want the old %s", got, before)
	}

	pki.node("n1", "n1", time.Hour)
	if err := n1.node.ReloadTLS(); err != nil {
		t.Fatalf("ReloadTLS = %v", err)
	}
	after := n1.node.tls.cur.Load().leaf.SerialNumber
	if after.Cmp(before) == 0 {
		t.Fatal("ReloadTLS kept the old certificate")
	}
	if got := presented(); got != after.String() {
		t.Fatalf("n1 presents serial %s, want the new %s", got, after)
	}
	iss := issue(t, n1, "alice")
	for _, tn := range tc.nodes {
		waitFor(t, 10*time.Second, "the token valid on "+tn.id, func() bool {
			st, err := validate(tn, iss.Token)
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
	tc := newTestCluster(t, 3, clusterOpts{encryptKey: func(int) string { return keyA }})
	allAlive := func() bool {
		for _, tn := range tc.nodes {
			ms := tn.node.disc.snapshot()
			alive := 0
			for _, m := range ms {
				if m.status == statusAlive {
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
		for _, tn := range tc.nodes {
			if err := tn.node.SetGossipKeys(step.primary, step.secondary); err != nil {
				t.Fatalf("%s: SetGossipKeys on %s: %v", step.name, tn.id, err)
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
		if got := len(tc.nodes[0].node.disc.keyring().GetKeys()); got != 1+len(step.secondary) {
			t.Fatalf("%s: keyring holds %d keys, want %d", step.name, got, 1+len(step.secondary))
		}
	}
	iss := issue(t, tc.node("n1"), "alice")
	waitFor(t, 10*time.Second, "the token valid on n3 (replication under the new key)", func() bool {
		st, err := validate(tc.node("n3"), iss.Token)
		return err == nil && st == token.StateValid
	})

	join := func(id, key string) *testNode {
		cfg := testConfig(tc, 4, id)
		cfg.GossipAddr, cfg.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
		cfg.Join = []string{tc.node("n1").node.disc.advertise}
		cfg.EncryptKey = key
		return startExtra(t, cfg, nil)
	}
	join("old", keyA)
	time.Sleep(2 * time.Second)
	if _, ok := tc.node("n1").node.disc.member("old"); ok {
		t.Fatal("a node with only the removed key joined gossip")
	}
	join("new", keyB)
	waitFor(t, 10*time.Second, "a node with the new key in gossip", func() bool {
		_, ok := tc.node("n1").node.disc.member("new")
		return ok
	})
}

func TestCheckExposure(t *testing.T) {
	const key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	files := TLSConfig{CAFile: "ca.pem", CertFile: "n1.pem", KeyFile: "n1-key.pem"}
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string // substrings of the error; nil = no error
	}{
		{"loopback", func(*Config) {}, nil},
		{"localhost and ::1", func(c *Config) { c.RaftAddr, c.GossipAddr = "localhost:8300", "[::1]:7946" }, nil},
		{"raft on a LAN address", func(c *Config) { c.RaftAddr = "10.0.0.1:8300" },
			[]string{"cluster.raft_addr=10.0.0.1:8300", "cluster.tls.ca_file", "cluster.encrypt_key", "cluster.insecure: true"}},
		{"gossip on every interface", func(c *Config) { c.GossipAddr, c.GossipAdvertise = "0.0.0.0:7946", "10.0.0.1:7946" },
			[]string{"cluster.gossip_addr=0.0.0.0:7946", "cluster.gossip_advertise=10.0.0.1:7946"}},
		{"advertised beyond loopback", func(c *Config) { c.RaftAdvertise = "10.0.0.1:8300" }, []string{"cluster.raft_advertise"}},
		{"TLS without key", func(c *Config) { c.RaftAddr, c.TLS = "10.0.0.1:8300", files }, []string{"set cluster.encrypt_key"}},
		{"key without TLS", func(c *Config) { c.RaftAddr, c.EncryptKey = "10.0.0.1:8300", key }, []string{"set cluster.tls.ca_file"}},
		{"TLS and key", func(c *Config) { c.RaftAddr, c.TLS, c.EncryptKey = "10.0.0.1:8300", files, key }, nil},
		{"insecure", func(c *Config) { c.RaftAddr, c.Insecure = "10.0.0.1:8300", true }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.change(&c)
			err := c.CheckExposure()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckExposure() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInsecure) {
				t.Fatalf("CheckExposure() = %v, want ErrInsecure", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckExposure() = %q, want %q in it", err, w)
				}
			}
		})
	}
}

// One peer may hold at most maxRPCConnsPerPeer RPC connections: the next
// one is closed at once, and a slot frees when one of them closes.
func TestRPCConnectionsPerPeerCapped(t *testing.T) {
	tc := newTestCluster(t, 1, clusterOpts{})
	addr := tc.waitLeader().node.raftAdv
	open := func() net.Conn {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte{muxRPC}); err != nil {
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
	for range maxRPCConnsPerPeer {
		conns = append(conns, open())
	}
	// Every one of them is being served (the last is checked: the mux
	// routes in order of acceptance only loosely, so give it time).
	time.Sleep(200 * time.Millisecond)
	if closedSoon(conns[len(conns)-1]) {
		t.Fatalf("connection %d of %d was closed", maxRPCConnsPerPeer, maxRPCConnsPerPeer)
	}
	extra := open()
	defer extra.Close()
	if !closedSoon(extra) {
		t.Fatalf("connection %d from one peer is still open, want it closed (cap %d)", maxRPCConnsPerPeer+1, maxRPCConnsPerPeer)
	}
	conns[0].Close()
	conns = conns[1:]
	waitFor(t, 5*time.Second, "a slot freed by a closed connection", func() bool {
		c := open()
		defer c.Close()
		return !closedSoon(c)
	})
}

// A pooled RPC connection is reused only for the node it was dialled and
// verified for: a call meant for node x at an address where a connection
// to node b sits idle dials anew, and the certificate check refuses it.
// (Keyed by address alone, the pool let the call to x ride b's connection,
// and a member answering as x passed verifyPeerStats.)
func TestPooledConnectionKeepsPeerIdentity(t *testing.T) {
	p := newTestPKI(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tb, err := newTLSManager(p.node("b", "b", time.Hour), "b", time.Now, log)
	if err != nil {
		t.Fatal(err)
	}
	ta, err := newTLSManager(p.node("a", "a", time.Hour), "a", time.Now, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb := newMux(ln, ln.Addr().String(), "b", "b@1", nil, log)
	mb.tls = tb
	allow := func(string) error { return nil }
	mb.authorize.Store(&allow)
	mb.rpcServe = func(c net.Conn, peer string) { // a member that answers as x
		r := bufio.NewReader(c)
		for {
			if _, err := r.ReadByte(); err != nil {
				return
			}
			if _, err := readFrame(r, maxRPCRequest); err != nil {
				return
			}
			out := []byte(`{"code":"ok","node_id":"x","raft_id":"x@1"}`)
			if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(out))), out...)); err != nil {
				return
			}
		}
	}
	mb.serve()
	defer mb.close()
	lna, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ma := newMux(lna, lna.Addr().String(), "a", "a@1", nil, log)
	ma.tls = ta
	defer ma.close()
	c := newRPCClient(ma)
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addr := ln.Addr().String()
	var resp statsResponse
	if _, err := c.call(ctx, addr, "x", rpcStats, statsRequest{}, &resp); err == nil {
		t.Fatal("call to x at b's address with b's certificate succeeded on a fresh connection")
	}
	if _, err := c.call(ctx, addr, "b", rpcStats, statsRequest{}, &resp); err != nil {
		t.Fatalf("call to b = %v", err)
	}
	if _, err := c.call(ctx, addr, "x", rpcStats, statsRequest{}, &resp); err == nil {
		t.Fatalf("call to x reused b's pooled connection: answer %+v passes as x", resp)
	}
}

// Under TLS a node may ask only for itself to leave: the leader refuses a
// leave of one server sent over another member's connection, and the
// server stays in the configuration.
func TestLeaveOnlyForItself(t *testing.T) {
	tc := newTestCluster(t, 3, clusterOpts{})
	l := tc.waitFormed(3)
	var other, victim *testNode
	for _, f := range tc.followers() {
		if other == nil {
			other = f
		} else {
			victim = f
		}
	}
	resp := l.node.handleLeave(&leaveRequest{RaftID: victim.node.raftID}, other.id)
	if resp.Code == codeOK {
		t.Fatalf("leave of %s asked by %s = ok, want a refusal", victim.id, other.id)
	}
	found := false
	for _, s := range tc.configuration(l).Servers {
		found = found || string(s.ID) == victim.node.raftID
	}
	if !found {
		t.Fatalf("%s left the configuration on %s's word", victim.id, other.id)
	}
}
