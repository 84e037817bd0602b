package replica

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokencache/tokencache/persist"
)

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Write-through: an applied put is in the store once WaitPersisted returns,
// the persisted index follows, and a local store's writer releases the
// change from the pinned set.
func TestWriterWriteThrough(t *testing.T) {
	m := newState(t, nil, WriteThrough)
	r := record("alice", 1)
	m.Apply(1, put(1, r))
	if !m.Writer().WritesThrough() || !m.Writer().Active() {
		t.Fatalf("WritesThrough() = %v, Active() = %v on a local write-through store, want true, true", m.Writer().WritesThrough(), m.Writer().Active())
	}
	if err := m.Writer().WaitPersisted(waitCtx(t), 1); err != nil {
		t.Fatalf("WaitPersisted(1) = %v", err)
	}
	got, err := m.Store().Get(context.Background(), r.Key)
	if err != nil || got.Index != 1 || got.Username != "alice" {
		t.Fatalf("Store().Get(%s) = %+v, %v; want alice's row at index 1", r.Key, got, err)
	}
	if m.PersistedIndex() != 1 {
		t.Errorf("PersistedIndex() = %d, want 1", m.PersistedIndex())
	}
	waitFor(t, 5*time.Second, "the put unpinned", func() bool { return m.Cache().Pinned() == 0 })
	if st := m.Writer().Stats(); st.Batches < 1 || st.Changes < 1 || st.Time <= 0 {
		t.Errorf("Stats() = %+v, want at least one batch holding a change, in a positive time", st)
	}
}

// Write-behind holds changes until the batch fills or the interval ticks;
// Close flushes what is pending. A revocation is never held back.
func TestWriterWriteBehind(t *testing.T) {
	wcfg := DefaultWriterConfig()
	wcfg.Mode = WriteBehind
	wcfg.FlushInterval = time.Hour
	m := newStateConfig(t, nil, wcfg)
	a, b := record("alice", 1), record("bob", 2)
	m.Apply(1, put(1, a))
	m.Apply(2, put(2, b))
	if m.Writer().WritesThrough() {
		t.Error("WritesThrough() = true in write-behind mode")
	}
	if m.PersistedIndex() != 0 || m.Cache().Pinned() != 2 {
		t.Fatalf("after two write-behind puts: persisted %d, pinned %d; want 0, 2 (held until the tick)", m.PersistedIndex(), m.Cache().Pinned())
	}
	revoked := record("carol", 3)
	revoked.RevokedAt = 3
	m.Apply(3, put(3, revoked))
	if err := m.Writer().WaitPersisted(waitCtx(t), 3); err != nil {
		t.Fatalf("WaitPersisted(3) after a revocation = %v (revocations flush at once)", err)
	}

	m.Apply(4, put(4, record("dave", 4)))
	if err := m.Writer().Close(waitCtx(t)); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if m.PersistedIndex() != 4 {
		t.Errorf("PersistedIndex() after Close = %d, want 4 (Close flushes)", m.PersistedIndex())
	}
	if st, _ := m.Store().Stats(context.Background(), 0); st.Tokens != 4 {
		t.Errorf("store holds %d tokens after Close, want 4", st.Tokens)
	}
}

