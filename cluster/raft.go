package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Raft storage and identity.
//
// boltdb mode: <data_dir>/raft/raft.db (raft-boltdb v2, bbolt) holds the log
// and the stable store (term, vote), wrapped in raft.NewLogCache; snapshots
// live in <data_dir>/raft/snapshots (FileSnapshotStore, 2 retained, made
// private: directories 0700, files 0600, see snapshots.go); the
// server-id file binds the directory to one node id and one Raft server ID.
//
// memory mode: InmemStore + InmemSnapshotStore. Such a node forgets its
// term, its vote and its log on restart, so it must never answer for its
// earlier Raft identity: it starts under a new server ID every time
// (node id + "@" + random suffix) and the leader adds it again (and removes
// the old ID, which nobody answers for any more: see mux.go).

const (
	raftDirName      = "raft"
	serverIDFile     = "server-id"
	logCacheSize     = 512
	maxAppendEntries = 64
)

type serverIdentity struct {
	NodeID string `json:"node_id"`
	RaftID string `json:"raft_id"`
}

// newRaftID returns a fresh Raft server ID for node.
func newRaftID(node string) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return node + "@" + hex.EncodeToString(b[:])
}

// loadIdentity returns the Raft server ID persisted in dir for node, creating
// it on first start. A directory that belongs to another node id is refused.
func loadIdentity(dir, node string) (string, error) {
	path := filepath.Join(dir, serverIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		var id serverIdentity
		if err := json.Unmarshal(b, &id); err != nil || nodeOfRaftID(id.RaftID) != id.NodeID {
			return "", fmt.Errorf("cannot read %s: corrupt identity file", path)
		}
		if id.NodeID != node {
			return "", fmt.Errorf("%w: %s holds the raft identity of node %q, not %q (change node.id back, or wipe the directory to join as a new server)",
				ErrIdentityMismatch, dir, id.NodeID, node)
		}
		return id.RaftID, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("cannot read %s: %w", path, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("cannot create %s: %w", dir, err)
	}
	id := serverIdentity{NodeID: node, RaftID: newRaftID(node)}
	b, _ = json.Marshal(id)
	if err := writeFileSync(path, append(b, '\n')); err != nil {
		return "", err
	}
	return id.RaftID, nil
}

// writeFileSync writes path atomically (temp file, fsync, rename, fsync dir).
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot rename %s: %w", tmp, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// raftStores are the log, stable and snapshot stores of one node.
type raftStores struct {
	logs   raft.LogStore
	stable raft.StableStore
	snaps  raft.SnapshotStore
	closer io.Closer // nil in memory mode
}

func openRaftStores(c Config, dir string, logOut io.Writer) (*raftStores, error) {
	if c.RaftStore == StoreMemory {
		mem := raft.NewInmemStore()
		return &raftStores{logs: mem, stable: mem, snaps: raft.NewInmemSnapshotStore()}, nil
	}
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("cannot open raft log store in %s: %w", dir, err)
	}
	cached, err := raft.NewLogCache(logCacheSize, bolt)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("cannot create raft log cache: %w", err)
	}
	snaps, err := openSnapshotStore(dir, c.SnapshotRetain, logOut)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("cannot open raft snapshot store in %s: %w", dir, err)
	}
	return &raftStores{logs: cached, stable: bolt, snaps: snaps, closer: bolt}, nil
}

// raftConfig builds hashicorp/raft's configuration from c.
func raftConfig(c Config, raftID string, notify chan<- bool, logger hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(raftID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLease
	rc.CommitTimeout = c.CommitTimeout
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.TrailingLogs = c.TrailingLogs
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = maxAppendEntries
	rc.ShutdownOnRemove = true
	rc.NotifyCh = notify
	rc.NoLegacyTelemetry = true
	rc.Logger = logger
	return rc
}

// transportTimeout is the I/O deadline of Raft's transport: 3× the
// heartbeat timeout, between 1s and 10s. It is how long a heartbeat to a
// stopped (SIGSTOP, frozen VM) peer takes to fail, so it bounds how soon a
// revocation can stop waiting for that peer; long enough for a full batch
// of entries on a LAN (snapshots scale their own deadline with their size).
func transportTimeout(c Config) time.Duration {
	return min(max(3*c.HeartbeatTimeout, time.Second), 10*time.Second)
}

// noPipelining is the transport's MaxRPCsInFlight: one AppendEntries at a
// time per follower, which turns raft's pipelined replication off.
//
// hashicorp/raft (1.8.0) can deadlock a pipeline for good
// (hashicorp/raft#612): when a follower answers Success=false or a newer
// term, pipelineDecode returns, and the send loop may still pick a ready
// trigger over the closed finish channel; with the default of 2 in flight
// both pipeline channels are unbuffered, so that send parks on
// inprogressCh while the response decoder parks on doneCh, and nothing
// closes the pipeline. The follower keeps getting heartbeats (it never
// calls an election) but no more log entries, and Raft.Shutdown waits
// forever for the replication goroutine. The in-process checked
// histories hit it (a node's Close hung for 9 minutes). A larger
// MaxRPCsInFlight only makes it unlikely; without the pipeline it cannot
// happen. Writes still go out in batches of up to MaxAppendEntries.
const noPipelining = 1
