package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// adminTokenFile is the file a generated admin token is kept in.
const adminTokenFile = "admin.token"

// minSecretLen is the shortest admin token the daemon accepts, and the length
// below which other configured secrets are warned about.
const minSecretLen = 16

// resolveAdminToken returns the admin token from the configuration (or
// TOKENCACHE_ADMIN_TOKEN), else from <data_dir>/admin.token, generating that
// file (mode 0600, written atomically) at first start. Its value is never
// logged.
func resolveAdminToken(cfg *Config, log *slog.Logger) (string, error) {
	if t := cfg.HTTP.AdminToken.Reveal(); t != "" {
		if len(t) < minSecretLen {
			return "", fmt.Errorf("http.admin_token is shorter than %d characters; leave it unset to have one generated", minSecretLen)
		}
		return t, nil
	}
	path := filepath.Join(cfg.Node.DataDir, adminTokenFile)
	t, err := readAdminTokenFile(path)
	switch {
	case err == nil:
		return t, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", err
	}
	if t, err = writeAdminTokenFile(path); err != nil {
		return "", err
	}
	log.Warn("generated an admin token; admin calls need it as Authorization: Bearer <token>", "file", path)
	return t, nil
}

// checkAdminTokenFile reports an existing <data_dir>/admin.token that serve
// would refuse, so that `config check` refuses it too. It reads the file
// system, which is why Validate does not call it.
func (c *Config) checkAdminTokenFile() Problems {
	if c.HTTP.AdminToken != "" || c.Node.DataDir == "" {
		return nil
	}
	_, err := readAdminTokenFile(filepath.Join(c.Node.DataDir, adminTokenFile))
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return Problems{{Key: "node.data_dir", Msg: err.Error()}}
}

// readAdminTokenFile reads an admin token file. Like ssh with an unprotected
// private key, it refuses a file that its group or others may read or write,
// and a token shorter than minSecretLen. An error wrapping fs.ErrNotExist
// means there is no file.
func readAdminTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("cannot read admin token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("cannot read admin token file: %w", err)
	}
	if err := checkAdminTokenMode(path, fi); err != nil {
		return "", err
	}
	b := make([]byte, 4096)
	n, err := f.Read(b)
	if err != nil && n == 0 {
		return "", fmt.Errorf("cannot read admin token file: %w", err)
	}
	t := strings.TrimSpace(string(b[:n]))
	if len(t) < minSecretLen {
		return "", fmt.Errorf("admin token file %s holds fewer than %d characters; delete it to have a new token generated", path, minSecretLen)
	}
	return t, nil
}

// checkAdminTokenMode refuses an admin token file that is not a regular file
// or that its group or others may access.
func checkAdminTokenMode(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("admin token file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("admin token file %s is unprotected: its permissions %04o let others read it; "+
			"run `chmod 600 %s` (and give it to the user running tokencache), or delete it and change the admin token", path, perm, path)
	}
	return nil
}

// writeAdminTokenFile generates a token and writes it to path with mode 0600:
// into a temporary file in the same directory first (synced), then renamed
// into place, so that a crash never leaves a partial token. The caller holds
// the data dir lock.
func writeAdminTokenFile(path string) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("cannot generate an admin token: %w", err)
	}
	t := base64.RawURLEncoding.EncodeToString(raw[:])
	f, err := os.CreateTemp(filepath.Dir(path), adminTokenFile+".*.tmp") // mode 0600
	if err != nil {
		return "", fmt.Errorf("cannot create admin token file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return "", fmt.Errorf("cannot create admin token file: %w", err)
	}
	if _, err := f.WriteString(t + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("cannot write admin token file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("cannot write admin token file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("cannot write admin token file: %w", err)
	}
	// The data dir lock (datadir.go) is held: no other process writes here.
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("cannot create admin token file: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return t, nil
}
