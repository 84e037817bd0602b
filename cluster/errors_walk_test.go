package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokencache/tokencache/cluster"
	"github.com/tokencache/tokencache/cluster/clustertest"
	"github.com/tokencache/tokencache/httpapi"
	"github.com/tokencache/tokencache/internal/errcode"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// The same through a real follower of a real cluster, for the writes the
// RPC table once missed: a modify of a revoked token is 409 token_not_valid
// through either node, never 500 internal.
func TestForwardedTokenNotValid(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{})
	lead := tc.WaitLeader()
	f := tc.Followers()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	iss := clustertest.Issue(t, lead, "alice")
	if _, err := lead.Svc.Revoke(ctx, iss.Record.Key); err != nil {
		t.Fatal(err)
	}
	name := "laptop"
	for _, tn := range []*clustertest.Node{lead, f} {
		_, err := tn.Svc.Modify(ctx, tokens.ModifyRequest{Key: iss.Record.Key, Name: &name})
		if !errors.Is(err, tokens.ErrTokenNotValid) {
			t.Errorf("Modify(revoked) on %s error = %v, want ErrTokenNotValid", tn.ID, err)
		}
		if status, code := httpapi.ErrorStatus(err); status != 409 || code != "token_not_valid" {
			t.Errorf("Modify(revoked) on %s answers %d %s, want 409 token_not_valid", tn.ID, status, code)
		}
	}
	clustertest.WantValid(t, f, iss.Token, token.StateRevoked)
}

// failingWriter is a leader's write handler that fails every write with err.
type failingWriter struct {
	mu  sync.Mutex
	err error
}

func (w *failingWriter) set(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = err
}

func (w *failingWriter) HandleWrite(context.Context, []byte) ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return nil, w.err
}

// Every error that has a code (errcode.Errors: each sentinel of every
// package, and the context errors), and one without, fails a write on the
// leader of a real cluster; the same write sent to a follower crosses the
// real RPC. Both answer the same HTTP status and code, and errors.Is finds
// the sentinel on the follower. The two codes that mean "refused before
// anything was appended" (no_leader, shutting_down) make the follower try
// again until its deadline, so it answers no_leader: nothing was applied.
func TestEveryErrorAnswersTheSameThroughFollowerAndLeader(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{})
	lead := tc.WaitLeader()
	f := tc.Followers()[0]
	fw := &failingWriter{}
	var lw cluster.WriteHandler = fw
	lead.Node.HandleWrites(lw)

	errs := append(errcode.Errors(), errors.New("an error without a code"))
	if len(errs) < len(httpapi.MappedErrors())+1 {
		t.Fatalf("errcode.Errors() = %d errors, fewer than httpapi tells apart (%d)", len(errs)-1, len(httpapi.MappedErrors()))
	}
	for _, sentinel := range errs {
		fw.set(fmt.Errorf("cannot run the write: %w", sentinel))
		w, err := json.Marshal(&tokens.WriteRequest{Revoke: &tokens.RevokeSpec{}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, onLeader := lead.Node.Forward(ctx, w)
		_, onFollower := f.Node.Forward(ctx, w)
		cancel()
		if !errors.Is(onLeader, sentinel) {
			t.Fatalf("%v on the leader = %v, which is not it", sentinel, onLeader)
		}
		status, code := httpapi.ErrorStatus(onLeader)
		fstatus, fcode := httpapi.ErrorStatus(onFollower)
		want := sentinel
		switch errcode.Of(sentinel) {
		case errcode.NoLeader, errcode.ShuttingDown:
			want, code = tokens.ErrNoLeader, string(errcode.NoLeader)
		}
		if fstatus != status || fcode != code {
			t.Errorf("%v through a follower answers %d %s, on the leader %d %s", sentinel, fstatus, fcode, status, code)
		}
		if errcode.Of(sentinel) != errcode.Internal && !errors.Is(onFollower, want) {
			t.Errorf("%v through a follower = %v, which is not %v (errors.Is)", sentinel, onFollower, want)
		}
		// Every code has a status of its own, except halted: a node that
		// stopped applying is an operator's problem (500 internal).
		if c := errcode.Of(sentinel); c != errcode.Internal && c != errcode.Halted && status == 500 {
			t.Errorf("%v (code %s) answers 500: httpapi's table lacks its code", sentinel, c)
		}
		if errcode.Of(onFollower) != errcode.Of(want) {
			t.Errorf("%v through a follower has code %s, want %s", sentinel, errcode.Of(onFollower), errcode.Of(want))
		}
	}
}
