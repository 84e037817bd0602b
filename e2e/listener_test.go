package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// launchWithFDLimit starts n under `ulimit -n limit` (soft and hard, so the
// Go runtime cannot raise it).
func (n *node) launchWithFDLimit(limit int) {
	n.t.Helper()
	n.launchCmd(exec.Command("bash", append([]string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, limit), binary}, n.args...)...))
}

// TestOutOfFileDescriptorsKeepsServing starts a node limited to 256 file
// descriptors and opens 300 idle connections to its HTTP port: accept fails
// with EMFILE, and the node must keep running (it exited with code 0) and
// answer again once the connections close.
func TestOutOfFileDescriptorsKeepsServing(t *testing.T) {
	const limit, conns = 256, 300
	n := newProcNode(t, "e2e", "", freePorts(t), nil)
	n.launchWithFDLimit(limit)
	n.waitReady(30 * time.Second)
	hostPort := strings.TrimPrefix(n.addr, "http://")

	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := 0; i < conns; i++ {
		c, err := net.DialTimeout("tcp", hostPort, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		open = append(open, c)
	}
	// The node has run out of descriptors; give it time to fail.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if !n.running() {
			t.Fatalf("tokencache exited (%v) after %d idle connections with a limit of %d descriptors; logs:\n%s",
				n.exitErr, conns, limit, n.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, c := range open {
		c.Close()
	}
	open = nil
	waitFor(t, 30*time.Second, "the node to answer after the idle connections closed", func() bool {
		if !n.running() {
			t.Fatalf("tokencache exited (%v) after running out of descriptors; logs:\n%s", n.exitErr, n.logs.String())
		}
		client := &http.Client{Timeout: 2 * time.Second}
		resp, err := client.Get(n.addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if !strings.Contains(n.logs.String(), "too many open files") {
		t.Errorf("the node did not log the accept error; logs:\n%s", n.logs.String())
	}
	admin := n.adminToken()
	tok := n.issue(admin, map[string]any{"username": "alice"})
	if code, _ := n.validate(tok.Token); code != 200 {
		t.Errorf("validate after the descriptors came back = %d, want 200", code)
	}
	if err := n.stop(syscall.SIGTERM); err != nil {
		t.Errorf("exit after SIGTERM = %v, want success", err)
	}
}

// TestListenerFailureExitsNonZero breaks the node's HTTP listening socket
// from outside (a duplicate of it, taken with pidfd_getfd, is shut down, so
// accept fails with EINVAL, a permanent error): the node must stop with a
// non-zero exit code, so that a supervisor restarts it.
func TestListenerFailureExitsNonZero(t *testing.T) {
	n := startNode(t, "", nil)
	port, _ := strconv.Atoi(n.addr[strings.LastIndexByte(n.addr, ':')+1:])
	fd := listeningSocketFD(t, n.cmd.Process.Pid, port)
	dup := pidfdGetfd(t, n.cmd.Process.Pid, fd)
	defer syscall.Close(dup)
	if err := syscall.Shutdown(dup, syscall.SHUT_RD); err != nil {
		t.Fatalf("shutdown(listening socket) = %v", err)
	}
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("tokencache still runs 30s after its HTTP listener failed; logs:\n%s", n.logs.String())
	}
	if code := n.cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("tokencache exited with code 0 after its HTTP listener failed, want non-zero; logs:\n%s", n.logs.String())
	}
	if !strings.Contains(n.logs.String(), "HTTP server stopped") {
		t.Errorf("logs do not say the HTTP server stopped:\n%s", n.logs.String())
	}
}

// listeningSocketFD returns the descriptor number, in process pid, of the
// TCP socket listening on port.
func listeningSocketFD(t *testing.T, pid, port int) int {
	t.Helper()
	inode := ""
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			if strings.HasSuffix(f[1], fmt.Sprintf(":%04X", port)) {
				inode = f[9]
			}
		}
	}
	if inode == "" {
		t.Fatalf("no socket of pid %d listens on port %d", pid, port)
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && target == "socket:["+inode+"]" {
			fd, _ := strconv.Atoi(e.Name())
			return fd
		}
	}
	t.Fatalf("pid %d has no descriptor for socket inode %s", pid, inode)
	return -1
}

// pidfdGetfd duplicates descriptor fd of process pid into this process
// (Linux 5.6+; the same system call numbers on amd64 and arm64).
func pidfdGetfd(t *testing.T, pid, fd int) int {
	t.Helper()
	const sysPidfdOpen, sysPidfdGetfd = 434, 438
	pidfd, _, errno := syscall.Syscall(sysPidfdOpen, uintptr(pid), 0, 0)
	if errno != 0 {
		t.Fatalf("pidfd_open(%d) = %v", pid, errno)
	}
	defer syscall.Close(int(pidfd))
	dup, _, errno := syscall.Syscall(sysPidfdGetfd, pidfd, uintptr(fd), 0)
	if errno != 0 {
		t.Fatalf("pidfd_getfd(%d, %d) = %v", pid, fd, errno)
	}
	return int(dup)
}
