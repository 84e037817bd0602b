package main

import (
	"log/slog"
	"os"
	"time"
)

// Config is the daemon's configuration: every key of the YAML file, of the
// TOKENCACHE_<SECTION>_<KEY> environment variables and of the serve flags.
// The koanf tag of each field is its key; the key path of a field is the
// section tag, a dot, and the field tag ("cluster.bootstrap_expect").
//
// Config deliberately does not reuse the packages' own Config types: it is
// the operator-facing contract (DESIGN §7), and run.go maps it onto them.
//
// A few zero values mean "derive it": node.id "" is the host name and
// persist.url "" is jdbc:sqlite:<node.data_dir>/tokens.db for the sqlite
// store. Load fills them in; Validate reports what is left unset.
type Config struct {
	Node    NodeConfig    `koanf:"node"`
	HTTP    HTTPConfig    `koanf:"http"`
	Cluster ClusterConfig `koanf:"cluster"`
	Cache   CacheConfig   `koanf:"cache"`
	Persist PersistConfig `koanf:"persist"`
	Tokens  TokensConfig  `koanf:"tokens"`
	Authz   AuthzConfig   `koanf:"authz"`
	Log     LogConfig     `koanf:"log"`
}

// NodeConfig identifies this node and where it keeps its files.
type NodeConfig struct {
	ID      string `koanf:"id"`
	DataDir string `koanf:"data_dir"`
}

// HTTPConfig is the HTTP API listener.
type HTTPConfig struct {
	Addr            string        `koanf:"addr"`
	AdminToken      Secret        `koanf:"admin_token"`
	MaxBodyBytes    int           `koanf:"max_body_bytes"`
	MaxHeaderBytes  int           `koanf:"max_header_bytes"`
	MaxConns        int           `koanf:"max_conns"`
	MaxConnsPerIP   int           `koanf:"max_conns_per_ip"`
	ReadTimeout     time.Duration `koanf:"read_timeout"`
	WriteTimeout    time.Duration `koanf:"write_timeout"`
	IdleTimeout     time.Duration `koanf:"idle_timeout"`
	DrainDelay      time.Duration `koanf:"drain_delay"`
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
}

// ClusterConfig is discovery (memberlist) and replication (Raft).
type ClusterConfig struct {
	Name              string        `koanf:"name"`
	GossipAddr        string        `koanf:"gossip_addr"`
	GossipAdvertise   string        `koanf:"gossip_advertise"`
	RaftAddr          string        `koanf:"raft_addr"`
	RaftAdvertise     string        `koanf:"raft_advertise"`
	Join              []string      `koanf:"join"`
	BootstrapExpect   int           `koanf:"bootstrap_expect"`
	ReplicationCount  int           `koanf:"replication_count"`
	ReplicationPolicy string        `koanf:"replication_policy"`
	MaxStaleness      time.Duration `koanf:"max_staleness"`
	EncryptKey        Secret        `koanf:"encrypt_key"`
	EncryptKeySecond  Secret        `koanf:"encrypt_key_secondary"`
	TLS               ClusterTLS    `koanf:"tls"`
	Insecure          bool          `koanf:"insecure"`
	RaftStore         string        `koanf:"raft_store"`
	ElectionTimeout   time.Duration `koanf:"election_timeout"`
	ReconcileInterval time.Duration `koanf:"reconcile_interval"`
	DeadServerCleanup time.Duration `koanf:"dead_server_cleanup"`
}

// ClusterTLS is cluster.tls: the files of mutual TLS between nodes.
type ClusterTLS struct {
	CAFile   string `koanf:"ca_file"`
	CertFile string `koanf:"cert_file"`
	KeyFile  string `koanf:"key_file"`
}

// CacheConfig is the in-memory token cache.
type CacheConfig struct {
	Capacity         int    `koanf:"capacity"`
	Eviction         string `koanf:"eviction"`
	LoadBatchSize    int    `koanf:"load_batch_size"`
	Shards           int    `koanf:"shards"`
	NegativeCapacity int    `koanf:"negative_capacity"`
	KeyFilter        bool   `koanf:"key_filter"`
}

