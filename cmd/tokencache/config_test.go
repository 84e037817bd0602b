package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/tokencache/tokencache/persist"
)

// validConfig returns the defaults with a fixed node id.
func validConfig() *Config {
	c := Default()
	c.Node.ID = "n1"
	return c
}

// serveFlags parses args with serve's flags.
func serveFlags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := newServeCmd(processEnv()).Flags()
	if err := fs.Parse(args); err != nil {
		t.Fatalf("Parse(%q) = %v", args, err)
	}
	return fs
}

func mustLoad(t *testing.T, l Loader) *Config {
	t.Helper()
	if l.Environ == nil {
		l.Environ = func() []string { return nil }
	}
	cfg, err := l.Load()
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	return cfg
}

func TestDefaultIsValid(t *testing.T) {
	c := validConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v, want nil", err)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("Default().Warnings() = %v, want none", w)
	}
	cfg := mustLoad(t, Loader{})
	// The derived URL is relative, so relative to the data dir: the file is
	// data/tokens.db (the data dir must not be applied twice).
	if got := sqliteFile(t, cfg); got != mustAbs(t, "data/tokens.db") {
		t.Errorf("derived persist.url %q opens %s, want data/tokens.db", cfg.Persist.URL, got)
	}
	if cfg.Node.ID == "" {
		t.Errorf("derived node.id is empty, want the host name")
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "c.yaml", `
node:
  data_dir: /file/data
http:
  addr: 127.0.0.1:1001
cluster:
  bootstrap_expect: 2
  join: [file:7946]
log:
  level: warn
tokens:
  expiry: 30m
`)
	get := map[string]func(*Config) any{
		"node.data_dir":            func(c *Config) any { return c.Node.DataDir },
		"http.addr":                func(c *Config) any { return c.HTTP.Addr },
		"cluster.bootstrap_expect": func(c *Config) any { return c.Cluster.BootstrapExpect },
		"cluster.join":             func(c *Config) any { return c.Cluster.Join },
		"log.level":                func(c *Config) any { return c.Log.Level },
		"tokens.expiry":            func(c *Config) any { return c.Tokens.Expiry },
	}
	environ := []string{
		"TOKENCACHE_NODE_DATA_DIR=/env/data",
		"TOKENCACHE_HTTP_ADDR=127.0.0.1:2002",
		"TOKENCACHE_CLUSTER_BOOTSTRAP_EXPECT=3",
		"TOKENCACHE_CLUSTER_JOIN=env1:7946,env2:7946",
		"TOKENCACHE_LOG_LEVEL=error",
		"TOKENCACHE_TOKENS_EXPIRY=45m",
	}
	flags := []string{"--data-dir", "/flag/data", "--http-addr", "127.0.0.1:3003",
		"--bootstrap-expect", "5", "--join", "flag:7946", "--log-level", "debug"}
	tests := []struct {
		name string
		l    Loader
		want map[string]any
	}{
		{"defaults", Loader{}, map[string]any{
			"node.data_dir": "./data", "http.addr": "127.0.0.1:8080", "cluster.bootstrap_expect": 1,
			"cluster.join": []string(nil), "log.level": "info", "tokens.expiry": 60 * time.Minute}},
		{"file over defaults", Loader{File: file}, map[string]any{
			"node.data_dir": "/file/data", "http.addr": "127.0.0.1:1001", "cluster.bootstrap_expect": 2,
			"cluster.join": []string{"file:7946"}, "log.level": "warn", "tokens.expiry": 30 * time.Minute}},
		{"env over file", Loader{File: file, Environ: func() []string { return environ }}, map[string]any{
			"node.data_dir": "/env/data", "http.addr": "127.0.0.1:2002", "cluster.bootstrap_expect": 3,
			"cluster.join": []string{"env1:7946", "env2:7946"}, "log.level": "error", "tokens.expiry": 45 * time.Minute}},
		{"flags over env", Loader{File: file, Environ: func() []string { return environ },
			Flags: serveFlags(t, flags...), FlagKeys: serveFlagKeys}, map[string]any{
			"node.data_dir": "/flag/data", "http.addr": "127.0.0.1:3003", "cluster.bootstrap_expect": 5,
			"cluster.join": []string{"flag:7946"}, "log.level": "debug",
			"tokens.expiry": 45 * time.Minute}}, // no flag: env still wins
		{"unset flags do not override", Loader{File: file, Flags: serveFlags(t), FlagKeys: serveFlagKeys}, map[string]any{
			"node.data_dir": "/file/data", "http.addr": "127.0.0.1:1001", "cluster.bootstrap_expect": 2,
			"cluster.join": []string{"file:7946"}, "log.level": "warn", "tokens.expiry": 30 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustLoad(t, tt.l)
			for key, want := range tt.want {
				if got := get[key](cfg); !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v, want %#v", key, got, want)
				}
			}
		})
	}
}

func TestPersistURLDerivedFromFinalDataDir(t *testing.T) {
	cfg := mustLoad(t, Loader{Flags: serveFlags(t, "--data-dir", "/var/lib/tc"), FlagKeys: serveFlagKeys})
	if got, want := sqliteFile(t, cfg), "/var/lib/tc/tokens.db"; got != want {
		t.Errorf("persist.url %q opens %s, want %s", cfg.Persist.URL, got, want)
	}
}

