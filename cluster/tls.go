package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokencache/tokencache/internal/nodecert"
)

// Mutual TLS on the Raft/RPC port. With cluster.tls.* set, every connection
// of the mux, Raft and RPC, in both directions, is TLS 1.3 and both sides
// present a certificate of the cluster's CA (cluster.tls.ca_file). A
// certificate names its node in the URI SAN spiffe://tokencache/node/<id>
// (internal/nodecert):
//
//   - the dialer knows the node it calls (from the Raft server ID, or the
//     gossip metadata of the member it checks) and refuses a peer whose
//     certificate names another node;
//   - the acceptor refuses a peer whose certificate is not of the CA, and a
//     peer that names a node this node does not know (neither a gossip
//     member nor a server of the Raft configuration).
//
// The CA, certificate and key files are read again when one of them
// changes (checked every second, and on a handshake at most once a
// second; Node.ReloadTLS forces it): new connections use the new material, established
// ones keep theirs. A reload that fails (unreadable file, key that does
// not match, certificate expired or of another CA or node) keeps the
// current material and is logged.

// Errors of the TLS layer (see also errors.go).
var (
	// ErrPeerIdentity: the peer's certificate names another node than the
	// one this node meant to reach, or its answers contradict its
	// certificate (another Raft ID, another cluster).
	ErrPeerIdentity = errors.New("peer identity does not match")
	// ErrPeerUnknown: an authenticated peer names a node that is neither a
	// gossip member nor a Raft server here.
	ErrPeerUnknown = errors.New("peer is not a known member")
	// ErrInsecure: a node reachable from other hosts has no TLS or no
	// gossip key and cluster.insecure is not set.
	ErrInsecure = errors.New("cluster ports reachable from other hosts without TLS and gossip encryption")
)

const tlsReloadCheck = time.Second // how often a handshake may stat the files

// TLSConfig names the PEM files of mutual TLS on the Raft/RPC port. All
// three set, or none (TLS off).
type TLSConfig struct {
	CAFile   string // CA certificate(s) that sign every node's certificate
	CertFile string // this node's certificate (may include intermediates)
	KeyFile  string // its private key
}

// Enabled reports whether any file is set.
func (t TLSConfig) Enabled() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

func (t TLSConfig) validate() error {
	if t.Enabled() && (t.CAFile == "" || t.CertFile == "" || t.KeyFile == "") {
		return errors.New("cluster.tls.ca_file, cluster.tls.cert_file and cluster.tls.key_file must be set together")
	}
	return nil
}

// Check reads the three files and reports whether they make a usable node
// identity for nodeID at now: readable, the key matches the certificate,
// the certificate chains to the CA, is valid now, allows server and client
// authentication, and names nodeID. It is what `config check` and New run.
func (t TLSConfig) Check(nodeID string, now time.Time) error {
	if err := t.validate(); err != nil {
		return err
	}
	_, err := loadTLSMaterial(t, nodeID, now)
	return err
}

// tlsMaterial is one loaded set of files.
type tlsMaterial struct {
	cert  tls.Certificate
	leaf  *x509.Certificate
	pool  *x509.CertPool
	stamp string // modification times and sizes of the three files
}

func fileStamp(paths ...string) string {
	s := ""
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			s += p + ":missing;"
			continue
		}
		s += fmt.Sprintf("%s:%d:%d;", p, fi.ModTime().UnixNano(), fi.Size())
	}
	return s
}

