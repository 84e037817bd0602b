package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

func testList(t *testing.T, s persist.Store) {
	a1 := mk(1, "alice", at(1*time.Second))
	a2 := mk(2, "alice", at(2*time.Second), typ(token.TypeUser))
	a3 := mk(3, "alice", at(3*time.Second))
	a3b := mk(4, "alice", at(3*time.Second)) // same created: key order decides
	b1 := mk(5, "bob", at(4*time.Second), typ(token.TypeUser))
	A1 := mk(6, "Alice", at(5*time.Second)) // another user: case matters
	put(t, s, a1, a2, a3, a3b, b1, A1)
	hi, lo := a3, a3b
	if string(hi.Key[:]) < string(lo.Key[:]) {
		hi, lo = lo, hi
	}
	list := func(q persist.Query) []*token.Token {
		t.Helper()
		got, err := s.List(ctx(t), q)
		if err != nil {
			t.Fatalf("List(%+v) = %v", q, err)
		}
		return got
	}
	wantKeys(t, "List(alice)", list(persist.Query{Username: "alice", Limit: 10}), hi, lo, a2, a1)
	wantKeys(t, "List(alice, limit 2)", list(persist.Query{Username: "alice", Limit: 2}), hi, lo)
	wantKeys(t, "List(alice, session)", list(persist.Query{Username: "alice", Type: token.TypeSession, Limit: 10}), hi, lo, a1)
	wantKeys(t, "List(user)", list(persist.Query{Type: token.TypeUser, Limit: 10}), b1, a2)
	wantKeys(t, "List(all, limit 3)", list(persist.Query{Limit: 3}), A1, b1, hi)
	wantKeys(t, "List(Alice)", list(persist.Query{Username: "Alice", Limit: 10}), A1)
	wantKeys(t, "List(nobody)", list(persist.Query{Username: "nobody", Limit: 10}))
	wantKeys(t, "List(oauth)", list(persist.Query{Type: token.TypeOAuth, Limit: 10}))
}

func testBadLimits(t *testing.T, s persist.Store) {
	put(t, s, mk(1, "alice", at(0)))
	c := ctx(t)
	for _, limit := range []int{0, -1} {
		if got, err := s.List(c, persist.Query{Limit: limit}); err == nil {
			t.Errorf("List(limit %d) = %d rows, nil; want an error", limit, len(got))
		}
		if got, err := s.Orphaned(c, limit); err == nil {
			t.Errorf("Orphaned(%d) = %d rows, nil; want an error", limit, len(got))
		}
		if got, err := s.Ended(c, at(time.Hour*100), limit); err == nil {
			t.Errorf("Ended(limit %d) = %d rows, nil; want an error", limit, len(got))
		}
		if got, _, err := s.Newest(c, persist.Cursor{}, limit); err == nil {
			t.Errorf("Newest(limit %d) = %d rows, nil; want an error", limit, len(got))
		}
	}
}

