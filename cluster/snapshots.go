package cluster

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// Snapshots hold every token's hash, owner and scopes, so only the owner of
// the data dir may read them. raft.FileSnapshotStore creates its directories
// 0755 and its files 0644 (less the umask), with no option to change that:
// privateSnapshotStore wraps it and narrows the modes (directories 0700,
// files 0600) of the snapshots directory when the store is
// opened (which also fixes snapshots written by an earlier version), of a
// snapshot's temporary directory as soon as it is created, and of the
// finished snapshot once its sink is closed. Nothing is readable by others
// at any moment: the snapshots directory is 0700 before any snapshot is
// written into it.

// snapshotDirName is the directory raft.FileSnapshotStore keeps snapshots in.
const snapshotDirName = "snapshots"

// privateSnapshotStore is a raft.FileSnapshotStore whose files only the
// owner may read. It is safe for concurrent use as the store it wraps is.
type privateSnapshotStore struct {
	*raft.FileSnapshotStore
	dir string // <base>/snapshots
}

// openSnapshotStore opens the file snapshot store under base, keeping retain
// snapshots, with private modes.
func openSnapshotStore(base string, retain int, logOut io.Writer) (*privateSnapshotStore, error) {
	inner, err := raft.NewFileSnapshotStore(base, retain, logOut)
	if err != nil {
		return nil, err
	}
	s := &privateSnapshotStore{FileSnapshotStore: inner, dir: filepath.Join(base, snapshotDirName)}
	if err := makePrivate(s.dir); err != nil {
		return nil, err
	}
	return s, nil
}

// Create starts a snapshot (see raft.FileSnapshotStore.Create) in a
// directory only the owner may enter.
func (s *privateSnapshotStore) Create(version raft.SnapshotVersion, index, term uint64,
	configuration raft.Configuration, configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.FileSnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	if err := makePrivate(filepath.Join(s.dir, sink.ID()+".tmp")); err != nil {
		_ = sink.Cancel()
		return nil, err
	}
	return &privateSnapshotSink{SnapshotSink: sink, final: filepath.Join(s.dir, sink.ID())}, nil
}

// privateSnapshotSink narrows the modes of the finished snapshot.
type privateSnapshotSink struct {
	raft.SnapshotSink
	final string
}

// Close finishes the snapshot and makes its files private.
func (k *privateSnapshotSink) Close() error {
	if err := k.SnapshotSink.Close(); err != nil {
		return err
	}
	return makePrivate(k.final)
}

// makePrivate sets every directory under root (root included) to 0700 and
// every other file to 0600.
func makePrivate(root string) error {
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode().Perm() == want {
			return nil
		}
		return os.Chmod(p, want)
	})
	if err != nil {
		return fmt.Errorf("cannot restrict the modes of %s to its owner: %w", root, err)
	}
	return nil
}
