package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

// corruption is one way to damage a stored row.
type corruption struct {
	name   string
	column string
	value  func(r *token.Token) any
	// keyLost: the key column itself is damaged, so Get by the old key
	// cannot find the row; the other reads must still refuse it.
	keyLost bool
}

var corruptions = []corruption{
	{name: "short hash", column: "hash", value: func(*token.Token) any { return make([]byte, 31) }},
	{name: "long hash", column: "hash", value: func(*token.Token) any { return make([]byte, 33) }},
	{name: "empty hash", column: "hash", value: func(*token.Token) any { return []byte{} }},
	{name: "no hash on opaque", column: "hash", value: func(*token.Token) any { return nil }},
	{name: "unknown type", column: "type", value: func(*token.Token) any { return "admin" }},
	{name: "unknown format", column: "format", value: func(*token.Token) any { return "paper" }},
	{name: "short parent", column: "parent_key", value: func(*token.Token) any { return []byte{1, 2, 3} }},
	{name: "unsorted scopes", column: "scopes", value: func(*token.Token) any { return "b:x a:x" }},
	{name: "scope with quote", column: "scopes", value: func(*token.Token) any { return `a"b` }},
	{name: "empty username", column: "username", value: func(*token.Token) any { return "" }},
	{name: "invalid utf-8 username", column: "username", value: func(*token.Token) any { return "bob\xff" }},
	{name: "zero created", column: "created", value: func(*token.Token) any { return int64(0) }},
	{name: "negative created", column: "created", value: func(*token.Token) any { return int64(-5) }},
	{name: "expires before created", column: "expires", value: func(r *token.Token) any { return int64(r.Created) - 1 }},
	{name: "zero expires", column: "expires", value: func(*token.Token) any { return int64(0) }},
	{name: "wrong end_of_use", column: "end_of_use", value: func(r *token.Token) any { return int64(r.Expires) + 1 }},
	{name: "negative uid", column: "uid", value: func(*token.Token) any { return int64(-1) }},
	{name: "negative index", column: "idx", value: func(*token.Token) any { return int64(-1) }},
	{name: "empty name", column: "name", value: func(*token.Token) any { return "" }},
	{name: "short key", column: "token_key", value: func(*token.Token) any { return make([]byte, 15) }, keyLost: true},
	{name: "zero key", column: "token_key", value: func(*token.Token) any { return make([]byte, 16) }, keyLost: true},
}

func testCorruptRows(t *testing.T, open func(t *testing.T) persist.Store) {
	for _, cr := range corruptions {
		t.Run(strings.ReplaceAll(cr.name, " ", "_"), func(t *testing.T) {
			s := open(t)
			c := s.(Corrupter)
			good := mk(1, "victim", at(0))
			bad := mk(2, "victim", at(time.Second), extra(token.Extra{Credentials: []byte("sealed")}))
			put(t, s, good, bad)
			c.Corrupt(t, bad.Key, cr.column, cr.value(bad))
			wantCorrupt := func(what string, rows []*token.Token, err error) {
				t.Helper()
				if !errors.Is(err, persist.ErrCorrupt) {
					t.Fatalf("%s on a row with %s = %d rows, %v; want ErrCorrupt", what, cr.name, len(rows), err)
				}
				if len(rows) != 0 {
					t.Fatalf("%s on a row with %s returned %d rows with ErrCorrupt, want none", what, cr.name, len(rows))
				}
			}
			if cr.keyLost {
				wantMissing(t, s, bad.Key)
			} else {
				got, err := s.Get(ctx(t), bad.Key)
				var rows []*token.Token
				if got != nil {
					rows = append(rows, got)
				}
				wantCorrupt("Get", rows, err)
			}
			wantSame(t, "Get of the undamaged row", get(t, s, good.Key), good)
			rows, err := s.List(ctx(t), persist.Query{Limit: 10})
			wantCorrupt("List", rows, err)
			rows, _, err = s.Newest(ctx(t), persist.Cursor{}, 10)
			wantCorrupt("Newest", rows, err)
			var seen []*token.Token // the damaged row must never reach fn
			err = s.Scan(ctx(t), func(r *token.Token) error {
				if r.Key != good.Key {
					seen = append(seen, r)
				}
				return nil
			})
			wantCorrupt("Scan", seen, err)
			// Writes still work, and a newer put repairs the row.
			if !cr.keyLost && cr.column != "idx" {
				fixed := bad.Clone()
				fixed.Index = 3
				put(t, s, fixed)
				wantSame(t, "Get after a newer put over the damaged row", get(t, s, bad.Key), fixed)
			}
		})
	}
}
