package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tokencache/tokencache/cache"
	"github.com/tokencache/tokencache/internal/errcode"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/replica"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// unitLogger sends a unit test's logs to its output (quiet unless it fails
// or -v); the cluster tests use clustertest.Logger.
func unitLogger(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

// waitFor polls cond every 10ms until it holds or timeout passes (the unit
// tests of this package; the cluster tests use clustertest.WaitFor, which
// a test of package cluster cannot import).
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// mustJSON encodes v as JSON.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func validConfig() Config {
	c := DefaultConfig()
	c.NodeID = "node-1"
	return c
}

func TestConfigValidate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig with a node id: Validate() = %v", err)
	}
	for _, tt := range []struct {
		name  string
		edit  func(*Config)
		wants []string
	}{
		{"no node id", func(c *Config) { c.NodeID = "" }, []string{"node.id"}},
		{"reserved char", func(c *Config) { c.NodeID = "a@b" }, []string{"node.id"}},
		{"bad policy and store", func(c *Config) { c.Policy = "maybe"; c.RaftStore = "tape" },
			[]string{"replication_policy", "raft_store"}},
		{"bad key", func(c *Config) { c.EncryptKey = "c2hvcnQ=" }, []string{"encrypt_key"}},
		{"lease over heartbeat", func(c *Config) { c.LeaderLease = 2 * time.Second }, []string{"leader_lease"}},
		{"every interface without advertise", func(c *Config) { c.RaftAddr = "0.0.0.0:8300" }, []string{"raft_advertise"}},
		{"bad join", func(c *Config) { c.Join = []string{"nohost"} }, []string{"cluster.join"}},
		{"replication count", func(c *Config) { c.ReplicationCount = -2 }, []string{"replication_count"}},
		{"zero durations listed together", func(c *Config) { c.MaxStaleness = 0; c.ReconcileInterval = 0 },
			[]string{"max_staleness", "reconcile_interval"}},
		{"staleness below two heartbeats", func(c *Config) { c.MaxStaleness = time.Second }, []string{"max_staleness"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.edit(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
		})
	}
	c := validConfig()
	c.EncryptKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" // 32 bytes
	c.Join = []string{"10.0.0.1:7946", "dns+tokencache.svc:7946"}
	c.ReplicationCount = -1
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v for a valid key, join list and R=-1", err)
	}
}

func TestMetaRoundTripAndRejects(t *testing.T) {
	m := nodeMeta{ID: "node-1", RaftID: "node-1@0a0b0c0d", RaftAddr: "10.1.2.3:8300", HTTPAddr: "10.1.2.3:8080",
		Fingerprint: strings.Repeat("f", maxFingerprintLen), Cluster: "prod", Expect: 3,
		ClusterID: "0123456789abcdef0123456789abcdef", HasState: true}
	b, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMeta(b)
	if err != nil || got != m {
		t.Fatalf("decodeMeta(encode(m)) = %+v, %v; want %+v", got, err, m)
	}
	biggest := nodeMeta{ID: strings.Repeat("a", maxIDLen), RaftID: strings.Repeat("a", maxIDLen) + "@0123456789abcdef",
		RaftAddr: strings.Repeat("h", maxAddrLen), HTTPAddr: strings.Repeat("h", maxAddrLen),
		Fingerprint: strings.Repeat("f", maxFingerprintLen), Cluster: strings.Repeat("c", maxClusterNameLen), Expect: 1 << 16,
		ClusterID: strings.Repeat("i", maxClusterIDLen), HasState: true, JWTKeys: strings.Repeat("k", maxJWTKeysLen)}
	if b, err := biggest.encode(); err != nil || len(b) >= metaMaxSize {
		t.Fatalf("largest metadata: %d bytes, %v; want under %d", len(b), err, metaMaxSize)
	}
	// Version 1 (an older binary): no cluster id, no flags; decoded as Legacy.
	old := m
	old.ClusterID, old.HasState = "", false
	v1 := mustEncode(t, old)
	v1 = append([]byte{metaVersionLegacy}, v1[1:len(v1)-2]...)
	old.Legacy = true
	if got, err := decodeMeta(v1); err != nil || got != old {
		t.Fatalf("decodeMeta(version 1) = %+v, %v; want %+v", got, err, old)
	}
	unknownFlag := bytes.Clone(b)
	unknownFlag[len(unknownFlag)-1] |= 0x80
	future := append([]byte{metaVersion + 1}, b[1:]...)
	for name, in := range map[string][]byte{
		"empty": nil, "future version": future, "trailing": append(bytes.Clone(b), 0),
		"unknown flag": unknownFlag, "v1 trailing": append(bytes.Clone(v1), 0),
		"id mismatch":  mustEncode(t, nodeMeta{ID: "a", RaftID: "b@1", RaftAddr: "x:1"}),
		"no raft addr": mustEncode(t, nodeMeta{ID: "a", RaftID: "a@1"}),
	} {
		if _, err := decodeMeta(in); !errors.Is(err, errBadMeta) {
			t.Errorf("decodeMeta(%s) = %v, want errBadMeta", name, err)
		}
	}
	for i := 0; i < len(b); i++ {
		if _, err := decodeMeta(b[:i]); err == nil {
			t.Errorf("decodeMeta(truncated to %d bytes) accepted", i)
		}
	}
}

