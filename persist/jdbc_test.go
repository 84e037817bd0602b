package persist

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestJDBCParameters: Connector/J parameters become driver settings or are
// dropped with a note; nothing unknown is left to fail at connect time.
func TestJDBCParameters(t *testing.T) {
	tests := []struct {
		query string
		check func(t *testing.T, u URL)
	}{
		{"useSSL=false", func(t *testing.T, u URL) { wantTLS(t, u, "false") }},
		{"useSSL=true", func(t *testing.T, u URL) { wantTLS(t, u, "true") }},
		{"useSSL=true&verifyServerCertificate=false", func(t *testing.T, u URL) { wantTLS(t, u, "skip-verify") }},
		{"requireSSL=true", func(t *testing.T, u URL) { wantTLS(t, u, "true") }},
		{"sslMode=DISABLED", func(t *testing.T, u URL) { wantTLS(t, u, "false") }},
		{"sslMode=preferred", func(t *testing.T, u URL) { wantTLS(t, u, "preferred") }},
		{"sslMode=REQUIRED", func(t *testing.T, u URL) { wantTLS(t, u, "skip-verify") }},
		{"sslMode=VERIFY_IDENTITY", func(t *testing.T, u URL) { wantTLS(t, u, "true") }},
		{"connectTimeout=2500&socketTimeout=60000", func(t *testing.T, u URL) {
			c := u.MySQL
			if c.Timeout != 2500*time.Millisecond || c.ReadTimeout != time.Minute || c.WriteTimeout != time.Minute {
				t.Errorf("timeouts = %s %s %s, want 2.5s 1m 1m", c.Timeout, c.ReadTimeout, c.WriteTimeout)
			}
		}},
		{"useUnicode=true&characterEncoding=UTF-8&serverTimezone=UTC&autoReconnect=true&cachePrepStmts=true&rewriteBatchedStatements=true",
			func(t *testing.T, u URL) {
				if len(u.MySQL.Params) != 0 {
					t.Errorf("ignored JDBC parameters reached the driver as session variables: %v", u.MySQL.Params)
				}
				if len(u.Notes) != 6 {
					t.Errorf("notes = %q, want one per ignored parameter", u.Notes)
				}
			}},
		{"useSSL=false&innodb_lock_wait_timeout=5", func(t *testing.T, u URL) {
			if u.MySQL.Params["innodb_lock_wait_timeout"] != "5" {
				t.Errorf("session variable lost: %v", u.MySQL.Params)
			}
		}},
	}
	for _, tc := range tests {
		u, err := ParseURL("jdbc:mysql://db:3306/tc?"+tc.query, "")
		if err != nil {
			t.Errorf("ParseURL(?%s) = %v", tc.query, err)
			continue
		}
		if _, ok := u.MySQL.Params["useSSL"]; ok {
			t.Errorf("ParseURL(?%s) left useSSL as a session variable", tc.query)
		}
		t.Run(tc.query, func(t *testing.T) { tc.check(t, u) })
	}
}

func wantTLS(t *testing.T, u URL, want string) {
	t.Helper()
	if u.MySQL.TLSConfig != want {
		t.Errorf("tls = %q, want %q", u.MySQL.TLSConfig, want)
	}
	if !slices.ContainsFunc(u.Notes, func(n string) bool { return strings.Contains(n, "tls="+want) }) {
		t.Errorf("notes = %q, want one saying tls=%s", u.Notes, want)
	}
}

func TestJDBCParametersRefused(t *testing.T) {
	tests := []struct{ query, want string }{
		{"useFastDateParsing=false", "neither a go-sql-driver/mysql parameter"},
		{"readtimeout=5s", "did you mean readTimeout"},
		{"TLS=true", "did you mean tls"},
		{"sslMode=VERIFY_CA", "VERIFY_IDENTITY"},
		{"sslMode=sometimes", "not one of"},
		{"sslMode=REQUIRED&useSSL=true", "keep sslMode"},
		{"useSSL=true&tls=false", "both set the driver's tls"},
		{"useSSL=maybe", "not a boolean"},
		{"verifyServerCertificate=false", "needs useSSL=true"},
		{"connectTimeout=5s", "milliseconds"},
		{"socketTimeout=1000&readTimeout=2s", "both set"},
		{"useUnicode=false", "only true"},
		{"characterEncoding=ISO-8859-1", "utf8mb4"},
		{"charset=latin1", "utf8mb4"},
		{"collation=latin1_bin", "utf8mb4"},
	}
	for _, tc := range tests {
		_, err := ParseURL("jdbc:mysql://db/tc?"+tc.query, "")
		if !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseURL(?%s) = %v, want ErrBadURL mentioning %q", tc.query, err, tc.want)
		}
	}
}

