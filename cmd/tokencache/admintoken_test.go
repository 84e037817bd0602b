package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokencache/tokencache/internal/testport"
)

// serveBriefly runs `serve` with the given environment and arguments and
// returns its exit code and stderr; a serve that starts is stopped after
// timeout (and the test fails, as every caller expects a refusal).
func serveBriefly(t *testing.T, environ []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var stdout, stderr syncBuffer
	args = append([]string{"serve", "--http-addr", "127.0.0.1:0", "--gossip-addr", freeAddr(t), "--raft-addr", freeAddr(t),
		"--node-id", "n1", "--log-format", "json"}, args...)
	code := runCLIContext(t, ctx, environ, "", &stdout, &stderr, args...)
	if ctx.Err() != nil {
		t.Errorf("serve %q started and served until stopped; want a refusal at start", args)
	}
	return code, stderr.String()
}

// freeAddr returns a loopback address whose port was free a moment ago.
// freeAddr returns a loopback address for a node to bind (testport.Free).
func freeAddr(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(testport.Free(t)))
}

func TestServeRefusesUnprotectedAdminTokenFile(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		dir := t.TempDir()
		path := filepath.Join(dir, adminTokenFile)
		if err := os.WriteFile(path, []byte("PUBLIC-ADMIN-TOKEN-0123456789\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		code, stderr := serveBriefly(t, []string{"TOKENCACHE_PERSIST_STORE=memory"}, "--data-dir", dir)
		if code != exitError {
			t.Errorf("serve with a %04o admin.token: exit code = %d, want %d", mode, code, exitError)
		}
		for _, want := range []string{path, "unprotected", "0" + strconvOctal(mode), "chmod 600 " + path} {
			if !strings.Contains(stderr, want) {
				t.Errorf("serve with a %04o admin.token: stderr = %q, want %q in it", mode, stderr, want)
			}
		}
		assertNoSecrets(t, "serve", stderr, []string{"PUBLIC-ADMIN-TOKEN-0123456789"})

		cfg := writeFile(t, "c.yaml", "node:\n  id: n1\n  data_dir: "+dir+"\n")
		code, stdout, stderr := runCLI(t, nil, "", "config", "check", cfg)
		if code != exitError || !strings.Contains(stderr, "chmod 600 "+path) || strings.Contains(stdout, "configuration is valid") {
			t.Errorf("config check with a %04o admin.token: exit %d, stdout %q, stderr %q; want exit %d and the chmod advice",
				mode, code, stdout, stderr, exitError)
		}
	}
}

func strconvOctal(m os.FileMode) string {
	const digits = "01234567"
	p := m.Perm()
	return string([]byte{digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}

func TestServeRefusesShortAdminToken(t *testing.T) {
	code, stderr := serveBriefly(t, []string{"TOKENCACHE_ADMIN_TOKEN=short-token"}, "--data-dir", t.TempDir())
	if code != exitError || !strings.Contains(stderr, "http.admin_token") || !strings.Contains(stderr, "shorter than 16") {
		t.Errorf("serve with a 11-character admin token: exit %d, stderr %q; want exit %d naming http.admin_token", code, stderr, exitError)
	}
	assertNoSecrets(t, "serve", stderr, []string{"short-token"})

	cfg := writeFile(t, "c.yaml", "node:\n  id: n1\n  data_dir: "+t.TempDir()+"\n")
	code, stdout, stderr := runCLI(t, []string{"TOKENCACHE_ADMIN_TOKEN=short-token"}, "", "config", "check", cfg)
	if code != exitError || !strings.Contains(stderr, "http.admin_token") || strings.Contains(stdout, "valid") {
		t.Errorf("config check with a short admin token: exit %d, stdout %q, stderr %q; want exit %d", code, stdout, stderr, exitError)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, adminTokenFile), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stderr = serveBriefly(t, []string{"TOKENCACHE_PERSIST_STORE=memory"}, "--data-dir", dir)
	if code != exitError || !strings.Contains(stderr, "fewer than 16") {
		t.Errorf("serve with a short admin.token: exit %d, stderr %q; want exit %d", code, stderr, exitError)
	}
}

// TestGeneratedAdminTokenFile checks the generated file is 0600 whatever the
// umask, complete, and kept across starts.
func TestGeneratedAdminTokenFile(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	cfg := validConfig()
	cfg.Node.DataDir = dir
	log := slog.New(slog.DiscardHandler)
	tok, err := resolveAdminToken(cfg, log)
	if err != nil {
		t.Fatalf("resolveAdminToken() = %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, adminTokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token: mode %v, err %v; want 0600", fi.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries after generating the token, want only admin.token (no temporary file)", len(entries))
	}
	again, err := resolveAdminToken(cfg, log)
	if err != nil || again != tok || len(tok) < minSecretLen {
		t.Errorf("second resolveAdminToken() = %d chars, %v; want the same token of at least %d", len(again), err, minSecretLen)
	}
}