// sqliteFile is the file the store of cfg opens.
func sqliteFile(t *testing.T, cfg *Config) string {
	t.Helper()
	u, err := persist.ParseURL(cfg.Persist.URL, cfg.Node.DataDir)
	if err != nil {
		t.Fatalf("ParseURL(%q) = %v", cfg.Persist.URL, err)
	}
	return u.Path
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestEnvironmentValues(t *testing.T) {
	environ := []string{
		"TOKENCACHE_ADMIN_TOKEN=admin-from-alias-000",
		"TOKENCACHE_PERSIST_PASSWORD=db-password",
		"TOKENCACHE_PERSIST_URL=jdbc:mysql://db:3306/tc",
		"TOKENCACHE_PERSIST_STORE=mysql",
		"TOKENCACHE_PERSIST_USERNAME=tokencache",
		"TOKENCACHE_PERSIST_SHARDS=jdbc:mysql://a:3306/tc, jdbc:mysql://b:3306/tc",
		"TOKENCACHE_CACHE_KEY_FILTER=false",
		"TOKENCACHE_PERSIST_POOL_RECYCLE=-1",
		"TOKENCACHE_AUTHZ_RULES=[{\"path_prefix\":\"/admin/\",\"scopes\":[\"admin\"]}]",
		"TOKENCACHE_ADDR=http://elsewhere:1",  // the client's, not a key
		"TOKENCACHE_CONFIG=/nonexistent.yaml", // serve's --config, not a key
		"TOKENCACHE_LOG_FORMAT=",              // empty = unset
		"PATH=/usr/bin",
	}
	cfg := mustLoad(t, Loader{Environ: func() []string { return environ }})
	if got := cfg.HTTP.AdminToken.Reveal(); got != "admin-from-alias-000" {
		t.Errorf("http.admin_token = %q, want the TOKENCACHE_ADMIN_TOKEN value", got)
	}
	if got := cfg.Persist.Password.Reveal(); got != "db-password" {
		t.Errorf("persist.password = %q, want db-password", got)
	}
	if want := []string{"jdbc:mysql://a:3306/tc", "jdbc:mysql://b:3306/tc"}; !slices.Equal(cfg.Persist.Shards, want) {
		t.Errorf("persist.shards = %q, want %q", cfg.Persist.Shards, want)
	}
	if cfg.Cache.KeyFilter {
		t.Errorf("cache.key_filter = true, want false")
	}
	if cfg.Persist.PoolRecycle != -1 {
		t.Errorf("persist.pool_recycle = %v, want -1", cfg.Persist.PoolRecycle)
	}
	if want := []AuthzRule{{PathPrefix: "/admin/", Scopes: []string{"admin"}}}; !reflect.DeepEqual(cfg.Authz.Rules, want) {
		t.Errorf("authz.rules = %+v, want %+v", cfg.Authz.Rules, want)
	}
	if cfg.Log.Format != "" {
		t.Errorf("log.format = %q, want empty (an empty variable is unset)", cfg.Log.Format)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}

func TestEveryKeyHasAnEnvironmentVariable(t *testing.T) {
	// Setting every key through its variable must be accepted.
	var environ []string
	for _, k := range configKeys {
		val := "1"
		switch {
		case k.typ == durationType:
			val = "7s"
		case k.typ == authzRuleType, k.typ == trustedType:
			val = "[]"
		case k.typ.Kind() == reflect.Bool:
			val = "true"
		}
		environ = append(environ, k.env+"="+val)
	}
	if _, err := (Loader{Environ: func() []string { return environ }}).Load(); err != nil {
		t.Fatalf("Load() with every TOKENCACHE_ variable = %v", err)
	}
}

func TestUnknownKeys(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		environ []string
		key     string
		want    string
	}{
		{"file typo", "cache:\n  capcity: 5\n", nil, "cache.capcity", "did you mean cache.capacity?"},
		{"file unknown section", "caches:\n  capacity: 5\n", nil, "caches.capacity", "unknown key"},
		{"file wrong case", "cache:\n  Capacity: 5\n", nil, "cache.Capacity", "did you mean cache.capacity?"},
		{"file section as value", "cache: 5\n", nil, "cache", "must be a mapping"},
		{"file value as mapping", "http:\n  addr:\n    host: x\n", nil, "http.addr", "must be a value"},
		{"file unknown key in a rule", "authz:\n  rules:\n    - path_prefx: /a\n", nil, "authz.rules[0]", "unknown keys: path_prefx"},
		{"env typo", "", []string{"TOKENCACHE_CACHE_CAPCITY=5"}, "TOKENCACHE_CACHE_CAPCITY", "did you mean TOKENCACHE_CACHE_CAPACITY?"},
		{"env section only", "", []string{"TOKENCACHE_CACHE=5"}, "TOKENCACHE_CACHE", "unknown environment variable"},
		{"env alias conflict", "", []string{"TOKENCACHE_ADMIN_TOKEN=aaaaaaaaaaaaaaaaaaaa", "TOKENCACHE_HTTP_ADMIN_TOKEN=bbbbbbbbbbbbbbbbbbbb"},
			"TOKENCACHE_", "both set http.admin_token"},
		{"env bad rules", "", []string{"TOKENCACHE_AUTHZ_RULES=/admin/=admin"}, "TOKENCACHE_AUTHZ_RULES", "JSON list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := Loader{Environ: func() []string { return tt.environ }}
			if tt.file != "" {
				l.File = writeFile(t, "c.yaml", tt.file)
			}
			_, err := l.Load()
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("Load() = %v, want Problems", err)
			}
			if !hasProblem(probs, tt.key, tt.want) {
				t.Errorf("Load() problems:\n%v\nwant one at %q containing %q", probs, tt.key, tt.want)
			}
		})
	}
}

