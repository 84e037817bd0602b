package tokens

import (
	"context"
	"errors"
	"testing"

	"github.com/tokencache/tokencache/cache"
	"github.com/tokencache/tokencache/replica"
	"github.com/tokencache/tokencache/token"
)

// followerLog is the replication of a node that does not lead: every write
// goes to the leader's HandleWrite, as the cluster's RPC carries it.
type followerLog struct {
	*replica.LocalLog
	leader *Service
	fence  error
	ready  error
}

func (f *followerLog) IsLeader() bool { return false }
func (f *followerLog) Forward(ctx context.Context, w []byte) ([]byte, error) {
	return f.leader.HandleWrite(ctx, w)
}
func (f *followerLog) Fence() error                         { return f.fence }
func (f *followerLog) ReadyCheck(ctx context.Context) error { return f.ready }

var _ Replication = (*followerLog)(nil)

func newFollower(t *testing.T, leader *Service) (*Service, *followerLog) {
	t.Helper()
	c, err := cache.New(cache.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	m, err := replica.NewMachine(replica.DefaultWriterConfig(), c, openMemory(t), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	repl := &followerLog{LocalLog: replica.NewLocalLog(m, 0), leader: leader}
	svc := startService(t, DefaultConfig(), m, repl)
	return svc, repl
}

// A node that does not lead sends its writes through Replication.Forward
// in the service's own encoding; the leader's HandleWrite runs them and
// answers the result, or the error, which keeps its sentinel.
func TestWritesForwardThroughReplication(t *testing.T) {
	leader := newNode(t, nodeOpts{})
	follower, _ := newFollower(t, leader.svc)
	ctx := context.Background()

	issued, err := follower.Issue(ctx, IssueRequest{Username: "alice", Scopes: "read"})
	if err != nil {
		t.Fatalf("Issue through the follower = %v", err)
	}
	if issued.Record == nil || issued.Record.Username != "alice" || issued.Record.Index == 0 {
		t.Fatalf("Issue through the follower answered record %+v, want alice's at a log index", issued.Record)
	}
	if st := leader.validate(t, issued.Token); st != token.StateValid {
		t.Errorf("the token issued through the follower is %v on the leader, want valid", st)
	}
	keys, err := follower.Revoke(ctx, issued.Record.Key)
	if err != nil || len(keys) != 1 || keys[0] != issued.Record.Key {
		t.Fatalf("Revoke through the follower = %v, %v; want [%s]", keys, err, issued.Record.Key)
	}
	if st := leader.validate(t, issued.Token); st != token.StateRevoked {
		t.Errorf("the token revoked through the follower is %v on the leader, want revoked", st)
	}
	if _, err := follower.Revoke(ctx, token.NewKey()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Revoke(unknown key) through the follower = %v, want ErrNotFound", err)
	}
	if _, err := leader.svc.HandleWrite(ctx, []byte("{not json")); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("HandleWrite(undecodable) = %v, want token.ErrInvalid", err)
	}
}

// The service asks its replication for the fence and readiness; it keeps
// no copy that could go stale.
func TestFenceAndReadinessComeFromReplication(t *testing.T) {
	leader := newNode(t, nodeOpts{})
	issued := leader.issue(t, IssueRequest{Username: "alice"})
	follower, repl := newFollower(t, leader.svc)
	repl.fence = ErrStale
	if v := follower.Validate(context.Background(), []byte(issued.Token)); !errors.Is(v.Err, ErrStale) {
		t.Errorf("Validate with the fence closed = %+v, want ErrStale", v)
	}
	repl.ready = errors.New("catching up")
	if err := follower.Ready(context.Background()); err == nil || err.Error() != "catching up" {
		t.Errorf("Ready() = %v, want the replication's answer", err)
	}
	repl.ready = nil
	if err := follower.Ready(context.Background()); err != nil {
		t.Errorf("Ready() = %v, want nil", err)
	}
}