func mustEncode(t *testing.T, m nodeMeta) []byte {
	t.Helper()
	b, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(mustEncodeF(nodeMeta{ID: "n1", RaftID: "n1@ab", RaftAddr: "127.0.0.1:1", Cluster: "c", Expect: 1}))
	f.Add([]byte{1, 200, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		again, err := m.encode()
		if err != nil {
			t.Fatalf("decoded metadata %+v does not encode: %v", m, err)
		}
		m.Legacy = false // encode writes the current version
		if m2, err := decodeMeta(again); err != nil || m2 != m {
			t.Fatalf("round trip %+v -> %+v, %v", m, m2, err)
		}
	})
}

func mustEncodeF(m nodeMeta) []byte {
	b, err := m.encode()
	if err != nil {
		panic(err)
	}
	return b
}

func TestRaftAddressAndErrorCodes(t *testing.T) {
	a := raftAddress("10.0.0.1:8300", "n1@abcd")
	if hp, id := splitRaftAddress(a); hp != "10.0.0.1:8300" || id != "n1@abcd" || nodeOfRaftID(id) != "n1" {
		t.Fatalf("splitRaftAddress(%q) = %q, %q", a, hp, id)
	}
	for _, sentinel := range []error{tokens.ErrNotFound, tokens.ErrDuplicateName, tokens.ErrIndeterminate, tokens.ErrNoLeader,
		tokens.ErrStale, tokens.ErrStoreUnavailable, tokens.ErrIdempotencyConflict, token.ErrInvalid, tokens.ErrParentNotFound} {
		wrapped := errors.Join(errors.New("context"), sentinel)
		back := errorFromCode(errorCode(wrapped), wrapped.Error())
		if !errors.Is(back, sentinel) {
			t.Errorf("error %v did not survive the wire: %v", sentinel, back)
		}
	}
	if code := errorCode(errors.Join(tokens.ErrIndeterminate, tokens.ErrNoLeader)); code != string(errcode.Indeterminate) {
		t.Errorf("errorCode(indeterminate+no leader) = %s, want %s", code, string(errcode.Indeterminate))
	}
	for _, tt := range []struct {
		raftErr error
		want    error
	}{
		{raft.ErrNotLeader, tokens.ErrNoLeader},
		{raft.ErrLeadershipTransferInProgress, tokens.ErrNoLeader},
		{raft.ErrLeadershipLost, tokens.ErrIndeterminate},
		{raft.ErrRaftShutdown, tokens.ErrIndeterminate},
	} {
		got := translateApplyError(tt.raftErr)
		if !errors.Is(got, tt.want) || errors.Is(got, tt.raftErr) {
			t.Errorf("translateApplyError(%v) = %v, want %v (and raft's error not exposed)", tt.raftErr, got, tt.want)
		}
	}
}

