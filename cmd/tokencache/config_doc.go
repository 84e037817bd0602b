package main

// Documentation of every configuration key, printed by `config default`.
// TestConfigDocCoversEveryKey keeps it complete.

var sectionHelp = map[string]string{
	"node":    "This node.",
	"http":    "The HTTP API.",
	"cluster": "Discovery (memberlist gossip) and replication (Raft).\nnode.id, cluster.gossip_advertise and cluster.raft_advertise must differ per node.",
	"cache":   "The in-memory token cache.",
	"persist": "The SQL store that holds every token durably, behind the cache.",
	"tokens":  "Tokens. expiry, retention and prefix must agree on every node of a cluster.",
	"authz":   "Forward authentication (/v1/authz) for NGINX auth_request, Traefik forwardAuth, Envoy ext_authz.",
	"log":     "Structured logs on stderr.",
}

var keyHelp = map[string]string{
	"node.id":       "Unique node name, also the Raft server ID. Empty = the host name.",
	"node.data_dir": "Directory for the Raft log and snapshots, the SQLite file and the generated admin token.",

	"http.addr":             "Address the HTTP API listens on (host:port; port 0 = any free port).",
	"http.admin_token":      "Bearer token for admin calls. Secret: prefer the TOKENCACHE_ADMIN_TOKEN variable.\nEmpty = generated at first start into <node.data_dir>/admin.token.",
	"http.max_body_bytes":   "Largest request body accepted; larger bodies get 413.",
	"http.max_header_bytes": "Largest request header block accepted.",
	"http.read_timeout":     "Time allowed to read a whole request.",
	"http.write_timeout":    "Time allowed to write a response.",
	"http.idle_timeout":     "How long an idle keep-alive connection stays open.",
	"http.drain_delay":      "On shutdown, time between turning /readyz off and closing the listener,\nso that load balancers stop sending requests first. 0 = no delay.",
	"http.shutdown_timeout": "On shutdown, how long in-flight requests may take to finish.",

	"cluster.name":                  "Cluster name: nodes of different clusters never merge.",
	"cluster.gossip_addr":           "Address memberlist gossip listens on (TCP and UDP).",
	"cluster.gossip_advertise":      "Gossip address announced to other nodes. Empty = gossip_addr (or, when that\nbinds every interface, the first private IP).",
	"cluster.raft_addr":             "Address the Raft transport listens on.",
	"cluster.raft_advertise":        "Raft address announced to other nodes. Empty = raft_addr; required when\nraft_addr binds every interface.",
	"cluster.join":                  "Gossip addresses (host:port) of nodes to join at start. A list, a comma-separated\nstring or \"tcp://h1:port;h2:port\". Empty = a single node that bootstraps itself.",
	"cluster.bootstrap_expect":      "Number of nodes that must have met before the cluster bootstraps (first start only).",
	"cluster.replication_count":     "R: a write acknowledged under sync survives the loss of any R nodes. The cluster\nkeeps 2R+1 voters (-1 = every node votes); other nodes are non-voters.",
	"cluster.replication_policy":    "sync: acknowledge once committed and applied by the leader.\nasync: acknowledge once the leader accepted it (may be lost if it dies at once).",
	"cluster.max_staleness":         "A node out of contact with the leader for longer than this stops answering valid.",
	"cluster.encrypt_key":           "Gossip encryption key: base64 of 16, 24 or 32 bytes (openssl rand -base64 32).\nSecret: prefer TOKENCACHE_CLUSTER_ENCRYPT_KEY. Empty = gossip is not encrypted\n(allowed only on loopback, or with cluster.insecure).",
	"cluster.encrypt_key_secondary": "More gossip keys accepted (decrypted) besides encrypt_key, comma-separated: for a key\nrotation (docs/security.md). Secret: prefer TOKENCACHE_CLUSTER_ENCRYPT_KEY_SECONDARY.",
	"cluster.tls_ca_file":           "PEM CA certificate(s) of the cluster: mutual TLS on the Raft/RPC port. Every node's\ncertificate must chain to it. Set the three tls_* keys together (tokencache tls ...).",
	"cluster.tls_cert_file":         "PEM certificate of this node: server and client auth, URI SAN\nspiffe://tokencache/node/<node.id>. Reloaded when the file changes.",
	"cluster.tls_key_file":          "PEM private key of tls_cert_file (keep it 0600). Reloaded when the file changes.",
	"cluster.insecure":              "Allow Raft or gossip addresses beyond loopback without TLS and the gossip key.\nAnyone who reaches those ports can then join the cluster and mint tokens.",
	"cluster.raft_store":            "Raft log store: boltdb (on disk under node.data_dir) or memory (tests, throwaway sidecars).",
	"cluster.election_timeout":      "Raft election (and heartbeat) timeout.",
	"cluster.reconcile_interval":    "How often the leader reconciles Raft membership with gossip membership.",
	"cluster.dead_server_cleanup":   "How long a member must be dead before the leader removes it from Raft.",

	"cache.capacity":          "Maximum number of cached tokens (changes not yet persisted come on top).",
	"cache.eviction":          "Eviction policy: lru, 2q or arc.",
	"cache.load_batch_size":   "Warm start loads the newest tokens in batches of this many.",
	"cache.shards":            "Independently locked cache shards (a power of two).",
	"cache.negative_capacity": "How many unknown keys are remembered so that they cost no SQL query. 0 = automatic.",
	"cache.key_filter":        "Keep a Bloom filter of every stored key, so that random tokens cost no SQL query.",

	"persist.store":          "memory (nothing survives a full-cluster restart), sqlite (a file per node) or mysql (shared).",
	"persist.url":            "jdbc:sqlite:PATH or jdbc:mysql://host:3306/database?param=value.\nEmpty with sqlite = jdbc:sqlite:<node.data_dir>/tokens.db.",
	"persist.shards":         "Several database URLs to spread tokens over (same form as url). Empty = url only.",
	"persist.username":       "Database user.",
	"persist.password":       "Database password. Secret: prefer the TOKENCACHE_PERSIST_PASSWORD variable.",
	"persist.pool_size":      "Connections kept open.",
	"persist.max_overflow":   "Extra connections allowed above pool_size (-1 = unlimited).",
	"persist.pool_recycle":   "Close connections older than this (-1 = never).",
	"persist.pool_timeout":   "How long to wait for a free connection.",
	"persist.write_mode":     "through: a write is in SQL before it is acknowledged.\nbehind: written in batches after it is acknowledged (bounded queue).",
	"persist.create_tables":  "Create or migrate the tables at start.",
	"persist.batch_size":     "Most changes written in one transaction.",
	"persist.flush_interval": "How long write-behind waits to fill a batch.",
	"persist.max_pending":    "Most changes waiting to be written; writes get 503 beyond it.",
	"persist.query_timeout":  "Timeout of one SQL query.",

	"tokens.expiry":        "Lifetime of a token that asks for none.",
	"tokens.retention":     "Total time a token is kept (shown as expired or revoked) before it is deleted.\nMust be longer than expiry.",
	"tokens.idle_timeout":  "A token unused for this long becomes idle. 0 = off.",
	"tokens.max_lifetime":  "Longest lifetime a token may ask for.",
	"tokens.reap_interval": "How often tokens past retention are deleted.",
	"tokens.prefix":        "Token text prefix: <prefix>_<key>.<secret>; [a-z][a-z0-9]{0,15}.",
	"tokens.pepper":        "Server pepper: secrets are hashed with HMAC-SHA-256 under it instead of SHA-256.\nSecret: prefer TOKENCACHE_TOKENS_PEPPER. Changing it invalidates every token.",
	"tokens.safe_password": "Password from which the key that encrypts token credentials is derived.\nSecret: prefer TOKENCACHE_TOKENS_SAFE_PASSWORD.",

	"authz.cookie": "Cookie that carries the token when there is no Authorization header. Empty = none.",
	"authz.rules":  "Scopes required per original path prefix (longest prefix wins), e.g.\n  - path_prefix: /admin/\n    scopes: [admin]",

	"log.level":  "debug, info, warn or error.",
	"log.format": "text or json. Empty = text when stderr is a terminal, json otherwise.",
}
