package storetest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

func testGetMissing(t *testing.T, s persist.Store) {
	wantMissing(t, s, token.NewKey())
	put(t, s, mk(1, "alice", at(0)))
	wantMissing(t, s, token.NewKey())
}

func testRoundTrip(t *testing.T, s persist.Store) {
	parent := mk(1, "alice", at(0))
	creds := make([]byte, 1<<16) // the log's largest blob
	_, _ = rand.Read(creds)
	scopes := make([]string, token.MaxScopes)
	for i := range scopes {
		scopes[i] = fmt.Sprintf("scope:%02d:%s", i, strings.Repeat("x", 100))
	}
	many, err := token.NewScopes(scopes)
	if err != nil {
		t.Fatalf("NewScopes = %v", err)
	}
	longUser := strings.Repeat("é", token.MaxUsernameLen/2) // 256 bytes of two-byte runes
	rows := []*token.Token{
		parent,
		// every optional field set
		mk(7, "alice", at(time.Second), typ(token.TypeInternal), func(t *token.Token) {
			t.UID, t.HasUID = 4242, true
			t.LastUsed = at(2 * time.Second)
			t.RevokedAt = at(3 * time.Second)
			t.Realm = "lab"
			t.Scopes = "admin:token read:all user:token"
			t.SetExtra(token.Extra{Name: "ci bot", Service: "portal", ClientID: "client-1",
				Parent: parent.Key, Credentials: creds, Sealed: []byte{1, 2, 3}})
		}),
		// JWT: no hash; never expires; uid 0 but present; no scopes
		mk(3, "bob", at(time.Minute), typ(token.TypeService), expires(0), func(t *token.Token) {
			t.Format, t.Hash = token.FormatJWT, token.Hash{}
			t.HasUID = true
			t.Scopes = ""
		}),
		// JWT with an audience (schema version 2), and a revocation
		// tombstone of a JWT without a record (kept until its exp).
		mk(4, "bob", at(2*time.Minute), func(t *token.Token) {
			t.Format, t.Hash = token.FormatJWT, token.Hash{}
			t.SetExtra(token.Extra{Audience: "api.example.org " + strings.Repeat("a", token.MaxAudienceLen-16)})
		}),
		mk(5, "carol", at(3*time.Minute), expires(at(48*time.Hour)), revoked(at(4*time.Minute)), func(t *token.Token) {
			t.Format, t.Hash = token.FormatJWT, token.Hash{}
		}),
		// 64 long scopes, the longest username, a notebook child
		mk(math64(), longUser, at(time.Hour), typ(token.TypeNotebook), child(parent.Key), func(t *token.Token) { t.Scopes = many }),
		mk(4, "carol", at(2*time.Hour), typ(token.TypeOAuth), extra(token.Extra{ClientID: "app"})),
		mk(5, "dave", at(3*time.Hour), typ(token.TypeUser), named("laptop")),
	}
	write(t, s, &persist.Batch{Puts: rows, Index: 9})
	for _, want := range rows {
		wantSame(t, fmt.Sprintf("Get(%s)", want.Key), get(t, s, want.Key), want)
	}
	all := scanAll(t, s)
	if len(all) != len(rows) {
		t.Fatalf("Scan returned %d rows, want %d", len(all), len(rows))
	}
	for _, want := range rows {
		wantSame(t, "Scan row", all[want.Key], want)
	}
}

// math64 is the largest index a SQL column holds (math.MaxInt64).
func math64() uint64 { return 1<<63 - 1 }

func testReturnsCopies(t *testing.T, s persist.Store) {
	orig := mk(1, "alice", at(0), extra(token.Extra{Name: "n", Credentials: []byte("sealed")}))
	keep := orig.Clone()
	put(t, s, orig)
	orig.Username, orig.Ext.Credentials[0] = "mallory", 'X' // the caller reuses its record
	got := get(t, s, keep.Key)
	wantSame(t, "Get after the caller changed its record", got, keep)
	got.Username, got.Ext.Credentials[0] = "mallory", 'X' // the caller changes what it got
	wantSame(t, "Get after the caller changed a returned record", get(t, s, keep.Key), keep)
}