// While the store fails, a write-through wait answers ErrStoreUnavailable
// and new writes are refused; once it answers again, the writer retries
// and catches up without losing the change.
func TestWriterStoreOutage(t *testing.T) {
	fs := &faultyStore{Store: openMemory(t)}
	wcfg := DefaultWriterConfig()
	wcfg.FlushInterval = 5 * time.Millisecond
	wcfg.RetryMax = 20 * time.Millisecond
	wcfg.MaxPending = 2
	m := newStateConfig(t, fs, wcfg)
	fs.fail.Store(true)
	m.Apply(1, put(1, record("alice", 1)))
	if err := m.Writer().WaitPersisted(waitCtx(t), 1); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("WaitPersisted(1) with the store down = %v, want ErrStoreUnavailable", err)
	}
	if m.Writer().Healthy() {
		t.Error("Healthy() = true after a failed write")
	}
	if err := m.Writer().Admit(); !errors.Is(err, ErrStoreUnavailable) {
		t.Errorf("Admit() in write-through with the store down = %v, want ErrStoreUnavailable", err)
	}
	m.Apply(2, put(2, record("bob", 2)))
	if err := m.Writer().Admit(); !errors.Is(err, ErrStoreUnavailable) {
		t.Errorf("Admit() with max_pending changes waiting on a down store = %v, want ErrStoreUnavailable", err)
	}

	fs.fail.Store(false)
	waitFor(t, 5*time.Second, "the writer healthy again", m.Writer().Healthy)
	if err := m.Writer().WaitPersisted(waitCtx(t), 2); err != nil {
		t.Fatalf("WaitPersisted(2) after the store recovered = %v", err)
	}
	if st, _ := m.Store().Stats(context.Background(), 0); st.Tokens != 2 {
		t.Errorf("store holds %d tokens after recovery, want 2", st.Tokens)
	}
	if err := m.Writer().Admit(); err != nil {
		t.Errorf("Admit() after recovery = %v", err)
	}
}

// More than max_pending changes waiting on a healthy store: overloaded.
func TestWriterAdmitOverloaded(t *testing.T) {
	wcfg := DefaultWriterConfig()
	wcfg.Mode = WriteBehind
	wcfg.FlushInterval = time.Hour
	wcfg.MaxPending = 2
	m := newStateConfig(t, nil, wcfg)
	m.Apply(1, put(1, record("alice", 1)))
	if err := m.Writer().Admit(); err != nil {
		t.Fatalf("Admit() with one change pending = %v", err)
	}
	m.Apply(2, put(2, record("bob", 2)))
	if err := m.Writer().Admit(); !errors.Is(err, ErrOverloaded) {
		t.Errorf("Admit() with max_pending changes pending = %v, want ErrOverloaded", err)
	}
}

// Touches move last-used forward; a deletion removes a row only up to its
// MaxIndex guard, so it never removes a newer write of the same key.
func TestWriterTouchesAndGuardedDeletes(t *testing.T) {
	m := newState(t, nil, WriteThrough)
	ctx := waitCtx(t)
	r := record("alice", 1)
	m.Apply(1, put(1, r))
	m.Apply(2, &Command{Op: OpTouch, Time: 2, Touches: []persist.Touch{{Key: r.Key, At: 5000}}})
	if err := m.Writer().WaitPersisted(ctx, 2); err != nil {
		t.Fatalf("WaitPersisted(2) = %v", err)
	}
	if got, err := m.Store().Get(ctx, r.Key); err != nil || got.LastUsed != 5000 {
		t.Fatalf("Store().Get after a touch = %+v, %v; want last used 5000", got, err)
	}

	newer := *r
	newer.Scopes = "read"
	m.Apply(3, put(3, &newer))
	m.Apply(4, &Command{Op: OpDelete, Time: 4, Deletes: []persist.Delete{{Key: r.Key, MaxIndex: 1}}})
	if err := m.Writer().WaitPersisted(ctx, 4); err != nil {
		t.Fatalf("WaitPersisted(4) = %v", err)
	}
	if got, err := m.Store().Get(ctx, r.Key); err != nil || got.Index != 3 {
		t.Fatalf("Store().Get after a deletion guarded at index 1 = %+v, %v; want the row of index 3", got, err)
	}
	m.Apply(5, &Command{Op: OpDelete, Time: 5, Deletes: []persist.Delete{{Key: r.Key, MaxIndex: 3}}})
	if err := m.Writer().WaitPersisted(ctx, 5); err != nil {
		t.Fatalf("WaitPersisted(5) = %v", err)
	}
	if _, err := m.Store().Get(ctx, r.Key); !errors.Is(err, persist.ErrNotFound) {
		t.Errorf("Store().Get after a deletion guarded at index 3 = %v, want ErrNotFound", err)
	}
	if _, _, ok := m.Cache().Get(r.Key); ok {
		t.Error("the deleted key is still in the cache")
	}
}

