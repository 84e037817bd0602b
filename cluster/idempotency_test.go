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

// An issue refused by the leader (here a duplicate name) and received by a
// follower leaves its Idempotency-Key free: the follower learns the refusal
// across the forward, and a corrected request with the same key mints its
// token; a replay through the same follower answers that token again, and
// every node's replicated table (which a refused request never reached)
// then knows the key.
func TestRefusedIssueThroughFollowerFreesKey(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{})
	lead := tc.WaitLeader()
	f := tc.Followers()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := lead.Svc.Issue(ctx, tokens.IssueRequest{Username: "alice", Type: token.TypeUser, Name: "laptop"}); err != nil {
		t.Fatal(err)
	}
	dup := tokens.IssueRequest{Username: "alice", Type: token.TypeUser, Name: "laptop", IdempotencyKey: "k2"}
	var err error
	clustertest.WaitFor(t, 10*time.Second, f.ID+" refuses the duplicate name", func() bool {
		_, err = f.Svc.Issue(ctx, dup)
		return errors.Is(err, tokens.ErrDuplicateName)
	})
	fixed := dup
	fixed.Name = "desktop"
	first, err := f.Svc.Issue(ctx, fixed)
	if err != nil {
		t.Fatalf("Issue(corrected, same key) on %s: %v", f.ID, err)
	}
	again, err := f.Svc.Issue(ctx, fixed)
	if err != nil || again.Token != first.Token || !again.Reused {
		t.Errorf("Issue(replay) on %s = reused %v, %v; want the first token again", f.ID, again.Reused, err)
	}
	for _, tn := range tc.Nodes {
		wantValidEventually(t, tn, first.Token)
		if _, err := tn.Svc.Issue(ctx, tokens.IssueRequest{Username: "alice", Type: token.TypeUser, Name: "tablet", IdempotencyKey: "k2"}); !errors.Is(err, tokens.ErrIdempotencyConflict) {
			t.Errorf("Issue(another request, used key) on %s error = %v, want ErrIdempotencyConflict", tn.ID, err)
		}
	}
}

// wantValidEventually waits until tn answers valid for text.
func wantValidEventually(t *testing.T, tn *clustertest.Node, text string) {
	t.Helper()
	clustertest.WaitFor(t, 10*time.Second, tn.ID+" validates "+text[:8], func() bool {
		st, err := clustertest.Validate(tn, text)
		return err == nil && st == token.StateValid
	})
}
