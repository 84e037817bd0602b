// Package nodecert defines the certificate a tokencache node presents to
// the other nodes of its cluster (mutual TLS on the Raft/RPC port), and
// creates a development CA and node certificates for it (`tokencache tls`,
// tests).
//
// A node certificate names its node id in one URI SAN,
// spiffe://tokencache/node/<node-id>, and carries both the server and the
// client extended key usages (every node dials and accepts). Its other
// SANs (IP addresses, DNS names) are informative: nodes check the URI, not
// the address they dialled.
package nodecert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"
)

// Identity URI: spiffe://<TrustDomain>/node/<node-id>.
const (
	Scheme      = "spiffe"
	TrustDomain = "tokencache"
	pathPrefix  = "/node/"
)

// Errors of NodeID.
var (
	// ErrNoIdentity: the certificate names no node (no URI SAN of the
	// form spiffe://tokencache/node/<id>), or names more than one.
	ErrNoIdentity = errors.New("certificate names no tokencache node")
)

// URI returns the identity URI of node id.
func URI(id string) *url.URL {
	return &url.URL{Scheme: Scheme, Host: TrustDomain, Path: pathPrefix + id}
}

// NodeID returns the node id named by c's identity URI.
func NodeID(c *x509.Certificate) (string, error) {
	id := ""
	for _, u := range c.URIs {
		if u.Scheme != Scheme || u.Host != TrustDomain || !strings.HasPrefix(u.Path, pathPrefix) {
			continue
		}
		v := strings.TrimPrefix(u.Path, pathPrefix)
		if v == "" || strings.Contains(v, "/") {
			continue
		}
		if id != "" && id != v {
			return "", fmt.Errorf("%w: it names both %q and %q", ErrNoIdentity, id, v)
		}
		id = v
	}
	if id == "" {
		return "", fmt.Errorf("%w: no URI SAN %s://%s%s<node-id>", ErrNoIdentity, Scheme, TrustDomain, pathPrefix)
	}
	return id, nil
}

// Files are PEM blocks: a certificate and its private key.
type Files struct {
	CertPEM []byte
	KeyPEM  []byte // PKCS #8; keep it 0600
}

// CreateCA returns a new self-signed CA certificate (ECDSA P-256) valid
// from now for validity.
func CreateCA(name string, now time.Time, validity time.Duration) (Files, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Files{}, fmt.Errorf("cannot generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"tokencache development CA"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Files{}, fmt.Errorf("cannot create CA certificate: %w", err)
	}
	return encode(der, key)
}

// NodeSpec describes a node certificate.
type NodeSpec struct {
	NodeID   string
	IPs      []net.IP
	DNSNames []string
	Now      time.Time
	Validity time.Duration
}

// CreateNode returns a certificate for spec signed by the CA in ca.
func CreateNode(ca Files, spec NodeSpec) (Files, error) {
	caCert, caKey, err := parsePair(ca)
	if err != nil {
		return Files{}, fmt.Errorf("cannot read the CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Files{}, fmt.Errorf("cannot generate node key: %w", err)
	}
	notAfter := spec.Now.Add(spec.Validity)
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: spec.NodeID + ".node.tokencache"},
		NotBefore:    spec.Now.Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{URI(spec.NodeID)},
		IPAddresses:  spec.IPs,
		DNSNames:     append([]string{spec.NodeID + ".node.tokencache"}, spec.DNSNames...),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return Files{}, fmt.Errorf("cannot create node certificate: %w", err)
	}
	return encode(der, key)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n
}

func encode(der []byte, key *ecdsa.PrivateKey) (Files, error) {
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Files{}, fmt.Errorf("cannot encode key: %w", err)
	}
	return Files{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}),
	}, nil
}

func parsePair(f Files) (*x509.Certificate, any, error) {
	cb, _ := pem.Decode(f.CertPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, errors.New("no PEM certificate")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot parse certificate: %w", err)
	}
	kb, _ := pem.Decode(f.KeyPEM)
	if kb == nil {
		return nil, nil, errors.New("no PEM private key")
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		if k2, err2 := x509.ParseECPrivateKey(kb.Bytes); err2 == nil {
			return cert, k2, nil
		}
		return nil, nil, fmt.Errorf("cannot parse private key: %w", err)
	}
	return cert, key, nil
}
