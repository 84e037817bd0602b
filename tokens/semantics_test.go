package tokens

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/token"
)

// Token semantics that the write paths and validation must agree on: the
// Idempotency-Key of a refused issue, delegation next to admin-issued
// children, and a child never worth more than its ancestors now.

// A refused issue does not use up its Idempotency-Key: a corrected request
// with the same key mints its token, and a replay of that one answers it
// again.
func TestIdempotencyKeyFreeAfterRefusal(t *testing.T) {
	n := newNode(t, nodeOpts{})
	ctx := context.Background()

	// 400 after the request passed the first checks (credentials refused).
	_, err := n.svc.Issue(ctx, IssueRequest{Username: "alice", Credentials: map[string]string{"k": "v"}, IdempotencyKey: "k1"})
	if !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("Issue(credentials) error = %v, want ErrInvalid", err)
	}
	ok, err := n.svc.Issue(ctx, IssueRequest{Username: "alice", IdempotencyKey: "k1"})
	if err != nil {
		t.Fatalf("Issue(corrected, same key) = %v, want a token", err)
	}
	wantState(t, n, ok.Token, token.StateValid)

	// 409 duplicate_name, judged by the leader.
	n.issue(t, IssueRequest{Name: "laptop"})
	_, err = n.svc.Issue(ctx, IssueRequest{Username: "alice", Name: "laptop", IdempotencyKey: "k2"})
	if !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("Issue(duplicate name) error = %v, want ErrDuplicateName", err)
	}
	fixed := IssueRequest{Username: "alice", Name: "desktop", IdempotencyKey: "k2"}
	first, err := n.svc.Issue(ctx, fixed)
	if err != nil {
		t.Fatalf("Issue(other name, same key) = %v, want a token", err)
	}
	again, err := n.svc.Issue(ctx, fixed)
	if err != nil || again.Token != first.Token || !again.Reused {
		t.Errorf("Issue(replay) = %q reused %v, %v; want the first token %q again", again.Token, again.Reused, err, first.Token)
	}
	// A used key still refuses a different request.
	if _, err := n.svc.Issue(ctx, IssueRequest{Username: "alice", Name: "tablet", IdempotencyKey: "k2"}); !errors.Is(err, ErrIdempotencyConflict) {
		t.Errorf("Issue(other request, used key) error = %v, want ErrIdempotencyConflict", err)
	}
}

// Delegation hands out only children it minted (whose secret it can unseal):
// an admin-issued child of the same service and scopes is left alone.
func TestDelegateBesideIssuedChild(t *testing.T) {
	n := newNode(t, nodeOpts{})
	ctx := context.Background()
	parent := n.issue(t, IssueRequest{Scopes: "read write", ExpiresIn: 2 * time.Hour})
	pk := parent.Record.Key
	n.issue(t, IssueRequest{Type: token.TypeInternal, Parent: pk, Service: "svc", Scopes: "read"})
	n.issue(t, IssueRequest{Type: token.TypeNotebook, Parent: pk, Scopes: "read write"})

	for _, d := range []token.Delegation{
		{Type: token.TypeInternal, Service: "svc", Scopes: "read"},
		{Type: token.TypeNotebook},
	} {
		iss, err := n.svc.Delegate(ctx, DelegateRequest{ParentToken: parent.Token, Delegation: d})
		if err != nil {
			t.Fatalf("Delegate(%s) beside an issued child: %v", d.Type, err)
		}
		if iss.Reused {
			t.Errorf("Delegate(%s) reused a child it did not mint", d.Type)
		}
		wantState(t, n, iss.Token, token.StateValid)
		again, err := n.svc.Delegate(ctx, DelegateRequest{ParentToken: parent.Token, Delegation: d})
		if err != nil || !again.Reused || again.Token != iss.Token {
			t.Errorf("Delegate(%s) again = reused %v, %v; want the delegated child again", d.Type, again.Reused, err)
		}
	}
}

// A delegation from an expired parent is a conflict with the parent's state
// (409 parent_not_valid), not a bad request.
func TestDelegateFromExpiredParent(t *testing.T) {
	n := newNode(t, nodeOpts{})
	parent := n.issue(t, IssueRequest{Scopes: "read", ExpiresIn: 10 * time.Minute})
	n.clock.Advance(11 * time.Minute)
	for _, d := range []token.Delegation{
		{Type: token.TypeInternal, Service: "svc", Scopes: "read"},
		{Type: token.TypeNotebook},
	} {
		_, err := n.svc.Delegate(context.Background(), DelegateRequest{ParentToken: parent.Token, Delegation: d})
		if !errors.Is(err, ErrParentNotValid) {
			t.Errorf("Delegate(%s) from an expired parent error = %v, want ErrParentNotValid", d.Type, err)
		}
	}
}