// TestMySQLDriverDefaults: what tokencache adds to the URL's settings.
func TestMySQLDriverDefaults(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Store, cfg.Username, cfg.Password, cfg.PoolTimeout, cfg.QueryTimeout = StoreMySQL, "tc", "pw", 7*time.Second, 45*time.Second
	u, err := ParseURL("jdbc:mysql://db/tc", "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := mysqlDriverConfig(cfg, u.MySQL)
	if err != nil {
		t.Fatal(err)
	}
	if c.User != "tc" || c.Passwd != "pw" || c.Timeout != 7*time.Second || c.ReadTimeout != 45*time.Second || c.WriteTimeout != 45*time.Second {
		t.Errorf("driver config = user %q timeouts %s %s %s, want tc 7s 45s 45s", c.User, c.Timeout, c.ReadTimeout, c.WriteTimeout)
	}
	if !c.RejectReadOnly || c.ParseTime || c.Params["sql_mode"] != "'TRADITIONAL'" || c.ConnectionAttributes == "" {
		t.Errorf("driver config = %+v, want rejectReadOnly, no parseTime, TRADITIONAL, connection attributes", c)
	}
	if u.MySQL.User != "" || u.MySQL.Params != nil && u.MySQL.Params["sql_mode"] != "" {
		t.Error("mysqlDriverConfig changed the parsed URL's config")
	}
	cfg.QueryTimeout = time.Second
	if c, _ := mysqlDriverConfig(cfg, u.MySQL); c.ReadTimeout != mysqlIOTimeout {
		t.Errorf("readTimeout = %s, want the %s floor", c.ReadTimeout, mysqlIOTimeout)
	}
	u, _ = ParseURL("jdbc:mysql://db/tc?sql_mode=%27STRICT_ALL_TABLES,ANSI_QUOTES%27&readTimeout=3s", "")
	if c, err := mysqlDriverConfig(cfg, u.MySQL); err != nil || c.ReadTimeout != 3*time.Second || c.Params["sql_mode"] != "'STRICT_ALL_TABLES,ANSI_QUOTES'" {
		t.Errorf("URL settings were not kept: %v %+v", err, c)
	}
}

// TestShardOf: the placement function is fixed (rows are placed by it), in
// range, spread evenly, and moves few keys when a shard is appended.
func TestShardOf(t *testing.T) {
	var k [16]byte
	copy(k[:], "0123456789abcdef")
	// Golden values: changing ShardOf would strand every sharded row.
	if got := []int{ShardOf(k, 1), ShardOf(k, 2), ShardOf(k, 3), ShardOf(k, 10)}; !slices.Equal(got, goldenShards) {
		t.Fatalf("ShardOf(golden key) = %v, want %v", got, goldenShards)
	}
	const n = 20000
	counts := make([]int, 4)
	moved := 0
	for i := range n {
		var key [16]byte
		copy(key[:], []byte{byte(i), byte(i >> 8), byte(i >> 16), 7})
		s4, s5 := ShardOf(key, 4), ShardOf(key, 5)
		counts[s4]++
		if s4 != s5 {
			moved++
			if s5 != 4 {
				t.Fatalf("appending a shard moved a key from %d to %d, not to the new shard", s4, s5)
			}
		}
	}
	for i, c := range counts {
		if c < n/4*9/10 || c > n/4*11/10 {
			t.Errorf("shard %d of 4 holds %d of %d keys, want about %d", i, c, n, n/4)
		}
	}
	if moved < n/5*8/10 || moved > n/5*12/10 {
		t.Errorf("appending a 5th shard moved %d of %d keys, want about a fifth", moved, n)
	}
}

var goldenShards = []int{0, 1, 1, 1}
