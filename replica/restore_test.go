package replica

import (
	"context"
	"errors"
	"testing"

	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

// Restore replaces a local store with the snapshot's rows (rows the
// restoring node held before are gone), puts the pinned changes back in the
// cache for its writer to store, and takes the indexes from the snapshot.
func TestRestoreRefillsLocalStore(t *testing.T) {
	ctx := context.Background()
	srcStore := &faultyStore{Store: openMemory(t)}
	src := newState(t, srcStore, WriteThrough)
	stored, pinned := record("alice", 1), record("bob", 2)
	src.Apply(1, put(1, stored))
	if err := src.Writer().WaitPersisted(waitCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	srcStore.fail.Store(true) // bob's token stays pinned, not stored
	t.Cleanup(func() { srcStore.fail.Store(false) })
	src.Apply(2, put(2, pinned))

	dstStore := &faultyStore{Store: openMemory(t)}
	stale := record("mallory", 9)
	stale.Index = 9
	if err := dstStore.Write(ctx, &persist.Batch{Puts: []*token.Token{stale}, Index: 9}); err != nil {
		t.Fatal(err)
	}
	dst := restoreInto(t, src, newState(t, dstStore, WriteThrough))
	if dstStore.resets.Load() != 1 {
		t.Errorf("Restore reset the local store %d times, want once", dstStore.resets.Load())
	}
	if _, err := dstStore.Get(ctx, stale.Key); !errors.Is(err, persist.ErrNotFound) {
		t.Errorf("a row the snapshot does not hold survived Restore: %v", err)
	}
	if got, err := dstStore.Get(ctx, stored.Key); err != nil || got.Index != 1 {
		t.Errorf("Get(stored row) after Restore = %+v, %v; want index 1", got, err)
	}
	if dst.AppliedIndex() != 2 || dst.PersistedIndex() < 1 {
		t.Errorf("after Restore: applied %d, persisted %d; want 2, at least 1", dst.AppliedIndex(), dst.PersistedIndex())
	}
	if tok, _, ok := dst.Cache().Get(pinned.Key); !ok || tok.Username != "bob" {
		t.Fatalf("the pinned change is not in the cache after Restore")
	}
	// The restoring node's writer stores what the snapshot held pinned.
	if err := dst.Writer().WaitPersisted(waitCtx(t), 2); err != nil {
		t.Fatalf("WaitPersisted(2) after Restore = %v", err)
	}
	if _, err := dstStore.Get(ctx, pinned.Key); err != nil {
		t.Errorf("the pinned change never reached the restored store: %v", err)
	}
}

// A snapshot that fails its checksum or is not a snapshot changes nothing
// in the cache or the indexes.
func TestRestoreRejectsCorruptSnapshot(t *testing.T) {
	src := newState(t, nil, WriteThrough)
	src.Apply(1, put(1, record("alice", 1)))
	src.Apply(2, put(2, record("bob", 2)))
	var buf bytesBuffer
	if err := src.Snapshot().WriteTo(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	dst := newState(t, nil, WriteThrough)
	own := record("carol", 1)
	dst.Apply(1, put(1, own))
	for name, corrupt := range map[string]func(b []byte) []byte{
		"checksum":  func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b },
		"magic":     func(b []byte) []byte { b[0] = 'X'; return b },
		"truncated": func(b []byte) []byte { return b[:len(b)/2] },
		"version":   func(b []byte) []byte { b[len(snapshotMagic)] = 9; return b },
	} {
		b := corrupt(buf.bytes())
		if err := dst.Restore(context.Background(), (&bytesBuffer{b: b}).reader()); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("Restore(%s corrupted) = %v, want ErrBadSnapshot", name, err)
		}
		if dst.AppliedIndex() != 1 {
			t.Errorf("Restore(%s corrupted) moved the applied index to %d", name, dst.AppliedIndex())
		}
		if _, _, ok := dst.Cache().Get(own.Key); !ok {
			t.Errorf("Restore(%s corrupted) emptied the cache", name)
		}
	}
}

// SnapshotAt claims a later index; RestoreOwn of it keeps the node's own
// local store (never reset and rewritten) and moves the applied index.
func TestSnapshotAtRestoreOwnKeepsStore(t *testing.T) {
	fs := &faultyStore{Store: openMemory(t)}
	m := newState(t, fs, WriteThrough)
	r := record("alice", 1)
	m.Apply(1, put(1, r))
	if err := m.Writer().WaitPersisted(waitCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	snap := m.SnapshotAt(100)
	if snap.Index() != 100 {
		t.Fatalf("SnapshotAt(100).Index() = %d", snap.Index())
	}
	var buf bytesBuffer
	if err := snap.WriteTo(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	if snap.MaxRowIndex() != 1 {
		t.Errorf("MaxRowIndex() = %d, want 1 (the one row streamed)", snap.MaxRowIndex())
	}
	if err := m.RestoreOwn(context.Background(), buf.reader()); err != nil {
		t.Fatalf("RestoreOwn = %v", err)
	}
	if fs.resets.Load() != 0 {
		t.Errorf("RestoreOwn reset the store %d times, want never", fs.resets.Load())
	}
	if m.AppliedIndex() != 100 || m.PersistedIndex() != 1 {
		t.Errorf("after RestoreOwn: applied %d, persisted %d; want 100, 1", m.AppliedIndex(), m.PersistedIndex())
	}
	if _, err := fs.Get(context.Background(), r.Key); err != nil {
		t.Errorf("RestoreOwn lost the row: %v", err)
	}
}

// ResetLocalStore empties a local store an earlier log wrote (its rows and
// persisted index); a shared store is never reset.
func TestResetLocalStore(t *testing.T) {
	ctx := context.Background()
	for _, shared := range []bool{false, true} {
		fs := &faultyStore{Store: openMemory(t), shared: shared}
		old := record("alice", 1)
		old.Index = 7
		if err := fs.Store.Write(ctx, &persist.Batch{Puts: []*token.Token{old}, Index: 7}); err != nil {
			t.Fatal(err)
		}
		m := newState(t, fs, WriteThrough)
		if _, err := m.LoadPersistedIndex(ctx); err != nil {
			t.Fatal(err)
		}
		if err := m.ResetLocalStore(ctx); err != nil {
			t.Fatalf("ResetLocalStore (shared %v) = %v", shared, err)
		}
		_, err := fs.Get(ctx, old.Key)
		switch {
		case !shared && (fs.resets.Load() != 1 || !errors.Is(err, persist.ErrNotFound) || m.PersistedIndex() != 0):
			t.Errorf("ResetLocalStore on a local store: %d resets, row %v, persisted %d; want 1, ErrNotFound, 0", fs.resets.Load(), err, m.PersistedIndex())
		case shared && (fs.resets.Load() != 0 || err != nil || m.PersistedIndex() != 7):
			t.Errorf("ResetLocalStore on a shared store: %d resets, row %v, persisted %d; want 0, the row, 7", fs.resets.Load(), err, m.PersistedIndex())
		}
	}
}
