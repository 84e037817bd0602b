package bench

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// jwtKeysEnv writes a keys file with one fresh Ed25519 signing key (the
// daemon's default algorithm) for spawned nodes that must sign JWTs, and
// returns the environment that points every node at it and what removes
// it. The file is in a new temp dir, or under keep (then kept).
func jwtKeysEnv(keep string) (env []string, cleanup func() error, err error) {
	dir := keep
	cleanup = func() error { return nil }
	if dir == "" {
		d, err := os.MkdirTemp("", "tokencache-bench-jwt-")
		if err != nil {
			return nil, nil, fmt.Errorf("cannot create a temp dir for the JWT keys: %w", err)
		}
		dir = d
		cleanup = func() error { return os.RemoveAll(d) }
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("cannot create %s: %w", dir, err)
	}
	fail := func(err error) ([]string, func() error, error) {
		return nil, nil, errors.Join(err, cleanup())
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fail(fmt.Errorf("cannot generate a JWT signing key: %w", err))
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fail(fmt.Errorf("cannot encode the JWT signing key: %w", err))
	}
	block := &pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"kid": "bench", "active": "true"}, Bytes: der}
	path := filepath.Join(dir, "jwt-keys.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return fail(fmt.Errorf("cannot write the JWT keys file: %w", err))
	}
	return []string{"TOKENCACHE_TOKENS_JWT_KEYS_FILE=" + path}, cleanup, nil
}