func testIdempotentReplay(t *testing.T, s persist.Store) {
	a, b, c := mk(1, "alice", at(0)), mk(2, "bob", at(time.Second)), mk(3, "carol", at(2*time.Second))
	write(t, s, &persist.Batch{Puts: []*token.Token{a, b, c}, Index: 3})
	a2 := a.Clone()
	a2.Index, a2.RevokedAt = 4, at(time.Minute)
	batch := &persist.Batch{
		Puts:    []*token.Token{a2, mk(5, "dave", at(3*time.Second))},
		Deletes: []persist.Delete{{Key: b.Key, MaxIndex: 6}},
		Touches: []persist.Touch{{Key: c.Key, At: at(time.Hour)}},
		Index:   7,
	}
	write(t, s, batch)
	first, idx := scanAll(t, s), persisted(t, s)
	for i := range 3 {
		write(t, s, batch)
		again := scanAll(t, s)
		if len(again) != len(first) {
			t.Fatalf("replay %d: %d rows, want %d", i, len(again), len(first))
		}
		for k, want := range first {
			wantSame(t, fmt.Sprintf("replay %d: row %s", i, k), again[k], want)
		}
		if got := persisted(t, s); got != idx {
			t.Fatalf("replay %d: PersistedIndex = %d, want %d", i, got, idx)
		}
	}
	if idx != 7 || len(first) != 3 {
		t.Fatalf("after the batch: PersistedIndex = %d and %d rows, want 7 and 3", idx, len(first))
	}
}

func testOlderIndexNeverOverwrites(t *testing.T, s persist.Store) {
	v10 := mk(10, "alice", at(0), named("ten"))
	put(t, s, v10)
	older := v10.Clone()
	older.Index, older.Username, older.Scopes = 5, "mallory", "admin:all"
	put(t, s, older)
	wantSame(t, "Get after an older put", get(t, s, v10.Key), v10)
	equal := v10.Clone()
	equal.Scopes = "admin:all"
	put(t, s, equal)
	wantSame(t, "Get after a put of the same index", get(t, s, v10.Key), v10)
	newer := v10.Clone()
	newer.Index, newer.RevokedAt, newer.Ext.Name = 11, at(time.Minute), "eleven"
	put(t, s, newer)
	wantSame(t, "Get after a newer put", get(t, s, v10.Key), newer)
	if got, _ := s.Named(ctx(t), "alice", "ten"); len(got) != 0 {
		t.Fatalf("Named(alice, ten) after rename = %d rows, want 0 (indexes follow the row)", len(got))
	}
	// A newer record may change any field, even the user and the created
	// time: every index follows.
	moved := newer.Clone()
	moved.Index, moved.Username, moved.Created, moved.Expires = 12, "bob", at(time.Hour), at(2*time.Hour)
	moved.SetExtra(token.Extra{Parent: token.NewKey()})
	put(t, s, moved, mk(13, "alice", at(30*time.Minute)))
	wantSame(t, "Get after a put that moved the row", get(t, s, v10.Key), moved)
	wantConsistent(t, s)
	if got, _ := s.Orphaned(ctx(t), 10); len(got) != 1 || got[0].Key != v10.Key {
		t.Fatalf("Orphaned after the row got a parent = %v, want [%s]", keysOf(got), v10.Key)
	}
}

