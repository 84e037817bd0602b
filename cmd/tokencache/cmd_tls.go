package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache/internal/nodecert"
)

// `tokencache tls`: a development CA and node certificates for mutual TLS
// between nodes (cluster.tls.*), as `consul tls` does. Private keys are
// written 0600 and never overwritten.

const (
	caCertFile = "tokencache-ca.pem"
	caKeyFile  = "tokencache-ca-key.pem"
)

func newTLSCmd(e *env) *cobra.Command {
	cmd := groupCmd("tls", "Create a development CA and node certificates for mutual TLS between nodes")
	ca := groupCmd("ca", "Manage the development CA")
	ca.AddCommand(newTLSCACreateCmd(e))
	cert := groupCmd("cert", "Manage node certificates")
	cert.AddCommand(newTLSCertCreateCmd(e))
	cmd.AddCommand(ca, cert)
	return cmd
}

func newTLSCACreateCmd(e *env) *cobra.Command {
	var dir, name string
	var days int
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a CA certificate and key (" + caCertFile + ", " + caKeyFile + ")",
		Long: `Create a self-signed CA for the nodes of one cluster: ` + caCertFile + ` (give it to
every node as cluster.tls.ca_file) and ` + caKeyFile + ` (0600; keep it off the nodes,
it signs node certificates). Existing files are never overwritten.`,
		Example: `  tokencache tls ca create --dir ./tls`,
		Args:    exactArgs(),
		RunE: func(*cobra.Command, []string) error {
			if days < 1 {
				return usageErrorf("--days must be at least 1")
			}
			f, err := nodecert.CreateCA(name, time.Now(), time.Duration(days)*24*time.Hour)
			if err != nil {
				return err
			}
			certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
			if err := writeNew(dir, map[string][]byte{certPath: f.CertPEM}, map[string][]byte{keyPath: f.KeyPEM}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "==> created %s\n==> created %s (private key, 0600)\n", certPath, keyPath)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", ".", "directory to write the files into")
	f.StringVar(&name, "name", "tokencache development CA", "common name of the CA")
	f.IntVar(&days, "days", 5*365, "days the CA is valid")
	return cmd
}

func newTLSCertCreateCmd(e *env) *cobra.Command {
	var dir, node, caPath, caKeyPath string
	var ips []net.IP
	var dnsNames []string
	var days int
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a certificate and key for one node (<node>.pem, <node>-key.pem)",
		Long: `Create a certificate for node --node, signed by the development CA: usable as a
server and as a client, naming the node in the URI SAN spiffe://tokencache/node/<node>
(what other nodes check), with DNS SAN <node>.node.tokencache and the addresses given
with --ip and --dns (informative: nodes check the URI, not the address). Write
<node>.pem (cluster.tls.cert_file) and <node>-key.pem (0600, cluster.tls.key_file).`,
		Example: `  tokencache tls cert create --dir ./tls --node n1 --ip 10.0.0.1 --dns n1.example.net`,
		Args:    exactArgs(),
		RunE: func(*cobra.Command, []string) error {
			if node == "" {
				return usageErrorf("--node is required")
			}
			if err := validNodeID(node); err != nil {
				return usageErrorf("--node: %v", err)
			}
			if days < 1 {
				return usageErrorf("--days must be at least 1")
			}
			if caPath == "" {
				caPath = filepath.Join(dir, caCertFile)
			}
			if caKeyPath == "" {
				caKeyPath = filepath.Join(dir, caKeyFile)
			}
			var ca nodecert.Files
			var err error
			if ca.CertPEM, err = os.ReadFile(caPath); err != nil {
				return fmt.Errorf("cannot read the CA certificate (create one with `tokencache tls ca create`): %w", err)
			}
			if ca.KeyPEM, err = os.ReadFile(caKeyPath); err != nil {
				return fmt.Errorf("cannot read the CA key: %w", err)
			}
			f, err := nodecert.CreateNode(ca, nodecert.NodeSpec{NodeID: node, IPs: ips, DNSNames: dnsNames,
				Now: time.Now(), Validity: time.Duration(days) * 24 * time.Hour})
			if err != nil {
				return err
			}
			certPath, keyPath := filepath.Join(dir, node+".pem"), filepath.Join(dir, node+"-key.pem")
			if err := writeNew(dir, map[string][]byte{certPath: f.CertPEM}, map[string][]byte{keyPath: f.KeyPEM}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "==> created %s (node %s)\n==> created %s (private key, 0600)\n", certPath, node, keyPath)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", ".", "directory of the CA files and of the files written")
	f.StringVar(&node, "node", "", "node id the certificate names (node.id of that node; required)")
	f.StringVar(&caPath, "ca", "", "CA certificate (default <dir>/"+caCertFile+")")
	f.StringVar(&caKeyPath, "ca-key", "", "CA private key (default <dir>/"+caKeyFile+")")
	f.IPSliceVar(&ips, "ip", []net.IP{net.IPv4(127, 0, 0, 1)}, "IP address SANs, comma-separated, repeatable")
	f.StringSliceVar(&dnsNames, "dns", []string{"localhost"}, "DNS name SANs, comma-separated, repeatable")
	f.IntVar(&days, "days", 365, "days the certificate is valid (at most as long as the CA)")
	return cmd
}

// validNodeID is the node.id rule (config_validate.go).
func validNodeID(id string) error {
	if !nodeIDRE.MatchString(id) {
		return fmt.Errorf("%q must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	return nil
}

// writeNew writes public files 0644 and private files 0600, refusing to
// overwrite any existing file (nothing is written then).
func writeNew(dir string, public, private map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create %s: %w", dir, err)
	}
	for _, m := range []map[string][]byte{public, private} {
		for p := range m {
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("cannot create %s: %w (remove it first)", p, fs.ErrExist)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("cannot create %s: %w", p, err)
			}
		}
	}
	for m, perm := range map[*map[string][]byte]os.FileMode{&public: 0o644, &private: 0o600} {
		for p, b := range *m {
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
			if err != nil {
				return fmt.Errorf("cannot create %s: %w", p, err)
			}
			if _, err := f.Write(b); err != nil {
				f.Close()
				return fmt.Errorf("cannot write %s: %w", p, err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("cannot write %s: %w", p, err)
			}
		}
	}
	return nil
}
