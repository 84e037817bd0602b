// Package cluster replicates tokencache's state machine across nodes: memberlist
// gossip discovers the nodes, one hashicorp/raft group orders every write, and
// the leader reconciles the Raft configuration with gossip (2R+1 voters, every
// other node a non-voter that still applies every entry). Node implements
// the replication the token service consumes (tokens.Replication: propose,
// linearizable reads, the revocation fence wait, forwarding of writes
// received by a follower, the staleness fence and the read-your-writes
// hook) and applies the log to a replica.Machine; it does not import the
// service, which it is handed as a WriteHandler. See DESIGN.md in this
// directory for the rules and why they hold.
package cluster

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// Replication policies (cluster.replication_policy).
const (
	PolicySync  = "sync"
	PolicyAsync = "async"
)

// Raft log stores (cluster.raft_store).
const (
	StoreBoltDB = "boltdb"
	StoreMemory = "memory"
)

// Limits on identity strings: they travel in memberlist node meta, which
// memberlist caps at 512 bytes (and panics beyond).
const (
	maxIDLen          = 64
	maxAddrLen        = 96
	maxFingerprintLen = 32 // the daemon's is 16 hex digits
	maxJWTKeysLen     = 32 // a JWT key set digest (Node.SetJWTKeys)
	maxClusterNameLen = 64
	dnsJoinPrefix     = "dns+"
)

// Config configures a Node. DefaultConfig returns production values; every
// duration must be positive (a zero never means "unbounded").
type Config struct {
	// NodeID names this node for all time (node.id): memberlist's Name and
	// the prefix of its Raft server ID. Letters, digits, '.', '_', '-'.
	NodeID string
	// DataDir holds <data_dir>/raft (log, stable store, snapshots, the
	// server-id file).
	DataDir string
	// Name is the cluster name (cluster.name): memberlist's Label, so nodes of
	// two clusters on one network never merge.
	Name string
	// GossipAddr is the memberlist bind address (TCP and UDP), host:port.
	GossipAddr string
	// GossipAdvertise is announced to other nodes; "" = GossipAddr.
	GossipAdvertise string
	// RaftAddr is the bind address of the one TCP port carrying Raft and the
	// internal RPC (forwarding, read index, applied-index waits).
	RaftAddr string
	// RaftAdvertise is announced to other nodes; "" = RaftAddr.
	RaftAdvertise string
	// HTTPAddr is this node's HTTP API address, advertised in gossip so that
	// GET /v1/cluster can show the leader's.
	HTTPAddr string
	// Join lists gossip addresses (host:port, or dns+name:port resolved at
	// each join attempt) of nodes to join. Empty = none.
	Join []string
	// BootstrapExpect is how many nodes (with the same expect and
	// fingerprint) must have met before the cluster bootstraps; first start
	// only.
	BootstrapExpect int
	// ReplicationCount is R: the cluster keeps 2R+1 voters; -1 = every node
	// votes.
	ReplicationCount int
	// Policy is PolicySync or PolicyAsync.
	Policy string
	// MaxStaleness is how long a node may be out of contact with the leader
	// (or behind the commit index it knows) and still answer valid.
	MaxStaleness time.Duration
	// EncryptKey is the base64 gossip key (16, 24 or 32 bytes); "" = none.
	// Gossip is encrypted with it.
	EncryptKey string
	// SecondaryEncryptKeys are more gossip keys this node decrypts with
	// (memberlist's keyring), during a key rotation (docs/security.md).
	SecondaryEncryptKeys []string
	// TLS is mutual TLS on the Raft/RPC port (tls.go); zero = off.
	TLS TLSConfig
	// Insecure lets a node whose Raft or gossip address is not loopback
	// start without TLS or without the gossip key (CheckExposure).
	Insecure bool
	// Now is the clock of certificate checks; nil = time.Now.
	Now func() time.Time
	// RaftStore is StoreBoltDB or StoreMemory.
	RaftStore string
	// Raft timing. LeaderLease must not exceed HeartbeatTimeout.
	ElectionTimeout  time.Duration
	HeartbeatTimeout time.Duration
	LeaderLease      time.Duration
	CommitTimeout    time.Duration
	// ReconcileInterval is how often the leader reconciles Raft membership
	// with gossip even when no event arrived (events can be dropped).
	ReconcileInterval time.Duration
	// DeadServerCleanup is how long a server must be dead in gossip and
	// silent on Raft before the leader removes it from the configuration.
	DeadServerCleanup time.Duration
	// ServerStabilization is how long a non-voter must be continuously
	// healthy before it is promoted, and how long a voter must be failed
	// (dead in gossip and silent on Raft) before it is replaced.
	ServerStabilization time.Duration
	// Fingerprint is a hash of the settings that must agree cluster-wide
	// (computed by the caller). A node whose fingerprint differs from the
	// leader's never votes and gets no entries.
	Fingerprint string
	// Snapshots and log compaction.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	SnapshotRetain    int
	// MaxAsyncPending bounds async proposals accepted but not yet committed
	// (the async loss window, in entries).
	MaxAsyncPending int
	// Gossip timing (memberlist). DefaultConfig uses memberlist's LAN
	// profile.
	Gossip GossipConfig
	// JoinRetryMax is the longest pause between join attempts.
	JoinRetryMax time.Duration
	// Logger receives the node's logs (and raft's and memberlist's, bridged);
	// nil = discard. New's log argument, when non-nil, wins.
	Logger *slog.Logger
	// Network, when set, sees this node's outgoing traffic (Raft, RPC and
	// gossip): the test seam for partitions (package clustertest). Nil in
	// production.
	Network NetworkHooks
}