func testChildren(t *testing.T, s persist.Store) {
	p1, p2, lone := mk(1, "alice", at(0)), mk(2, "alice", at(0)), mk(3, "alice", at(0))
	c13 := mk(4, "alice", at(3*time.Second), child(p1.Key))
	c11 := mk(5, "alice", at(1*time.Second), child(p1.Key))
	c12a := mk(6, "alice", at(2*time.Second), child(p1.Key))
	c12b := mk(7, "alice", at(2*time.Second), child(p1.Key))
	c2 := mk(8, "alice", at(2500*time.Millisecond), typ(token.TypeInternal), child(p2.Key), extra(token.Extra{Service: "svc", Parent: p2.Key}))
	grand := mk(9, "alice", at(1500*time.Millisecond), child(c11.Key))
	put(t, s, p1, p2, lone, c13, c11, c12a, c12b, c2, grand)
	lo, hi := c12a, c12b
	if string(hi.Key[:]) < string(lo.Key[:]) {
		hi, lo = lo, hi
	}
	children := func(keys ...token.Key) []*token.Token {
		t.Helper()
		got, err := s.Children(ctx(t), keys)
		if err != nil {
			t.Fatalf("Children(%v) = %v", keys, err)
		}
		return got
	}
	wantKeys(t, "Children(p1, p2)", children(p1.Key, p2.Key), c11, lo, hi, c2, c13)
	wantKeys(t, "Children(p2, p1, p1)", children(p2.Key, p1.Key, p1.Key), c11, lo, hi, c2, c13)
	wantKeys(t, "Children(c11)", children(c11.Key), grand)
	wantKeys(t, "Children(lone, unknown)", children(lone.Key, token.NewKey()))
	wantKeys(t, "Children()", children())

	// Many parents (more than one SQL statement's worth) keep one order.
	var parents []token.Key
	var want []*token.Token
	var batch []*token.Token
	for i := range 1200 {
		p := mk(100, "bob", at(0))
		parents = append(parents, p.Key)
		batch = append(batch, p)
		if i%3 == 0 {
			c := mk(101, "bob", at(time.Duration(1200-i)*time.Millisecond), child(p.Key))
			batch = append(batch, c)
			want = append(want, c)
		}
	}
	put(t, s, batch...)
	slices.Reverse(want)
	wantKeys(t, "Children(1200 parents)", children(parents...), want...)
}

func testNamed(t *testing.T, s persist.Store) {
	live := mk(1, "alice", at(2*time.Second), named("ci"))
	dead := mk(2, "alice", at(1*time.Second), named("ci"), revoked(at(3*time.Second)))
	other := mk(3, "alice", at(0), named("other"))
	bob := mk(4, "bob", at(0), named("ci"))
	anon := mk(5, "alice", at(0))
	put(t, s, live, dead, other, bob, anon)
	named := func(user, name string) []*token.Token {
		t.Helper()
		got, err := s.Named(ctx(t), user, name)
		if err != nil {
			t.Fatalf("Named(%q, %q) = %v", user, name, err)
		}
		return got
	}
	wantKeys(t, "Named(alice, ci)", named("alice", "ci"), dead, live)
	wantKeys(t, "Named(bob, ci)", named("bob", "ci"), bob)
	wantKeys(t, "Named(Alice, ci)", named("Alice", "ci"))
	wantKeys(t, "Named(alice, CI)", named("alice", "CI"))
	wantKeys(t, "Named(alice, \"\")", named("alice", ""))
}

func testOrphaned(t *testing.T, s persist.Store) {
	p := mk(1, "alice", at(0))
	a := mk(2, "alice", at(1*time.Second), child(p.Key))
	b := mk(3, "alice", at(2*time.Second), child(token.NewKey()))
	c := mk(4, "alice", at(3*time.Second), child(token.NewKey()))
	d := mk(5, "alice", at(4*time.Second))
	put(t, s, p, a, b, c, d)
	orphaned := func(limit int) []*token.Token {
		t.Helper()
		got, err := s.Orphaned(ctx(t), limit)
		if err != nil {
			t.Fatalf("Orphaned(%d) = %v", limit, err)
		}
		return got
	}
	wantKeys(t, "Orphaned(10)", orphaned(10), c, b)
	wantKeys(t, "Orphaned(1)", orphaned(1), c)
	write(t, s, &persist.Batch{Deletes: []persist.Delete{{Key: p.Key, MaxIndex: 1}}})
	wantKeys(t, "Orphaned(10) after deleting the parent", orphaned(10), c, b, a)
}