// hasProblem reports whether probs has a problem whose key starts with key
// and whose message contains msg.
func hasProblem(probs Problems, key, msg string) bool {
	for _, p := range probs {
		if strings.HasPrefix(p.Key, key) && strings.Contains(p.Msg, msg) {
			return true
		}
	}
	return false
}

func TestProblemsSayWhereTheValueCameFrom(t *testing.T) {
	file := writeFile(t, "c.yaml", "cache:\n  capacity: lots\nhttp:\n  read_timeout: 5\n")
	_, err := (Loader{
		File:     file,
		Environ:  func() []string { return []string{"TOKENCACHE_HTTP_READ_TIMEOUT=soon"} },
		Flags:    serveFlags(t, "--bootstrap-expect", "2"),
		FlagKeys: serveFlagKeys,
	}).Load()
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("Load() = %v, want Problems", err)
	}
	if !hasProblem(probs, "cache.capacity", "(in "+file+")") {
		t.Errorf("Load() = %v, want cache.capacity attributed to the file", err)
	}
	if !hasProblem(probs, "http.read_timeout", "(from TOKENCACHE_HTTP_READ_TIMEOUT)") {
		t.Errorf("Load() = %v, want http.read_timeout attributed to the environment", err)
	}
}

func TestEmptyValuesKeepDefaults(t *testing.T) {
	cfg := mustLoad(t, Loader{File: writeFile(t, "c.yaml", `
node:
http: {}
cache:
  capacity:
  # eviction: 2q
tokens:
  prefix: ab
`)})
	if cfg.Cache.Capacity != 1_000_000 || cfg.HTTP.Addr != "127.0.0.1:8080" || cfg.Tokens.Prefix != "ab" {
		t.Errorf("Load() = capacity %d, addr %q, prefix %q; want defaults and prefix ab",
			cfg.Cache.Capacity, cfg.HTTP.Addr, cfg.Tokens.Prefix)
	}
}

func TestValueErrors(t *testing.T) {
	tests := []struct {
		file, key, want string
	}{
		{"http:\n  read_timeout: 5\n", "http.read_timeout", "bare number"},
		{"http:\n  read_timeout: 5 seconds\n", "http.read_timeout", "not a duration"},
		{"cache:\n  capacity: many\n", "cache.capacity", "not a valid int"},
		{"cache:\n  key_filter: maybe\n", "cache.key_filter", "not a valid bool"},
		{"cluster:\n  join: {a: b}\n", "cluster.join", "must be a value"},
		{"authz:\n  rules: [x]\n", "authz.rules[0]", "expected a map"},
		{"tokens:\n  prefix: [a, b]\n", "tokens.prefix", "expected string, got a list"},
	}
	for _, tt := range tests {
		_, err := (Loader{File: writeFile(t, "c.yaml", tt.file), Environ: func() []string { return nil }}).Load()
		var probs Problems
		if !errors.As(err, &probs) || !hasProblem(probs, tt.key, tt.want) {
			t.Errorf("Load(%q) = %v, want a problem at %s containing %q", tt.file, err, tt.key, tt.want)
		}
	}
	if _, err := (Loader{File: writeFile(t, "c.yaml", "http: [\n")}).Load(); err == nil {
		t.Errorf("Load() of a YAML syntax error = nil, want an error")
	}
	if _, err := (Loader{File: "/nonexistent/tokencache.yaml"}).Load(); err == nil {
		t.Errorf("Load() of a missing file = nil, want an error")
	}
	// A file that is not a mapping, e.g. the admin token file passed by mistake.
	_, err := (Loader{File: writeFile(t, "admin.token", "tc-admin-SECRET-VALUE\n")}).Load()
	if err == nil || !strings.Contains(err.Error(), "not a YAML mapping") {
		t.Errorf("Load() of a scalar file = %v, want a not-a-mapping error", err)
	} else {
		assertNoSecrets(t, "Load()", err.Error(), []string{"SECRET-VALUE"})
	}
}

