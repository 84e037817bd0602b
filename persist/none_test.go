package persist

import (
	"errors"
	"testing"

	"github.com/tokencache/tokencache/token"
)

// TestNoneKeepsOnlyTombstones: the store of persist.store "none" writes the
// revocation tombstone of a JWT, refuses (writing nothing of the batch) an
// opaque record or a JWT record that is not revoked, deletes and scans like
// Memory, and is the one store Disabled reports.
func TestNoneKeepsOnlyTombstones(t *testing.T) {
	ctx := testCtx(t)
	st, err := Open(ctx, Config{Store: StoreNone, PoolSize: 1, PoolTimeout: 1, QueryTimeout: 1}, "", nil)
	if err != nil {
		t.Fatalf("Open(store none) = %v", err)
	}
	defer st.Close()
	if !Disabled(st) || Disabled(NewMemory()) || st.Shared() {
		t.Fatalf("Disabled(none) = %v, Disabled(memory) = %v, Shared = %v; want true, false, false", Disabled(st), Disabled(NewMemory()), st.Shared())
	}
	tomb := &token.Token{Key: token.Key{1}, Index: 1, Created: 100, Expires: 1000, RevokedAt: 200,
		Username: "alice", Realm: "default", Format: token.FormatJWT, Type: token.TypeUser}
	jwt := &token.Token{Key: token.Key{2}, Index: 1, Created: 100, Expires: 1000,
		Username: "alice", Realm: "default", Format: token.FormatJWT, Type: token.TypeUser}
	opaque := &token.Token{Key: token.Key{3}, Index: 1, Hash: token.Hash{1}, Created: 100,
		Username: "alice", Realm: "default", Format: token.FormatOpaque, Type: token.TypeUser}
	for _, bad := range []*token.Token{jwt, opaque} {
		err := st.Write(ctx, &Batch{Puts: []*token.Token{tomb, bad}, Index: 1})
		if !errors.Is(err, ErrNotTombstone) {
			t.Errorf("Write(tombstone + %s) = %v, want ErrNotTombstone", bad.Format, err)
		}
		if _, err := st.Get(ctx, tomb.Key); !errors.Is(err, ErrNotFound) {
			t.Errorf("after a refused batch Get(tombstone) = %v, want ErrNotFound (nothing written)", err)
		}
	}
	if err := st.Write(ctx, &Batch{Puts: []*token.Token{tomb}, Index: 1}); err != nil {
		t.Fatalf("Write(tombstone) = %v", err)
	}
	if got, err := st.Get(ctx, tomb.Key); err != nil || got.RevokedAt != 200 {
		t.Fatalf("Get(tombstone) = %+v, %v", got, err)
	}
	// Kept until its JWT's exp and the tombstone margin, not from its
	// revocation: the reaper asks for rows ended before a time.
	end := tomb.Expires.Add(token.TombstoneMargin)
	if ended, err := st.Ended(ctx, end-1, 10); err != nil || len(ended) != 0 {
		t.Errorf("Ended(before exp + margin) = %d rows, %v; want none", len(ended), err)
	}
	if ended, err := st.Ended(ctx, end+1, 10); err != nil || len(ended) != 1 {
		t.Errorf("Ended(after exp + margin) = %d rows, %v; want the tombstone", len(ended), err)
	}
	if err := st.Write(ctx, &Batch{Deletes: []Delete{{Key: tomb.Key, MaxIndex: 1}}, Index: 2}); err != nil {
		t.Fatalf("Write(delete) = %v", err)
	}
	if _, err := st.Get(ctx, tomb.Key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(deleted tombstone) = %v, want ErrNotFound", err)
	}
}
