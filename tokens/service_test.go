package tokens

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokencache/tokencache/cache"
	"github.com/tokencache/tokencache/internal/fakeclock"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/replica"
	"github.com/tokencache/tokencache/token"
)

// newClock is a fake clock safe for concurrent use.
func newClock() *fakeclock.Clock {
	return fakeclock.New(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
}

type testNode struct {
	svc   *Service
	state *replica.Machine
	cache *cache.Cache
	store persist.Store
	clock *fakeclock.Clock
}

type nodeOpts struct {
	capacity int
	store    persist.Store // nil: a memory store
	mode     string
	rules    token.Rules
	clock    *fakeclock.Clock
	// maxLifetime is tokens.max_lifetime; 0: the default.
	maxLifetime time.Duration
	// formats are the token formats; nil: opaque alone.
	formats *token.Formats
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func openMemory(t testing.TB) persist.Store {
	t.Helper()
	cfg := persist.DefaultConfig()
	cfg.Store = "memory"
	st, err := persist.Open(context.Background(), cfg, t.TempDir(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func openSQLite(t testing.TB, dir string) persist.Store {
	t.Helper()
	cfg := persist.DefaultConfig()
	cfg.Store = "sqlite"
	st, err := persist.Open(context.Background(), cfg, dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newNode(t testing.TB, o nodeOpts) *testNode {
	t.Helper()
	if o.capacity == 0 {
		o.capacity = 1000
	}
	if o.store == nil {
		o.store = openMemory(t)
	}
	if o.mode == "" {
		o.mode = replica.WriteThrough
	}
	if o.clock == nil {
		o.clock = newClock()
	}
	if o.rules == (token.Rules{}) {
		o.rules = token.Rules{Expiry: time.Hour, Retention: 24 * time.Hour}
	}
	ccfg := cache.DefaultConfig()
	ccfg.Capacity = o.capacity
	ccfg.Shards = 1
	ccfg.Now = o.clock.Now
	c, err := cache.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	wcfg := replica.DefaultWriterConfig()
	wcfg.Mode = o.mode
	wcfg.FlushInterval = 5 * time.Millisecond
	wcfg.RetryMax = 50 * time.Millisecond
	state, err := replica.NewMachine(wcfg, c, o.store, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := o.store.PersistedIndex(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Rules = o.rules
	cfg.Now = o.clock.Now
	if o.maxLifetime != 0 {
		cfg.MaxLifetime = o.maxLifetime
	}
	cfg.ReapInterval = time.Hour // tests purge explicitly
	cfg.Formats = o.formats
	svc := startService(t, cfg, state, replica.NewLocalLog(state, idx))
	return &testNode{svc: svc, state: state, cache: c, store: o.store, clock: o.clock}
}

func (n *testNode) issue(t testing.TB, req IssueRequest) Issued {
	t.Helper()
	if req.Username == "" {
		req.Username = "alice"
	}
	if req.Type == token.TypeUnknown {
		req.Type = token.TypeUser
	}
	iss, err := n.svc.Issue(context.Background(), req)
	if err != nil {
		t.Fatalf("Issue(%+v): %v", req, err)
	}
	return iss
}

func (n *testNode) validate(t testing.TB, text string) token.State {
	t.Helper()
	v := n.svc.Validate(context.Background(), []byte(text))
	if v.Err != nil {
		t.Fatalf("Validate: cannot decide: %v", v.Err)
	}
	return v.State
}

func wantState(t testing.TB, n *testNode, text string, want token.State) {
	t.Helper()
	if got := n.validate(t, text); got != want {
		t.Fatalf("Validate = %v, want %v", got, want)
	}
}

func TestIssueAndValidate(t *testing.T) {
	n := newNode(t, nodeOpts{})
	iss := n.issue(t, IssueRequest{Scopes: "read write", UID: 7, HasUID: true})
	wantState(t, n, iss.Token, token.StateValid)
	v := n.svc.Validate(context.Background(), []byte(iss.Token))
	if v.Token.Username != "alice" || v.Token.Scopes != "read write" || v.Token.UID != 7 || v.Token.Realm != "default" {
		t.Errorf("Validate record = %+v", v.Token)
	}
	k, secret, _ := token.Parse("tc", []byte(iss.Token))
	wrong := token.Encode("tc", k, token.NewSecret())
	wantState(t, n, wrong, token.StateUnknown)
	wantState(t, n, token.Encode("tc", token.NewKey(), string(secret)), token.StateUnknown)
	wantState(t, n, "garbage", token.StateMalformed)
}

func TestExpiryAndRetention(t *testing.T) {
	n := newNode(t, nodeOpts{maxLifetime: NoMaxLifetime}) // tokens that never expire are allowed
	short := n.issue(t, IssueRequest{ExpiresIn: 10 * time.Minute})
	def := n.issue(t, IssueRequest{})
	forever := n.issue(t, IssueRequest{NoExpire: true})
	if got := def.Record.Expires.Time().Sub(def.Record.Created.Time()); got != time.Hour {
		t.Errorf("default lifetime = %s, want tokens.expiry (1h)", got)
	}
	n.clock.Advance(11 * time.Minute)
	wantState(t, n, short.Token, token.StateExpired)
	wantState(t, n, def.Token, token.StateValid)
	// Kept for history until min(expires, revoked) + (retention - expiry).
	n.clock.Advance(10*time.Minute + 23*time.Hour - 11*time.Minute - time.Second)
	wantState(t, n, short.Token, token.StateExpired)
	n.clock.Advance(time.Second)
	wantState(t, n, short.Token, token.StateUnknown)
	wantState(t, n, def.Token, token.StateExpired)
	wantState(t, n, forever.Token, token.StateValid)

	purged, err := n.svc.Purge(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(purged) != 1 || purged[0].Key != short.Record.Key {
		t.Fatalf("Purge() = %v, want only the short-lived token", keysOf(purged))
	}
	waitPersisted(t, n)
	if _, err := n.store.Get(context.Background(), short.Record.Key); !errors.Is(err, persist.ErrNotFound) {
		t.Errorf("store.Get(purged) error = %v, want ErrNotFound", err)
	}
	if _, _, err := n.svc.Info(context.Background(), short.Record.Key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Info(purged) error = %v, want ErrNotFound", err)
	}
	all, err := n.svc.Purge(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Key != def.Record.Key {
		t.Errorf("Purge(include expired) = %v, want the default-lifetime token", keysOf(all))
	}
}

func keysOf(ts []*token.Token) []token.Key {
	out := make([]token.Key, len(ts))
	for i, t := range ts {
		out[i] = t.Key
	}
	return out
}

func waitPersisted(t testing.TB, n *testNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		err := n.state.Writer().WaitPersisted(ctx, n.state.AppliedIndex())
		if err == nil {
			return
		}
		if ctx.Err() != nil { // the writer retries a failing store: wait for it
			t.Fatalf("waitPersisted: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCascadeRevokeThreeLevels(t *testing.T) {
	n := newNode(t, nodeOpts{})
	root := n.issue(t, IssueRequest{Type: token.TypeSession, Scopes: "a b c"})
	n.clock.Advance(time.Second)
	child := n.issue(t, IssueRequest{Type: token.TypeUser, Scopes: "a b", Parent: root.Record.Key})
	n.clock.Advance(time.Second)
	grand, err := n.svc.Delegate(context.Background(), DelegateRequest{
		ParentToken: child.Token,
		Delegation:  token.Delegation{Type: token.TypeInternal, Service: "svc", Scopes: "a"},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.clock.Advance(time.Second)
	sibling := n.issue(t, IssueRequest{Type: token.TypeUser, Scopes: "c", Parent: root.Record.Key})
	other := n.issue(t, IssueRequest{})

	kids, err := n.svc.Children(context.Background(), root.Record.Key)
	if err != nil {
		t.Fatal(err)
	}
	wantOrder := []token.Key{child.Record.Key, sibling.Record.Key, grand.Record.Key}
	if got := keysOf(kids); !slices.Equal(got, wantOrder) {
		t.Errorf("Children(root) = %v, want breadth-first %v", got, wantOrder)
	}

	revoked, err := n.svc.Revoke(context.Background(), root.Record.Key)
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]token.Key{root.Record.Key}, wantOrder...); !slices.Equal(revoked, want) {
		t.Errorf("Revoke(root) = %v, want %v", revoked, want)
	}
	for _, tok := range []string{root.Token, child.Token, grand.Token, sibling.Token} {
		wantState(t, n, tok, token.StateRevoked)
	}
	wantState(t, n, other.Token, token.StateValid)
	// A revoked parent cannot get new children.
	if _, err := n.svc.Issue(context.Background(), IssueRequest{Username: "alice", Type: token.TypeUser, Parent: root.Record.Key}); !errors.Is(err, ErrParentNotValid) {
		t.Errorf("Issue(child of revoked) error = %v, want ErrParentNotValid", err)
	}
}

func TestCascadeLimits(t *testing.T) {
	n := newNode(t, nodeOpts{})
	n.svc.cfg.MaxDescendants = 5
	root := n.issue(t, IssueRequest{Scopes: "a"})
	var kids []Issued
	for range 6 {
		kids = append(kids, n.issue(t, IssueRequest{Scopes: "a", Parent: root.Record.Key}))
	}
	if _, err := n.svc.Revoke(context.Background(), root.Record.Key); !errors.Is(err, ErrTooManyDescendants) {
		t.Fatalf("Revoke(6 descendants, limit 5) error = %v, want ErrTooManyDescendants", err)
	}
	if _, err := n.svc.Children(context.Background(), root.Record.Key); !errors.Is(err, ErrTooManyDescendants) {
		t.Errorf("Children(6 descendants, limit 5) error = %v, want ErrTooManyDescendants", err)
	}
	wantState(t, n, root.Token, token.StateValid) // nothing was revoked
	n.svc.cfg.MaxDescendants = 6                  // exactly the limit is allowed
	if got, err := n.svc.Revoke(context.Background(), root.Record.Key); err != nil || len(got) != 7 {
		t.Fatalf("Revoke(6 descendants, limit 6) = %d keys, %v; want 7", len(got), err)
	}
	for _, k := range kids {
		wantState(t, n, k.Token, token.StateRevoked)
	}
}

func TestDuplicateNames(t *testing.T) {
	n := newNode(t, nodeOpts{})
	first := n.issue(t, IssueRequest{Name: "ci"})
	if _, err := n.svc.Issue(context.Background(), IssueRequest{Username: "alice", Type: token.TypeUser, Name: "ci"}); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("Issue(duplicate name) error = %v, want ErrDuplicateName", err)
	}
	n.issue(t, IssueRequest{Username: "bob", Name: "ci"}) // another user may
	name := "ci"
	second := n.issue(t, IssueRequest{Name: "deploy"})
	if _, err := n.svc.Modify(context.Background(), ModifyRequest{Key: second.Record.Key, Name: &name}); !errors.Is(err, ErrDuplicateName) {
		t.Errorf("Modify(to a used name) error = %v, want ErrDuplicateName", err)
	}
	if _, err := n.svc.Revoke(context.Background(), first.Record.Key); err != nil {
		t.Fatal(err)
	}
	n.issue(t, IssueRequest{Name: "ci"}) // a revoked token's name is free again
}

func TestDelegationReuse(t *testing.T) {
	n := newNode(t, nodeOpts{})
	parent := n.issue(t, IssueRequest{Type: token.TypeSession, Scopes: "read write", ExpiresIn: time.Hour})
	ask := func(d token.Delegation) Issued {
		t.Helper()
		iss, err := n.svc.Delegate(context.Background(), DelegateRequest{ParentToken: parent.Token, Delegation: d})
		if err != nil {
			t.Fatalf("Delegate(%+v): %v", d, err)
		}
		return iss
	}
	d := token.Delegation{Type: token.TypeInternal, Service: "svc", Scopes: "read"}
	first := ask(d)
	if first.Reused || first.Record.Expires != parent.Record.Expires {
		t.Errorf("first Delegate: reused=%v expires=%s, want new with the parent's expiry", first.Reused, first.Record.Expires)
	}
	again := ask(d)
	if !again.Reused || again.Token != first.Token {
		t.Errorf("second Delegate: reused=%v same token=%v, want the first child again", again.Reused, again.Token == first.Token)
	}
	wantState(t, n, again.Token, token.StateValid)
	if other := ask(token.Delegation{Type: token.TypeInternal, Service: "svc", Scopes: "read write"}); other.Reused {
		t.Error("Delegate(other scopes) reused a child")
	}
	if other := ask(token.Delegation{Type: token.TypeInternal, Service: "svc", Scopes: "read", MinExpires: token.At(n.clock.Now().Add(2 * time.Hour))}); other.Reused {
		t.Error("Delegate(min expiry beyond the child) reused a child")
	}
	nb1 := ask(token.Delegation{Type: token.TypeNotebook})
	nb2 := ask(token.Delegation{Type: token.TypeNotebook})
	if nb1.Record.Scopes != parent.Record.Scopes || !nb2.Reused || nb2.Token != nb1.Token {
		t.Errorf("notebook delegation: scopes %q reused %v", nb1.Record.Scopes, nb2.Reused)
	}
	if _, err := n.svc.Delegate(context.Background(), DelegateRequest{ParentToken: parent.Token, Delegation: token.Delegation{Type: token.TypeInternal, Service: "svc", Scopes: "admin"}}); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("Delegate(scope the parent lacks) error = %v, want ErrInvalid", err)
	}
	k, _, _ := token.Parse("tc", []byte(parent.Token))
	forged := token.Encode("tc", k, token.NewSecret())
	if _, err := n.svc.Delegate(context.Background(), DelegateRequest{ParentToken: forged, Delegation: d}); !errors.Is(err, ErrParentNotFound) {
		t.Errorf("Delegate(wrong parent secret) error = %v, want ErrParentNotFound", err)
	}
}

func TestIdempotentIssue(t *testing.T) {
	n := newNode(t, nodeOpts{})
	req := IssueRequest{Username: "alice", Type: token.TypeUser, IdempotencyKey: "req-1"}
	a := n.issue(t, req)
	b := n.issue(t, req)
	if a.Token != b.Token {
		t.Fatal("a retry with the same Idempotency-Key minted a second token")
	}
	list, err := n.svc.List(context.Background(), ListQuery{Username: "alice"})
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %d tokens, %v; want 1", len(list), err)
	}
	req.Scopes = "other"
	if _, err := n.svc.Issue(context.Background(), req); !errors.Is(err, ErrIdempotencyConflict) {
		t.Errorf("Issue(same key, other request) error = %v, want ErrIdempotencyConflict", err)
	}
}

func TestIssueRejectsBadInput(t *testing.T) {
	n := newNode(t, nodeOpts{})
	bad := []IssueRequest{
		{Type: token.TypeUser},                               // no username
		{Username: "a", Type: token.TypeUser, ExpiresIn: -1}, // negative lifetime
		{Username: "a", Type: token.TypeUser, ExpiresIn: time.Hour, NoExpire: true},
		{Username: "a", Type: token.TypeUser, ExpiresIn: 100 * 365 * 24 * time.Hour},
		{Username: "a", Type: token.TypeInternal, Service: "s"}, // internal without parent
		{Username: "a\x00", Type: token.TypeUser},
	}
	for _, req := range bad {
		if _, err := n.svc.Issue(context.Background(), req); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("Issue(%+v) error = %v, want ErrInvalid", req, err)
		}
	}
	if _, err := n.svc.Issue(context.Background(), IssueRequest{Username: "a", Type: token.TypeUser, Parent: token.NewKey()}); !errors.Is(err, ErrParentNotFound) {
		t.Errorf("Issue(unknown parent) error = %v, want ErrParentNotFound", err)
	}
	if st, _ := n.store.Stats(context.Background(), 0); st.Tokens != 0 || n.state.AppliedIndex() != 0 {
		t.Errorf("bad input changed state: %d rows, applied index %d", st.Tokens, n.state.AppliedIndex())
	}
}

func TestModify(t *testing.T) {
	n := newNode(t, nodeOpts{maxLifetime: NoMaxLifetime}) // tokens that never expire are allowed
	iss := n.issue(t, IssueRequest{Scopes: "read", Name: "a"})
	name, scopes := "b", token.Scopes("read write")
	exp := n.clock.Now().Add(3 * time.Hour)
	got, err := n.svc.Modify(context.Background(), ModifyRequest{Key: iss.Record.Key, Name: &name, Scopes: &scopes, Expires: &exp})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name() != "b" || got.Scopes != scopes || got.Expires != token.At(exp) {
		t.Errorf("Modify result = name %q scopes %q expires %s", got.Name(), got.Scopes, got.Expires)
	}
	n.clock.Advance(2 * time.Hour)
	wantState(t, n, iss.Token, token.StateValid)
	if got, err = n.svc.Modify(context.Background(), ModifyRequest{Key: iss.Record.Key, NoExpire: true}); err != nil || got.Expires != 0 {
		t.Errorf("Modify(no_expire) = %v, %v", got, err)
	}
	past := n.clock.Now().Add(-time.Minute)
	if _, err := n.svc.Modify(context.Background(), ModifyRequest{Key: iss.Record.Key, Expires: &past}); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("Modify(expires in the past) error = %v, want ErrInvalid", err)
	}
	if _, err := n.svc.Modify(context.Background(), ModifyRequest{Key: token.NewKey(), Name: &name}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Modify(unknown) error = %v, want ErrNotFound", err)
	}
	// A revocation is final and an expired token stays expired.
	dead := n.issue(t, IssueRequest{})
	if _, err := n.svc.Revoke(context.Background(), dead.Record.Key); err != nil {
		t.Fatal(err)
	}
	old := n.issue(t, IssueRequest{ExpiresIn: time.Minute})
	n.clock.Advance(2 * time.Minute)
	for _, k := range []token.Key{dead.Record.Key, old.Record.Key} {
		if _, err := n.svc.Modify(context.Background(), ModifyRequest{Key: k, NoExpire: true}); !errors.Is(err, ErrTokenNotValid) {
			t.Errorf("Modify(ended token) error = %v, want ErrTokenNotValid", err)
		}
	}
	wantState(t, n, dead.Token, token.StateRevoked)
	wantState(t, n, old.Token, token.StateExpired)
}

func TestIdleTimeout(t *testing.T) {
	n := newNode(t, nodeOpts{rules: token.Rules{Expiry: time.Hour, Retention: 24 * time.Hour, IdleTimeout: 10 * time.Minute}})
	used := n.issue(t, IssueRequest{})
	unused := n.issue(t, IssueRequest{})
	for range 3 {
		n.clock.Advance(6 * time.Minute)
		wantState(t, n, used.Token, token.StateValid)
	}
	wantState(t, n, unused.Token, token.StateIdle)
	// Replicated last-used reaches the record and the store.
	n.svc.flushUses()
	waitPersisted(t, n)
	row, err := n.store.Get(context.Background(), used.Record.Key)
	if err != nil {
		t.Fatal(err)
	}
	if row.LastUsed.Time().Before(n.clock.Now().Add(-time.Minute)) {
		t.Errorf("stored last_used = %s, want about %s", row.LastUsed, n.clock.Now())
	}
}

// TestRevocationSurvivesEviction: with a tiny cache and write-behind, a
// revoked token must never validate again, whatever is evicted and reloaded
// (DESIGN §3 invariant 2 on one node).
func TestRevocationSurvivesEviction(t *testing.T) {
	n := newNode(t, nodeOpts{capacity: 4, mode: replica.WriteBehind})
	var toks []Issued
	for range 40 {
		toks = append(toks, n.issue(t, IssueRequest{}))
	}
	for i, iss := range toks {
		if i%2 == 0 {
			if _, err := n.svc.Revoke(context.Background(), iss.Record.Key); err != nil {
				t.Fatal(err)
			}
		}
	}
	for round := range 3 {
		for i, iss := range toks {
			want := token.StateValid
			if i%2 == 0 {
				want = token.StateRevoked
			}
			if got := n.validate(t, iss.Token); got != want {
				t.Fatalf("round %d token %d: Validate = %v, want %v", round, i, got, want)
			}
		}
		waitPersisted(t, n)
	}
	if st := n.cache.Stats(); st.Len > 4 {
		t.Errorf("cache holds %d records, capacity 4", st.Len)
	}
}

func TestRestartKeepsTokensAndRevocations(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	var live, dead Issued
	{
		store := openSQLite(t, dir)
		n := newNode(t, nodeOpts{store: store, clock: clk})
		live = n.issue(t, IssueRequest{Name: "keep"})
		dead = n.issue(t, IssueRequest{})
		if _, err := n.svc.Revoke(context.Background(), dead.Record.Key); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := n.svc.Close(ctx); err != nil {
			t.Fatal(err)
		}
		store.Close()
	}
	n := newNode(t, nodeOpts{store: openSQLite(t, dir), clock: clk})
	wantState(t, n, live.Token, token.StateValid)
	wantState(t, n, dead.Token, token.StateRevoked)
	again := n.issue(t, IssueRequest{})
	if again.Record.Index <= dead.Record.Index {
		t.Errorf("index after restart = %d, want above %d", again.Record.Index, dead.Record.Index)
	}
}

func TestSnapshotRestore(t *testing.T) {
	{
		src := newNode(t, nodeOpts{mode: replica.WriteBehind})
		var toks []Issued
		for range 20 {
			toks = append(toks, src.issue(t, IssueRequest{IdempotencyKey: token.NewSecret()}))
		}
		if _, err := src.svc.Revoke(context.Background(), toks[3].Record.Key); err != nil {
			t.Fatal(err)
		}
		snap := src.state.Snapshot()
		var buf bytesBuffer
		if err := snap.WriteTo(context.Background(), &buf); err != nil {
			t.Fatal(err)
		}
		dst := newNode(t, nodeOpts{})
		dst.issue(t, IssueRequest{Username: "stale"}) // must be wiped
		if err := dst.state.Restore(context.Background(), buf.reader()); err != nil {
			t.Fatal(err)
		}
		if dst.state.AppliedIndex() != src.state.AppliedIndex() {
			t.Errorf("restored applied index %d, want %d", dst.state.AppliedIndex(), src.state.AppliedIndex())
		}
		for i, iss := range toks {
			want := token.StateValid
			if i == 3 {
				want = token.StateRevoked
			}
			wantState(t, dst, iss.Token, want)
		}
		if list, _ := dst.svc.List(context.Background(), ListQuery{Username: "stale"}); len(list) != 0 {
			t.Errorf("restore kept %d tokens of the wiped state", len(list))
		}
		// Corrupt snapshots are refused.
		b := buf.bytes()
		b[len(b)/2] ^= 0xff
		if err := dst.state.Restore(context.Background(), (&bytesBuffer{b: b}).reader()); err == nil {
			t.Error("Restore(corrupted snapshot) succeeded")
		}
	}
}

// flakyStore fails every call while fail is set.
type flakyStore struct {
	persist.Store
	fail atomic.Bool
}

func (f *flakyStore) Get(ctx context.Context, k token.Key) (*token.Token, error) {
	if f.fail.Load() {
		return nil, fmt.Errorf("test outage: %w", persist.ErrUnavailable)
	}
	return f.Store.Get(ctx, k)
}

func (f *flakyStore) Stats(ctx context.Context, now token.Time) (persist.Stats, error) {
	if f.fail.Load() {
		return persist.Stats{}, fmt.Errorf("test outage: %w", persist.ErrUnavailable)
	}
	return f.Store.Stats(ctx, now)
}

func (f *flakyStore) Children(ctx context.Context, parents []token.Key) ([]*token.Token, error) {
	if f.fail.Load() {
		return nil, fmt.Errorf("test outage: %w", persist.ErrUnavailable)
	}
	return f.Store.Children(ctx, parents)
}

func (f *flakyStore) Write(ctx context.Context, b *persist.Batch) error {
	if f.fail.Load() {
		return fmt.Errorf("test outage: %w", persist.ErrUnavailable)
	}
	return f.Store.Write(ctx, b)
}

// TestStoreOutage: with the store down, cached tokens keep validating, a
// miss cannot decide (never valid), write-through writes are refused without
// changing anything, and a revocation still takes effect everywhere at once
// and reaches the store when it is back.
func TestStoreOutage(t *testing.T) {
	fs := &flakyStore{Store: openMemory(t)}
	n := newNode(t, nodeOpts{store: fs, capacity: 2})
	var toks []Issued
	for range 10 {
		toks = append(toks, n.issue(t, IssueRequest{}))
	}
	parent := n.issue(t, IssueRequest{Scopes: "a"})
	child := n.issue(t, IssueRequest{Scopes: "a", Parent: parent.Record.Key})
	waitPersisted(t, n)
	hot := toks[9]
	wantState(t, n, hot.Token, token.StateValid) // in the cache
	fs.fail.Store(true)

	wantState(t, n, hot.Token, token.StateValid)
	if v := n.svc.Validate(context.Background(), []byte(toks[0].Token)); !errors.Is(v.Err, ErrStoreUnavailable) || v.State == token.StateValid {
		t.Errorf("Validate(evicted token, store down) = %v %v, want ErrStoreUnavailable", v.State, v.Err)
	}
	// The first write finds out the store is down after it was applied
	// (indeterminate); from then on writes are refused before the log.
	if _, err := n.svc.Issue(context.Background(), IssueRequest{Username: "a"}); !errors.Is(err, ErrIndeterminate) {
		t.Errorf("Issue(store just went down) error = %v, want ErrIndeterminate", err)
	}
	before := n.state.AppliedIndex()
	if _, err := n.svc.Issue(context.Background(), IssueRequest{Username: "a"}); !errors.Is(err, ErrStoreUnavailable) {
		t.Errorf("Issue(store down) error = %v, want ErrStoreUnavailable", err)
	}
	if n.state.AppliedIndex() != before {
		t.Error("a refused write reached the log")
	}
	if _, err := n.svc.Revoke(context.Background(), hot.Record.Key); !errors.Is(err, ErrIndeterminate) {
		t.Errorf("Revoke(store down) error = %v, want ErrIndeterminate (applied, not yet stored)", err)
	}
	wantState(t, n, hot.Token, token.StateRevoked)
	// The store cannot list the descendants of a parent now: revoking it
	// still makes its child answer revoked at once (validation checks the
	// ancestors), and a retry once the store is back writes the cascade.
	fs.fail.Store(false)
	wantState(t, n, child.Token, token.StateValid) // cached, as a gateway's hot token is
	fs.fail.Store(true)
	if _, err := n.svc.Revoke(context.Background(), parent.Record.Key); !errors.Is(err, ErrIndeterminate) {
		t.Errorf("Revoke(parent, store down) error = %v, want ErrIndeterminate", err)
	}
	wantState(t, n, parent.Token, token.StateRevoked)
	wantState(t, n, child.Token, token.StateRevoked)
	st, err := n.svc.Stats(context.Background())
	if err != nil || st.Tokens != nil || st.StoreError == "" || st.PersistLagEntries == 0 {
		t.Errorf("Stats(store down) = %+v, %v; want cache and lag figures, no counts, the store error", st, err)
	}

	fs.fail.Store(false)
	waitPersisted(t, n)
	row, err := fs.Store.Get(context.Background(), hot.Record.Key)
	if err != nil || row.RevokedAt == 0 {
		t.Fatalf("store row after recovery = %+v, %v; want revoked", row, err)
	}
	wantState(t, n, toks[0].Token, token.StateValid)
	n.issue(t, IssueRequest{})
	if got, err := n.svc.Revoke(context.Background(), parent.Record.Key); err != nil || len(got) != 2 {
		t.Fatalf("Revoke(parent) retry after recovery = %d keys, %v; want the parent and its child", len(got), err)
	}
	if row, err := fs.Store.Get(context.Background(), child.Record.Key); err != nil {
		t.Fatal(err)
	} else if waitPersisted(t, n); row.RevokedAt == 0 {
		if row, _ = fs.Store.Get(context.Background(), child.Record.Key); row.RevokedAt == 0 {
			t.Error("the retried cascade did not write the child's revocation")
		}
	}
}

// startService starts the service over m and repl, closed with t.
func startService(t testing.TB, cfg Config, m *replica.Machine, repl Replication) *Service {
	t.Helper()
	svc, err := New(cfg, m, repl, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := svc.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return svc
}