func loadTLSMaterial(t TLSConfig, nodeID string, now time.Time) (*tlsMaterial, error) {
	stamp := fileStamp(t.CAFile, t.CertFile, t.KeyFile)
	caPEM, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("cannot read cluster.tls.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := caPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("cannot parse cluster.tls.ca_file %s: %w", t.CAFile, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("cannot read cluster.tls.ca_file %s: no PEM certificate in it", t.CAFile)
	}
	certPEM, err := os.ReadFile(t.CertFile)
	if err != nil {
		return nil, fmt.Errorf("cannot read cluster.tls.cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot read cluster.tls.key_file: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The message of X509KeyPair never contains key material.
		return nil, fmt.Errorf("cannot use cluster.tls.cert_file %s with cluster.tls.key_file %s: %w", t.CertFile, t.KeyFile, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("cannot parse cluster.tls.cert_file %s: %w", t.CertFile, err)
		}
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}})
		if err != nil {
			return nil, fmt.Errorf("cluster.tls.cert_file %s (valid %s to %s) is not usable with cluster.tls.ca_file %s at %s: %w",
				t.CertFile, leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339), t.CAFile,
				now.UTC().Format(time.RFC3339), err)
		}
	}
	id, err := nodecert.NodeID(leaf)
	if err != nil {
		return nil, fmt.Errorf("cluster.tls.cert_file %s: %w", t.CertFile, err)
	}
	if id != nodeID {
		return nil, fmt.Errorf("%w: cluster.tls.cert_file %s is for node %q, but node.id is %q", ErrPeerIdentity, t.CertFile, id, nodeID)
	}
	return &tlsMaterial{cert: pair, leaf: leaf, pool: pool, stamp: stamp}, nil
}

// tlsManager holds the current material and builds the tls.Config of each
// connection from it. Safe for concurrent use.
type tlsManager struct {
	files  TLSConfig
	nodeID string
	now    func() time.Time
	log    *slog.Logger

	cur       atomic.Pointer[tlsMaterial]
	lastCheck atomic.Int64 // unix nanoseconds of the last stat
	mu        sync.Mutex   // one reload at a time
	failed    string       // stamp whose reload failed (logged once); under mu
}

func newTLSManager(files TLSConfig, nodeID string, now func() time.Time, log *slog.Logger) (*tlsManager, error) {
	mat, err := loadTLSMaterial(files, nodeID, now())
	if err != nil {
		return nil, err
	}
	m := &tlsManager{files: files, nodeID: nodeID, now: now, log: log}
	m.cur.Store(mat)
	m.lastCheck.Store(now().UnixNano())
	m.logLoaded(mat)
	return m, nil
}

func (m *tlsManager) logLoaded(mat *tlsMaterial) {
	m.log.Info("loaded the cluster TLS files", "serial", mat.leaf.SerialNumber.Text(16),
		"not_after", mat.leaf.NotAfter.UTC().Format(time.RFC3339))
}

// material returns the current material, reloading it first when a file
// changed (at most one stat per tlsReloadCheck).
func (m *tlsManager) material() *tlsMaterial {
	now := m.now()
	last := m.lastCheck.Load()
	if now.UnixNano()-last >= int64(tlsReloadCheck) && m.lastCheck.CompareAndSwap(last, now.UnixNano()) {
		if fileStamp(m.files.CAFile, m.files.CertFile, m.files.KeyFile) != m.cur.Load().stamp {
			_ = m.reload()
		}
	}
	return m.cur.Load()
}

// reload reads the files now. On error the current material stays.
func (m *tlsManager) reload() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mat, err := loadTLSMaterial(m.files, m.nodeID, m.now())
	if err != nil {
		if st := fileStamp(m.files.CAFile, m.files.CertFile, m.files.KeyFile); st != m.failed {
			m.failed = st
			m.log.Error("cannot reload the cluster TLS files; the current certificate stays in use", "err", err)
		}
		return err
	}
	old := m.cur.Swap(mat)
	m.failed = ""
	if old == nil || old.stamp != mat.stamp {
		m.logLoaded(mat)
	}
	return nil
}