func testDeleteGuard(t *testing.T, s persist.Store) {
	row := mk(10, "alice", at(0))
	put(t, s, row)
	write(t, s, &persist.Batch{Deletes: []persist.Delete{{Key: row.Key, MaxIndex: 9}}})
	wantSame(t, "Get after a delete decided before the row's index", get(t, s, row.Key), row)
	write(t, s, &persist.Batch{Deletes: []persist.Delete{{Key: row.Key, MaxIndex: 10}}})
	wantMissing(t, s, row.Key)
	// Deleting a missing row is not an error, and a huge bound is fine.
	write(t, s, &persist.Batch{Deletes: []persist.Delete{{Key: row.Key, MaxIndex: ^uint64(0)}, {Key: token.NewKey(), MaxIndex: 1}}})
	big := mk(math64(), "bob", at(0))
	put(t, s, big)
	write(t, s, &persist.Batch{Deletes: []persist.Delete{{Key: big.Key, MaxIndex: ^uint64(0)}}})
	wantMissing(t, s, big.Key)
}

func testTouchForwardOnly(t *testing.T, s persist.Store) {
	row := mk(10, "alice", at(0))
	put(t, s, row)
	touch := func(k token.Key, when token.Time) {
		t.Helper()
		write(t, s, &persist.Batch{Touches: []persist.Touch{{Key: k, At: when}}})
	}
	touch(row.Key, at(time.Minute))
	want := row.Clone()
	want.LastUsed = at(time.Minute)
	wantSame(t, "Get after a touch", get(t, s, row.Key), want)
	touch(row.Key, at(time.Second))
	wantSame(t, "Get after an older touch", get(t, s, row.Key), want)
	touch(row.Key, 0)
	wantSame(t, "Get after a touch at time zero", get(t, s, row.Key), want)
	missing := token.NewKey()
	touch(missing, at(time.Hour))
	wantMissing(t, s, missing)

	// A newer put carrying an older last-used time keeps the later one; a
	// newer put carrying a later one takes it.
	v11 := row.Clone()
	v11.Index, v11.Scopes, v11.LastUsed = 11, "read:some", at(30*time.Second)
	put(t, s, v11)
	want = v11.Clone()
	want.LastUsed = at(time.Minute)
	wantSame(t, "Get after a newer put with an older last_used", get(t, s, row.Key), want)
	v12 := v11.Clone()
	v12.Index, v12.LastUsed = 12, at(2*time.Minute)
	put(t, s, v12)
	wantSame(t, "Get after a newer put with a later last_used", get(t, s, row.Key), v12)
}

func testPersistedIndex(t *testing.T, s persist.Store) {
	if got := persisted(t, s); got != 0 {
		t.Fatalf("PersistedIndex of a new store = %d, want 0", got)
	}
	steps := []struct {
		batch *persist.Batch
		want  uint64
	}{
		{&persist.Batch{Puts: []*token.Token{mk(3, "a", at(0))}, Index: 5}, 5},
		{&persist.Batch{Puts: []*token.Token{mk(6, "a", at(0))}}, 5},           // Index 0: unchanged
		{&persist.Batch{Index: 9}, 9},                                          // an empty batch still records it
		{&persist.Batch{Puts: []*token.Token{mk(2, "a", at(0))}, Index: 4}, 9}, // never backward
		{&persist.Batch{Index: math64()}, math64()},
	}
	for i, st := range steps {
		write(t, s, st.batch)
		if got := persisted(t, s); got != st.want {
			t.Fatalf("step %d: PersistedIndex = %d, want %d", i, got, st.want)
		}
	}
}

func testBatchOrder(t *testing.T, s persist.Store) {
	// Put and delete of one key in one batch: the delete wins only when it
	// was decided at or after the put's index, whatever the slice order.
	gone := mk(5, "alice", at(0))
	kept := mk(8, "alice", at(0))
	write(t, s, &persist.Batch{
		Puts:    []*token.Token{gone, kept},
		Deletes: []persist.Delete{{Key: gone.Key, MaxIndex: 7}, {Key: kept.Key, MaxIndex: 7}},
		Index:   8,
	})
	wantMissing(t, s, gone.Key)
	wantSame(t, "Get of a row put after its delete was decided", get(t, s, kept.Key), kept)
	// Put and touch in one batch: the touch applies to the new row.
	row := mk(9, "bob", at(0))
	write(t, s, &persist.Batch{Puts: []*token.Token{row}, Touches: []persist.Touch{{Key: row.Key, At: at(time.Minute)}}})
	if got := get(t, s, row.Key); got.LastUsed != at(time.Minute) {
		t.Fatalf("Get after put+touch: LastUsed = %d, want %d", got.LastUsed, at(time.Minute))
	}
	wantConsistent(t, s)
}

