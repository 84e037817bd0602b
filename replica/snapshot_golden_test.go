package replica

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokencache/tokencache/cache"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

// goldenSnapshotState returns a state whose snapshot is always the same
// bytes: two puts (one with an Idempotency-Key) and a deletion, all still
// pinned (the writer is not started), and a cluster id.
func goldenSnapshotState(t *testing.T) *Machine {
	c, err := cache.New(cache.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMachine(DefaultWriterConfig(), c, openMemory(t), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	cmds := goldenCommands()
	full, plain := cmds["put"].Puts[0], cmds["put"].Puts[1]
	first := &Command{Op: OpPut, Time: goldenTime, Puts: []*token.Token{full}, IdempotencyKey: "req-1"}
	m.Apply(1, first)
	m.Apply(2, &Command{Op: OpPut, Time: goldenTime, Puts: []*token.Token{plain}})
	m.Apply(3, &Command{Op: OpDelete, Time: goldenTime, Deletes: []persist.Delete{{Key: full.Key, MaxIndex: 1}}})
	m.Apply(4, cmds["cluster_id"])
	return m
}

// The snapshot format is golden-tested like the command encoding: a
// snapshot written by one version is restored by the next, byte for byte.
func TestSnapshotGolden(t *testing.T) {
	src := goldenSnapshotState(t)
	var buf bytesBuffer
	if err := src.Snapshot().WriteTo(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "snapshot_v2.golden")
	if *update {
		if err := os.WriteFile(path, []byte(hex.EncodeToString(buf.bytes())+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./replica -run Golden -update once)", err)
	}
	if got := hex.EncodeToString(buf.bytes()); got != strings.TrimSpace(string(want)) {
		t.Errorf("snapshot encoding changed:\n got %s\nwant %s", got, want)
	}
	raw, _ := hex.DecodeString(strings.TrimSpace(string(want)))
	dst := newState(t, nil, WriteBehind)
	if err := dst.Restore(context.Background(), (&bytesBuffer{b: raw}).reader()); err != nil {
		t.Fatalf("Restore(golden snapshot) = %v", err)
	}
	cmds := goldenCommands()
	full, plain := cmds["put"].Puts[0], cmds["put"].Puts[1]
	if dst.AppliedIndex() != 4 || dst.ClusterID() != cmds["cluster_id"].ClusterID {
		t.Errorf("restored applied index %d, cluster id %q; want 4, %q", dst.AppliedIndex(), dst.ClusterID(), cmds["cluster_id"].ClusterID)
	}
	if k, ok := dst.IdempotencyKey("req-1"); !ok || k != full.Key {
		t.Errorf("restored IdempotencyKey(req-1) = %s, %v; want %s", k, ok, full.Key)
	}
	if _, _, ok := dst.Cache().Get(full.Key); ok {
		t.Error("the deleted record is back after restoring the golden snapshot")
	}
	if got, _, ok := dst.Cache().Get(plain.Key); !ok || got.Username != plain.Username || got.Index != 2 {
		t.Errorf("restored %s = %+v, %v; want bob's record at index 2", plain.Key, got, ok)
	}
}
