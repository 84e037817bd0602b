package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

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
	tc := newTestCluster(t, 3, clusterOpts{})
	lead := tc.waitLeader()
	f := tc.followers()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := lead.svc.Issue(ctx, tokens.IssueRequest{Username: "alice", Type: token.TypeUser, Name: "laptop"}); err != nil {
		t.Fatal(err)
	}
	dup := tokens.IssueRequest{Username: "alice", Type: token.TypeUser, Name: "laptop", IdempotencyKey: "k2"}
	var err error
	waitFor(t, 10*time.Second, f.id+" refuses the duplicate name", func() bool {
		_, err = f.svc.Issue(ctx, dup)
		return errors.Is(err, tokens.ErrDuplicateName)
	})
	fixed := dup
	fixed.Name = "desktop"
	first, err := f.svc.Issue(ctx, fixed)
	if err != nil {
		t.Fatalf("Issue(corrected, same key) on %s: %v", f.id, err)
	}
	again, err := f.svc.Issue(ctx, fixed)
	if err != nil || again.Token != first.Token || !again.Reused {
		t.Errorf("Issue(replay) on %s = reused %v, %v; want the first token again", f.id, again.Reused, err)
	}
	for _, tn := range tc.nodes {
		wantValidEventually(t, tn, first.Token)
		if _, err := tn.svc.Issue(ctx, tokens.IssueRequest{Username: "alice", Type: token.TypeUser, Name: "tablet", IdempotencyKey: "k2"}); !errors.Is(err, tokens.ErrIdempotencyConflict) {
			t.Errorf("Issue(another request, used key) on %s error = %v, want ErrIdempotencyConflict", tn.id, err)
		}
	}
}

// wantValidEventually waits until tn answers valid for text.
func wantValidEventually(t *testing.T, tn *testNode, text string) {
	t.Helper()
	waitFor(t, 10*time.Second, tn.id+" validates "+text[:8], func() bool {
		st, err := validate(tn, text)
		return err == nil && st == token.StateValid
	})
}
