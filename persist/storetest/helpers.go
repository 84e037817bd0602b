package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

var t0 = token.At(time.Date(2031, 3, 14, 15, 9, 26, 0, time.UTC))

func at(d time.Duration) token.Time { return t0.Add(d) }

func randomHash() token.Hash {
	var h token.Hash
	_, _ = rand.Read(h[:])
	return h
}

// mk returns a valid session token of user created at created, with index
// idx, changed by each of opts.
func mk(idx uint64, user string, created token.Time, opts ...func(*token.Token)) *token.Token {
	t := &token.Token{
		Key:      token.NewKey(),
		Hash:     randomHash(),
		Index:    idx,
		Created:  created,
		Expires:  created.Add(time.Hour),
		Username: user,
		Realm:    token.DefaultRealm,
		Scopes:   "read:all",
		Format:   token.FormatOpaque,
		Type:     token.TypeSession,
	}
	for _, o := range opts {
		o(t)
	}
	return t
}

func typ(ty token.Type) func(*token.Token) { return func(t *token.Token) { t.Type = ty } }

func expires(e token.Time) func(*token.Token) { return func(t *token.Token) { t.Expires = e } }

func revoked(r token.Time) func(*token.Token) { return func(t *token.Token) { t.RevokedAt = r } }

func withKey(k token.Key) func(*token.Token) { return func(t *token.Token) { t.Key = k } }

func extra(e token.Extra) func(*token.Token) { return func(t *token.Token) { t.SetExtra(e) } }

func child(parent token.Key) func(*token.Token) {
	return func(t *token.Token) {
		e := token.Extra{}
		if t.Ext != nil {
			e = *t.Ext
		}
		e.Parent = parent
		t.SetExtra(e)
	}
}

func named(name string) func(*token.Token) {
	return func(t *token.Token) {
		e := token.Extra{}
		if t.Ext != nil {
			e = *t.Ext
		}
		e.Name = name
		t.SetExtra(e)
	}
}

// ctx returns a context for one test that ends with it.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func write(t testing.TB, s persist.Store, b *persist.Batch) {
	t.Helper()
	if err := s.Write(ctx(t), b); err != nil {
		t.Fatalf("Write(%d changes, index %d) = %v, want nil", b.Len(), b.Index, err)
	}
}

func put(t testing.TB, s persist.Store, ts ...*token.Token) {
	t.Helper()
	write(t, s, &persist.Batch{Puts: ts})
}

func get(t testing.TB, s persist.Store, k token.Key) *token.Token {
	t.Helper()
	got, err := s.Get(ctx(t), k)
	if err != nil {
		t.Fatalf("Get(%s) = %v, want the row", k, err)
	}
	return got
}

func wantMissing(t testing.TB, s persist.Store, k token.Key) {
	t.Helper()
	got, err := s.Get(ctx(t), k)
	if !errors.Is(err, persist.ErrNotFound) {
		t.Fatalf("Get(%s) = %s, %v, want ErrNotFound", k, describe(got), err)
	}
}

// normal returns a copy of t with empty optional fields in one canonical
// form, so that stores may return nil or empty slices alike.
func normal(t *token.Token) *token.Token {
	if t == nil {
		return nil
	}
	c := t.Clone()
	if c.Ext != nil {
		e := *c.Ext
		if len(e.Credentials) == 0 {
			e.Credentials = nil
		}
		if len(e.Sealed) == 0 {
			e.Sealed = nil
		}
		c.SetExtra(e)
	}
	return c
}

func same(a, b *token.Token) bool { return reflect.DeepEqual(normal(a), normal(b)) }

func describe(t *token.Token) string {
	if t == nil {
		return "<nil>"
	}
	s := fmt.Sprintf("{key=%s idx=%d user=%q realm=%q type=%s format=%s uid=%d/%v scopes=%q created=%d expires=%d last_used=%d revoked=%d hash=%x",
		t.Key, t.Index, t.Username, t.Realm, t.Type, t.Format, t.UID, t.HasUID, t.Scopes, t.Created, t.Expires, t.LastUsed, t.RevokedAt, t.Hash[:4])
	if e := t.Ext; e != nil {
		s += fmt.Sprintf(" name=%q service=%q client=%q parent=%s creds=%d sealed=%d", e.Name, e.Service, e.ClientID, e.Parent, len(e.Credentials), len(e.Sealed))
	}
	return s + "}"
}