// A child is never worth more than its ancestors are now: a parent narrowed
// or shortened by a modify narrows its descendants at once, an expired
// parent ends them, and neither can mint with what it lost.
func TestChildNeverExceedsAncestors(t *testing.T) {
	n := newNode(t, nodeOpts{})
	ctx := context.Background()
	parent := n.issue(t, IssueRequest{Scopes: "read write", ExpiresIn: 4 * time.Hour})
	child, err := n.svc.Delegate(ctx, DelegateRequest{ParentToken: parent.Token,
		Delegation: token.Delegation{Type: token.TypeInternal, Service: "svc", Scopes: "read write"}})
	if err != nil {
		t.Fatal(err)
	}
	grand, err := n.svc.Delegate(ctx, DelegateRequest{ParentToken: child.Token,
		Delegation: token.Delegation{Type: token.TypeNotebook}})
	if err != nil {
		t.Fatal(err)
	}

	read := token.Scopes("read")
	soon := n.clock.Now().Add(30 * time.Minute)
	if _, err := n.svc.Modify(ctx, ModifyRequest{Key: parent.Record.Key, Scopes: &read, Expires: &soon}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		iss  Issued
	}{{"child", child}, {"grandchild", grand}} {
		v := n.svc.Validate(ctx, []byte(c.iss.Token))
		if v.State != token.StateValid {
			t.Fatalf("Validate(%s) = %v, want valid", c.what, v.State)
		}
		if v.Token.Scopes.Has("write") || v.Token.Expires != token.At(soon) {
			t.Errorf("Validate(%s) = scopes %q expires %s, want scopes within %q and expiry %s",
				c.what, v.Token.Scopes, v.Token.Expires, read, token.At(soon))
		}
		info, st, err := n.svc.Info(ctx, c.iss.Record.Key)
		if err != nil || st != token.StateValid || info.Scopes.Has("write") {
			t.Errorf("Info(%s) = scopes %q state %v, %v; want valid without write", c.what, info.Scopes, st, err)
		}
	}
	_, err = n.svc.Delegate(ctx, DelegateRequest{ParentToken: child.Token,
		Delegation: token.Delegation{Type: token.TypeInternal, Service: "other", Scopes: "write"}})
	if !errors.Is(err, token.ErrInvalid) {
		t.Errorf("Delegate(grandchild with the lost scope) error = %v, want ErrInvalid", err)
	}
	_, err = n.svc.Delegate(ctx, DelegateRequest{ParentToken: parent.Token,
		Delegation: token.Delegation{Type: token.TypeInternal, Service: "svc", Scopes: "read write"}})
	if !errors.Is(err, token.ErrInvalid) {
		t.Errorf("Delegate(the existing child, with the lost scope) error = %v, want ErrInvalid", err)
	}

	n.clock.Advance(31 * time.Minute)
	wantState(t, n, parent.Token, token.StateExpired)
	wantState(t, n, child.Token, token.StateExpired)
	wantState(t, n, grand.Token, token.StateExpired)
	_, err = n.svc.Delegate(ctx, DelegateRequest{ParentToken: child.Token,
		Delegation: token.Delegation{Type: token.TypeInternal, Service: "other", Scopes: "read"}})
	if !errors.Is(err, ErrParentNotValid) {
		t.Errorf("Delegate(from a child of an expired parent) error = %v, want ErrParentNotValid", err)
	}
	_, err = n.svc.Issue(ctx, IssueRequest{Username: "alice", Parent: child.Record.Key, Scopes: "read"})
	if !errors.Is(err, ErrParentNotValid) {
		t.Errorf("Issue(child of a child of an expired parent) error = %v, want ErrParentNotValid", err)
	}
}

