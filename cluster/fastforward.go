package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// Fast-forward (DESIGN.md, "Fast-forward"). Every SQL row carries the log
// index that last changed it, the store records the index it is complete up
// to (P), and the writer only writes changes above P, over rows with smaller
// indexes. A new Raft log started over a store that an earlier log wrote
// (memory raft store after a whole-cluster restart, wiped data dirs over a
// kept MySQL, sidecars with emptyDir data dirs over one MySQL) numbers its
// entries 1, 2, 3…, below P: its writes would never reach SQL. So before a
// new leader accepts a write it makes sure the log is past the store:
//
//   - when the log's last index is below P, or this node's local store is
//     foreign (it started a new log over rows an earlier log wrote, and
//     neither a snapshot nor a change has been applied since), it takes a
//     snapshot of its own state (Machine.SnapshotAt) claiming index
//     N = max(last index, P, largest row index) + 1, and installs it with
//     raft.Restore (a user restore: raft gives it index max(last, meta.Index)+1
//     = N, leaves a hole in the log below it so that every follower, and
//     every later joiner, gets it by InstallSnapshot, keeps the current
//     configuration, then commits a no-op);
//   - with a local store the snapshot carries every row of the leader's
//     store, so followers converge to it; with a shared store it carries
//     none, and every node ends with applied = N > P and persisted = P.
//
// Nothing appends to the log between the readiness barrier and the restore
// (every other append needs IsLeader, which stays false until this is done).

// ffEnqueueTimeout bounds how long raft.Restore waits for raft's leader loop
// to take the restore (not the restore itself, nor its commit).
func (n *Node) ffEnqueueTimeout() time.Duration { return 10 * n.cfg.ElectionTimeout }