func wantSame(t testing.TB, what string, got, want *token.Token) {
	t.Helper()
	if !same(got, want) {
		t.Fatalf("%s = %s, want %s", what, describe(got), describe(want))
	}
}

func keysOf(ts []*token.Token) []token.Key {
	out := make([]token.Key, len(ts))
	for i, t := range ts {
		out[i] = t.Key
	}
	return out
}

func wantKeys(t testing.TB, what string, got []*token.Token, want ...*token.Token) {
	t.Helper()
	g, w := keysOf(got), keysOf(want)
	if !slices.Equal(g, w) {
		t.Fatalf("%s = %v, want %v", what, g, w)
	}
	for i := range got {
		if !same(got[i], want[i]) {
			t.Fatalf("%s[%d] = %s, want %s", what, i, describe(got[i]), describe(want[i]))
		}
	}
}

func scanAll(t testing.TB, s persist.Store) map[token.Key]*token.Token {
	t.Helper()
	all := make(map[token.Key]*token.Token)
	err := s.Scan(ctx(t), func(tk *token.Token) error {
		if _, dup := all[tk.Key]; dup {
			return fmt.Errorf("row %s scanned twice", tk.Key)
		}
		all[tk.Key] = tk
		return nil
	})
	if err != nil {
		t.Fatalf("Scan = %v, want nil", err)
	}
	return all
}

func persisted(t testing.TB, s persist.Store) uint64 {
	t.Helper()
	i, err := s.PersistedIndex(ctx(t))
	if err != nil {
		t.Fatalf("PersistedIndex = %v, want nil", err)
	}
	return i
}

// wantConsistent checks that every way of reading all rows (Scan, Newest,
// List, List by user) agrees: a store whose indexes kept a deleted or moved
// row would disagree.
func wantConsistent(t testing.TB, s persist.Store) {
	t.Helper()
	all := scanAll(t, s)
	var newest []*token.Token
	var cur persist.Cursor
	for {
		page, next, err := s.Newest(ctx(t), cur, 100)
		if err != nil {
			t.Fatalf("Newest = %v", err)
		}
		newest = append(newest, page...)
		if next.IsZero() {
			break
		}
		cur = next
	}
	listed, err := s.List(ctx(t), persist.Query{Limit: len(all) + 10})
	if err != nil {
		t.Fatalf("List = %v", err)
	}
	byUser := 0
	users := make(map[string]bool)
	for _, r := range all {
		users[r.Username] = true
	}
	for u := range users {
		rows, err := s.List(ctx(t), persist.Query{Username: u, Limit: len(all) + 10})
		if err != nil {
			t.Fatalf("List(%q) = %v", u, err)
		}
		for _, r := range rows {
			if r.Username != u || !same(r, all[r.Key]) {
				t.Fatalf("List(%q) returned %s, Scan has %s", u, describe(r), describe(all[r.Key]))
			}
		}
		byUser += len(rows)
	}
	for what, rows := range map[string][]*token.Token{"Newest": newest, "List": listed} {
		if len(rows) != len(all) {
			t.Fatalf("%s read %d rows, Scan %d", what, len(rows), len(all))
		}
		for i := 1; i < len(rows); i++ {
			a, b := rows[i-1], rows[i]
			if a.Created < b.Created || a.Created == b.Created && string(a.Key[:]) <= string(b.Key[:]) {
				t.Fatalf("%s is not newest first at %d: %s before %s", what, i, describe(a), describe(b))
			}
		}
		for _, r := range rows {
			if !same(r, all[r.Key]) {
				t.Fatalf("%s returned %s, Scan has %s", what, describe(r), describe(all[r.Key]))
			}
		}
	}
	if byUser != len(all) {
		t.Fatalf("List by user read %d rows in all, Scan %d", byUser, len(all))
	}
}