func testStats(t *testing.T, s persist.Store) {
	now := at(10 * time.Minute)
	rows := []*token.Token{
		mk(1, "alice", at(0)),                                              // live session
		mk(2, "alice", at(0)),                                              // same user again
		mk(3, "bob", at(0), expires(at(5*time.Minute))),                    // expired session
		mk(4, "carol", at(0), revoked(at(time.Minute))),                    // revoked session
		mk(5, "dave", at(0), expires(0)),                                   // never expires
		mk(6, "frank", at(0), expires(now)),                                // expires exactly now: not live
		mk(7, "ghost", at(0), revoked(at(20*time.Minute))),                 // revoked (later): not live
		mk(8, "alice", at(0), typ(token.TypeUser)),                         // live user token
		mk(9, "bob", at(0), typ(token.TypeUser), expires(at(time.Minute))), // expired user token
		mk(10, "eve", at(0), typ(token.TypeUser), expires(0)),              // live user token
		mk(11, "svc", at(0), typ(token.TypeService)),                       // neither
	}
	put(t, s, rows...)
	got, err := s.Stats(ctx(t), now)
	if err != nil {
		t.Fatalf("Stats = %v", err)
	}
	want := persist.Stats{Tokens: 11, UniqueSessions: 2, UserTokens: 2}
	if got != want {
		t.Fatalf("Stats(now) = %+v, want %+v", got, want)
	}
	got, _ = s.Stats(ctx(t), at(2*time.Hour))
	want = persist.Stats{Tokens: 11, UniqueSessions: 1, UserTokens: 1} // dave, eve: never expire
	if got != want {
		t.Fatalf("Stats(now+2h) = %+v, want %+v", got, want)
	}
}

func testEnded(t *testing.T, s persist.Store) {
	e1h := mk(1, "a", at(0), expires(at(time.Hour)))
	e2h := mk(2, "a", at(0), expires(at(2*time.Hour))) // ends exactly at "before": not yet
	r30 := mk(3, "a", at(0), expires(at(3*time.Hour)), revoked(at(30*time.Minute)))
	never := mk(4, "a", at(0), expires(0))
	r10 := mk(5, "a", at(0), expires(0), revoked(at(10*time.Minute)))
	tieA := mk(6, "a", at(0), expires(at(50*time.Minute)))
	tieB := mk(7, "a", at(0), expires(at(50*time.Minute)))
	put(t, s, e1h, e2h, r30, never, r10, tieA, tieB)
	lo, hi := tieA, tieB
	if string(hi.Key[:]) < string(lo.Key[:]) {
		hi, lo = lo, hi
	}
	ended := func(before token.Time, limit int) []*token.Token {
		t.Helper()
		got, err := s.Ended(ctx(t), before, limit)
		if err != nil {
			t.Fatalf("Ended(%d) = %v", limit, err)
		}
		return got
	}
	wantKeys(t, "Ended(2h, 10)", ended(at(2*time.Hour), 10), r10, r30, lo, hi, e1h)
	wantKeys(t, "Ended(2h, 2)", ended(at(2*time.Hour), 2), r10, r30)
	wantKeys(t, "Ended(start, 10)", ended(at(0), 10))
}

func testNewestPaging(t *testing.T, s persist.Store) {
	if got, cur, err := s.Newest(ctx(t), persist.Cursor{}, 10); err != nil || len(got) != 0 || !cur.IsZero() {
		t.Fatalf("Newest of an empty store = %d rows, %+v, %v; want none, zero cursor, nil", len(got), cur, err)
	}
	// 10 groups of 25 rows sharing a created time, so pages end inside
	// groups and the cursor's key decides.
	var rows []*token.Token
	for g := range 10 {
		for range 25 {
			rows = append(rows, mk(uint64(len(rows)+1), "u", at(time.Duration(g)*time.Second)))
		}
	}
	put(t, s, rows...)
	want := slices.Clone(rows)
	slices.SortFunc(want, func(a, b *token.Token) int {
		if a.Created != b.Created {
			return int(b.Created - a.Created) // the span is small: no overflow
		}
		return -strings.Compare(string(a.Key[:]), string(b.Key[:]))
	})
	for _, limit := range []int{1, 7, 25, 250, 1000} {
		var got []*token.Token
		var cur persist.Cursor
		for pages := 0; ; pages++ {
			if pages > len(rows)+1 {
				t.Fatalf("Newest(limit %d) did not end after %d pages", limit, pages)
			}
			page, next, err := s.Newest(ctx(t), cur, limit)
			if err != nil {
				t.Fatalf("Newest(%+v, %d) = %v", cur, limit, err)
			}
			if len(page) > limit {
				t.Fatalf("Newest(limit %d) returned %d rows", limit, len(page))
			}
			if !next.IsZero() && len(page) == 0 {
				t.Fatalf("Newest(limit %d) returned no rows and a non-zero cursor", limit)
			}
			got = append(got, page...)
			if next.IsZero() {
				break
			}
			cur = next
		}
		wantKeys(t, fmt.Sprintf("Newest pages of %d", limit), got, want...)
	}
}

