package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestSingleNodeRestart issues, validates and revokes tokens on a real
// process, stops it with SIGTERM, restarts it on the same data dir, and finds
// every token and every revocation intact.
func TestSingleNodeRestart(t *testing.T) {
	// No lifetime limit: the test issues a token that never expires.
	n := startNode(t, "", []string{"TOKENCACHE_TOKENS_MAX_LIFETIME=-1"})
	admin := n.adminToken()
	// The only server of its cluster cannot leave it: 409 at once, and it
	// keeps serving.
	var leave struct{ Error string }
	if code, hdr := n.call("POST", "/v1/cluster/leave", admin, nil, &leave); code != 409 || leave.Error != "last_server" || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("POST /v1/cluster/leave on a lone node = %d %q (Cache-Control %q), want 409 last_server no-store", code, leave.Error, hdr.Get("Cache-Control"))
	}
	if fi, err := os.Stat(filepath.Join(n.dataDir, "admin.token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin.token mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if strings.Contains(n.logs.String(), admin) {
		t.Error("the generated admin token appears in the logs")
	}
	live := n.issue(admin, map[string]any{"username": "alice", "type": "user", "scopes": []string{"read"}, "name": "laptop"})
	child := n.issue(admin, map[string]any{"username": "alice", "type": "user", "parent": live.Key, "scopes": []string{"read"}})
	dead := n.issue(admin, map[string]any{"username": "bob", "type": "session", "no_expire": true})
	if code, _ := n.validate(live.Token); code != 200 {
		t.Fatalf("validate(live) = %d, want 200", code)
	}
	var revoked struct{ Revoked []string }
	if code, _ := n.call("DELETE", "/v1/tokens/"+dead.Key, admin, nil, &revoked); code != 200 || len(revoked.Revoked) != 1 {
		t.Fatalf("DELETE = %d %v", code, revoked.Revoked)
	}
	if code, _ := n.call("GET", "/v1/tokens/"+live.Key, "", nil, nil); code != 401 {
		t.Errorf("admin call without the admin token = %d, want 401", code)
	}

	if err := n.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, n.logs.String())
	}
	for _, tok := range []string{live.Token, child.Token, dead.Token, admin} {
		if strings.Contains(n.logs.String(), tok) {
			t.Fatalf("a token secret appears in the logs")
		}
	}

	n.start()
	if code, _ := n.validate(live.Token); code != 200 {
		t.Errorf("after restart validate(live) = %d, want 200", code)
	}
	if code, _ := n.validate(child.Token); code != 200 {
		t.Errorf("after restart validate(child) = %d, want 200", code)
	}
	if code, reason := n.validate(dead.Token); code != 401 || reason != "revoked" {
		t.Errorf("after restart validate(revoked) = %d %q, want 401 revoked", code, reason)
	}
	// Cascade still works on records that came back from the store.
	if code, _ := n.call("DELETE", "/v1/tokens/"+live.Key, admin, nil, &revoked); code != 200 || len(revoked.Revoked) != 2 {
		t.Fatalf("DELETE(parent) = %d %v, want the parent and its child", code, revoked.Revoked)
	}
	if code, reason := n.validate(child.Token); code != 401 || reason != "revoked" {
		t.Errorf("validate(child of revoked) = %d %q, want 401 revoked", code, reason)
	}
	if err := n.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("second SIGTERM: %v", err)
	}
}

// TestBadConfigRefusesToStart: a configuration error exits non-zero with
// every problem listed, and writes nothing into the data dir.
func TestBadConfigRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.yaml")
	os.WriteFile(cfg, []byte("tokens:\n  expiry: 48h\n  retention: 24h\ncache:\n  capacity: 0\n  colour: blue\n"), 0o600)
	data := filepath.Join(dir, "data")
	out, err := execOutput(binary, "serve", "--config", cfg, "--data-dir", data)
	if err == nil {
		t.Fatal("serve with a bad config exited 0")
	}
	for _, want := range []string{"tokens.expiry", "cache.capacity", "colour"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not name %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("a rejected config created the data dir (%v)", err)
	}
}
