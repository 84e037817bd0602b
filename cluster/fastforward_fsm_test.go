package cluster

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/tokencache/tokencache/cache"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/replica"
	"github.com/tokencache/tokencache/token"
)

// The FSM side of a foreign local store: entries that change nothing keep
// it (the node may still lead and adopt it), the first change empties it
// first, and a successful restore clears the mark.
func TestFSMDropsForeignStoreBeforeFirstChange(t *testing.T) {
	ctx := context.Background()
	store := persist.NewMemory()
	t.Cleanup(func() { store.Close() })
	oldKey := token.NewKey()
	if err := store.Write(ctx, &persist.Batch{Index: 40, Puts: []*token.Token{{
		Key: oldKey, Hash: token.Hash{1}, Created: 1, Username: "u", Realm: "default", Type: token.TypeUser,
		Format: token.FormatOpaque, Index: 40,
	}}}); err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	st, err := replica.NewMachine(replica.DefaultWriterConfig(), c, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := st.LoadPersistedIndex(ctx); err != nil || p != 40 || st.PersistedIndex() != 40 {
		t.Fatalf("LoadPersistedIndex = %d, %v (PersistedIndex %d); want 40", p, err, st.PersistedIndex())
	}
	f := newFSM(ctx, st, unitLogger(t), nil)
	f.foreign.Store(true) // as Node.Start marks it
	f.ApplyBatch([]*raft.Log{
		{Index: 1, Type: raft.LogConfiguration},
		{Index: 2, Type: raft.LogCommand, Data: noopCommand},
	})
	if _, err := store.Get(ctx, oldKey); err != nil || !f.foreign.Load() {
		t.Fatalf("entries that change nothing dropped the foreign store (Get: %v, foreign %v)", err, f.foreign.Load())
	}
	f.ApplyBatch([]*raft.Log{{Index: 3, Type: raft.LogCommand, Data: putCommand(t)}})
	if f.foreign.Load() {
		t.Fatal("the first change left the store foreign")
	}
	if _, err := store.Get(ctx, oldKey); err == nil {
		t.Error("the first change was applied over the foreign store's rows")
	}
	if p, err := store.PersistedIndex(ctx); err != nil || p != 0 || st.PersistedIndex() != 0 {
		t.Errorf("persisted index after the drop = %d (store), %d (state), %v; want 0", p, st.PersistedIndex(), err)
	}
	if got, pinned := st.AppliedIndex(), c.Pinned(); got != 3 || pinned != 1 {
		t.Errorf("applied index %d, pinned %d; want 3 and the put pinned", got, pinned)
	}

	// A restore clears the mark as well.
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	f.foreign.Store(true)
	if err := f.Restore(io.NopCloser(bytes.NewReader(sink.buf.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if f.foreign.Load() {
		t.Error("a restore left the store foreign")
	}
}
