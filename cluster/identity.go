package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tokencache/tokencache/replica"
	"github.com/tokencache/tokencache/token"
)

// The cluster's identity (DESIGN.md §8): a cluster id created once, when the
// cluster is bootstrapped, and never changed. It lives
//
//   - in the replicated state (replica.OpClusterID, which the first ready
//     leader of the cluster commits; snapshots carry it), so that every node
//     that applies the cluster's log, or installs one of its snapshots,
//     learns the same id, and an id that was never committed does not count;
//   - in each node's data dir (<data_dir>/raft/cluster-id, boltdb mode), so
//     that a node knows which cluster its Raft state belongs to before it
//     talks to anyone;
//   - in gossip metadata, with whether the node holds Raft state: a node
//     bootstraps only when no node it can see holds state or belongs to a
//     cluster, a leader never adds a node that holds another cluster's
//     state, and gossip refuses to merge nodes of two different clusters.
//
// The bootstrapping node derives it from the bootstrap configuration (the
// cluster name and the sorted Raft server IDs of the first voters, which
// carry random suffixes): a node that computed the same voter list
// computes the same id, and two bootstraps never share one. The log's id wins over the data dir's
// (a node whose file names another id adopts the committed one and says so).

const (
	clusterIDFile    = "cluster-id"
	identityInterval = 100 * time.Millisecond
)

// ClusterID returns the identity of the cluster this node belongs to: the
// one committed in its replicated state, else the one in its data dir, else
// "" (a new node, not yet bootstrapped nor added). Safe for concurrent use;
// it does not block.
func (n *Node) ClusterID() string {
	if p := n.clusterID.Load(); p != nil {
		return *p
	}
	return ""
}

// deriveClusterID returns the id of a cluster bootstrapped with the given
// name and first voters (Raft server IDs): 128 bits of their SHA-256, in
// hex.
func deriveClusterID(name string, voters []string) string {
	ids := slices.Clone(voters)
	slices.Sort(ids)
	h := sha256.Sum256([]byte(name + "\x00" + strings.Join(ids, "\x00")))
	return hex.EncodeToString(h[:16])
}

// randomClusterID returns a new id for a cluster that has Raft state but
// no id anywhere (its log was written by a version without identities).
func randomClusterID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

func validClusterID(id string) bool {
	if len(id) == 0 || len(id) > maxClusterIDLen {
		return false
	}
	for _, c := range []byte(id) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// loadClusterID reads the cluster id of the data dir ("" when none).
func loadClusterID(dir string) (string, error) {
	path := filepath.Join(dir, clusterIDFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %w", path, err)
	}
	id := strings.TrimSpace(string(b))
	if !validClusterID(id) {
		return "", fmt.Errorf("cannot read %s: corrupt cluster id file", path)
	}
	return id, nil
}

// adoptClusterID records the id the replicated state holds (called by the
// FSM right after it applied an OpClusterID or restored a snapshot, so that
// a node holding that entry holds the id in its data dir too). The log's id
// wins over the data dir's. Gossip learns it from identityLoop.
func (n *Node) adoptClusterID(id string) {
	old := n.ClusterID()
	if id == "" || id == old {
		return
	}
	if old != "" {
		n.log.Error("the replicated log names another cluster than this node's data dir; the log's is kept",
			"cluster_id", id, "data_dir_cluster_id", old)
	}
	if err := n.recordClusterID(id); err != nil {
		n.log.Error("cannot record the cluster id", "err", err)
		return
	}
	n.log.Info("cluster id learned from the replicated state", "cluster_id", id)
}

// setClusterID records id as this node's cluster (in its data dir first,
// boltdb mode) and announces it in gossip.
func (n *Node) setClusterID(id string) error {
	if err := n.recordClusterID(id); err != nil {
		return err
	}
	if n.disc != nil {
		n.disc.announce()
	}
	return nil
}

// recordClusterID writes id to the data dir (boltdb mode), then makes it
// this node's.
func (n *Node) recordClusterID(id string) error {
	n.idMu.Lock()
	defer n.idMu.Unlock()
	if !validClusterID(id) {
		return fmt.Errorf("cannot record cluster id %q: not 1 to %d lowercase hex digits", id, maxClusterIDLen)
	}
	if n.cfg.RaftStore != StoreMemory {
		if err := writeFileSync(filepath.Join(n.raftDir(), clusterIDFile), []byte(id+"\n")); err != nil {
			return fmt.Errorf("cannot record the cluster id: %w", err)
		}
	}
	n.clusterID.Store(&id)
	return nil
}

// hasRaftState reports whether this node holds Raft state: it started with
// some, or it has a log now (bootstrapped, or added and replicated to).
func (n *Node) hasRaftState() bool {
	return n.hadState || (n.raft != nil && n.raft.LastIndex() > 0)
}

// identityLoop keeps the node's identity current: it adopts the id its
// replicated state holds (if the FSM's write failed), announces a change of id or of holding state in
// gossip, and as the ready leader of a cluster whose state has no id yet,
// commits one.
func (n *Node) identityLoop(ctx context.Context) {
	t := time.NewTicker(identityInterval)
	defer t.Stop()
	announced := n.localMeta()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if id := n.state.ClusterID(); id != "" && id != n.ClusterID() {
			n.adoptClusterID(id) // normally done by the FSM already; a retry after a failed write
		}
		n.learnClusterIDFromLog()
		if n.IsLeader() && n.state.ClusterID() == "" {
			n.commitClusterID(ctx)
		}
		if m := n.localMeta(); m.ClusterID != announced.ClusterID || m.HasState != announced.HasState {
			announced = m
			n.disc.announce()
		}
	}
}

