package main

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/tokencache/tokencache/replica"
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
	Format       string        `koanf:"format"`
	JWT          JWTConfig     `koanf:"jwt"`
}

// JWTConfig is tokens.jwt: the signed-JWT format (token/jwt). It is on when
// a keys file (this node issues and verifies JWTs) or a trusted issuer
// (this node verifies another issuer's JWTs) is configured.
type JWTConfig struct {
	Issuer        string          `koanf:"issuer"`
	KeysFile      string          `koanf:"keys_file"`
	Audiences     []string        `koanf:"audiences"`
	Leeway        time.Duration   `koanf:"leeway"`
	VerifiedCache int             `koanf:"verified_cache"`
	Trusted       []TrustedIssuer `koanf:"trusted"`
}

// Enabled reports whether the JWT format is on.
func (j *JWTConfig) Enabled() bool { return j.KeysFile != "" || len(j.Trusted) > 0 }

// TrustedIssuer is one entry of tokens.jwt.trusted: an external issuer
// whose JWTs this node validates (jwt.TrustedConfig).
type TrustedIssuer struct {
	Issuer         string        `koanf:"issuer" json:"issuer"`
	JWKSFile       string        `koanf:"jwks_file" json:"jwks_file,omitempty"`
	JWKSURL        string        `koanf:"jwks_url" json:"jwks_url,omitempty"`
	Refresh        time.Duration `koanf:"refresh" json:"refresh,omitempty"`
	Audiences      []string      `koanf:"audiences" json:"audiences"`
	RequiredClaims []string      `koanf:"required_claims" json:"required_claims,omitempty"`
	UsernameClaim  string        `koanf:"username_claim" json:"username_claim,omitempty"`
	ScopesClaim    string        `koanf:"scopes_claim" json:"scopes_claim,omitempty"`
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

// keySpec is everything said about one key besides its name and type (the
// Config field): its default, the serve flag and any extra environment
// variable that set it, and its doc line. Default, `config default`, the
// serve flags, the environment names and the README check are all derived
// from keySpecs, so a key is declared here and in Config only.
type keySpec struct {
	// def is the default in the file's syntax ("5s", "lru", "true", "-1");
	// "" is the zero value (or a default derived at load, such as node.id).
	def string
	// flag is the serve flag that sets the key ("node-id"); "" = none.
	flag string
	// env is another environment variable for the key, besides
	// TOKENCACHE_<SECTION>_<KEY> (envName); "" = none.
	env string
	// help documents the key in `config default` (lines separated by \n);
	// its first sentence is the flag's usage.
	help string
}

// keySpecs holds the spec of every key of Config; collectKeys refuses a key
// without one, and a spec without a key.
var keySpecs = map[string]keySpec{
	"node.id":       {flag: "node-id", help: "Unique node name, also the Raft server ID. Empty = the host name."},
	"node.data_dir": {def: "./data", flag: "data-dir", help: "Directory for the Raft log and snapshots, the SQLite file and the generated admin token."},

	"http.addr":             {def: "127.0.0.1:8080", flag: "http-addr", help: "Address the HTTP API listens on (host:port; port 0 = any free port)."},
	"http.admin_token":      {env: "TOKENCACHE_ADMIN_TOKEN", help: "Bearer token for admin calls. Secret: prefer the TOKENCACHE_ADMIN_TOKEN variable.\nEmpty = generated at first start into <node.data_dir>/admin.token."},
	"http.max_body_bytes":   {def: "65536", help: "Largest request body accepted; larger bodies get 413."},
	"http.max_header_bytes": {def: "8192", help: "Largest request header block accepted."},
	"http.max_conns":        {def: "10000", help: "Most connections open at once (idle keep-alive ones included); one more is\nanswered 503 and closed. Keep it below the file descriptor limit (ulimit -n)."},
	"http.max_conns_per_ip": {help: "Most connections open at once from one IP address; one more is answered 429\nand closed.\n0 = no per-IP limit (the usual client is the local gateway, one IP)."},
	"http.read_timeout":     {def: "5s", help: "Time allowed to read a whole request."},
	"http.write_timeout":    {def: "5s", help: "Time allowed to write a response."},
	"http.idle_timeout":     {def: "1m", help: "How long an idle keep-alive connection stays open."},
	"http.drain_delay":      {def: "2s", help: "On shutdown, time between turning /readyz off and closing the listener,\nso that load balancers stop sending requests first. 0 = no delay."},
	"http.shutdown_timeout": {def: "15s", help: "On shutdown, how long in-flight requests may take to finish."},

	"cluster.name":                  {def: "tokencache", help: "Cluster name: nodes of different clusters never merge."},
	"cluster.gossip_addr":           {def: "127.0.0.1:7946", flag: "gossip-addr", help: "Address memberlist gossip listens on (TCP and UDP)."},
	"cluster.gossip_advertise":      {help: "Gossip address announced to other nodes. Empty = gossip_addr; required when\ngossip_addr binds every interface."},
	"cluster.raft_addr":             {def: "127.0.0.1:8300", flag: "raft-addr", help: "Address the Raft transport listens on."},
	"cluster.raft_advertise":        {help: "Raft address announced to other nodes. Empty = raft_addr; required when\nraft_addr binds every interface."},
	"cluster.join":                  {flag: "join", help: "Gossip addresses (host:port) of nodes to join at start. A list, a comma-separated\nstring or \"tcp://h1:port;h2:port\". Empty = a single node that bootstraps itself."},
	"cluster.bootstrap_expect":      {def: "1", flag: "bootstrap-expect", help: "Number of nodes that must have met before the cluster bootstraps (first start only)."},
	"cluster.replication_count":     {def: "1", help: "R: a write acknowledged under sync survives the loss of any R nodes. The cluster\nkeeps 2R+1 voters (-1 = every node votes); other nodes are non-voters."},
	"cluster.replication_policy":    {def: "sync", help: "sync: acknowledge once committed and applied by the leader.\nasync: acknowledge once the leader accepted it (may be lost if it dies at once)."},
	"cluster.max_staleness":         {def: "5s", help: "A node out of contact with the leader for longer than this stops answering valid."},
	"cluster.encrypt_key":           {help: "Gossip encryption key: base64 of 16, 24 or 32 bytes (openssl rand -base64 32).\nSecret: prefer TOKENCACHE_CLUSTER_ENCRYPT_KEY. Empty = gossip is not encrypted\n(allowed only on loopback, or with cluster.insecure)."},
	"cluster.encrypt_key_secondary": {help: "More gossip keys accepted (decrypted) besides encrypt_key, comma-separated: for a key\nrotation (docs/security.md). Secret: prefer TOKENCACHE_CLUSTER_ENCRYPT_KEY_SECONDARY."},
	"cluster.tls.ca_file":           {help: "PEM CA certificate(s) of the cluster: mutual TLS on the Raft/RPC port. Every node's\ncertificate must chain to it. Set the three cluster.tls keys together (tokencache tls ...)."},
	"cluster.tls.cert_file":         {help: "PEM certificate of this node: server and client auth, URI SAN\nspiffe://tokencache/node/<node.id>. Reloaded when the file changes."},
	"cluster.tls.key_file":          {help: "PEM private key of cert_file (keep it 0600). Reloaded when the file changes."},
	"cluster.insecure":              {help: "Allow Raft or gossip addresses beyond loopback without TLS and the gossip key.\nAnyone who reaches those ports can then join the cluster and mint tokens."},
	"cluster.raft_store":            {def: "boltdb", help: "Raft log store: boltdb (on disk under node.data_dir) or memory (tests, throwaway sidecars)."},
	"cluster.election_timeout":      {def: "1s", help: "Raft election (and heartbeat) timeout."},
	"cluster.reconcile_interval":    {def: "10s", help: "How often the leader reconciles Raft membership with gossip membership."},
	"cluster.dead_server_cleanup":   {def: "30s", help: "How long a member must be dead before the leader removes it from Raft."},

	"cache.capacity":          {def: "1000000", help: "Maximum number of cached tokens (changes not yet persisted come on top)."},
	"cache.eviction":          {def: "lru", help: "Eviction policy: lru, 2q or arc (any case)."},
	"cache.load_batch_size":   {def: "1024", help: "Warm start loads the newest tokens in batches of this many."},
	"cache.shards":            {def: "64", help: "Independently locked cache shards (a power of two)."},
	"cache.negative_capacity": {help: "How many unknown keys are remembered so that they cost no SQL query. 0 = automatic."},
	"cache.key_filter":        {def: "true", help: "Keep a Bloom filter of every stored key, so that random tokens cost no SQL query."},

	"persist.store":          {def: "sqlite", help: "memory (nothing survives a full-cluster restart), sqlite (a file per node), mysql (shared)\nor none (no token store: only JWTs, whose revocations are kept in the replicated state)."},
	"persist.url":            {help: "jdbc:sqlite:PATH or jdbc:mysql://host:3306/database?param=value.\nEmpty with sqlite = jdbc:sqlite:<node.data_dir>/tokens.db."},
	"persist.shards":         {help: "Several database URLs to spread tokens over (same form as url). Empty = url only."},
	"persist.username":       {help: "Database user."},
	"persist.password":       {help: "Database password. Secret: prefer the TOKENCACHE_PERSIST_PASSWORD variable."},
	"persist.pool_size":      {def: "5", help: "Connections kept open."},
	"persist.max_overflow":   {def: "10", help: "Extra connections allowed above pool_size (-1 = unlimited)."},
	"persist.pool_recycle":   {def: "-1", help: "Close connections older than this (-1 = never)."},
	"persist.pool_timeout":   {def: "30s", help: "How long to wait for a free connection."},
	"persist.write_mode":     {def: "through", help: "through: a write is in SQL before it is acknowledged.\nbehind: written in batches after it is acknowledged (bounded queue)."},
	"persist.create_tables":  {def: "true", help: "Create or migrate the tables at start."},
	"persist.batch_size":     {def: strconv.Itoa(replica.DefaultBatchSize), help: "Most changes written in one transaction."},
	"persist.flush_interval": {def: replica.DefaultFlushInterval.String(), help: "How long write-behind waits to fill a batch."},
	"persist.max_pending":    {def: strconv.Itoa(replica.DefaultMaxPending), help: "Most changes waiting to be written; writes get 503 beyond it."},
	"persist.query_timeout":  {def: "2s", help: "Timeout of one SQL query."},

	"tokens.expiry":        {def: "60m", help: "Lifetime of a token that asks for none."},
	"tokens.retention":     {def: "24h", help: "Total time a token is kept (shown as expired or revoked) before it is deleted.\nMust be longer than expiry."},
	"tokens.idle_timeout":  {help: "A token unused for this long becomes idle. 0 = off."},
	"tokens.max_lifetime":  {def: "8760h", help: "Longest any token may live; while set, no_expire is refused (-1 = no limit: tokens may never expire)."},
	"tokens.reap_interval": {def: "1m", help: "How often tokens past retention are deleted."},
	"tokens.prefix":        {def: "tc", help: "Token text prefix: <prefix>_<key>.<secret>; [a-z][a-z0-9]{0,15}."},
	"tokens.pepper":        {help: "Server pepper: secrets are hashed with HMAC-SHA-256 under it instead of SHA-256.\nSecret: prefer TOKENCACHE_TOKENS_PEPPER. Changing it invalidates every token."},
	"tokens.safe_password": {help: "Password from which the key that encrypts token credentials is derived.\nSecret: prefer TOKENCACHE_TOKENS_SAFE_PASSWORD."},
	"tokens.format":        {def: "opaque", help: "Format of a token whose issue request names none: opaque or jwt (needs tokens.jwt.keys_file)."},

	"tokens.jwt.issuer":         {def: "tokencache", help: "The iss claim of the JWTs this cluster signs; the same on every node. Make it the\npublic https URL of the cluster for RFC 8414 clients (the metadata names endpoints under it).\nRequired only with tokens.jwt.keys_file."},
	"tokens.jwt.keys_file":      {help: "PEM or JWK set file of the signing keys (tokencache jwt keygen), 0600; one is active,\nthe others verify only. Reloaded on SIGHUP and when the file changes. Empty = no local JWTs\n(with tokens.jwt.trusted: a validate-only node, which verifies the trusted issuers' JWTs only)."},
	"tokens.jwt.audiences":      {def: "*", help: "Audiences this cluster answers for: a JWT is accepted when one of its aud values is\nlisted (RFC 7519); an issue may name only listed ones (the first is the default);\n\"*\" alone = any."},
	"tokens.jwt.leeway":         {def: "30s", help: "Clock skew allowed on nbf and iat; at most 5m. exp is exact: a JWT answers expired from its exp on."},
	"tokens.jwt.verified_cache": {def: "65536", help: "JWT texts remembered as verified, so that a seen JWT costs no signature check; their memory stays under this × 2 KiB."},
	"tokens.jwt.trusted":        {help: "External issuers whose JWTs this cluster validates (and can revoke by jti); reloaded\non SIGHUP. E.g.\n  - issuer: https://idp.example.org\n    jwks_url: https://idp.example.org/.well-known/jwks.json  # or jwks_file: PATH\n    refresh: 5m\n    audiences: [api]\n    required_claims: [sub]\n    username_claim: sub\n    scopes_claim: scope"},

	"authz.cookie": {help: "Cookie that carries the token when there is no Authorization header. Empty = none."},
	"authz.rules":  {help: "Scopes required per original path prefix (longest prefix wins), e.g.\n  - path_prefix: /admin/\n    scopes: [admin]"},

	"log.level":  {def: "info", flag: "log-level", help: "debug, info, warn or error."},
	"log.format": {flag: "log-format", help: "text or json. Empty = text when stderr is a terminal, json otherwise."},
}

// sectionHelp documents each group of keys in `config default`.
var sectionHelp = map[string]string{
	"node":        "This node.",
	"http":        "The HTTP API.",
	"cluster":     "Discovery (memberlist gossip) and replication (Raft).\nnode.id, cluster.gossip_advertise and cluster.raft_advertise must differ per node.",
	"cluster.tls": "Mutual TLS between nodes on the Raft/RPC port: set ca_file, cert_file and key_file\ntogether (tokencache tls creates a development CA).",
	"cache":       "The in-memory token cache.",
	"persist":     "The SQL store that holds every token durably, behind the cache.",
	"tokens":      "Tokens. expiry, retention and prefix must agree on every node of a cluster.",
	"tokens.jwt":  "Signed JWTs (README \"JWT tokens\"): on when keys_file or trusted is set. issuer and\naudiences must agree on every node; the keys file should (GET /v1/cluster shows nodes whose keys differ).",
	"authz":       "Forward authentication (/v1/authz) for NGINX auth_request, Traefik forwardAuth, Envoy ext_authz.",
	"log":         "Structured logs on stderr.",
}

// Default returns the defaults of every key (DESIGN §7), from keySpecs.
// node.id is the host name; persist.url is left empty and derived from
// node.data_dir by Load.
func Default() *Config {
	m := make(map[string]any)
	for _, k := range configKeys {
		if d := keySpecs[k.path].def; d != "" {
			setPath(m, k.path, d)
		}
	}
	c := new(Config)
	if err := decodeMap(m, c); err != nil {
		panic(fmt.Sprintf("config: a default in keySpecs does not parse: %v", err))
	}
	c.Node.ID, _ = os.Hostname()
	return c
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
