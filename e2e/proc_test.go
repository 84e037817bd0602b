package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokencache/tokencache/internal/testport"
)

// binary is the tokencache binary built once for the package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tokencache-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "tokencache")
	build := exec.Command("go", "build", "-o", binary, "../cmd/tokencache")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot build tokencache:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireTool returns the path of an external program the test needs. Under
// `make test` (TOKENCACHE_TEST_REQUIRE=1) a missing program fails the test:
// the scripts install it, so its absence is a broken setup, not a reason to
// skip.
func requireTool(t *testing.T, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
			if p := filepath.Join(dir, n); fileExists(p) {
				return p
			}
		}
	}
	if os.Getenv("TOKENCACHE_TEST_REQUIRE") != "" {
		t.Fatalf("%s is not installed (make test installs it with scripts/apt-install.sh)", names[0])
	}
	t.Skipf("%s is not installed; run make test", names[0])
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// freePort returns a loopback port for a process to bind (testport.Free).
func freePort(t testing.TB) int {
	t.Helper()
	return testport.Free(t)
}

// node is one running tokencache process.
type node struct {
	t       testing.TB
	dataDir string
	addr    string // http://127.0.0.1:port
	args    []string
	env     []string
	cmd     *exec.Cmd
	logs    *syncBuffer
	done    chan struct{}
	exitErr error
}

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

// ports are the three loopback ports of one node.
type ports struct{ http, gossip, raft int }

func freePorts(t testing.TB) ports { return ports{freePort(t), freePort(t), freePort(t)} }

// startNode starts tokencache serve with a fresh (or the given) data dir.
func startNode(t testing.TB, dataDir string, env []string, extra ...string) *node {
	t.Helper()
	n := newProcNode(t, "e2e", dataDir, freePorts(t), env, extra...)
	n.start()
	return n
}

// newProcNode prepares (without starting) a node with the given id and
// ports; its process is killed at the end of the test if still running.
func newProcNode(t testing.TB, id, dataDir string, p ports, env []string, extra ...string) *node {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	n := &node{
		t: t, dataDir: dataDir, addr: fmt.Sprintf("http://127.0.0.1:%d", p.http), env: env,
		args: append([]string{"serve", "--data-dir", dataDir, "--http-addr", fmt.Sprintf("127.0.0.1:%d", p.http), "--node-id", id,
			"--gossip-addr", fmt.Sprintf("127.0.0.1:%d", p.gossip), "--raft-addr", fmt.Sprintf("127.0.0.1:%d", p.raft)}, extra...),
	}
	t.Cleanup(func() {
		if n.cmd != nil && n.running() {
			n.cmd.Process.Signal(syscall.SIGCONT) // in case a test left it stopped
			n.cmd.Process.Kill()
			<-n.done
		}
		if t.Failed() {
			t.Logf("tokencache logs:\n%s", n.logs.String())
		}
	})
	return n
}

// start launches the process and waits until it is ready.
func (n *node) start() {
	n.t.Helper()
	n.launch()
	n.waitReady(20 * time.Second)
}

// arg returns the value n was started with for flag (the argument after
// its last occurrence, as the flag parser takes it), or "".
func (n *node) arg(flag string) string {
	v := ""
	for i, a := range n.args {
		if a == flag && i+1 < len(n.args) {
			v = n.args[i+1]
		}
	}
	return v
}

// launch starts the process without waiting for it.
func (n *node) launch() {
	n.t.Helper()
	n.launchCmd(exec.Command(binary, n.args...))
}

// launchCmd starts cmd (which runs the binary with n's arguments) as n's
// process, with n's environment and its output in n.logs, without waiting
// for it.
func (n *node) launchCmd(cmd *exec.Cmd) {
	n.t.Helper()
	n.cmd = cmd
	n.cmd.Env = append(daemonEnviron(), n.env...)
	n.logs = &syncBuffer{}
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.done = make(chan struct{})
	go func() { n.exitErr = n.cmd.Wait(); close(n.done) }()
}

// waitReady waits until /readyz answers 200.
func (n *node) waitReady(timeout time.Duration) {
	n.t.Helper()
	waitFor(n.t, timeout, "node ready", func() bool {
		if !n.running() {
			n.t.Fatalf("tokencache exited before it was ready: %v\n%s", n.exitErr, n.logs.String())
		}
		resp, err := http.Get(n.addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func (n *node) running() bool {
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// stop sends sig and waits for the process to exit, returning its error.
func (n *node) stop(sig syscall.Signal) error {
	n.t.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil {
		n.t.Fatal(err)
	}
	select {
	case <-n.done:
		return n.exitErr
	case <-time.After(30 * time.Second):
		n.t.Fatalf("tokencache did not exit 30s after %v", sig)
		return nil
	}
}

func (n *node) adminToken() string {
	n.t.Helper()
	b, err := os.ReadFile(filepath.Join(n.dataDir, "admin.token"))
	if err != nil {
		n.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// call sends a request and decodes a JSON answer (when out is not nil).
func (n *node) call(method, path, bearer string, body any, out any) (int, http.Header) {
	n.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, n.addr+path, r)
	if err != nil {
		n.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			n.t.Fatalf("%s %s: cannot decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, resp.Header
}

type issued struct {
	Token string `json:"token"`
	Key   string `json:"key"`
}

func (n *node) issue(admin string, body map[string]any) issued {
	n.t.Helper()
	var out issued
	if code, _ := n.call("POST", "/v1/tokens", admin, body, &out); code != 201 {
		n.t.Fatalf("POST /v1/tokens = %d, want 201", code)
	}
	return out
}

func (n *node) validate(tok string) (int, string) {
	n.t.Helper()
	var out struct {
		Active bool   `json:"active"`
		Error  string `json:"error"`
	}
	code, _ := n.call("GET", "/v1/validate", tok, nil, &out)
	return code, out.Error
}

// callQuiet is call without failing the test on a transport error (a node
// may be down); it returns status 0 then. body is optional.
func (n *node) callQuiet(method, path, bearer string, out any, body ...any) (int, http.Header) {
	var r io.Reader
	if len(body) > 0 {
		b, _ := json.Marshal(body[0])
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, n.addr+path, r)
	if err != nil {
		return 0, nil
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	client := &http.Client{Timeout: 15 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		json.Unmarshal(raw, out)
	}
	return resp.StatusCode, resp.Header
}

// validateQuiet is validate without failing on transport errors.
func (n *node) validateQuiet(tok string) (int, string) {
	var out struct {
		Error string `json:"error"`
	}
	code, _ := n.callQuiet("GET", "/v1/validate", tok, &out)
	return code, out.Error
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