func testScan(t *testing.T, s persist.Store) {
	var rows []*token.Token
	for i := range 100 {
		rows = append(rows, mk(uint64(i+1), "u", at(time.Duration(i)*time.Second)))
	}
	put(t, s, rows...)
	all := scanAll(t, s)
	if len(all) != len(rows) {
		t.Fatalf("Scan saw %d rows, want %d", len(all), len(rows))
	}
	for _, r := range rows {
		wantSame(t, "Scan row", all[r.Key], r)
	}
	stop := errors.New("stop")
	n := 0
	err := s.Scan(ctx(t), func(*token.Token) error {
		n++
		if n == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 10 {
		t.Fatalf("Scan with fn failing at row 10 = %v after %d rows, want the fn's error after 10", err, n)
	}

	keys := make(map[token.Key]int)
	if err := persist.ScanKeys(ctx(t), s, func(k token.Key) error { keys[k]++; return nil }); err != nil {
		t.Fatalf("ScanKeys = %v", err)
	}
	if len(keys) != len(rows) {
		t.Fatalf("ScanKeys saw %d keys, want %d", len(keys), len(rows))
	}
	for _, r := range rows {
		if keys[r.Key] != 1 {
			t.Fatalf("ScanKeys saw key %s %d times, want once", r.Key, keys[r.Key])
		}
	}
	n = 0
	err = persist.ScanKeys(ctx(t), s, func(token.Key) error {
		n++
		if n == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 10 {
		t.Fatalf("ScanKeys with fn failing at key 10 = %v after %d keys, want the fn's error after 10", err, n)
	}
}

func testReset(t *testing.T, s persist.Store) {
	write(t, s, &persist.Batch{Puts: []*token.Token{mk(1, "a", at(0)), mk(2, "b", at(0))}, Index: 2})
	if err := s.Reset(ctx(t)); err != nil {
		t.Fatalf("Reset = %v", err)
	}
	if n := len(scanAll(t, s)); n != 0 {
		t.Fatalf("Scan after Reset saw %d rows, want 0", n)
	}
	if got := persisted(t, s); got != 0 {
		t.Fatalf("PersistedIndex after Reset = %d, want 0", got)
	}
	// The store is usable afterwards, with every rule intact.
	r := mk(1, "a", at(0))
	write(t, s, &persist.Batch{Puts: []*token.Token{r}, Index: 1})
	wantSame(t, "Get after Reset and a write", get(t, s, r.Key), r)
	if got := persisted(t, s); got != 1 {
		t.Fatalf("PersistedIndex after Reset and a write = %d, want 1", got)
	}
}

func testUnicodeUsernames(t *testing.T, s persist.Store) {
	// "pad" and "pad ": MySQL's _bin collations are PAD SPACE (trailing
	// spaces ignored), so the schema must not compare usernames with one.
	users := []string{"José", "josé", "JOSÉ", "Jose\u0301", "ΑΒΓ", "αβγ", "用户", "🙂", "straße", "strasse", "i̇", "ı", "pad", "pad "}
	byUser := make(map[string]*token.Token)
	var rows []*token.Token
	for i, u := range users {
		r := mk(uint64(i+1), u, at(time.Duration(i)*time.Second), named("n"))
		byUser[u] = r
		rows = append(rows, r)
	}
	put(t, s, rows...)
	for _, u := range users {
		got, err := s.List(ctx(t), persist.Query{Username: u, Limit: 10})
		if err != nil {
			t.Fatalf("List(%q) = %v", u, err)
		}
		wantKeys(t, fmt.Sprintf("List(%q)", u), got, byUser[u])
		gotNamed, err := s.Named(ctx(t), u, "n")
		if err != nil {
			t.Fatalf("Named(%q) = %v", u, err)
		}
		wantKeys(t, fmt.Sprintf("Named(%q, n)", u), gotNamed, byUser[u])
	}
}

func testKeysDifferingSlightly(t *testing.T, s persist.Store) {
	base := token.NewKey()
	var flipped, low token.Key = base, base
	flipped[token.KeySize-1] ^= 1
	low[0] ^= 0x80
	upper, err := token.ParseKey("ABCDEFGHIJKLMNOPQRSTUA")
	if err != nil {
		t.Fatal(err)
	}
	lower, err := token.ParseKey("abcdefghijklmnopqrstuA")
	if err != nil {
		t.Fatal(err)
	}
	mixed, err := token.ParseKey("aBCDEFGHIJKLMNOPQRSTUA")
	if err != nil {
		t.Fatal(err)
	}
	keys := []token.Key{base, flipped, low, upper, lower, mixed}
	var rows []*token.Token
	for i, k := range keys {
		rows = append(rows, mk(uint64(i+1), fmt.Sprintf("user%d", i), at(0), withKey(k)))
	}
	put(t, s, rows...)
	for _, r := range rows {
		wantSame(t, fmt.Sprintf("Get(%s)", r.Key), get(t, s, r.Key), r)
	}
	write(t, s, &persist.Batch{Deletes: []persist.Delete{{Key: lower, MaxIndex: 100}}})
	wantMissing(t, s, lower)
	wantSame(t, "Get(upper) after deleting lower", get(t, s, upper), rows[3])
	wantSame(t, "Get(mixed) after deleting lower", get(t, s, mixed), rows[5])
}

func testLargeBatch(t *testing.T, s persist.Store) {
	const n = 3000
	var rows []*token.Token
	for i := range n {
		rows = append(rows, mk(uint64(i+1), fmt.Sprintf("user%d", i%37), at(time.Duration(i)*time.Millisecond)))
	}
	write(t, s, &persist.Batch{Puts: rows, Index: n})
	all := scanAll(t, s)
	if len(all) != n {
		t.Fatalf("Scan after a batch of %d puts saw %d rows", n, len(all))
	}
	for _, r := range rows {
		wantSame(t, "Scan row", all[r.Key], r)
	}
	b := &persist.Batch{Index: n + 1}
	for i, r := range rows {
		switch i % 2 {
		case 0:
			b.Deletes = append(b.Deletes, persist.Delete{Key: r.Key, MaxIndex: n})
		case 1:
			b.Touches = append(b.Touches, persist.Touch{Key: r.Key, At: at(time.Hour + time.Duration(i))})
		}
	}
	write(t, s, b)
	all = scanAll(t, s)
	if len(all) != n/2 {
		t.Fatalf("Scan after deleting %d of %d rows saw %d", len(b.Deletes), n, len(all))
	}
	for i, r := range rows {
		got, ok := all[r.Key]
		switch {
		case i%2 == 0 && ok:
			t.Fatalf("row %d (%s) survived its delete", i, r.Key)
		case i%2 == 1 && (!ok || got.LastUsed != at(time.Hour+time.Duration(i))):
			t.Fatalf("row %d (%s) = %s after its touch, want last_used %d", i, r.Key, describe(got), at(time.Hour+time.Duration(i)))
		}
	}
	if got := persisted(t, s); got != n+1 {
		t.Fatalf("PersistedIndex = %d, want %d", got, n+1)
	}
	wantConsistent(t, s)
}

// testConcurrentReaders writes batches that rewrite a set of rows with each
// batch's index, while readers check that they never see an error, a torn
// record, or a row older than the persisted index they read before it.
