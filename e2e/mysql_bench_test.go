package e2e

// Benchmarks of the MySQL persister through the real daemon, reported as
// ratios in docs/persistence.md. They need a server (make test's, or
// eval "$(scripts/mariadb.sh start DIR)") and run only with -bench:
//
//	go test ./e2e -run '^$' -bench 'MySQL(MissPath|HitPath|PointSelect)' -benchtime 20000x
//	go test ./e2e -run '^$' -bench 'MySQLWarmLoad' -benchtime 1x -timeout 30m

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/persist/mysqltest"
	"github.com/tokencache/tokencache/token"
)

// seedTokens writes n valid session tokens straight into db (in batches,
// as the writer would) and returns the token texts of up to keep of them.
func seedTokens(b *testing.B, db mysqltest.Database, n, keep int) []string {
	b.Helper()
	cfg := persist.DefaultConfig()
	cfg.Store, cfg.URL, cfg.Username, cfg.Password = persist.StoreMySQL, db.URL, db.User, db.Password
	ctx := context.Background()
	s, err := persist.Open(ctx, cfg, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	h := token.NewHasher(nil)
	now := time.Now()
	var texts []string
	const batch = 2048
	for off := 0; off < n; off += batch {
		var puts []*token.Token
		for i := off; i < min(n, off+batch); i++ {
			k, secret := token.NewKey(), token.NewSecret()
			if len(texts) < keep {
				texts = append(texts, token.Encode(token.DefaultPrefix, k, secret))
			}
			created := token.At(now.Add(time.Duration(i-n) * time.Millisecond))
			puts = append(puts, &token.Token{Key: k, Hash: h.Sum(k, []byte(secret)), Index: uint64(i + 1),
				Created: created, Expires: created.Add(24 * time.Hour), Username: fmt.Sprintf("user%d", i%5000),
				Realm: token.DefaultRealm, Scopes: "read", Format: token.FormatOpaque, Type: token.TypeSession})
		}
		if err := s.Write(ctx, &persist.Batch{Puts: puts, Index: uint64(min(n, off+batch))}); err != nil {
			b.Fatal(err)
		}
	}
	return texts
}

func validateOnce(c *http.Client, addr, tok string) error {
	req, _ := http.NewRequest("GET", addr+"/v1/validate", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("validate = %d", resp.StatusCode)
	}
	return nil
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
}

const benchRows = 20000

// BenchmarkMySQLMissPath: validations of tokens that are in MySQL but not
// in the cache (capacity 16 for 20,000 tokens): HTTP → cache miss → one
// primary-key read → answer.
func BenchmarkMySQLMissPath(b *testing.B) {
	srv := mysqltest.Shared(b)
	db := srv.NewDatabase(b)
	toks := seedTokens(b, db, benchRows, benchRows)
	n := startNode(b, "", mysqlEnv(db, "", "TOKENCACHE_CACHE_CAPACITY=16", "TOKENCACHE_CACHE_SHARDS=1", "TOKENCACHE_LOG_LEVEL=warn"))
	c := benchClient()
	mysqltest.Latencies(b, func(i int) error { return validateOnce(c, n.addr, toks[rand.IntN(len(toks))]) })
	b.ReportMetric(n.metric("tokencache_store_reads_total")/float64(b.N), "reads/op")
}

// BenchmarkMySQLHitPath: the same requests answered from the cache (HTTP
// and validation cost without the database).
func BenchmarkMySQLHitPath(b *testing.B) {
	srv := mysqltest.Shared(b)
	db := srv.NewDatabase(b)
	toks := seedTokens(b, db, benchRows, benchRows)
	n := startNode(b, "", mysqlEnv(db, "", "TOKENCACHE_LOG_LEVEL=warn"))
	c := benchClient()
	for _, tk := range toks { // warm the cache
		if err := validateOnce(c, n.addr, tk); err != nil {
			b.Fatal(err)
		}
	}
	mysqltest.Latencies(b, func(i int) error { return validateOnce(c, n.addr, toks[rand.IntN(len(toks))]) })
}

// BenchmarkMySQLPointSelect is the floor of the miss path: the same
// primary-key SELECT of a whole row, from Go, on the same server, with a
// prepared statement and 16 clients.
func BenchmarkMySQLPointSelect(b *testing.B) {
	srv := mysqltest.Shared(b)
	db := srv.NewDatabase(b)
	seedTokens(b, db, benchRows, 0)
	mysqltest.PointSelectFloor(b, db.DB(b), 16)
}

var warmDone = regexp.MustCompile(`"msg":"warm start done".*"loaded":(\d+).*"seconds":([0-9.e+-]+)`)

// BenchmarkMySQLWarmLoad: a node starting on a database of 1,000,000
// tokens loads them newest first in batches of cache.load_batch_size; the
// figure is the daemon's own "warm start done" log line.
func BenchmarkMySQLWarmLoad(b *testing.B) {
	const rows = 1_000_000
	srv := mysqltest.Shared(b)
	db := srv.NewDatabase(b)
	t0 := time.Now()
	seedTokens(b, db, rows, 0)
	seeded := time.Since(t0)
	b.ReportMetric(float64(rows)/seeded.Seconds(), "seed-rows/s")
	b.ResetTimer()
	for range b.N {
		n := startNode(b, "", mysqlEnv(db, ""))
		var m []string
		waitFor(b, 10*time.Minute, "warm start done", func() bool {
			m = warmDone.FindStringSubmatch(n.logs.String())
			return m != nil
		})
		loaded, _ := strconv.Atoi(m[1])
		secs, _ := strconv.ParseFloat(m[2], 64)
		// The cache is sharded: it is full once its fullest shards are,
		// a little before capacity (rows) tokens.
		if loaded < rows*95/100 {
			b.Fatalf("warm start loaded %d tokens, want about %d", loaded, rows)
		}
		b.ReportMetric(float64(loaded), "loaded")
		b.ReportMetric(float64(loaded)/secs, "tokens/s")
		b.ReportMetric(secs, "load-s")
		// Memory: the whole process's resident set over the tokens it
		// caches (runtime, key filter, SQL pool included), once right
		// after the load and once the process has been idle for 30 s
		// (the Go scavenger returns freed pages in the background).
		b.ReportMetric(float64(rssBytes(b, n.cmd.Process.Pid))/float64(loaded), "rss-bytes/token")
		time.Sleep(30 * time.Second)
		b.ReportMetric(float64(rssBytes(b, n.cmd.Process.Pid))/float64(loaded), "rss-idle-bytes/token")
		_ = n.stop(15)
	}
}

// rssBytes is the resident set size of process pid (VmRSS).
func rssBytes(b *testing.B, pid int) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "123456 kB"
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil || len(f) != 2 || f[1] != "kB" {
				b.Fatalf("cannot parse VmRSS line %q", line)
			}
			return kb << 10
		}
	}
	b.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