// fastForward fast-forwards the log when it is behind the store (see
// above), retrying with backoff (the node is not ready meanwhile) until it
// succeeds or leadership ends (ctx). It reports whether it fast-forwarded.
func (n *Node) fastForward(ctx context.Context) (bool, error) {
	backoff := 50 * time.Millisecond
	var unconfirmed uint64 // a failed attempt restored locally at this index
	for attempt := 1; ; attempt++ {
		persisted, last, why, need := n.fastForwardNeeded()
		if !need {
			if unconfirmed != 0 {
				// raft installed it here but could not queue its no-op in
				// time: the readiness barrier that follows commits it.
				n.fastForwarded.Store(unconfirmed)
				n.log.Info("fast-forwarded the raft log past the store's persisted index (committed by the readiness barrier)",
					"persisted_index", persisted, "new_index", unconfirmed)
			}
			return unconfirmed != 0, nil
		}
		index, err := n.fastForwardOnce(ctx, persisted, last)
		if err == nil {
			n.fastForwarded.Store(index)
			n.log.Info("fast-forwarded the raft log past the store's persisted index",
				"persisted_index", persisted, "raft_last_index", last, "new_index", index, "why", why)
			return true, nil
		}
		if ctx.Err() != nil || n.raft.State() != raft.Leader {
			n.log.Warn("fast-forward of the raft log abandoned: no longer the leader", "persisted_index", persisted,
				"raft_last_index", last, "err", err)
			return false, fmt.Errorf("fast-forward abandoned: %w", err)
		}
		if index != 0 && n.state.AppliedIndex() >= index {
			unconfirmed = index
		}
		n.log.Error("CANNOT FAST-FORWARD THE RAFT LOG past the store's persisted index; this leader accepts no write "+
			"until it succeeds (writes at lower indexes would never reach the store); retrying",
			"persisted_index", persisted, "raft_last_index", last, "why", why, "attempt", attempt, "retry_in", backoff.String(), "err", err)
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// fastForwardNeeded reports whether the log must be fast-forwarded, with the
// store's persisted index, the log's last index and why.
func (n *Node) fastForwardNeeded() (persisted, last uint64, why string, need bool) {
	persisted = n.state.PersistedIndex()
	if n.state.SharedStore() {
		// A shared store's index only grows; what Start read is a floor
		// even if a snapshot restored since carried a smaller one.
		persisted = max(persisted, n.startPersisted)
	}
	last = n.raft.LastIndex()
	switch {
	case n.fsm.foreign.Load():
		return persisted, last, "this node's local store was written by an earlier raft log", true
	case last < persisted:
		return persisted, last, "the raft log is behind the store", true
	}
	return persisted, last, "", false
}

// fastForwardOnce makes one attempt and returns the new index (on error,
// the index it planned, or 0 if it did not get as far as raft.Restore).
func (n *Node) fastForwardOnce(ctx context.Context, persisted, last uint64) (uint64, error) {
	dir := os.TempDir()
	switch {
	case n.cfg.RaftStore != StoreMemory:
		dir = n.raftDir()
	case n.cfg.DataDir != "":
		dir = n.cfg.DataDir // writable where the root file system may not be
	}
	f, err := os.CreateTemp(dir, "fast-forward-*.snap")
	if err != nil {
		return 0, fmt.Errorf("cannot create a temporary snapshot file: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	// raft.Restore needs the size up front, and the rows of a local store
	// are streamed: spool the snapshot to a file. Rows may carry indexes
	// above the persisted index (a store refilled by a restore): the new
	// index goes past those too (a second pass, rarely).
	index := max(last, persisted) + 1
	var size int64
	for {
		snap := n.fsm.snapshotAt(index)
		if err := f.Truncate(0); err != nil {
			return 0, fmt.Errorf("cannot truncate %s: %w", f.Name(), err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return 0, fmt.Errorf("cannot rewind %s: %w", f.Name(), err)
		}
		if err := snap.WriteTo(ctx, f); err != nil {
			return 0, fmt.Errorf("cannot write the fast-forward snapshot: %w", err)
		}
		if size, err = f.Seek(0, io.SeekCurrent); err != nil {
			return 0, fmt.Errorf("cannot size %s: %w", f.Name(), err)
		}
		if m := snap.MaxRowIndex(); m >= index {
			index = m + 1
			continue
		}
		break
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("cannot rewind %s: %w", f.Name(), err)
	}
	if ctx.Err() != nil || n.raft.State() != raft.Leader {
		return 0, errors.New("not the leader")
	}
	meta := &raft.SnapshotMeta{
		Version: raft.SnapshotVersionMax,
		Index:   index - 1, // raft installs it at max(last index, Index) + 1
		Term:    n.raft.CurrentTerm(),
		Size:    size,
	}
	n.fsm.ownRestore.Store(true)
	err = n.restoreWatched(meta, f, index)
	n.fsm.ownRestore.Store(false)
	if err != nil {
		n.checkUncommittedFastForward(index, err)
		return index, fmt.Errorf("raft restore at index %d: %w", index, err)
	}
	if got := n.lastSnapshotIndex(); got != index {
		// Something was appended between reading the last index and the
		// restore (nothing should be): raft put the snapshot at got. The
		// state claims index < got until the next entry applies, which the
		// second readiness barrier does at once; writes go above got > P.
		n.log.Warn("fast-forward snapshot installed at another index than planned", "planned", index, "raft", got)
		index = max(index, got)
	}
	return index, nil
}

// restoreWatched runs raft.Restore, which returns once the no-op after the
// snapshot has committed (a quorum installed the snapshot) or leadership
// ends, and says so every 10s while it waits: a follower that cannot
// install it (its store fails) keeps this leader not ready.
func (n *Node) restoreWatched(meta *raft.SnapshotMeta, r io.Reader, index uint64) error {
	done := make(chan error, 1)
	go func() { done <- n.raft.Restore(meta, r, n.ffEnqueueTimeout()) }()
	start := time.Now()
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-t.C:
			n.log.Warn("fast-forward: waiting for a quorum to install the snapshot; no write is accepted meanwhile",
				"index", index, "bytes", meta.Size, "waited", time.Since(start).Round(time.Second).String())
		}
	}
}

// checkUncommittedFastForward handles a raft.Restore that failed after raft
// had already installed the snapshot here (hashicorp/raft's restore
// installs it locally, then waits for a no-op to commit): if this node lost
// leadership in between, its log ends with a snapshot the new leader may not
// have, which raft cannot truncate; this node could then neither follow the
// new leader nor be trusted (its applied index is past every entry the
// leader will send). It stops applying and leaves Raft (the fence fails
// closed, and a silent server is excused from revocation waits), loudly.
// Still the leader (the no-op could not be queued in time): the retry finds
// the log past the store and the readiness barrier commits the snapshot.
func (n *Node) checkUncommittedFastForward(index uint64, err error) {
	if n.state.AppliedIndex() < index || n.closing.Load() {
		return // the restore did not happen here, or the node is stopping
	}
	if n.raft.State() == raft.Leader {
		return
	}
	n.fsm.haltWith(fmt.Errorf("%w: fast-forward snapshot at index %d installed here but not committed before leadership was lost: %w", ErrHalted, index, err),
		"STATE MACHINE HALTED: this node installed its fast-forward snapshot but lost leadership before a quorum had it; "+
			"its raft log may disagree with the new leader's and raft cannot undo a snapshot. It leaves Raft. "+
			"Restart it (with raft_store memory it rejoins under a new identity; with boltdb, if it halts again, wipe its raft directory).")
}

// lastSnapshotIndex returns the index of raft's last snapshot on this node.
func (n *Node) lastSnapshotIndex() uint64 {
	v, _ := strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64)
	return v
}
