package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tokencache/tokencache/cluster"
	"github.com/tokencache/tokencache/cluster/clustertest"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/persist/mysqltest"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// Fast-forward (DESIGN.md, "Fast-forward"): a new Raft log over a store that
// an earlier log wrote must not write at indexes below the store's.

// sharedStore makes one memory store look like a store every node shares
// (as MySQL): Shared() is true, so only the leader writes it, and a node
// closing its handle does not close it.
type sharedStore struct{ *persist.Memory }

func (sharedStore) Shared() bool { return true }
func (sharedStore) Close() error { return nil }

// restamp makes store look written by a longer log: every row gets an index
// in (p-100, p] and the persisted index becomes p.
func restamp(t *testing.T, store persist.Store, p uint64) {
	t.Helper()
	ctx := context.Background()
	var rows []*token.Token
	if err := store.Scan(ctx, func(tok *token.Token) error { rows = append(rows, tok); return nil }); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if len(rows) == 0 || len(rows) > 100 {
		t.Fatalf("restamp: %d rows", len(rows))
	}
	for i, r := range rows {
		r.Index = p - 100 + uint64(i) + 1
	}
	if err := store.Write(ctx, &persist.Batch{Puts: rows, Index: p}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if got, err := store.PersistedIndex(ctx); err != nil || got != p {
		t.Fatalf("PersistedIndex after restamp = %d, %v; want %d", got, err, p)
	}
}

// wantRow waits until store holds k at an index above minIndex, revoked or
// not as wanted.
func wantRow(t *testing.T, store persist.Store, where string, k token.Key, minIndex uint64, revoked bool) {
	t.Helper()
	var last string
	deadline := time.Now().Add(5 * time.Second)
	for {
		row, err := store.Get(context.Background(), k)
		switch {
		case err != nil:
			last = err.Error()
		case row.Index <= minIndex:
			last = fmt.Sprintf("row at index %d, not above %d", row.Index, minIndex)
		case (row.RevokedAt != 0) != revoked:
			last = fmt.Sprintf("row revoked_at = %d, want revoked %v", row.RevokedAt, revoked)
		default:
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: store row %s: %s", where, k, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// retryable reports whether a write may be retried: nothing happened
// (no leader, an election) or the outcome is unknown (leadership lost while
// committing, which a loaded test machine sees now and then).
func retryable(err error) bool {
	return errors.Is(err, tokens.ErrIndeterminate) || errors.Is(err, tokens.ErrNoLeader)
}

// issueRetry issues a token through tn, retrying an election's errors
// with the same Idempotency-Key (one token whatever happened).
func issueRetry(t *testing.T, tn *clustertest.Node, user string) tokens.Issued {
	t.Helper()
	req := tokens.IssueRequest{Username: user, Type: token.TypeUser, Scopes: "read", IdempotencyKey: token.NewKey().String()}
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		iss, err := tn.Svc.Issue(ctx, req)
		cancel()
		if err == nil {
			return iss
		}
		if !retryable(err) || attempt == 5 {
			t.Fatalf("Issue on %s (attempt %d): %v", tn.ID, attempt, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// revoke revokes k through tn, retrying an election's errors (revoking
// again is harmless).
func revoke(t *testing.T, tn *clustertest.Node, k token.Key) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := tn.Svc.Revoke(ctx, k)
		cancel()
		if err == nil {
			return
		}
		if !retryable(err) || attempt == 5 {
			t.Fatalf("Revoke %s via %s (attempt %d): %v", k, tn.ID, attempt, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// fastForwardedPast checks that this log was fast-forwarded past p (by its
// leader) before anything was written, and that every node applied past it.
func fastForwardedPast(t *testing.T, tc *clustertest.Cluster, p uint64) {
	t.Helper()
	var by []string
	for _, tn := range tc.Up() {
		if ff := tn.Node.FastForwarded(); ff != 0 {
			if ff <= p {
				t.Errorf("%s fast-forwarded to %d, not past %d", tn.ID, ff, p)
			}
			by = append(by, tn.ID+"@"+strconv.FormatUint(ff, 10))
		}
		if a := tn.State.AppliedIndex(); a <= p {
			t.Errorf("%s applied index %d, not past the store's %d", tn.ID, a, p)
		}
		if tn.Node.FSMForeign() {
			t.Errorf("%s still holds a foreign store", tn.ID)
		}
	}
	if len(by) == 0 {
		t.Fatalf("no node fast-forwarded the new log past the store's persisted index %d", p)
	}
	t.Logf("fast-forwarded by %v past %d", by, p)
}

// A brand-new cluster (new Raft logs) over a shared store that an earlier
// cluster wrote up to index 500: the old tokens still validate, new tokens
// issued and revoked (and old ones revoked) reach the store above 500, and
// a whole-cluster restart (new logs again) keeps everything acknowledged.
func TestFastForwardOverSharedStore(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		mem := persist.NewMemory()
		t.Cleanup(func() { mem.Close() })
		testFastForwardShared(t, func() (persist.Store, error) { return sharedStore{mem}, nil })
	})
	// make test exports a MariaDB server; run the same over it then.
	if os.Getenv(mysqltest.EnvDSN) != "" || mysqltest.Required() {
		t.Run("mysql", func(t *testing.T) {
			db := mysqltest.Shared(t).NewDatabase(t)
			cfg := persist.DefaultConfig()
			cfg.Store, cfg.URL, cfg.Username, cfg.Password = persist.StoreMySQL, db.URL, db.User, db.Password
			testFastForwardShared(t, func() (persist.Store, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				return persist.Open(ctx, cfg, t.TempDir(), slog.New(slog.DiscardHandler))
			})
		})
	}
}

func testFastForwardShared(t *testing.T, open func() (persist.Store, error)) {
	direct, err := open() // the test's own handle on the shared store
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() })
	if !direct.Shared() {
		t.Fatal("the store is not shared")
	}
	opts := clustertest.Options{Store: func(*clustertest.Node) (persist.Store, error) { return open() }}

	// An earlier cluster writes tokens, then stops for good.
	earlier := clustertest.New(t, 3, opts)
	var old []tokens.Issued
	for i := 0; i < 6; i++ {
		old = append(old, issueRetry(t, earlier.Nodes[i%3], "old"+strconv.Itoa(i%2)))
	}
	revoke(t, earlier.WaitLeader(), old[0].Record.Key)
	earlier.CloseAll()
	// Its log went on to index 500 (a long history, shortened).
	const p = 500
	restamp(t, direct, p)

	tc := clustertest.New(t, 3, opts)
	l := tc.WaitLeader()
	fastForwardedPast(t, tc, p)
	for _, tn := range tc.Nodes {
		clustertest.WantValid(t, tn, old[0].Token, token.StateRevoked)
		for _, o := range old[1:] {
			clustertest.WantValid(t, tn, o.Token, token.StateValid)
		}
	}

	f := tc.Followers()[0]
	viaLeader, viaFollower, toRevoke := issueRetry(t, l, "new"), issueRetry(t, f, "new"), issueRetry(t, f, "new")
	revoke(t, f, toRevoke.Record.Key)
	revoke(t, l, old[1].Record.Key)
	for _, tn := range tc.Nodes {
		clustertest.WantValid(t, tn, viaLeader.Token, token.StateValid)
		clustertest.WantValid(t, tn, viaFollower.Token, token.StateValid)
		clustertest.WantValid(t, tn, toRevoke.Token, token.StateRevoked)
		clustertest.WantValid(t, tn, old[1].Token, token.StateRevoked)
	}
	wantRow(t, direct, "shared", viaLeader.Record.Key, p, false)
	wantRow(t, direct, "shared", viaFollower.Record.Key, p, false)
	wantRow(t, direct, "shared", toRevoke.Record.Key, p, true)
	wantRow(t, direct, "shared", old[1].Record.Key, p, true)
	p2, err := direct.PersistedIndex(context.Background())
	if err != nil || p2 <= p {
		t.Fatalf("store persisted index = %d, %v; want above %d", p2, err, p)
	}

	// A whole-cluster restart: new logs again, over the same store.
	l = tc.RestartAll()
	fastForwardedPast(t, tc, p2)
	for _, tn := range tc.Nodes {
		clustertest.WantValid(t, tn, viaLeader.Token, token.StateValid)
		clustertest.WantValid(t, tn, viaFollower.Token, token.StateValid)
		clustertest.WantValid(t, tn, toRevoke.Token, token.StateRevoked)
		clustertest.WantValid(t, tn, old[0].Token, token.StateRevoked)
		clustertest.WantValid(t, tn, old[1].Token, token.StateRevoked)
		for _, o := range old[2:] {
			clustertest.WantValid(t, tn, o.Token, token.StateValid)
		}
	}
	after := issueRetry(t, tc.Followers()[0], "after")
	revoke(t, l, viaLeader.Record.Key)
	wantRow(t, direct, "shared", after.Record.Key, p2, false)
	wantRow(t, direct, "shared", viaLeader.Record.Key, p2, true)
}

// Local stores (sqlite in each node's data dir) with raft_store memory: a
// whole-cluster restart starts new logs over stores at a high persisted
// index. The leader's store becomes the new log's state; the tokens of
// before validate on every node, and new writes reach every node's store.
func TestFastForwardLocalStoresAfterWholeClusterRestart(t *testing.T) {
	tc := clustertest.New(t, 3, clustertest.Options{Persist: persist.StoreSQLite})
	var old []tokens.Issued
	for i := 0; i < 15; i++ {
		old = append(old, issueRetry(t, tc.Nodes[i%3], "u"+strconv.Itoa(i%4)))
	}
	revoke(t, tc.WaitLeader(), old[0].Record.Key)
	for _, tn := range tc.Nodes {
		wantRow(t, tn.Store, tn.ID, old[0].Record.Key, 0, true)
		for _, o := range old[1:] {
			wantRow(t, tn.Store, tn.ID, o.Record.Key, 0, false)
		}
	}

	l := tc.RestartAll()
	var p uint64
	for _, tn := range tc.Nodes {
		if ff := tn.Node.FastForwarded(); ff != 0 {
			p = ff - 1
		}
	}
	fastForwardedPast(t, tc, 15) // at least the 15 issues of before
	for _, tn := range tc.Nodes {
		if got, err := tn.Store.PersistedIndex(context.Background()); err != nil || got > p {
			t.Errorf("%s: store persisted index %d, %v; the log restarted at %d", tn.ID, got, err, p+1)
		}
		clustertest.WantValid(t, tn, old[0].Token, token.StateRevoked)
		for _, o := range old[1:] {
			clustertest.WantValid(t, tn, o.Token, token.StateValid)
		}
	}

	f := tc.Followers()[0]
	viaLeader, viaFollower := issueRetry(t, l, "new"), issueRetry(t, f, "new")
	revoke(t, f, viaFollower.Record.Key)
	revoke(t, l, old[1].Record.Key)
	for _, tn := range tc.Nodes {
		clustertest.WantValid(t, tn, viaLeader.Token, token.StateValid)
		clustertest.WantValid(t, tn, viaFollower.Token, token.StateRevoked)
		clustertest.WantValid(t, tn, old[1].Token, token.StateRevoked)
		wantRow(t, tn.Store, tn.ID, viaLeader.Record.Key, p, false)
		wantRow(t, tn.Store, tn.ID, viaFollower.Record.Key, p, true)
		wantRow(t, tn.Store, tn.ID, old[1].Record.Key, p, true)
		wantRow(t, tn.Store, tn.ID, old[2].Record.Key, 0, false)
	}
}

// Nodes that start new logs over local stores an earlier cluster wrote, and
// join a leader whose store is empty (so it adopts nothing): their stores
// are emptied before they serve or write, so every node agrees with the
// leader, and the new log's writes reach every store.
func TestForeignLocalStoreReplacedUnderEmptyLeader(t *testing.T) {
	earlier := clustertest.New(t, 2, clustertest.Options{Persist: persist.StoreSQLite, IDPrefix: "e"})
	var old []tokens.Issued
	for i := 0; i < 10; i++ {
		old = append(old, issueRetry(t, earlier.Nodes[i%2], "old"))
	}
	for _, tn := range earlier.Nodes {
		for _, o := range old {
			wantRow(t, tn.Store, tn.ID, o.Record.Key, 0, false)
		}
	}
	earlier.CloseAll()

	tc := clustertest.Build(t, 3, clustertest.Options{Persist: persist.StoreSQLite})
	n1, n2, n3 := tc.Nodes[0], tc.Nodes[1], tc.Nodes[2]
	// n1 (empty data dir) bootstraps alone and leads; n2 and n3 start over
	// the earlier stores and are added by it (their bootstrap_expect of 3
	// is never met, so they never bootstrap a cluster of their own).
	n1.Cfg.Join, n1.Cfg.BootstrapExpect = nil, 1
	n2.Dir, n3.Dir = earlier.Nodes[0].Dir, earlier.Nodes[1].Dir
	tc.StartNodes(n1)
	clustertest.WaitFor(t, 20*time.Second, "n1 to lead", n1.Node.IsLeader)
	tc.StartNodes(n2, n3)
	l := tc.WaitFormed(3)
	if l != n1 {
		t.Fatalf("leader is %s, want n1", l.ID)
	}
	for _, tn := range tc.Nodes {
		if ff := tn.Node.FastForwarded(); ff != 0 {
			t.Errorf("%s fast-forwarded to %d; nothing was to adopt", tn.ID, ff)
		}
		if tn.Node.FSMForeign() {
			t.Errorf("%s still holds a foreign store", tn.ID)
		}
		// The leader never had the earlier tokens; nobody answers valid.
		for _, o := range old {
			clustertest.WantValid(t, tn, o.Token, token.StateUnknown)
		}
	}
	for _, tn := range []*clustertest.Node{n2, n3} {
		if _, err := tn.Store.Get(context.Background(), old[0].Record.Key); err == nil {
			t.Errorf("%s's store still holds a row of the earlier cluster", tn.ID)
		}
	}
	iss, gone := issueRetry(t, n2, "new"), issueRetry(t, n3, "new")
	revoke(t, n2, gone.Record.Key)
	for _, tn := range tc.Nodes {
		clustertest.WantValid(t, tn, iss.Token, token.StateValid)
		clustertest.WantValid(t, tn, gone.Token, token.StateRevoked)
		wantRow(t, tn.Store, tn.ID, iss.Record.Key, 0, false)
		wantRow(t, tn.Store, tn.ID, gone.Record.Key, 0, true)
	}
}

// A single node with its boltdb log and its sqlite store kept across a
// restart: the log covers the store, so there is no fast-forward.
func TestNoFastForwardWhenTheLogCoversTheStore(t *testing.T) {
	tc := clustertest.New(t, 1, clustertest.Options{RaftStore: cluster.StoreBoltDB, Persist: persist.StoreSQLite})
	tn := tc.WaitLeader()
	var old []tokens.Issued
	for i := 0; i < 5; i++ {
		old = append(old, issueRetry(t, tn, "u"))
	}
	revoke(t, tn, old[0].Record.Key)
	wantRow(t, tn.Store, tn.ID, old[0].Record.Key, 0, true)
	tc.StopNode(tn, true)
	tc.Restart(tn)
	tc.WaitLeader()
	if !tn.Node.HadState() {
		t.Fatal("the restarted node has no raft state")
	}
	p, err := tn.Store.PersistedIndex(context.Background())
	if err != nil || p == 0 {
		t.Fatalf("PersistedIndex = %d, %v", p, err)
	}
	if ff := tn.Node.FastForwarded(); ff != 0 {
		t.Errorf("fast-forwarded to %d although the log (last index %d) covers the store (%d)", ff, tn.Node.Raft().LastIndex(), p)
	}
	if tn.Node.FSMForeign() {
		t.Error("a node that kept its raft log took its store for foreign")
	}
	if snap := tn.Node.LastSnapshotIndex(); snap > p+10 {
		t.Errorf("last snapshot index %d, past the store's %d", snap, p)
	}
	clustertest.WantValid(t, tn, old[0].Token, token.StateRevoked)
	for _, o := range old[1:] {
		clustertest.WantValid(t, tn, o.Token, token.StateValid)
	}
	iss := issueRetry(t, tn, "u")
	wantRow(t, tn.Store, tn.ID, iss.Record.Key, p, false)
}