func testDuplicatesInBatch(t *testing.T, s persist.Store) {
	a := mk(5, "alice", at(0))
	a6 := a.Clone()
	a6.Index, a6.Scopes = 6, "six"
	a6b := a.Clone()
	a6b.Index, a6b.Scopes = 6, "six-again"
	write(t, s, &persist.Batch{Puts: []*token.Token{a6, a, a6b}})
	wantSame(t, "Get after duplicate puts", get(t, s, a.Key), a6)

	b := mk(5, "bob", at(0))
	put(t, s, b)
	write(t, s, &persist.Batch{
		Deletes: []persist.Delete{{Key: b.Key, MaxIndex: 4}, {Key: b.Key, MaxIndex: 5}, {Key: b.Key, MaxIndex: 1}},
		Touches: []persist.Touch{{Key: a.Key, At: at(3 * time.Second)}, {Key: a.Key, At: at(9 * time.Second)}, {Key: a.Key, At: at(time.Second)}},
	})
	wantMissing(t, s, b.Key)
	if got := get(t, s, a.Key); got.LastUsed != at(9*time.Second) {
		t.Fatalf("Get after duplicate touches: LastUsed = %d, want %d", got.LastUsed, at(9*time.Second))
	}
	wantConsistent(t, s)
}

func testInvalidBatchWritesNothing(t *testing.T, s persist.Store) {
	good := mk(1, "alice", at(0))
	bads := map[string]*token.Token{
		"unknown type":        mk(1, "bob", at(0), typ(token.Type(99))),
		"opaque without hash": mk(1, "bob", at(0), func(t *token.Token) { t.Hash = token.Hash{} }),
		"no username":         mk(1, "", at(0)),
		"no created":          mk(1, "bob", 0, expires(at(time.Hour))),
		"expires before":      mk(1, "bob", at(time.Hour), expires(at(0))),
		"bad utf-8":           mk(1, "bob\xff", at(0)),
		"unsorted scopes":     mk(1, "bob", at(0), func(t *token.Token) { t.Scopes = "b a" }),
		"self parent": mk(1, "bob", at(0), func(t *token.Token) {
			t.SetExtra(token.Extra{Parent: t.Key})
		}),
		"negative last used": mk(1, "bob", at(0), func(t *token.Token) { t.LastUsed = -1 }),
		"index too large":    mk(1<<63, "bob", at(0)),
	}
	for name, bad := range bads {
		err := s.Write(ctx(t), &persist.Batch{Puts: []*token.Token{good, bad}, Index: 3})
		if !errors.Is(err, token.ErrInvalid) {
			t.Fatalf("Write(good + %s) = %v, want an error wrapping token.ErrInvalid", name, err)
		}
	}
	for _, b := range []*persist.Batch{
		nil,
		{Puts: []*token.Token{good, nil}, Index: 3},
		{Puts: []*token.Token{good}, Deletes: []persist.Delete{{}}, Index: 3},
		{Puts: []*token.Token{good}, Touches: []persist.Touch{{}}, Index: 3},
		{Puts: []*token.Token{good}, Index: 1 << 63},
	} {
		if err := s.Write(ctx(t), b); !errors.Is(err, token.ErrInvalid) {
			t.Fatalf("Write(%+v) = %v, want an error wrapping token.ErrInvalid", b, err)
		}
	}
	wantMissing(t, s, good.Key)
	if got := persisted(t, s); got != 0 {
		t.Fatalf("PersistedIndex after refused batches = %d, want 0", got)
	}
}
