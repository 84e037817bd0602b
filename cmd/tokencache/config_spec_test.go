package main

import (
	"bufio"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDefaultFromSpecs checks that the defaults derived from keySpecs are the
// defaults of DESIGN §7, as Default spelled them out field by field before
// keySpecs existed.
func TestDefaultFromSpecs(t *testing.T) {
	if got, want := Default(), literalDefault(); !reflect.DeepEqual(got, want) {
		t.Errorf("Default() =\n%#v\nwant\n%#v", got, want)
	}
}

// TestServeFlagsFromSpecs checks the serve flags derived from keySpecs.
func TestServeFlagsFromSpecs(t *testing.T) {
	want := map[string]string{
		"node-id":          "node.id",
		"data-dir":         "node.data_dir",
		"http-addr":        "http.addr",
		"gossip-addr":      "cluster.gossip_addr",
		"raft-addr":        "cluster.raft_addr",
		"join":             "cluster.join",
		"bootstrap-expect": "cluster.bootstrap_expect",
		"log-level":        "log.level",
		"log-format":       "log.format",
	}
	if !reflect.DeepEqual(serveFlagKeys, want) {
		t.Errorf("serveFlagKeys = %v, want %v", serveFlagKeys, want)
	}
	cmd := newServeCmd(&env{})
	for name := range want {
		if cmd.Flags().Lookup(name) == nil {
			t.Errorf("serve has no --%s flag", name)
		}
	}
}

// readmeRowRE matches a row of the README's configuration table.
var readmeRowRE = regexp.MustCompile("^\\| `([a-z_.]+)` \\|([^|]*)\\|([^|]*)\\|")

// TestReadmeConfigTable checks that the README's configuration table lists
// exactly the keys of Config, one a row in key order, each with the default,
// the flag and the extra variable of its spec: the table cannot drift from
// the code.
func TestReadmeConfigTable(t *testing.T) {
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := readmeRowRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		path := m[1]
		k, ok := keysByPath[path]
		if !ok {
			t.Errorf("README lists %s, which is not a key", path)
			continue
		}
		rows = append(rows, k.path)
		spec := keySpecs[path]
		def := strings.ReplaceAll(strings.TrimSpace(m[2]), "`", "")
		// A default derived at load or a zero value may be described
		// ("host name", "none", "0 (off)"); a set default is shown as is,
		// optionally followed by a remark in parentheses.
		if spec.def != "" && def != spec.def && !strings.HasPrefix(def, spec.def+" (") {
			t.Errorf("README gives %s the default %q, keySpecs %q", path, def, spec.def)
		}
		flag := strings.TrimSpace(m[3])
		if spec.flag != "" && !strings.Contains(flag, "`--"+spec.flag+"`") {
			t.Errorf("README gives %s the flag column %q, want `--%s`", path, flag, spec.flag)
		}
		if spec.env != "" && !strings.Contains(flag, "`"+spec.env+"`") {
			t.Errorf("README gives %s the flag column %q, want its variable `%s`", path, flag, spec.env)
		}
		if spec.flag == "" && strings.Contains(flag, "--") {
			t.Errorf("README gives %s the flag column %q, but it has no flag", path, flag)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if want := keyPaths(); !reflect.DeepEqual(rows, want) {
		t.Errorf("README configuration table lists\n%v\nwant every key, in order:\n%v", rows, want)
	}
}

// literalDefault is Default as it was written before keySpecs.
func literalDefault() *Config {
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
			Format:       "opaque",
			JWT: JWTConfig{
				Issuer:        "tokencache",
				Audiences:     []string{"*"},
				Leeway:        30 * time.Second,
				VerifiedCache: 65536,
			},
		},
		Log: LogConfig{Level: "info"},
	}
}

// TestEvictionOneRule checks that the configuration check and the cache
// apply one rule to cache.eviction: a value the cache accepts is accepted by
// `config check` and `serve`, and one it refuses is refused.
func TestEvictionOneRule(t *testing.T) {
	for _, v := range []string{"lru", "2q", "arc", "LRU", "ARC", "2Q", "Arc", "lfu", "fifo", "lru "} {
		c := Default()
		c.Cache.Eviction = v
		cacheErr := cacheConfig(c).Validate()
		var keyErr bool
		if err := c.Validate(); err != nil {
			for _, p := range err.(Problems) {
				keyErr = keyErr || p.Key == "cache.eviction"
			}
		}
		if (cacheErr != nil) != keyErr {
			t.Errorf("cache.eviction %q: the cache says %v, config check refuses it: %v", v, cacheErr, keyErr)
		}
	}
}
