package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// runCLI runs the command line in-process and returns its exit code and
// output. environ replaces the process environment.
func runCLI(t *testing.T, environ []string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut syncBuffer
	code = runCLIContext(t, context.Background(), environ, stdin, &out, &errOut, args...)
	return code, out.String(), errOut.String()
}

// runCLIContext runs the command line in-process with ctx (cancel it to
// stop `serve`), writing to out and errOut.
func runCLIContext(t *testing.T, ctx context.Context, environ []string, stdin string, out, errOut *syncBuffer, args ...string) int {
	t.Helper()
	e := &env{
		stdin:   strings.NewReader(stdin),
		stdout:  out,
		stderr:  errOut,
		environ: func() []string { return environ },
		exit:    func(code int) { t.Errorf("exit(%d) called", code) },
	}
	return execute(ctx, args, e)
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// writeFile writes content to name in a temporary directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUsageErrorsExitTwo(t *testing.T) {
	tests := [][]string{
		{"no-such-command"},
		{"token", "no-such-command"},
		{"config", "check"},
		{"config", "check", "a.yaml", "b.yaml"},
		{"config", "show", "--no-such-flag"},
		{"serve", "extra-argument"},
		{"serve", "--bootstrap-expect", "three"},
		{"version", "-o", "xml"},
		{"token", "validate"},
		{"token", "list", "--type", "nonsense"},
	}
	for _, args := range tests {
		code, _, stderr := runCLI(t, nil, "", args...)
		if code != exitUsage {
			t.Errorf("%v: exit code = %d, want %d (stderr %q)", args, code, exitUsage, stderr)
		}
		if !strings.HasPrefix(stderr, "error: ") || !strings.Contains(stderr, "--help") {
			t.Errorf("%v: stderr = %q, want an error line and a --help hint", args, stderr)
		}
	}
}

func TestHelpEverywhere(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"serve", "--help"}, {"config", "--help"}, {"config", "check", "--help"},
		{"config", "show", "--help"}, {"config", "default", "--help"}, {"token", "--help"},
		{"token", "issue", "--help"}, {"token", "validate", "--help"}, {"token", "revoke", "--help"},
		{"token", "info", "--help"}, {"token", "list", "--help"}, {"version", "--help"},
	} {
		code, stdout, _ := runCLI(t, nil, "", args...)
		if code != exitOK || !strings.Contains(stdout, "Usage:") {
			t.Errorf("%v: exit code %d, stdout %q; want 0 and usage", args, code, stdout)
		}
	}
}
