package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokencache/tokencache/cluster/clustertest"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// A child never keeps what its parent lost, on every node, whichever node
// took each write and whatever a node missed while it was cut off: the
// parent is narrowed and shortened through one follower while the other
// follower, through which the grandchild was minted, is partitioned away.
// Once healed, that node answers like the others; no node lets a child mint
// with the lost scope; and once the parent expires, every node answers
// expired for its descendants.
func TestChildNarrowedWithParentOnEveryNode(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{})
	lead := tc.WaitLeader()
	fs := tc.Followers()
	f1, f2 := fs[0], fs[1]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	parent, err := lead.Svc.Issue(ctx, tokens.IssueRequest{Username: "alice", Type: token.TypeUser, Scopes: "read write", ExpiresIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sees := func(tn *clustertest.Node, text string) {
		t.Helper()
		clustertest.WaitFor(t, 10*time.Second, tn.ID+" validates a token written elsewhere", func() bool {
			st, err := clustertest.Validate(tn, text)
			return err == nil && st == token.StateValid
		})
	}
	sees(f1, parent.Token)
	child, err := f1.Svc.Delegate(ctx, tokens.DelegateRequest{ParentToken: parent.Token,
		Delegation: token.Delegation{Type: token.TypeInternal, Service: "svc", Scopes: "read write"}})
	if err != nil {
		t.Fatalf("Delegate on %s: %v", f1.ID, err)
	}
	sees(f2, child.Token)
	grand, err := f2.Svc.Delegate(ctx, tokens.DelegateRequest{ParentToken: child.Token,
		Delegation: token.Delegation{Type: token.TypeNotebook}})
	if err != nil {
		t.Fatalf("Delegate on %s: %v", f2.ID, err)
	}
	descendants := []tokens.Issued{child, grand}
	for _, tn := range tc.Nodes {
		for _, d := range descendants {
			clustertest.WaitFor(t, 10*time.Second, tn.ID+" validates a descendant with write", func() bool {
				v := tn.Svc.Validate(ctx, []byte(d.Token))
				return v.Err == nil && v.State == token.StateValid && v.Token.Scopes.Has("write")
			})
		}
	}

	tc.Net.Partition([]string{lead.ID, f1.ID}, []string{f2.ID})
	read := token.Scopes("read")
	soon := time.Now().Add(8 * time.Second)
	if _, err := f1.Svc.Modify(ctx, tokens.ModifyRequest{Key: parent.Record.Key, Scopes: &read, Expires: &soon}); err != nil {
		t.Fatalf("Modify on %s: %v", f1.ID, err)
	}
	tc.Net.Heal()

	for _, tn := range tc.Nodes {
		for _, d := range descendants {
			clustertest.WaitFor(t, 10*time.Second, tn.ID+" narrows a descendant to its parent's scopes and expiry", func() bool {
				v := tn.Svc.Validate(ctx, []byte(d.Token))
				return v.Err == nil && v.State == token.StateValid && !v.Token.Scopes.Has("write") &&
					v.Token.Expires != 0 && v.Token.Expires <= token.At(soon)
			})
		}
		_, err := tn.Svc.Delegate(ctx, tokens.DelegateRequest{ParentToken: child.Token,
			Delegation: token.Delegation{Type: token.TypeInternal, Service: "other", Scopes: "write"}})
		if !errors.Is(err, token.ErrInvalid) {
			t.Errorf("Delegate(the lost scope) on %s error = %v, want ErrInvalid", tn.ID, err)
		}
	}

	time.Sleep(time.Until(soon))
	for _, tn := range tc.Nodes {
		for _, d := range descendants {
			clustertest.WaitFor(t, 10*time.Second, tn.ID+" answers expired for a descendant of an expired parent", func() bool {
				st, err := clustertest.Validate(tn, d.Token)
				return err == nil && st == token.StateExpired
			})
		}
	}
}