func newUnitState(t *testing.T) *replica.Machine {
	t.Helper()
	c, err := cache.New(cache.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	pcfg := persist.DefaultConfig()
	pcfg.Store = "memory"
	store, err := persist.Open(context.Background(), pcfg, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	st, err := replica.NewMachine(replica.DefaultWriterConfig(), c, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func putCommand(t *testing.T) []byte {
	t.Helper()
	k := token.NewKey()
	b, err := (&replica.Command{Op: replica.OpPut, Time: 1, Puts: []*token.Token{{
		Key: k, Hash: token.Hash{1}, Created: 1, Username: "u", Realm: "default", Type: token.TypeUser, Format: token.FormatOpaque,
	}}}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A log entry that cannot be decoded halts the state machine: nothing after
// it is applied, and the node is told to leave Raft.
func TestFSMHaltsOnUndecodableEntry(t *testing.T) {
	st := newUnitState(t)
	var halted atomic.Bool
	f := newFSM(context.Background(), st, unitLogger(t), func(error) { halted.Store(true) })
	out := f.ApplyBatch([]*raft.Log{
		{Index: 1, Type: raft.LogCommand, Data: putCommand(t)},
		{Index: 2, Type: raft.LogConfiguration},
		{Index: 3, Type: raft.LogCommand, Data: []byte{9, 9, 9}},
		{Index: 4, Type: raft.LogCommand, Data: putCommand(t)},
	})
	if _, ok := out[0].(replica.Result); !ok {
		t.Errorf("response 0 = %v, want a Result", out[0])
	}
	for i := 2; i < 4; i++ {
		if err, ok := out[i].(error); !ok || !errors.Is(err, ErrHalted) {
			t.Errorf("response %d = %v, want ErrHalted", i, out[i])
		}
	}
	if got := st.AppliedIndex(); got != 2 {
		t.Errorf("AppliedIndex = %d, want 2 (the configuration entry counts; nothing after the bad entry)", got)
	}
	waitFor(t, time.Second, "onHalt", halted.Load)
	if _, err := f.Snapshot(); err == nil {
		t.Error("a halted FSM took a snapshot")
	}
}

// Snapshot → Persist → Restore carries the state (applied index, rows).
func TestFSMSnapshotRestore(t *testing.T) {
	src := newUnitState(t)
	f := newFSM(context.Background(), src, unitLogger(t), nil)
	for i := uint64(1); i <= 5; i++ {
		f.ApplyBatch([]*raft.Log{{Index: i, Type: raft.LogCommand, Data: putCommand(t)}})
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	dst := newUnitState(t)
	g := newFSM(context.Background(), dst, unitLogger(t), nil)
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.buf.Bytes()))); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if dst.AppliedIndex() != 5 {
		t.Errorf("restored AppliedIndex = %d, want 5", dst.AppliedIndex())
	}
	corrupt := bytes.Clone(sink.buf.Bytes())
	corrupt[len(corrupt)/2] ^= 0xff
	if err := newFSM(context.Background(), newUnitState(t), unitLogger(t), nil).Restore(io.NopCloser(bytes.NewReader(corrupt))); err == nil {
		t.Error("Restore of a corrupt snapshot succeeded")
	}
}

type memSink struct {
	buf      bytes.Buffer
	canceled bool
}

func (s *memSink) Write(p []byte) (int, error) { return s.buf.Write(p) }
func (s *memSink) Close() error                { return nil }
func (s *memSink) ID() string                  { return "mem" }
func (s *memSink) Cancel() error               { s.canceled = true; return nil }

func TestLoadIdentity(t *testing.T) {
	dir := t.TempDir()
	id, err := loadIdentity(dir, "n1")
	if err != nil || nodeOfRaftID(id) != "n1" || id == "n1" {
		t.Fatalf("loadIdentity = %q, %v", id, err)
	}
	again, err := loadIdentity(dir, "n1")
	if err != nil || again != id {
		t.Fatalf("loadIdentity again = %q, %v; want %q", again, err, id)
	}
	if _, err := loadIdentity(dir, "n2"); !errors.Is(err, ErrIdentityMismatch) {
		t.Fatalf("loadIdentity for another node = %v, want ErrIdentityMismatch", err)
	}
}

// Before Start and after Close, every entry point fails fast with a
// sentinel (nothing can have been appended), and Close is idempotent.
func TestNodeBeforeStartAndAfterClose(t *testing.T) {
	cfg := validConfig()
	cfg.DataDir = t.TempDir()
	cfg.RaftStore = StoreMemory
	n, err := New(cfg, newUnitState(t), unitLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := n.Propose(ctx, &replica.Command{Op: replica.OpNoop}); !errors.Is(err, tokens.ErrNoLeader) || errors.Is(err, tokens.ErrIndeterminate) {
		t.Errorf("Propose before Start = %v, want ErrNoLeader", err)
	}
	if err := n.Consistent(ctx); !errors.Is(err, tokens.ErrNoLeader) {
		t.Errorf("Consistent before Start = %v, want ErrNoLeader", err)
	}
	if _, err := n.Forward(ctx, mustJSON(t, &tokens.WriteRequest{})); !errors.Is(err, tokens.ErrNoLeader) {
		t.Errorf("Forward before Start = %v, want ErrNoLeader", err)
	}
	if err := n.Fence(); !errors.Is(err, tokens.ErrStale) {
		t.Errorf("Fence before Start = %v, want ErrStale", err)
	}
	if err := n.Ready(ctx, false); !errors.Is(err, ErrNotReady) {
		t.Errorf("Ready before Start = %v, want ErrNotReady", err)
	}
	if n.CatchUp(ctx) || n.IsLeader() {
		t.Error("CatchUp or IsLeader true before Start")
	}
	if st := n.Status(ctx); st.NodeID != cfg.NodeID {
		t.Errorf("Status before Start = %+v", st)
	}
	if _, err := New(Config{}, newUnitState(t), nil); err == nil {
		t.Error("New with an empty config succeeded")
	}
	for i := 0; i < 2; i++ {
		if err := n.Close(ctx); err != nil {
			t.Errorf("Close #%d = %v", i+1, err)
		}
	}
}

func TestRevocationWaitBound(t *testing.T) {
	cfg := validConfig()
	cfg.RaftStore = StoreMemory
	n, err := New(cfg, newUnitState(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Heartbeat failures show after the transport timeout (3 × 1s), then
	// 5s + 2×500ms + 500ms + 50ms + 500ms + 1s with the defaults.
	if got, want := n.RevocationWaitBound(), 3*time.Second+8050*time.Millisecond; got != want {
		t.Errorf("RevocationWaitBound() = %s, want %s", got, want)
	}
	if got, want := n.silenceExcuse(), 8050*time.Millisecond; got != want {
		t.Errorf("silenceExcuse() = %s, want %s", got, want)
	}
}

// A failing mark belongs to one replication: when raft starts a new one
// (the server was added back after a removal), the mark is forgotten, since
// the new heartbeat loop reports a resume only after a failure of its own.
func TestPeerTrackerForgetsFailingMarkOnNewReplication(t *testing.T) {
	p := newPeerTracker()
	p.heartbeatFailed("n2@1", time.Now().Add(-time.Minute))
	if p.silentFor("n2@1") < time.Minute {
		t.Fatalf("silentFor after a failed heartbeat = %v, want ≥ 1m", p.silentFor("n2@1"))
	}
	p.replicationStarted("n2@1")
	if d := p.silentFor("n2@1"); d != 0 {
		t.Errorf("silentFor after a new replication started = %v, want 0", d)
	}
}

// Looking at the cluster (GET /v1/cluster refreshes applied indexes) never
// restarts a server's stabilization: only the leader's health poll judges.
func TestPeerTrackerStatusRefreshKeepsHealth(t *testing.T) {
	p := newPeerTracker()
	p.recordStats("n2@1", &statsResponse{Applied: 5}, true)
	time.Sleep(2 * time.Millisecond)
	p.recordApplied("n2@1", &statsResponse{Applied: 6})
	if p.healthyFor("n2@1") == 0 {
		t.Error("healthyFor after a status refresh = 0, want the streak kept")
	}
	if got, ok := p.appliedIndex("n2@1", time.Second); !ok || got != 6 {
		t.Errorf("appliedIndex after a status refresh = %d, %v; want 6, true", got, ok)
	}
}

// brokenListener fails every Accept with an error that does not pass.
type brokenListener struct {
	net.Listener
	accepts atomic.Int32
}

func (l *brokenListener) Accept() (net.Conn, error) {
	l.accepts.Add(1)
	return nil, errors.New("accept: invalid argument")
}

// A Raft port whose listener fails for good stops accepting and reports it
// once, instead of logging and retrying every 10 ms forever.
func TestMuxStopsOnListenerFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bl := &brokenListener{Listener: ln}
	m := newMux(bl, ln.Addr().String(), "a", "a@1", nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	failed := make(chan error, 4)
	m.onFail = func(err error) { failed <- err }
	m.serve()
	defer m.close()
	select {
	case err := <-failed:
		t.Logf("onFail(%v)", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the mux did not report its failed listener")
	}
	time.Sleep(200 * time.Millisecond)
	if n := bl.accepts.Load(); n != 1 {
		t.Errorf("Accept called %d times after a permanent failure, want 1", n)
	}
	if len(failed) != 0 {
		t.Errorf("onFail called %d more times", len(failed))
	}
}