// GossipConfig is the memberlist timing.
type GossipConfig struct {
	ProbeInterval    time.Duration
	ProbeTimeout     time.Duration
	GossipInterval   time.Duration
	PushPullInterval time.Duration
	TCPTimeout       time.Duration
	SuspicionMult    int
	// DeadNodeReclaimTime lets a node come back under its name with another
	// address after this long (memberlist's default 0 refuses forever).
	DeadNodeReclaimTime time.Duration
}

// DefaultConfig returns the production defaults (DESIGN §7 and
// research/cluster.md §1.10–1.11).
func DefaultConfig() Config {
	return Config{
		DataDir:             "./data",
		Name:                "tokencache",
		GossipAddr:          "127.0.0.1:7946",
		RaftAddr:            "127.0.0.1:8300",
		HTTPAddr:            "127.0.0.1:8080",
		BootstrapExpect:     1,
		ReplicationCount:    1,
		Policy:              PolicySync,
		MaxStaleness:        5 * time.Second,
		RaftStore:           StoreBoltDB,
		ElectionTimeout:     time.Second,
		HeartbeatTimeout:    time.Second,
		LeaderLease:         500 * time.Millisecond,
		CommitTimeout:       50 * time.Millisecond,
		ReconcileInterval:   10 * time.Second,
		DeadServerCleanup:   5 * time.Minute,
		ServerStabilization: 10 * time.Second,
		SnapshotThreshold:   8192,
		SnapshotInterval:    120 * time.Second,
		TrailingLogs:        10240,
		SnapshotRetain:      2,
		MaxAsyncPending:     4096,
		Gossip: GossipConfig{
			ProbeInterval:       time.Second,
			ProbeTimeout:        500 * time.Millisecond,
			GossipInterval:      200 * time.Millisecond,
			PushPullInterval:    30 * time.Second,
			TCPTimeout:          10 * time.Second,
			SuspicionMult:       4,
			DeadNodeReclaimTime: 30 * time.Second,
		},
		JoinRetryMax: 30 * time.Second,
	}
}