// A shared store is written by the leader's writer only: a node that does
// not write keeps changes pinned until an OpPersisted releases them; the
// node made writer (SetWriter) stores them and announces its persisted
// index through the announce function, but releases them only when that
// announcement is applied, like every other node.
func TestSharedStoreWriter(t *testing.T) {
	fs := &faultyStore{Store: openMemory(t), shared: true}
	m := newState(t, fs, WriteThrough)
	if !m.SharedStore() || m.Writer().Active() {
		t.Fatalf("SharedStore() = %v, Active() = %v on a shared store before SetWriter, want true, false", m.SharedStore(), m.Writer().Active())
	}
	a := record("alice", 1)
	m.Apply(1, put(1, a))
	time.Sleep(50 * time.Millisecond) // ten flush intervals: an inactive writer writes nothing
	if st, _ := fs.Stats(context.Background(), 0); st.Tokens != 0 || m.PersistedIndex() != 0 {
		t.Fatalf("a node that does not write stored %d tokens (persisted %d)", st.Tokens, m.PersistedIndex())
	}
	m.Apply(2, &Command{Op: OpPersisted, Time: 2, Persisted: 1}) // the leader stored index 1
	if m.Cache().Pinned() != 0 || m.PersistedIndex() != 1 {
		t.Fatalf("after OpPersisted(1): pinned %d, persisted %d; want 0, 1", m.Cache().Pinned(), m.PersistedIndex())
	}

	announced := make(chan uint64, 16)
	announce := func(_ context.Context, idx uint64) error { announced <- idx; return nil }
	if err := m.SetWriter(waitCtx(t), true, announce); err != nil {
		t.Fatalf("SetWriter(true) = %v", err)
	}
	b := record("bob", 3)
	m.Apply(3, put(3, b))
	if err := m.Writer().WaitPersisted(waitCtx(t), 3); err != nil {
		t.Fatalf("WaitPersisted(3) on the writer = %v", err)
	}
	select {
	case idx := <-announced:
		if idx != 3 {
			t.Errorf("announced persisted index %d, want 3", idx)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the writer never announced what it persisted")
	}
	if _, err := fs.Get(context.Background(), b.Key); err != nil {
		t.Errorf("the writer did not store bob's token: %v", err)
	}
	if m.Cache().Pinned() != 1 {
		t.Errorf("pinned %d before the announcement is applied, want 1", m.Cache().Pinned())
	}
	if err := m.SetWriter(waitCtx(t), false, nil); err != nil || m.Writer().Active() {
		t.Errorf("SetWriter(false) = %v, Active() = %v", err, m.Writer().Active())
	}
	if st, _ := fs.Stats(context.Background(), 0); st.Tokens != 1 {
		t.Errorf("shared store holds %d tokens, want 1 (alice's was the other leader's to write)", st.Tokens)
	}
}

// The writer reads time only through its injected clock: here every
// reading is one second after the previous, so each committed transaction
// counts exactly one second.
func TestWriterTimesWithInjectedClock(t *testing.T) {
	var ticks atomic.Int64
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	wcfg := DefaultWriterConfig()
	wcfg.FlushInterval = 5 * time.Millisecond
	wcfg.Now = func() time.Time { return t0.Add(time.Duration(ticks.Add(1)) * time.Second) }
	m := newStateConfig(t, nil, wcfg)
	m.Apply(1, put(1, record("alice", 1)))
	if err := m.Writer().WaitPersisted(waitCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	st := m.Writer().Stats()
	if st.Batches == 0 || st.Time != time.Duration(st.Batches)*time.Second {
		t.Errorf("Stats() = %+v, want one second per batch from the injected clock", st)
	}
}
