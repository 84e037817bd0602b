package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/internal/nodecert"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

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

// The request bound leaves room for the largest writes a node forwards.
func TestMaxRPCRequestFitsLargestWrite(t *testing.T) {
	touches := make([]persist.Touch, 10_000) // tokens.maxTouchBatch
	for i := range touches {
		touches[i] = persist.Touch{Key: token.NewKey(), At: token.At(time.Now())}
	}
	body, _ := json.Marshal(forwardRequest{Timeout: time.Second, Write: mustJSON(t, &tokens.WriteRequest{Touch: touches})})
	t.Logf("touch batch of %d keys: %d bytes", len(touches), len(body))
	if len(body) > maxRPCRequest/2 {
		t.Fatalf("a touch batch is %d bytes, over half of maxRPCRequest (%d)", len(body), maxRPCRequest)
	}
	sealed := bytes.Repeat([]byte{0xff}, 64<<10+64) // 64 KiB of credentials, sealed
	var h token.Hash
	body, _ = json.Marshal(forwardRequest{Timeout: time.Second, Write: mustJSON(t, &tokens.WriteRequest{Issue: &tokens.IssueSpec{
		Request: tokens.IssueRequest{Username: string(bytes.Repeat([]byte{'u'}, 255)), Type: token.TypeUser},
		Key:     token.NewKey(), Hash: h, CredentialsSealed: sealed}})})
	t.Logf("issue with 64 KiB of credentials: %d bytes", len(body))
	if len(body) > maxRPCRequest/2 {
		t.Fatalf("an issue is %d bytes, over half of maxRPCRequest (%d)", len(body), maxRPCRequest)
	}
}

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