func TestJoinForms(t *testing.T) {
	want := []string{"10.0.0.1:7946", "10.0.0.2:7946"}
	tests := []struct {
		name    string
		file    string
		environ []string
		flags   []string
	}{
		{"yaml list", "cluster:\n  join: [10.0.0.1:7946, 10.0.0.2:7946]\n", nil, nil},
		{"yaml comma string", "cluster:\n  join: \"10.0.0.1:7946, 10.0.0.2:7946\"\n", nil, nil},
		{"yaml tcp form", "cluster:\n  join: \"tcp://10.0.0.1:7946;10.0.0.2:7946\"\n", nil, nil},
		{"yaml list with duplicates and a tcp entry", "cluster:\n  join: [10.0.0.1:7946, \"tcp://10.0.0.1:7946;10.0.0.2:7946\"]\n", nil, nil},
		{"env comma", "", []string{"TOKENCACHE_CLUSTER_JOIN=10.0.0.1:7946,10.0.0.2:7946"}, nil},
		{"env tcp form", "", []string{"TOKENCACHE_CLUSTER_JOIN=tcp://10.0.0.1:7946;10.0.0.2:7946"}, nil},
		{"flag repeated", "", nil, []string{"--join", "10.0.0.1:7946", "--join", "10.0.0.2:7946"}},
		{"flag comma", "", nil, []string{"--join", "10.0.0.1:7946,10.0.0.2:7946"}},
		{"flag tcp form", "", nil, []string{"--join", "tcp://10.0.0.1:7946;10.0.0.2:7946"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := Loader{Environ: func() []string { return tt.environ }, FlagKeys: serveFlagKeys}
			if tt.file != "" {
				l.File = writeFile(t, "c.yaml", tt.file)
			}
			if tt.flags != nil {
				l.Flags = serveFlags(t, tt.flags...)
			}
			cfg := mustLoad(t, l)
			if !slices.Equal(cfg.Cluster.Join, want) {
				t.Errorf("cluster.join = %q, want %q", cfg.Cluster.Join, want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		key    string
		want   string
	}{
		{"expiry equal to retention", func(c *Config) { c.Tokens.Expiry = 24 * time.Hour }, "tokens.expiry", "less than tokens.retention"},
		{"expiry above retention", func(c *Config) { c.Tokens.Expiry = 48 * time.Hour }, "tokens.expiry", "less than tokens.retention"},
		{"expiry zero", func(c *Config) { c.Tokens.Expiry = 0 }, "tokens.expiry", "positive"},
		{"retention negative", func(c *Config) { c.Tokens.Retention = -time.Hour }, "tokens.retention", "positive"},
		{"idle timeout negative", func(c *Config) { c.Tokens.IdleTimeout = -time.Second }, "tokens.idle_timeout", "0 (off)"},
		{"max lifetime zero", func(c *Config) { c.Tokens.MaxLifetime = 0 }, "tokens.max_lifetime", "positive"},
		{"expiry above max lifetime", func(c *Config) { c.Tokens.MaxLifetime = 30 * time.Minute }, "tokens.expiry", "tokens.max_lifetime"},
		{"reap interval zero", func(c *Config) { c.Tokens.ReapInterval = 0 }, "tokens.reap_interval", "positive"},
		{"prefix uppercase", func(c *Config) { c.Tokens.Prefix = "Tc" }, "tokens.prefix", "[a-z][a-z0-9]{0,15}"},
		{"prefix too long", func(c *Config) { c.Tokens.Prefix = "abcdefghijklmnopq" }, "tokens.prefix", "[a-z]"},
		{"prefix empty", func(c *Config) { c.Tokens.Prefix = "" }, "tokens.prefix", "[a-z]"},
		{"prefix starts with digit", func(c *Config) { c.Tokens.Prefix = "1tc" }, "tokens.prefix", "[a-z]"},

		{"short admin token", func(c *Config) { c.HTTP.AdminToken = "short" }, "http.admin_token", "shorter"},
		{"staleness below election timeout", func(c *Config) { c.Cluster.MaxStaleness = 500 * time.Millisecond },
			"cluster.max_staleness", "election_timeout"},
		{"staleness below twice the election timeout", func(c *Config) { c.Cluster.MaxStaleness = 1500 * time.Millisecond },
			"cluster.max_staleness", "twice cluster.election_timeout"},
		{"gossip on every interface", func(c *Config) { c.Cluster.GossipAddr = "0.0.0.0:7946" }, "cluster.gossip_advertise", "every interface"},
		{"read timeout zero", func(c *Config) { c.HTTP.ReadTimeout = 0 }, "http.read_timeout", "positive"},
		{"write timeout negative", func(c *Config) { c.HTTP.WriteTimeout = -time.Second }, "http.write_timeout", "positive"},
		{"idle timeout zero", func(c *Config) { c.HTTP.IdleTimeout = 0 }, "http.idle_timeout", "positive"},
		{"shutdown timeout zero", func(c *Config) { c.HTTP.ShutdownTimeout = 0 }, "http.shutdown_timeout", "positive"},
		{"drain delay negative", func(c *Config) { c.HTTP.DrainDelay = -time.Second }, "http.drain_delay", "negative"},
		{"max body zero", func(c *Config) { c.HTTP.MaxBodyBytes = 0 }, "http.max_body_bytes", "positive"},
		{"max header negative", func(c *Config) { c.HTTP.MaxHeaderBytes = -1 }, "http.max_header_bytes", "positive"},
		{"http addr without port", func(c *Config) { c.HTTP.Addr = "localhost" }, "http.addr", "host:port"},
		{"http addr bad port", func(c *Config) { c.HTTP.Addr = "127.0.0.1:http" }, "http.addr", "port"},
		{"http addr bad host", func(c *Config) { c.HTTP.Addr = "bad_host!:80" }, "http.addr", "host name"},

		{"node id empty", func(c *Config) { c.Node.ID = "" }, "node.id", "1 to 128"},
		{"node id with space", func(c *Config) { c.Node.ID = "node 1" }, "node.id", "letters"},
		{"data dir empty", func(c *Config) { c.Node.DataDir = "" }, "node.data_dir", "must be set"},

		{"cluster name bad", func(c *Config) { c.Cluster.Name = "my cluster" }, "cluster.name", "letters"},
		{"gossip addr port zero", func(c *Config) { c.Cluster.GossipAddr = "127.0.0.1:0" }, "cluster.gossip_addr", "port"},
		{"raft addr port too big", func(c *Config) { c.Cluster.RaftAddr = "127.0.0.1:70000" }, "cluster.raft_addr", "port"},
		{"gossip advertise unspecified", func(c *Config) { c.Cluster.GossipAdvertise = "0.0.0.0:7946" }, "cluster.gossip_advertise", "cannot be advertised"},
		{"raft advertise unspecified v6", func(c *Config) { c.Cluster.RaftAdvertise = "[::]:8300" }, "cluster.raft_advertise", "cannot be advertised"},
		{"raft advertise without host", func(c *Config) { c.Cluster.RaftAdvertise = ":8300" }, "cluster.raft_advertise", "cannot be advertised"},
		{"raft on every interface without advertise", func(c *Config) { c.Cluster.RaftAddr = "0.0.0.0:8300" }, "cluster.raft_advertise", "must be set"},
		{"join without port", func(c *Config) { c.Cluster.Join = []string{"10.0.0.1:7946", "10.0.0.2"} }, "cluster.join[1]", "host:port"},
		{"join unspecified", func(c *Config) { c.Cluster.Join = []string{"0.0.0.0:7946"} }, "cluster.join[0]", "cannot be advertised"},
		{"bootstrap expect zero", func(c *Config) { c.Cluster.BootstrapExpect = 0 }, "cluster.bootstrap_expect", "at least 1"},
		{"replication count below -1", func(c *Config) { c.Cluster.ReplicationCount = -2 }, "cluster.replication_count", "-1"},
		{"replication policy unknown", func(c *Config) { c.Cluster.ReplicationPolicy = "eventual" }, "cluster.replication_policy", "sync, async"},
		{"max staleness zero", func(c *Config) { c.Cluster.MaxStaleness = 0 }, "cluster.max_staleness", "positive"},
		{"encrypt key not base64", func(c *Config) { c.Cluster.EncryptKey = "not base64!" }, "cluster.encrypt_key", "base64"},
		{"encrypt key wrong length", func(c *Config) { c.Cluster.EncryptKey = "c2hvcnQ=" }, "cluster.encrypt_key", "16, 24 or 32 bytes"},
		{"raft store unknown", func(c *Config) { c.Cluster.RaftStore = "rocksdb" }, "cluster.raft_store", "boltdb, memory"},
		{"election timeout zero", func(c *Config) { c.Cluster.ElectionTimeout = 0 }, "cluster.election_timeout", "positive"},
		{"reconcile interval zero", func(c *Config) { c.Cluster.ReconcileInterval = 0 }, "cluster.reconcile_interval", "positive"},
		{"dead server cleanup negative", func(c *Config) { c.Cluster.DeadServerCleanup = -time.Second }, "cluster.dead_server_cleanup", "positive"},

		{"capacity zero", func(c *Config) { c.Cache.Capacity = 0 }, "cache.capacity", "positive"},
		{"capacity negative", func(c *Config) { c.Cache.Capacity = -5 }, "cache.capacity", "positive"},
		{"capacity below shards", func(c *Config) { c.Cache.Capacity = 10 }, "cache.capacity", "cache.shards"},
		{"eviction unknown", func(c *Config) { c.Cache.Eviction = "lfu" }, "cache.eviction", "lru, 2q, arc"},
		{"load batch zero", func(c *Config) { c.Cache.LoadBatchSize = 0 }, "cache.load_batch_size", "positive"},
		{"shards not a power of two", func(c *Config) { c.Cache.Shards = 48 }, "cache.shards", "power of two"},
		{"shards zero", func(c *Config) { c.Cache.Shards = 0 }, "cache.shards", "power of two"},
		{"negative capacity negative", func(c *Config) { c.Cache.NegativeCapacity = -1 }, "cache.negative_capacity", "0 (automatic)"},

		{"store unknown", func(c *Config) { c.Persist.Store = "postgres" }, "persist.store", "memory, sqlite, mysql"},
		{"mysql without url", func(c *Config) { c.Persist.Store = "mysql" }, "persist.url", "required"},
		{"url not jdbc", func(c *Config) { c.Persist.URL = "sqlite:tokens.db" }, "persist.url", "jdbc:sqlite: or jdbc:mysql://"},
		{"url postgres", func(c *Config) { c.Persist.URL = "jdbc:postgresql://h/db" }, "persist.url", "jdbc:sqlite: or jdbc:mysql://"},
		{"sqlite url without path", func(c *Config) { c.Persist.URL = "jdbc:sqlite:" }, "persist.url", "file path"},
		{"mysql url without database", func(c *Config) {
			c.Persist.Store, c.Persist.URL = "mysql", "jdbc:mysql://db:3306"
		}, "persist.url", "host:3306/database"},
		{"mysql url with sqlite store", func(c *Config) { c.Persist.URL = "jdbc:mysql://db:3306/tc" }, "persist.url", "persist.store is sqlite"},
		{"sqlite url with mysql store", func(c *Config) {
			c.Persist.Store, c.Persist.URL = "mysql", "jdbc:sqlite:/x.db"
		}, "persist.url", "persist.store is mysql"},
		{"bad shard url", func(c *Config) {
			c.Persist.Store, c.Persist.Shards = "mysql", []string{"jdbc:mysql://a:3306/tc", "mysql://b/tc"}
		}, "persist.shards[1]", "jdbc:"},
		{"pool size zero", func(c *Config) { c.Persist.PoolSize = 0 }, "persist.pool_size", "positive"},
		{"max overflow below -1", func(c *Config) { c.Persist.MaxOverflow = -2 }, "persist.max_overflow", "-1 (unlimited)"},
		{"pool recycle zero", func(c *Config) { c.Persist.PoolRecycle = 0 }, "persist.pool_recycle", "-1 (never)"},
		{"pool timeout zero", func(c *Config) { c.Persist.PoolTimeout = 0 }, "persist.pool_timeout", "positive"},
		{"write mode unknown", func(c *Config) { c.Persist.WriteMode = "around" }, "persist.write_mode", "through, behind"},
		{"batch size zero", func(c *Config) { c.Persist.BatchSize = 0 }, "persist.batch_size", "positive"},
		{"batch above max pending", func(c *Config) { c.Persist.MaxPending = 100 }, "persist.batch_size", "persist.max_pending"},
		{"flush interval zero", func(c *Config) { c.Persist.FlushInterval = 0 }, "persist.flush_interval", "positive"},
		{"max pending zero", func(c *Config) { c.Persist.MaxPending = 0 }, "persist.max_pending", "positive"},
		{"query timeout zero", func(c *Config) { c.Persist.QueryTimeout = 0 }, "persist.query_timeout", "positive"},

		{"authz rule without prefix", func(c *Config) { c.Authz.Rules = []AuthzRule{{Scopes: []string{"a"}}} }, "authz.rules[0].path_prefix", "required"},
		{"authz rule relative prefix", func(c *Config) { c.Authz.Rules = []AuthzRule{{PathPrefix: "api/"}} }, "authz.rules[0].path_prefix", "start with /"},
		{"authz rule bad scope", func(c *Config) {
			c.Authz.Rules = []AuthzRule{{PathPrefix: "/a/", Scopes: []string{"ok", "not ok"}}}
		}, "authz.rules[0].scopes[1]", "not a valid scope"},
		{"authz rule empty scope", func(c *Config) { c.Authz.Rules = []AuthzRule{{PathPrefix: "/a/", Scopes: []string{""}}} }, "authz.rules[0].scopes[0]", "not a valid scope"},
		{"authz duplicate prefix", func(c *Config) {
			c.Authz.Rules = []AuthzRule{{PathPrefix: "/a/"}, {PathPrefix: "/a/"}}
		}, "authz.rules[1].path_prefix", "already used"},
		{"authz cookie bad", func(c *Config) { c.Authz.Cookie = "my cookie" }, "authz.cookie", "cookie name"},

		{"log level unknown", func(c *Config) { c.Log.Level = "verbose" }, "log.level", "debug, info, warn or error"},
		{"log format unknown", func(c *Config) { c.Log.Format = "xml" }, "log.format", "text or json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(c)
			err := c.Validate()
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("Validate() = %v, want Problems", err)
			}
			found := false
			for _, p := range probs {
				if p.Key == tt.key && strings.Contains(p.Msg, tt.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("Validate() =\n%v\nwant a problem at %q containing %q", err, tt.key, tt.want)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.Contains(line, ": ") {
					t.Errorf("Validate() line %q has no key path", line)
				}
			}
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := validConfig()
	c.Cache.Capacity = 0
	c.Tokens.Prefix = "X"
	c.Log.Level = "loud"
	err := c.Validate()
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("Validate() = %v, want Problems", err)
	}
	for _, key := range []string{"cache.capacity", "tokens.prefix", "log.level"} {
		if !hasProblem(probs, key, "") {
			t.Errorf("Validate() = %v, want a problem at %s", err, key)
		}
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != len(probs) {
		t.Errorf("Validate() printed %d lines for %d problems", got, len(probs))
	}
}

func TestValidAlternatives(t *testing.T) {
	// Settings that look unusual but are allowed.
	tests := []struct {
		name   string
		change func(*Config)
	}{
		{"http on every interface, port 0", func(c *Config) { c.HTTP.Addr = ":0" }},
		{"raft on every interface with advertise", func(c *Config) {
			c.Cluster.RaftAddr, c.Cluster.RaftAdvertise = "0.0.0.0:8300", "10.1.2.3:8300"
			c.Cluster.Insecure = true // beyond loopback: protected mode (security_test.go)
		}},
		{"ipv6 and host names", func(c *Config) {
			c.Cluster.GossipAddr, c.Cluster.Join = "[::1]:7946", []string{"tc-0.tc.svc.cluster.local:7946", "[fd00::1]:7946"}
		}},
		{"encrypt key of 32 bytes", func(c *Config) { c.Cluster.EncryptKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" }},
		{"encrypt key of 16 bytes", func(c *Config) { c.Cluster.EncryptKey = "MDEyMzQ1Njc4OWFiY2RlZg==" }},
		{"mysql", func(c *Config) {
			c.Persist.Store, c.Persist.URL, c.Persist.Username = "mysql", "jdbc:mysql://db.example:3306/tokencache?tls=true", "tokencache"
		}},
		{"memory store, async, behind", func(c *Config) {
			c.Persist.Store, c.Cluster.ReplicationPolicy, c.Persist.WriteMode = "memory", "async", "behind"
		}},
		{"every node votes", func(c *Config) { c.Cluster.ReplicationCount, c.Cluster.BootstrapExpect = -1, 3 }},
		{"unlimited overflow, recycle", func(c *Config) { c.Persist.MaxOverflow, c.Persist.PoolRecycle = -1, time.Hour }},
		{"idle timeout, no drain", func(c *Config) { c.Tokens.IdleTimeout, c.HTTP.DrainDelay = 15*time.Minute, 0 }},
		{"authz", func(c *Config) {
			c.Authz.Cookie = "tc_session"
			c.Authz.Rules = []AuthzRule{{PathPrefix: "/admin/", Scopes: []string{"admin:all"}}, {PathPrefix: "/"}}
		}},
		{"log", func(c *Config) { c.Log.Level, c.Log.Format = "DEBUG", "json" }},
		{"eviction 2q, arc", func(c *Config) { c.Cache.Eviction = "arc" }},
		{"raft store memory", func(c *Config) { c.Cluster.RaftStore = "memory" }},
	}
	for _, tt := range tests {
		c := validConfig()
		tt.change(c)
		if err := c.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v, want nil", tt.name, err)
		}
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		key    string // "" = no warning at all
		want   string
	}{
		{"defaults", func(*Config) {}, "", ""},
		{"three nodes, R=1", func(c *Config) { c.Cluster.BootstrapExpect = 3 }, "", ""},
		{"five nodes, R=1: three voters", func(c *Config) { c.Cluster.BootstrapExpect = 5 }, "", ""},
		{"every node votes, four nodes", func(c *Config) { c.Cluster.ReplicationCount, c.Cluster.BootstrapExpect = -1, 4 },
			"cluster.replication_count", "even number of voters"},
		{"R=1 but two nodes", func(c *Config) { c.Cluster.BootstrapExpect = 2 }, "cluster.replication_count", "even number"},
		{"R=2 but four nodes", func(c *Config) { c.Cluster.ReplicationCount, c.Cluster.BootstrapExpect = 2, 4 },
			"cluster.replication_count", "even number"},
		{"memory store", func(c *Config) { c.Persist.Store = "memory" }, "persist.store", "restart"},
		{"short pepper", func(c *Config) { c.Tokens.Pepper = "short" }, "tokens.pepper", "shorter"},
		{"insecure", func(c *Config) { c.Cluster.Insecure = true }, "cluster.insecure", "mint tokens"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(c)
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate() = %v, want nil (warnings are not errors)", err)
			}
			w := c.Warnings()
			if tt.key == "" {
				if len(w) != 0 {
					t.Errorf("Warnings() = %v, want none", w)
				}
				return
			}
			if !hasProblem(w, tt.key, tt.want) {
				t.Errorf("Warnings() = %v, want one at %q containing %q", w, tt.key, tt.want)
			}
		})
	}
}

// secretConfig has every secret set, several of them invalid, so that both
// errors and warnings are produced about them.
func secretConfig() (*Config, []string) {
	c := validConfig()
	c.HTTP.AdminToken = "ADMINSECRET"            // short: warning
	c.Persist.Password = "PERSISTSECRET"         //
	c.Tokens.Pepper = "PEPPERSECRET"             // short: warning
	c.Tokens.SafePassword = "SAFEPASSWORDSECRET" //
	c.Cluster.EncryptKey = "ENCRYPTSECRET"       // not 16/24/32 bytes: error
	c.Persist.Store = "mysql"
	c.Persist.URL = "jdbc:mysql://tc:URLPASSWORDSECRET@db:3306/tc?password=QUERYSECRET&tls=true"
	c.Persist.Shards = []string{"jdbc:mysql://tc:SHARDSECRET@db2:3306/tc"}
	return c, []string{"ADMINSECRET", "PERSISTSECRET", "PEPPERSECRET", "SAFEPASSWORDSECRET", "ENCRYPTSECRET",
		"URLPASSWORDSECRET", "QUERYSECRET", "SHARDSECRET"}
}

func assertNoSecrets(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s contains the secret %q:\n%s", what, s, text)
		}
	}
}

func TestRedaction(t *testing.T) {
	c, secrets := secretConfig()
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want the encrypt_key problem")
	}
	assertNoSecrets(t, "Validate()", err.Error(), secrets)
	assertNoSecrets(t, "Warnings()", c.Warnings().Error(), secrets)

	y, yerr := c.YAML(false, "")
	if yerr != nil {
		t.Fatal(yerr)
	}
	assertNoSecrets(t, "YAML()", string(y), secrets)
	if !strings.Contains(string(y), redacted) {
		t.Errorf("YAML() = %s, want %s placeholders", y, redacted)
	}
	j, _ := json.Marshal(c.Map())
	assertNoSecrets(t, "Map()", string(j), secrets)
	j, _ = json.Marshal(c)
	assertNoSecrets(t, "json.Marshal(Config)", string(j), secrets[:5]) // URLs are redacted only by Map and YAML
	assertNoSecrets(t, "fmt", fmt.Sprintf("%v %+v %#v %s", c, c, c, c.HTTP.AdminToken), secrets[:5])

	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("config", "cfg", c, "token", c.HTTP.AdminToken)
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("config", "token", c.HTTP.AdminToken, "pepper", c.Tokens.Pepper)
	assertNoSecrets(t, "slog", logBuf.String(), secrets[:5])

	if got := c.Tokens.Pepper.Reveal(); got != "PEPPERSECRET" {
		t.Errorf("Reveal() = %q, want the value", got)
	}
	if got := Secret("").String(); got != "" {
		t.Errorf("unset Secret prints %q, want empty", got)
	}
}

func TestLoadErrorsNeverShowSecrets(t *testing.T) {
	file := writeFile(t, "c.yaml", `
http:
  admin_token: [FILELISTSECRET]
  admin_tokn: FILETYPOSECRET
tokens:
  pepper: {x: FILEMAPSECRET}
`)
	environ := []string{
		"TOKENCACHE_TOKENS_PEPER=ENVTYPOSECRET",
		"TOKENCACHE_ADMIN_TOKEN=ENVALIASSECRET1",
		"TOKENCACHE_HTTP_ADMIN_TOKEN=ENVALIASSECRET2",
	}
	_, err := (Loader{File: file, Environ: func() []string { return environ }}).Load()
	if err == nil {
		t.Fatal("Load() = nil, want problems")
	}
	assertNoSecrets(t, "Load()", err.Error(), []string{"FILELISTSECRET", "FILETYPOSECRET", "FILEMAPSECRET",
		"ENVTYPOSECRET", "ENVALIASSECRET1", "ENVALIASSECRET2"})
}

func TestConfigDocCoversEveryKey(t *testing.T) {
	for _, k := range configKeys {
		if keySpecs[k.path].help == "" {
			t.Errorf("keySpecs has no help for %s", k.path)
		}
	}
	for path := range keySpecs {
		if _, ok := keysByPath[path]; !ok {
			t.Errorf("keySpecs documents %s, which is not a key", path)
		}
	}
	for _, s := range sectionNames {
		if sectionHelp[s] == "" {
			t.Errorf("sectionHelp has no entry for %s", s)
		}
	}
}

func TestDefaultTemplateRoundTrip(t *testing.T) {
	b, err := defaultTemplate().YAML(true, defaultConfigHeader)
	if err != nil {
		t.Fatal(err)
	}
	got := mustLoad(t, Loader{File: writeFile(t, "default.yaml", string(b))})
	want := mustLoad(t, Loader{})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("loading `config default` = %+v, want the defaults %+v", got, want)
	}
	for _, k := range configKeys {
		depth := strings.Count(k.path, ".") // "cluster.tls.ca_file" is indented twice
		name := k.path[strings.LastIndex(k.path, ".")+1:]
		if !strings.Contains(string(b), "\n"+strings.Repeat("  ", depth)+name+":") {
			t.Errorf("`config default` lacks %s", k.path)
		}
	}
}

func TestShowRoundTrip(t *testing.T) {
	// What `config show` prints loads back to the same configuration (secrets aside).
	c := validConfig()
	c.Cluster.Join = []string{"a:1", "b:2"}
	c.Authz.Rules = []AuthzRule{{PathPrefix: "/a/", Scopes: []string{"x", "y"}}}
	c.Tokens.Expiry = 90 * time.Second
	c.Persist.FlushInterval = 1500 * time.Microsecond
	c.resolve()
	b, err := c.YAML(false, "")
	if err != nil {
		t.Fatal(err)
	}
	got := mustLoad(t, Loader{File: writeFile(t, "show.yaml", string(b))})
	if !reflect.DeepEqual(got, c) {
		t.Errorf("loading YAML() = %+v, want %+v\nYAML:\n%s", got, c, b)
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {-1, "-1"}, {time.Hour, "1h"}, {8760 * time.Hour, "8760h"}, {90 * time.Minute, "90m"},
		{90 * time.Second, "90s"}, {50 * time.Millisecond, "50ms"}, {1500 * time.Microsecond, "1.5ms"},
	}
	for _, tt := range tests {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestConfigShowRedactsEveryDatabaseSecret: the database URLs, in persist.url
// and in persist.shards, print through the same redactor persist uses, so
// every parameter it knows as a secret and a userinfo password holding a '/'
// stay hidden in Map (config show --json) and YAML (config show).
func TestConfigShowRedactsEveryDatabaseSecret(t *testing.T) {
	for _, u := range []string{
		"jdbc:mysql://db:3306/tok?passwd=s3cret",
		"jdbc:mysql://db:3306/tok?trustCertificateKeyStorePassword=s3cret",
		"jdbc:mysql://db:3306/tok?clientSecret=s3cret",
		"jdbc:mysql://u:s3c/ret@db:3306/tok",
	} {
		c := validConfig()
		c.Persist.Store = "mysql"
		c.Persist.URL = u
		c.Persist.Shards = []string{u, u}
		y, err := c.YAML(false, "")
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(c.Map())
		for what, text := range map[string]string{"YAML()": string(y), "Map()": string(j)} {
			assertNoSecrets(t, what+" of "+u, text, []string{"s3cret", "s3c/ret", `s3c\/ret`})
		}
	}
}

// A write-behind queue bound below one batch is refused on the file's keys
// (moved from persist.Config, which no longer holds the writer's keys; the
// writer itself works with it).
func TestMaxPendingBelowBatchSize(t *testing.T) {
	c := validConfig()
	c.Persist.BatchSize, c.Persist.MaxPending = 512, 100
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "max_pending (100) must be at least persist.batch_size (512)") {
		t.Errorf("Validate() = %v, want max_pending (100) must be at least persist.batch_size (512)", err)
	}
	if err := writerConfig(c).Validate(); err != nil {
		t.Errorf("writerConfig().Validate() = %v, want nil: the writer works with it", err)
	}
}