// While tokens.max_lifetime is set no token outlives it, whatever the path:
// a token that never expires is refused, on issue and on modify, as is a
// longer lifetime on issue, delegation and modify. With -1 (no limit) a
// token may never expire.
func TestMaxLifetimeBoundsEveryToken(t *testing.T) {
	n := newNode(t, nodeOpts{})
	ctx := context.Background()
	limit := DefaultConfig().MaxLifetime
	wantRefused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, token.ErrInvalid) {
			t.Errorf("%s error = %v, want ErrInvalid naming tokens.max_lifetime", what, err)
		} else if !strings.Contains(err.Error(), "tokens.max_lifetime") {
			t.Errorf("%s error = %q, want it to name tokens.max_lifetime", what, err)
		}
	}
	_, err := n.svc.Issue(ctx, IssueRequest{Username: "alice", NoExpire: true})
	wantRefused("Issue(no_expire)", err)
	_, err = n.svc.Issue(ctx, IssueRequest{Username: "alice", ExpiresIn: limit + time.Hour})
	wantRefused("Issue(expires_in beyond)", err)

	parent := n.issue(t, IssueRequest{Scopes: "read", ExpiresIn: limit})
	_, err = n.svc.Delegate(ctx, DelegateRequest{ParentToken: parent.Token, ExpiresIn: limit + time.Hour,
		Delegation: token.Delegation{Type: token.TypeNotebook}})
	wantRefused("Delegate(expires_in beyond)", err)
	_, err = n.svc.Modify(ctx, ModifyRequest{Key: parent.Record.Key, NoExpire: true})
	wantRefused("Modify(no_expire)", err)
	far := n.clock.Now().Add(limit + time.Hour)
	_, err = n.svc.Modify(ctx, ModifyRequest{Key: parent.Record.Key, Expires: &far})
	wantRefused("Modify(expires beyond)", err)
	if _, st, _ := n.svc.Info(ctx, parent.Record.Key); st != token.StateValid {
		t.Errorf("Info(parent) state = %v after refused modifies, want valid", st)
	}

	free := newNode(t, nodeOpts{maxLifetime: NoMaxLifetime})
	forever := free.issue(t, IssueRequest{NoExpire: true})
	if forever.Record.Expires != 0 {
		t.Errorf("Issue(no_expire) with no limit: expires %s, want never", forever.Record.Expires)
	}
	bad := DefaultConfig()
	bad.MaxLifetime = 0
	if err := bad.Validate(); err == nil {
		t.Error("Config{MaxLifetime: 0}.Validate() = nil, want an error")
	}
}

// A chain of children is no deeper than validation walks: every ancestor of
// a token is judged when it is validated, so a token with more ancestors
// than that cannot be made.
func TestAncestryDepthBounded(t *testing.T) {
	n := newNode(t, nodeOpts{})
	ctx := context.Background()
	cur := n.issue(t, IssueRequest{Scopes: "read", ExpiresIn: time.Hour})
	for range maxAncestry {
		next, err := n.svc.Delegate(ctx, DelegateRequest{ParentToken: cur.Token, Delegation: token.Delegation{Type: token.TypeNotebook}})
		if err != nil {
			t.Fatalf("Delegate at depth below %d: %v", maxAncestry, err)
		}
		cur = next
	}
	wantState(t, n, cur.Token, token.StateValid)
	_, err := n.svc.Delegate(ctx, DelegateRequest{ParentToken: cur.Token, Delegation: token.Delegation{Type: token.TypeNotebook}})
	if !errors.Is(err, token.ErrInvalid) {
		t.Errorf("Delegate with %d ancestors error = %v, want ErrInvalid", maxAncestry+1, err)
	}
	_, err = n.svc.Issue(ctx, IssueRequest{Username: "alice", Parent: cur.Record.Key, Scopes: "read"})
	if !errors.Is(err, token.ErrInvalid) {
		t.Errorf("Issue with %d ancestors error = %v, want ErrInvalid", maxAncestry+1, err)
	}
}

// With tokens.max_lifetime -1 a token may never expire, but a lifetime it
// asks for is still at most LifetimeCeiling (100 years), on issue,
// delegation and modify: the service is where this bound lives, so a write
// that reaches it without the HTTP API (a forward, the CLI) is bounded too.
func TestLifetimeCeilingWithoutMaxLifetime(t *testing.T) {
	free := newNode(t, nodeOpts{maxLifetime: NoMaxLifetime})
	ctx := context.Background()
	beyond := LifetimeCeiling + time.Hour
	wantRefused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, token.ErrInvalid) || !strings.Contains(err.Error(), "100 years") {
			t.Errorf("%s error = %v, want ErrInvalid saying 100 years", what, err)
		}
	}
	_, err := free.svc.Issue(ctx, IssueRequest{Username: "alice", ExpiresIn: beyond})
	wantRefused("Issue(expires_in beyond 100 years)", err)
	parent := free.issue(t, IssueRequest{Scopes: "read", ExpiresIn: LifetimeCeiling})
	_, err = free.svc.Delegate(ctx, DelegateRequest{ParentToken: parent.Token, ExpiresIn: beyond,
		Delegation: token.Delegation{Type: token.TypeNotebook}})
	wantRefused("Delegate(expires_in beyond 100 years)", err)
	far := free.clock.Now().Add(beyond)
	_, err = free.svc.Modify(ctx, ModifyRequest{Key: parent.Record.Key, Expires: &far})
	wantRefused("Modify(expires beyond 100 years)", err)
	near := free.clock.Now().Add(LifetimeCeiling - time.Hour)
	if _, err := free.svc.Modify(ctx, ModifyRequest{Key: parent.Record.Key, Expires: &near}); err != nil {
		t.Errorf("Modify(expires within 100 years) = %v, want nil", err)
	}
}
