package cluster

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/hashicorp/raft"
)

// checkPrivateTree fails the test for any directory under root not 0700 and
// any file not 0600.
func checkPrivateTree(t *testing.T, root string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o, want %04o (snapshots hold token hashes)", p, got, want)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 4 {
		t.Fatalf("walked %d entries under %s, want the snapshots dir, a snapshot dir and its two files", n, root)
	}
}

// TestSnapshotFilesArePrivate takes a snapshot through the stores a node
// opens, under the usual umask 022, and checks that no one but the owner
// can read it; and that snapshots left readable by an earlier version are
// made private when the stores are opened again.
func TestSnapshotFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.RaftStore = StoreBoltDB
	stores, err := openRaftStores(cfg, dir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer stores.closer.Close()
	sink, err := stores.snaps.Create(raft.SnapshotVersionMax, 10, 2, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatalf("Create() = %v", err)
	}
	if _, err := sink.Write([]byte("token hashes")); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatalf("sink.Close() = %v", err)
	}
	snapDir := filepath.Join(dir, "snapshots")
	checkPrivateTree(t, snapDir)

	// An earlier version left them readable.
	filepath.WalkDir(snapDir, func(p string, d fs.DirEntry, err error) error {
		if d.IsDir() {
			return os.Chmod(p, 0o755)
		}
		return os.Chmod(p, 0o644)
	})
	stores.closer.Close()
	stores, err = openRaftStores(cfg, dir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	checkPrivateTree(t, snapDir)
	metas, err := stores.snaps.List()
	if err != nil || len(metas) != 1 {
		t.Fatalf("List() = %d snapshots, %v; want 1", len(metas), err)
	}
	_, rc, err := stores.snaps.Open(metas[0].ID)
	if err != nil {
		t.Fatalf("Open(%s) = %v", metas[0].ID, err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "token hashes" {
		t.Errorf("snapshot reads %q, want %q", b, "token hashes")
	}
}
