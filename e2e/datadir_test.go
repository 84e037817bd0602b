package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecondProcessOnSameDataDirFailsAtOnce starts a node, then a second
// process on the same data dir (other ports): the second must exit at once,
// non-zero, saying the data dir is in use, and the first keeps serving.
func TestSecondProcessOnSameDataDirFailsAtOnce(t *testing.T) {
	first := startNode(t, "", nil)
	admin := first.adminToken()
	second := newProcNode(t, "e2e", first.dataDir, freePorts(t), nil)
	second.launch()
	select {
	case <-second.done:
	case <-time.After(10 * time.Second):
		// Before the fix it hangs on the Raft log's lock; SIGTERM does not stop it either.
		second.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-second.done:
			t.Fatalf("a second tokencache on the same data dir was still running 10s after start (it stopped on SIGTERM); logs:\n%s", second.logs.String())
		case <-time.After(5 * time.Second):
			t.Fatalf("a second tokencache on the same data dir was still running 10s after start and ignored SIGTERM; logs:\n%s", second.logs.String())
		}
	}
	code := second.cmd.ProcessState.ExitCode()
	logs := second.logs.String()
	if code == 0 {
		t.Errorf("second process on the same data dir exited with code 0, want non-zero; logs:\n%s", logs)
	}
	if !strings.Contains(logs, "in use by another tokencache process") || !strings.Contains(logs, first.dataDir) {
		t.Errorf("second process logs = %q, want it to say the data dir %s is in use", logs, first.dataDir)
	}
	// The first node is untouched.
	tok := first.issue(admin, map[string]any{"username": "alice"})
	if code, _ := first.validate(tok.Token); code != 200 {
		t.Errorf("first node: validate after the second process failed = %d, want 200", code)
	}
	if err := first.stop(syscall.SIGTERM); err != nil {
		t.Errorf("first node: exit after SIGTERM = %v, want success", err)
	}
	// Once the first has stopped, the data dir is free again.
	third := newProcNode(t, "e2e", first.dataDir, freePorts(t), nil)
	third.start()
	if code, _ := third.validate(tok.Token); code != 200 {
		t.Errorf("restarted node: validate = %d, want 200", code)
	}
}