// commitClusterID commits the cluster's id: the one derived from the
// log's first entry (the bootstrap configuration: the id the bootstrapping
// node recorded, whichever node leads first), else this node's, else a new
// one (a log from before identities, compacted past its first entry). The
// first one applied wins; a second leader's is ignored by every node alike.
func (n *Node) commitClusterID(ctx context.Context) {
	id := n.bootstrapClusterID()
	if id == "" {
		id = n.ClusterID()
	}
	if id == "" {
		id = randomClusterID()
	}
	ctx, cancel := context.WithTimeout(ctx, 2*n.cfg.ElectionTimeout)
	defer cancel()
	cmd := &replica.Command{Op: replica.OpClusterID, Time: token.At(time.Now()), ClusterID: id}
	if _, err := n.Propose(ctx, cmd); err != nil {
		n.log.Warn("cannot commit the cluster id", "cluster_id", id, "err", err)
		return
	}
	n.log.Info("committed the cluster id", "cluster_id", n.state.ClusterID())
}

// learnClusterIDFromLog gives a node that holds Raft state but no cluster
// id yet the id its own log proves: the one derived from the bootstrap
// configuration at index 1, which every voter receives first. A follower
// cut off from the leader before the OpClusterID entry reached it would
// otherwise announce state of "no known cluster", and once removed as dead
// no leader would add it back. It reports whether it learned one.
func (n *Node) learnClusterIDFromLog() bool {
	if n.ClusterID() != "" || n.stores == nil || !n.hasRaftState() {
		return false
	}
	id := n.bootstrapClusterID()
	if id == "" {
		return false
	}
	if err := n.recordClusterID(id); err != nil {
		n.log.Error("cannot record the cluster id", "err", err)
		return false
	}
	n.log.Info("cluster id learned from the log's bootstrap configuration", "cluster_id", id)
	return true
}

// bootstrapClusterID derives the cluster id from the log's first entry, the
// configuration the cluster was bootstrapped with ("" when the log no
// longer holds it).
func (n *Node) bootstrapClusterID() (id string) {
	var l raft.Log
	if err := n.stores.logs.GetLog(1, &l); err != nil || l.Type != raft.LogConfiguration {
		return ""
	}
	defer func() {
		if recover() != nil { // raft.DecodeConfiguration panics on garbage
			id = ""
		}
	}()
	var voters []string
	for _, s := range raft.DecodeConfiguration(l.Data).Servers {
		voters = append(voters, string(s.ID))
	}
	if len(voters) == 0 {
		return ""
	}
	return deriveClusterID(n.cfg.Name, voters)
}

// foreignState reports why a member that holds Raft state may not be added
// to this cluster ("" when it may): its state belongs to another cluster,
// or to none this leader can vouch for.
func (n *Node) foreignState(hasState bool, theirs string) string {
	if !hasState {
		return ""
	}
	ours := n.ClusterID()
	switch {
	case ours == "":
		return "it holds raft state and this cluster's id is not known yet"
	case theirs == "":
		return "it holds raft state of no known cluster (a data dir from an older version, or a crash before it learned its cluster)"
	case theirs != ours:
		return fmt.Sprintf("it holds raft state of cluster %s, not %s", theirs, ours)
	}
	return ""
}

// settingsMismatch returns why this node's settings fingerprint keeps it
// out of the cluster ("" when nothing says so): the leader announces
// another one, or, with no leader known, a member that holds the
// cluster's state does.
func (n *Node) settingsMismatch() string {
	if n.disc == nil {
		return ""
	}
	if r := n.disc.leaderMismatch(); r != "" {
		return r
	}
	if addr, _ := n.leaderRPCAddr(); addr != "" {
		return ""
	}
	members := n.disc.snapshot()
	ids := make([]string, 0, len(members))
	for id := range members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		m := members[id]
		if id == n.cfg.NodeID || m.status != statusAlive || m.metaErr != nil || m.meta.Cluster != n.cfg.Name ||
			!m.meta.HasState || m.meta.Fingerprint == n.cfg.Fingerprint {
			continue
		}
		return fmt.Sprintf("fingerprint mismatch: this node's settings fingerprint %q differs from %q of member %s, "+
			"which holds the cluster's state; it is never added (give it the cluster's settings: tokens and cluster-wide keys)",
			n.cfg.Fingerprint, m.meta.Fingerprint, id)
	}
	return ""
}