// Validate reports every problem with c, one per line.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := validID(c.NodeID); err != nil {
		add("node.id: %w", err)
	}
	if c.DataDir == "" && c.RaftStore != StoreMemory {
		add("node.data_dir must be set for raft_store %q", StoreBoltDB)
	}
	if c.Name == "" || len(c.Name) > maxClusterNameLen {
		add("cluster.name must be 1-%d bytes, got %q", maxClusterNameLen, c.Name)
	}
	checkAddr := func(key, v string, optional, needPort bool) {
		if v == "" {
			if !optional {
				add("%s must be set (host:port)", key)
			}
			return
		}
		if len(v) > maxAddrLen {
			add("%s %q is longer than %d bytes", key, v, maxAddrLen)
			return
		}
		_, port, err := net.SplitHostPort(v)
		if err != nil {
			add("%s %q is not host:port: %v", key, v, err)
			return
		}
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 || (needPort && p == 0) {
			add("%s %q has an invalid port", key, v)
		}
		if needPort && unspecifiedHost(v) {
			add("%s %q must name one reachable address, not every interface", key, v)
		}
	}
	checkAddr("cluster.gossip_addr", c.GossipAddr, false, false)
	checkAddr("cluster.gossip_advertise", c.GossipAdvertise, true, true)
	checkAddr("cluster.raft_addr", c.RaftAddr, false, false)
	checkAddr("cluster.raft_advertise", c.RaftAdvertise, true, true)
	checkAddr("http.addr", c.HTTPAddr, true, false)
	for _, a := range []struct{ key, bind, adv string }{
		{"cluster.gossip_advertise", c.GossipAddr, c.GossipAdvertise},
		{"cluster.raft_advertise", c.RaftAddr, c.RaftAdvertise},
	} {
		if a.adv == "" && unspecifiedHost(a.bind) {
			add("%s must be set when the bind address %q listens on every interface", a.key, a.bind)
		}
	}
	for _, j := range c.Join {
		addr := strings.TrimPrefix(j, dnsJoinPrefix)
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			add("cluster.join entry %q is not host:port or dns+name:port", j)
		}
	}
	if c.BootstrapExpect < 1 {
		add("cluster.bootstrap_expect must be at least 1, got %d", c.BootstrapExpect)
	}
	if c.ReplicationCount < -1 {
		add("cluster.replication_count must be -1 (every node votes) or at least 0, got %d", c.ReplicationCount)
	}
	if c.Policy != PolicySync && c.Policy != PolicyAsync {
		add("cluster.replication_policy must be %q or %q, got %q", PolicySync, PolicyAsync, c.Policy)
	}
	if c.RaftStore != StoreBoltDB && c.RaftStore != StoreMemory {
		add("cluster.raft_store must be %q or %q, got %q", StoreBoltDB, StoreMemory, c.RaftStore)
	}
	if c.EncryptKey != "" {
		if _, err := c.encryptKey(); err != nil {
			add("cluster.encrypt_key: %w", err)
		}
	}
	for i, k := range c.SecondaryEncryptKeys {
		if _, err := decodeGossipKey(k); err != nil {
			add("cluster.encrypt_key_secondary[%d]: %w", i, err)
		}
	}
	if len(c.SecondaryEncryptKeys) > 0 && c.EncryptKey == "" {
		add("cluster.encrypt_key_secondary needs cluster.encrypt_key (the key gossip encrypts with)")
	}
	if err := c.TLS.validate(); err != nil {
		add("%w", err)
	}
	if err := c.CheckExposure(); err != nil {
		add("%w", err)
	}
	if len(c.Fingerprint) > maxFingerprintLen {
		add("cluster fingerprint is longer than %d bytes", maxFingerprintLen)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"cluster.max_staleness", c.MaxStaleness},
		{"cluster.election_timeout", c.ElectionTimeout},
		{"cluster.heartbeat_timeout", c.HeartbeatTimeout},
		{"cluster.leader_lease", c.LeaderLease},
		{"cluster.commit_timeout", c.CommitTimeout},
		{"cluster.reconcile_interval", c.ReconcileInterval},
		{"cluster.dead_server_cleanup", c.DeadServerCleanup},
		{"cluster.server_stabilization", c.ServerStabilization},
		{"cluster.snapshot_interval", c.SnapshotInterval},
		{"cluster.join_retry_max", c.JoinRetryMax},
		{"gossip probe interval", c.Gossip.ProbeInterval},
		{"gossip probe timeout", c.Gossip.ProbeTimeout},
		{"gossip interval", c.Gossip.GossipInterval},
		{"gossip push/pull interval", c.Gossip.PushPullInterval},
		{"gossip TCP timeout", c.Gossip.TCPTimeout},
		{"gossip dead node reclaim time", c.Gossip.DeadNodeReclaimTime},
	} {
		if d.v <= 0 {
			add("%s must be positive, got %s", d.key, d.v)
		}
	}
	if c.LeaderLease > c.HeartbeatTimeout {
		add("cluster.leader_lease (%s) must not exceed the heartbeat timeout (%s)", c.LeaderLease, c.HeartbeatTimeout)
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		add("cluster.election_timeout (%s) must be at least the heartbeat timeout (%s)", c.ElectionTimeout, c.HeartbeatTimeout)
	}
	if c.MaxStaleness > 0 && c.MaxStaleness < 2*c.HeartbeatTimeout {
		add("cluster.max_staleness (%s) must be at least twice the heartbeat timeout (%s), or healthy followers flap", c.MaxStaleness, c.HeartbeatTimeout)
	}
	if c.SnapshotThreshold == 0 || c.TrailingLogs == 0 {
		add("snapshot threshold and trailing logs must be positive")
	}
	if c.SnapshotRetain < 1 {
		add("snapshot retain must be at least 1")
	}
	if c.MaxAsyncPending < 1 {
		add("max async pending must be at least 1")
	}
	if c.Gossip.SuspicionMult < 1 {
		add("gossip suspicion multiplier must be at least 1")
	}
	return errors.Join(errs...)
}

// votersTarget is how many voters the cluster wants among n eligible
// servers: 2R+1, or all of them for R = -1.
func (c Config) votersTarget() int {
	if c.ReplicationCount < 0 {
		return -1
	}
	return 2*c.ReplicationCount + 1
}

// encryptKey decodes EncryptKey.
func (c Config) encryptKey() ([]byte, error) { return decodeGossipKey(c.EncryptKey) }

// decodeGossipKey decodes a base64 gossip key.
func decodeGossipKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not valid base64: %w", err)
	}
	switch len(k) {
	case 16, 24, 32:
		return k, nil
	}
	return nil, fmt.Errorf("must decode to 16, 24 or 32 bytes, got %d", len(k))
}

func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c Config) gossipAdvertise() string {
	if c.GossipAdvertise != "" {
		return c.GossipAdvertise
	}
	return c.GossipAddr
}

func (c Config) raftAdvertise() string {
	if c.RaftAdvertise != "" {
		return c.RaftAdvertise
	}
	return c.RaftAddr
}

func unspecifiedHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// validID checks a node id: 1-64 bytes of letters, digits, '.', '_', '-'.
// '@' is reserved: it separates the node id from the Raft server ID suffix.
func validID(id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("must be 1-%d bytes, got %q", maxIDLen, id)
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return fmt.Errorf("%q may contain only letters, digits, '.', '_' and '-'", id)
		}
	}
	return nil
}
