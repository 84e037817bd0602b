package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/internal/nodecert"
)

// makeDevCA runs `tls ca create` and `tls cert create` for nodes in dir.
func makeDevCA(t *testing.T, dir string, nodes ...string) {
	t.Helper()
	if code, out, errOut := runCLI(t, nil, "", "tls", "ca", "create", "--dir", dir); code != exitOK {
		t.Fatalf("tls ca create = %d\n%s%s", code, out, errOut)
	}
	for _, n := range nodes {
		if code, out, errOut := runCLI(t, nil, "", "tls", "cert", "create", "--dir", dir, "--node", n, "--ip", "127.0.0.1,10.0.0.1"); code != exitOK {
			t.Fatalf("tls cert create --node %s = %d\n%s%s", n, code, out, errOut)
		}
	}
}

func TestTLSCreate(t *testing.T) {
	dir := t.TempDir()
	makeDevCA(t, dir, "n1")
	for name, perm := range map[string]os.FileMode{
		"tokencache-ca.pem": 0o644, "tokencache-ca-key.pem": 0o600, "n1.pem": 0o644, "n1-key.pem": 0o600,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != perm {
			t.Errorf("%s mode = %v, want %v", name, fi.Mode().Perm(), perm)
		}
	}
	code, _, errOut := runCLI(t, nil, "", "tls", "cert", "create", "--dir", dir, "--node", "n1")
	if code != exitError || !strings.Contains(errOut, "already exists") {
		t.Errorf("second tls cert create --node n1 = %d, %q; want an error: the files exist", code, errOut)
	}
	code, _, errOut = runCLI(t, nil, "", "tls", "cert", "create", "--dir", dir)
	if code != exitUsage || !strings.Contains(errOut, "node") {
		t.Errorf("tls cert create without --node = %d, %q; want a usage error", code, errOut)
	}
}

// The protected mode and the TLS file checks, in `config check` and in
// `serve` (which refuses before it listens).
func TestClusterSecurityRefusals(t *testing.T) {
	dir := t.TempDir()
	makeDevCA(t, dir, "n1", "n2")
	other := t.TempDir()
	makeDevCA(t, other, "n1")
	pem := func(d, name string) string { return filepath.Join(d, name) }
	// An expired certificate for n1, of the right CA.
	ca := nodecert.Files{}
	ca.CertPEM, _ = os.ReadFile(pem(dir, "tokencache-ca.pem"))
	ca.KeyPEM, _ = os.ReadFile(pem(dir, "tokencache-ca-key.pem"))
	exp, err := nodecert.CreateNode(ca, nodecert.NodeSpec{NodeID: "n1", Now: time.Now().Add(-48 * time.Hour), Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	expired := writeFile(t, "expired.pem", string(exp.CertPEM))
	expiredKey := writeFile(t, "expired-key.pem", string(exp.KeyPEM))
	const key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	conf := func(extra string) string {
		return writeFile(t, "c.yaml", "node:\n  id: n1\n  data_dir: "+t.TempDir()+"\ncluster:\n  raft_addr: 10.0.0.1:8300\n  gossip_addr: 127.0.0.1:7946\n"+extra)
	}
	tlsKeys := func(ca, cert, key string) string {
		return "  tls:\n    ca_file: " + ca + "\n    cert_file: " + cert + "\n    key_file: " + key + "\n"
	}
	good := tlsKeys(pem(dir, "tokencache-ca.pem"), pem(dir, "n1.pem"), pem(dir, "n1-key.pem"))
	tests := []struct {
		name string
		conf string
		code int
		want []string
	}{
		{"beyond loopback without TLS nor key", conf(""), exitError,
			[]string{"cluster.insecure", "cluster.raft_addr=10.0.0.1:8300", "cluster.tls.ca_file", "cluster.encrypt_key", "cluster.insecure: true"}},
		{"beyond loopback with TLS, no key", conf(good), exitError, []string{"set cluster.encrypt_key"}},
		{"beyond loopback with key, no TLS", conf("  encrypt_key: " + key + "\n"), exitError, []string{"set cluster.tls.ca_file"}},
		{"insecure", conf("  insecure: true\n"), exitOK, []string{"warning: cluster.insecure"}},
		{"TLS and key", conf(good + "  encrypt_key: " + key + "\n"), exitOK, nil},
		{"unreadable certificate", conf(tlsKeys(pem(dir, "tokencache-ca.pem"), pem(dir, "missing.pem"), pem(dir, "n1-key.pem"))), exitError,
			[]string{"cannot read cluster.tls.cert_file"}},
		{"key of another certificate", conf(tlsKeys(pem(dir, "tokencache-ca.pem"), pem(dir, "n1.pem"), pem(dir, "n2-key.pem"))), exitError,
			[]string{"cannot use cluster.tls.cert_file", "private key does not match"}},
		{"expired certificate", conf(tlsKeys(pem(dir, "tokencache-ca.pem"), expired, expiredKey)), exitError,
			[]string{"is not usable with cluster.tls.ca_file", "expired"}},
		{"certificate of another node", conf(tlsKeys(pem(dir, "tokencache-ca.pem"), pem(dir, "n2.pem"), pem(dir, "n2-key.pem"))), exitError,
			[]string{`is for node "n2", but node.id is "n1"`}},
		{"certificate of another CA", conf(tlsKeys(pem(dir, "tokencache-ca.pem"), pem(other, "n1.pem"), pem(other, "n1-key.pem"))), exitError,
			[]string{"unknown authority"}},
		{"TLS keys not together", conf("  tls:\n    ca_file: " + pem(dir, "tokencache-ca.pem") + "\n  insecure: true\n"), exitError,
			[]string{"must be set together"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, nil, "", "config", "check", tt.conf)
			if code != tt.code {
				t.Errorf("config check = %d, want %d\n%s%s", code, tt.code, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("config check output lacks %q:\n%s%s", w, out, errOut)
				}
			}
			if strings.Contains(out+errOut, "PRIVATE KEY") || strings.Contains(out+errOut, key) {
				t.Errorf("config check output shows a secret:\n%s%s", out, errOut)
			}
			if tt.code == exitOK {
				return
			}
			// serve refuses the same configuration before it starts.
			code, out, errOut = runCLI(t, nil, "", "serve", "--config", tt.conf)
			if code != exitError {
				t.Errorf("serve = %d, want %d\n%s%s", code, exitError, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("serve output lacks %q:\n%s%s", w, out, errOut)
				}
			}
		})
	}
}
