package replica

import (
	"testing"
	"time"

	"github.com/tokencache/tokencache/token"
)

// A second issue with an Idempotency-Key that an earlier entry used writes
// nothing and answers the token the first one minted, on every node alike
// (the table is part of the replicated state).
func TestIdempotencyKeyReplays(t *testing.T) {
	m := newState(t, nil, "")
	first, second := record("alice", 10), record("alice", 11)
	cmd := put(10, first)
	cmd.IdempotencyKey = "req-1"
	if res := m.Apply(1, cmd); res.Replayed {
		t.Fatalf("Apply(first put with req-1) = %+v, want no replay", res)
	}
	again := put(11, second)
	again.IdempotencyKey = "req-1"
	res := m.Apply(2, again)
	if !res.Replayed || res.Existing != first.Key {
		t.Fatalf("Apply(second put with req-1) = %+v, want a replay of %s", res, first.Key)
	}
	if _, _, ok := m.Cache().Get(second.Key); ok {
		t.Errorf("the replayed put stored %s", second.Key)
	}
	if k, ok := m.IdempotencyKey("req-1"); !ok || k != first.Key {
		t.Errorf("IdempotencyKey(req-1) = %s, %v; want %s, true", k, ok, first.Key)
	}
	if m.AppliedIndex() != 2 {
		t.Errorf("AppliedIndex() = %d, want 2 (a replay is still applied)", m.AppliedIndex())
	}
}

// Keys are forgotten after IdempotencyWindow, judged by the time the
// commands carry (no clock): a key older than the window is pruned by a
// later put, and may then mint again.
func TestIdempotencyKeyExpiresByCommandTime(t *testing.T) {
	m := newState(t, nil, "")
	t0 := token.At(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cmd := put(t0, record("alice", t0))
	cmd.IdempotencyKey = "old"
	m.Apply(1, cmd)
	within := t0.Add(IdempotencyWindow)
	keep := put(within, record("bob", within))
	keep.IdempotencyKey = "other"
	m.Apply(2, keep)
	if _, ok := m.IdempotencyKey("old"); !ok {
		t.Fatal("IdempotencyKey(old) forgotten at exactly the window's end")
	}
	later := t0.Add(IdempotencyWindow + time.Second)
	prune := put(later, record("bob", later))
	prune.IdempotencyKey = "newer"
	m.Apply(3, prune)
	if _, ok := m.IdempotencyKey("old"); ok {
		t.Fatal("IdempotencyKey(old) still known after the window, by command time")
	}
	fresh := record("alice", later)
	reuse := put(later, fresh)
	reuse.IdempotencyKey = "old"
	if res := m.Apply(4, reuse); res.Replayed {
		t.Errorf("Apply(put with an expired key) = %+v, want a new token", res)
	}
	if k, _ := m.IdempotencyKey("old"); k != fresh.Key {
		t.Errorf("IdempotencyKey(old) = %s, want the new token %s", k, fresh.Key)
	}
}

// The table travels in snapshots, in insertion order, so a restored node
// replays the same keys and prunes them at the same times.
func TestIdempotencyTableSurvivesRestore(t *testing.T) {
	src := newState(t, nil, "")
	var minted []token.Key
	for i, id := range []string{"a", "b", "c"} {
		r := record("alice", token.Time(i+1))
		cmd := put(token.Time(i+1), r)
		cmd.IdempotencyKey = id
		src.Apply(uint64(i+1), cmd)
		minted = append(minted, r.Key)
	}
	dst := restoreInto(t, src, newState(t, nil, ""))
	for i, id := range []string{"a", "b", "c"} {
		if k, ok := dst.IdempotencyKey(id); !ok || k != minted[i] {
			t.Errorf("after restore IdempotencyKey(%s) = %s, %v; want %s", id, k, ok, minted[i])
		}
	}
	cmd := put(5, record("alice", 5))
	cmd.IdempotencyKey = "b"
	if res := dst.Apply(4, cmd); !res.Replayed || res.Existing != minted[1] {
		t.Errorf("Apply(put with b) after restore = %+v, want a replay of %s", res, minted[1])
	}
	if got := len(dst.idem.entries()); got != 3 {
		t.Errorf("restored table holds %d entries, want 3", got)
	}
}
