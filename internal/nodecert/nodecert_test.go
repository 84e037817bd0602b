package nodecert

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/url"
	"testing"
	"time"
)

func TestNodeID(t *testing.T) {
	u := func(s string) *url.URL {
		v, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		uris []*url.URL
		want string // "" = ErrNoIdentity
	}{
		{"one", []*url.URL{URI("n1")}, "n1"},
		{"with others", []*url.URL{u("https://example.net/x"), URI("n1")}, "n1"},
		{"none", nil, ""},
		{"another trust domain", []*url.URL{u("spiffe://other/node/n1")}, ""},
		{"another path", []*url.URL{u("spiffe://tokencache/workload/n1")}, ""},
		{"nested", []*url.URL{u("spiffe://tokencache/node/n1/x")}, ""},
		{"two nodes", []*url.URL{URI("n1"), URI("n2")}, ""},
	}
	for _, tt := range tests {
		got, err := NodeID(&x509.Certificate{URIs: tt.uris})
		if tt.want == "" {
			if !errors.Is(err, ErrNoIdentity) {
				t.Errorf("%s: NodeID = %q, %v; want ErrNoIdentity", tt.name, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: NodeID = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestCreateNode(t *testing.T) {
	now := time.Now()
	ca, err := CreateCA("test", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f, err := CreateNode(ca, NodeSpec{NodeID: "n1", Now: now, Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(f.CertPEM)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := NodeID(c); err != nil || id != "n1" {
		t.Errorf("NodeID = %q, %v; want n1", id, err)
	}
	cb, _ := pem.Decode(ca.CertPEM)
	caCert, _ := x509.ParseCertificate(cb.Bytes)
	if c.NotAfter.After(caCert.NotAfter) {
		t.Errorf("node certificate outlives its CA: %s > %s", c.NotAfter, caCert.NotAfter)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("Verify(usage %v) = %v", usage, err)
		}
	}
}