// PersistConfig is the SQL store behind the cache.
type PersistConfig struct {
	Store         string        `koanf:"store"`
	URL           string        `koanf:"url"`
	Shards        []string      `koanf:"shards"`
	Username      string        `koanf:"username"`
	Password      Secret        `koanf:"password"`
	PoolSize      int           `koanf:"pool_size"`
	MaxOverflow   int           `koanf:"max_overflow"`
	PoolRecycle   time.Duration `koanf:"pool_recycle"`
	PoolTimeout   time.Duration `koanf:"pool_timeout"`
	WriteMode     string        `koanf:"write_mode"`
	CreateTables  bool          `koanf:"create_tables"`
	BatchSize     int           `koanf:"batch_size"`
	FlushInterval time.Duration `koanf:"flush_interval"`
	MaxPending    int           `koanf:"max_pending"`
	QueryTimeout  time.Duration `koanf:"query_timeout"`
}

// TokensConfig is the token model: lifetimes, prefix and server secrets.
type TokensConfig struct {
	Expiry       time.Duration `koanf:"expiry"`
	Retention    time.Duration `koanf:"retention"`
	IdleTimeout  time.Duration `koanf:"idle_timeout"`
	MaxLifetime  time.Duration `koanf:"max_lifetime"`
	ReapInterval time.Duration `koanf:"reap_interval"`
	Prefix       string        `koanf:"prefix"`
	Pepper       Secret        `koanf:"pepper"`
	SafePassword Secret        `koanf:"safe_password"`
}

// AuthzConfig is the forward-auth endpoint (/v1/authz).
type AuthzConfig struct {
	Cookie string      `koanf:"cookie"`
	Rules  []AuthzRule `koanf:"rules"`
}

// AuthzRule requires scopes for requests whose original path starts with
// PathPrefix. The longest matching prefix wins; an empty Scopes list only
// requires a valid token.
type AuthzRule struct {
	PathPrefix string   `koanf:"path_prefix" json:"path_prefix"`
	Scopes     []string `koanf:"scopes" json:"scopes"`
}

// LogConfig is the structured log on stderr.
type LogConfig struct {
	Level  string `koanf:"level"`
	Format string `koanf:"format"`
}

// Default returns the defaults of every key (DESIGN §7). node.id is the host
// name; persist.url is left empty and derived from node.data_dir by Load.
func Default() *Config {
	host, _ := os.Hostname()
	return &Config{
		Node: NodeConfig{ID: host, DataDir: "./data"},
		HTTP: HTTPConfig{
			Addr:            "127.0.0.1:8080",
			MaxBodyBytes:    64 << 10,
			MaxHeaderBytes:  8 << 10,
			MaxConns:        10000,
			MaxConnsPerIP:   0,
			ReadTimeout:     5 * time.Second,
			WriteTimeout:    5 * time.Second,
			IdleTimeout:     60 * time.Second,
			DrainDelay:      2 * time.Second,
			ShutdownTimeout: 15 * time.Second,
		},
		Cluster: ClusterConfig{
			Name:              "tokencache",
			GossipAddr:        "127.0.0.1:7946",
			RaftAddr:          "127.0.0.1:8300",
			BootstrapExpect:   1,
			ReplicationCount:  1,
			ReplicationPolicy: "sync",
			MaxStaleness:      5 * time.Second,
			RaftStore:         "boltdb",
			ElectionTimeout:   time.Second,
			ReconcileInterval: 10 * time.Second,
			DeadServerCleanup: 30 * time.Second,
		},
		Cache: CacheConfig{
			Capacity:      1_000_000,
			Eviction:      "lru",
			LoadBatchSize: 1024,
			Shards:        64,
			KeyFilter:     true,
		},
		Persist: PersistConfig{
			Store:         "sqlite",
			PoolSize:      5,
			MaxOverflow:   10,
			PoolRecycle:   -1,
			PoolTimeout:   30 * time.Second,
			WriteMode:     "through",
			CreateTables:  true,
			BatchSize:     512,
			FlushInterval: 50 * time.Millisecond,
			MaxPending:    100_000,
			QueryTimeout:  2 * time.Second,
		},
		Tokens: TokensConfig{
			Expiry:       60 * time.Minute,
			Retention:    24 * time.Hour,
			MaxLifetime:  8760 * time.Hour,
			ReapInterval: time.Minute,
			Prefix:       "tc",
		},
		Log: LogConfig{Level: "info"},
	}
}

// Secret is a configuration value that must never be printed: every way of
// formatting it (fmt verbs, encoding.TextMarshaler, hence JSON and YAML, and
// slog) shows "<redacted>" when it is set and "" when it is not. Reveal
// returns the value itself.
type Secret string

const redacted = "<redacted>"

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer (%#v).
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
