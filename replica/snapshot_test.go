package replica

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// The cluster id travels in snapshots (version 2), and a version-1
// snapshot, which has none, is still read.
func TestSnapshotClusterID(t *testing.T) {
	ctx := context.Background()
	src := newState(t, nil, "")
	src.Apply(1, put(1, record("alice", 1)))
	var v1 bytesBuffer // written before the cluster id exists: converted to version 1 below
	if err := src.Snapshot().WriteTo(ctx, &v1); err != nil {
		t.Fatal(err)
	}
	next := src.AppliedIndex() + 1
	src.Apply(next, &Command{Op: OpClusterID, ClusterID: "c1"})
	src.Apply(next+1, &Command{Op: OpClusterID, ClusterID: "c2"}) // the first one wins
	if got := src.ClusterID(); got != "c1" {
		t.Fatalf("ClusterID() after two OpClusterID = %q, want c1", got)
	}
	var v2 bytesBuffer
	if err := src.Snapshot().WriteTo(ctx, &v2); err != nil {
		t.Fatal(err)
	}
	dst := newState(t, nil, "")
	if err := dst.Restore(ctx, v2.reader()); err != nil {
		t.Fatal(err)
	}
	if got := dst.ClusterID(); got != "c1" {
		t.Errorf("ClusterID() after restoring a version-2 snapshot = %q, want c1", got)
	}

	// Version 1: same layout without the cluster id (an empty string here).
	b := v1.bytes()
	pos := len(snapshotMagic)
	if b[pos] != 2 {
		t.Fatalf("snapshot version byte = %d, want 2", b[pos])
	}
	b[pos] = 1
	_, n1 := binary.Uvarint(b[pos+1:])
	_, n2 := binary.Uvarint(b[pos+1+n1:])
	at := pos + 1 + n1 + n2
	if b[at] != 0 {
		t.Fatalf("empty cluster id encoded as %d, want 0", b[at])
	}
	b = append(b[:at], b[at+1:]...)
	body := b[:len(b)-4]
	b = binary.BigEndian.AppendUint32(body, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	old := newState(t, nil, "")
	if err := old.Restore(ctx, (&bytesBuffer{b: b}).reader()); err != nil {
		t.Fatalf("Restore(version-1 snapshot) = %v", err)
	}
	if got := old.ClusterID(); got != "" {
		t.Errorf("ClusterID() after a version-1 snapshot = %q, want empty", got)
	}
	if old.AppliedIndex() != next-1 {
		t.Errorf("applied index after a version-1 snapshot = %d, want %d", old.AppliedIndex(), next-1)
	}
}