// verifyPeer checks a peer's chain against the CA for usage and returns
// the node its certificate names.
func (mat *tlsMaterial) verifyPeer(raw [][]byte, usage x509.ExtKeyUsage, now time.Time) (string, error) {
	if len(raw) == 0 {
		return "", errors.New("peer sent no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return "", fmt.Errorf("cannot parse peer certificate: %w", err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: mat.pool, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return "", fmt.Errorf("peer certificate not accepted: %w", err)
	}
	return nodecert.NodeID(certs[0])
}

// server runs the server side of the handshake on c (its deadline set by
// the caller) and returns the TLS connection and the peer's node id.
func (m *tlsManager) server(c net.Conn) (net.Conn, string, error) {
	mat := m.material()
	var peer string
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{mat.cert},
		ClientAuth:   tls.RequireAnyClientCert,
		// No resumption: every connection verifies the peer's certificate
		// against the current CA and learns its node.
		SessionTicketsDisabled: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			id, err := mat.verifyPeer(raw, x509.ExtKeyUsageClientAuth, m.now())
			peer = id
			return err
		},
	}
	tc := tls.Server(c, cfg)
	if err := tc.Handshake(); err != nil {
		return nil, "", fmt.Errorf("cannot complete TLS handshake with %s: %w", c.RemoteAddr(), err)
	}
	return tc, peer, nil
}

// client runs the client side of the handshake on c, requiring the peer
// to be node want.
func (m *tlsManager) client(c net.Conn, want string) (net.Conn, error) {
	mat := m.material()
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The chain and the node identity are checked below, against the
		// cluster CA and the node id this side means to reach; a host name
		// check would tie certificates to addresses instead.
		InsecureSkipVerify: true,
		Certificates:       []tls.Certificate{mat.cert},
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			id, err := mat.verifyPeer(raw, x509.ExtKeyUsageServerAuth, m.now())
			if err != nil {
				return err
			}
			if id != want {
				return fmt.Errorf("%w: the certificate at %s names node %q, want %q", ErrPeerIdentity, c.RemoteAddr(), id, want)
			}
			return nil
		},
	}
	tc := tls.Client(c, cfg)
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("cannot complete TLS handshake with %s (node %s): %w", c.RemoteAddr(), want, err)
	}
	return tc, nil
}

// watch checks the files every tlsReloadCheck until ctx ends, so that a
// node whose connections are all established still picks up new files
// (and its peers see the new certificate on their next connection).
func (m *tlsManager) watch(ctx context.Context) {
	t := time.NewTicker(tlsReloadCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.material()
		}
	}
}

// ReloadTLS reads the cluster TLS files again now (they are also reloaded
// on change, within a second of the next connection). It returns the
// error of a failed reload, after which the current certificate stays.
func (n *Node) ReloadTLS() error {
	if n.tls == nil {
		return nil
	}
	return n.tls.reload()
}

// loopbackHost reports whether host:port names a loopback address (or
// localhost). An unspecified address (every interface) is not loopback.
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// exposed lists the configured addresses that other hosts may reach.
func (c Config) exposed() []string {
	var out []string
	for _, a := range []struct{ key, v string }{
		{"cluster.raft_addr", c.RaftAddr}, {"cluster.raft_advertise", c.RaftAdvertise},
		{"cluster.gossip_addr", c.GossipAddr}, {"cluster.gossip_advertise", c.GossipAdvertise},
	} {
		if a.v != "" && !loopbackHost(a.v) {
			out = append(out, fmt.Sprintf("%s=%s", a.key, a.v))
		}
	}
	return out
}

// CheckExposure is the protected mode: a node whose Raft or gossip
// address is not on loopback must have mutual TLS and the gossip key,
// unless Insecure. It returns nil, or ErrInsecure naming the addresses
// and the keys to set.
func (c Config) CheckExposure() error {
	exp := c.exposed()
	if c.Insecure || len(exp) == 0 {
		return nil
	}
	var missing []string
	if !c.TLS.Enabled() {
		missing = append(missing, "cluster.tls.ca_file, cluster.tls.cert_file, cluster.tls.key_file (create them with `tokencache tls ca create` and `tokencache tls cert create --node ID`)")
	}
	if c.EncryptKey == "" {
		missing = append(missing, "cluster.encrypt_key (`openssl rand -base64 32`, the same on every node)")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s beyond loopback, so anyone who reaches it could join the cluster and mint tokens; set %s; "+
		"or set cluster.insecure: true to run without them (only on a network no one else can reach)",
		ErrInsecure, strings.Join(exp, ", "), strings.Join(missing, " and "))
}
