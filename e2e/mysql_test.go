package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tokencache/tokencache/persist/mysqltest"
)

// mysqlEnv returns the environment that points a node at db (through url,
// which may be a proxy's), plus extra TOKENCACHE_ settings.
func mysqlEnv(db mysqltest.Database, url string, extra ...string) []string {
	if url == "" {
		url = db.URL
	}
	return append([]string{
		"TOKENCACHE_PERSIST_STORE=mysql",
		"TOKENCACHE_PERSIST_URL=" + url,
		"TOKENCACHE_PERSIST_USERNAME=" + db.User,
		"TOKENCACHE_PERSIST_PASSWORD=" + db.Password,
	}, extra...)
}

// proxiedURL returns db's URL with its host:port replaced by addr.
func proxiedURL(db mysqltest.Database, addr string) string {
	return "jdbc:mysql://" + addr + "/" + db.Name
}

// randomToken returns a well-formed token that was never issued.
func randomToken() string {
	var k [16]byte
	var s [32]byte
	_, _ = rand.Read(k[:])
	_, _ = rand.Read(s[:])
	return "tc_" + base64.RawURLEncoding.EncodeToString(k[:]) + "." + base64.RawURLEncoding.EncodeToString(s[:])
}

// metric returns the value of an unlabelled metric of /metrics. It reads
// only the cache side, so it answers while the database is down (unlike
// /v1/stats, whose token counts come from the store).
func (n *node) metric(name string) float64 {
	n.t.Helper()
	resp, err := http.Get(n.addr + "/metrics")
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				n.t.Fatalf("metric %s = %q: %v", name, v, err)
			}
			return f
		}
	}
	n.t.Fatalf("/metrics has no %s", name)
	return 0
}

type stats struct {
	Tokens            int64   `json:"tokens"`
	CacheSize         int     `json:"cache_size"`
	CachePinned       int     `json:"cache_pinned"`
	StoreQueries      uint64  `json:"store_queries"`
	PersistLagEntries int     `json:"persist_lag_entries"`
	PersistLagSeconds float64 `json:"persist_lag_seconds"`
	AppliedIndex      uint64  `json:"applied_index"`
	PersistedIndex    uint64  `json:"persisted_index"`
}

func (n *node) stats(admin string) (stats, int) {
	n.t.Helper()
	var st stats
	code, _ := n.call("GET", "/v1/stats", admin, nil, &st)
	return st, code
}

// tryIssue issues a token and returns the status and the error code.
func (n *node) tryIssue(admin string, body map[string]any) (issued, int, string) {
	n.t.Helper()
	var out struct {
		issued
		Error string `json:"error"`
	}
	code, _ := n.call("POST", "/v1/tokens", admin, body, &out)
	return out.issued, code, out.Error
}

// rowCount counts the rows of db's tokens table whose key is among keys
// (all rows when keys is nil), and how many of those are revoked.
func rowCount(t testing.TB, db mysqltest.Database, keys []string) (rows, revoked int) {
	t.Helper()
	want := make(map[string]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	r, err := db.DB(t).Query("SELECT token_key, revoked_at IS NOT NULL FROM tokens")
	if err != nil {
		t.Fatalf("cannot read tokens from %s: %v", db.Name, err)
	}
	defer r.Close()
	for r.Next() {
		var k []byte
		var rev bool
		if err := r.Scan(&k, &rev); err != nil {
			t.Fatal(err)
		}
		if keys == nil || want[base64.RawURLEncoding.EncodeToString(k)] {
			rows++
			if rev {
				revoked++
			}
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return rows, revoked
}

// TestMySQLRestartWithEmptyDataDir: tokens issued and revoked (with
// cascade) on one node come back, every one of them and every revocation,
// on a node with an empty data dir that has only MySQL, unsharded and over
// two shards of one server.
func TestMySQLRestartWithEmptyDataDir(t *testing.T) {
	srv := mysqltest.Shared(t)
	for _, shards := range []int{1, 2} {
		t.Run(fmt.Sprintf("shards=%d", shards), func(t *testing.T) {
			dbs := []mysqltest.Database{srv.NewDatabase(t)}
			env := mysqlEnv(dbs[0], "")
			if shards == 2 {
				dbs = append(dbs, srv.NewDatabase(t))
				env = mysqlEnv(dbs[0], "", "TOKENCACHE_PERSIST_URL=", "TOKENCACHE_PERSIST_SHARDS="+dbs[0].URL+","+dbs[1].URL)
			}
			n := startNode(t, "", env)
			admin := n.adminToken()
			var valid, revoked []issued
			for i := range 40 {
				p := n.issue(admin, map[string]any{"username": fmt.Sprintf("user%d", i%7), "type": "user", "scopes": []string{"read"}, "name": fmt.Sprintf("t%d", i)})
				c1 := n.issue(admin, map[string]any{"username": fmt.Sprintf("user%d", i%7), "type": "user", "parent": p.Key})
				c2 := n.issue(admin, map[string]any{"username": fmt.Sprintf("user%d", i%7), "type": "session", "parent": p.Key})
				if i%4 == 0 {
					var out struct{ Revoked []string }
					if code, _ := n.call("DELETE", "/v1/tokens/"+p.Key, admin, nil, &out); code != 200 || len(out.Revoked) != 3 {
						t.Fatalf("DELETE %s = %d %v, want the parent and its 2 children", p.Key, code, out.Revoked)
					}
					revoked = append(revoked, p, c1, c2)
				} else {
					valid = append(valid, p, c1, c2)
				}
			}
			if err := n.stop(syscall.SIGTERM); err != nil {
				t.Fatalf("SIGTERM: %v", err)
			}
			var total, rev int
			for _, db := range dbs {
				r, v := rowCount(t, db, nil)
				total, rev = total+r, rev+v
				if shards > 1 && r == 0 {
					t.Errorf("shard %s holds no row", db.Name)
				}
			}
			if total != len(valid)+len(revoked) || rev != len(revoked) {
				t.Fatalf("MySQL holds %d rows (%d revoked), want %d (%d revoked)", total, rev, len(valid)+len(revoked), len(revoked))
			}

			m := startNode(t, "", env) // a new, empty data dir
			for _, tk := range valid {
				if code, reason := m.validate(tk.Token); code != 200 {
					t.Errorf("after restart validate(%s) = %d %s, want 200", tk.Key, code, reason)
				}
			}
			for _, tk := range revoked {
				if code, reason := m.validate(tk.Token); code != 401 || reason != "revoked" {
					t.Errorf("after restart validate(revoked %s) = %d %q, want 401 revoked", tk.Key, code, reason)
				}
			}
			var list struct {
				Tokens []struct {
					Key string `json:"key"`
				} `json:"tokens"`
			}
			if code, _ := m.call("GET", "/v1/tokens?username=user1&limit=1000", m.adminToken(), nil, &list); code != 200 || len(list.Tokens) == 0 {
				t.Errorf("GET /v1/tokens?username=user1 after restart = %d, %d tokens", code, len(list.Tokens))
			}
			if err := m.stop(syscall.SIGTERM); err != nil {
				t.Fatalf("SIGTERM: %v", err)
			}
		})
	}
}

// TestMySQLSmallCacheAndUnknownFlood: a cache of 10 serves 1,000 tokens by
// reading through to MySQL (every one validates), and a flood of 10,000
// well-formed tokens that were never issued costs a handful of queries at
// most, counted on the wire by a proxy in front of the server.
func TestMySQLSmallCacheAndUnknownFlood(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.NewDatabase(t)
	proxy := startSQLProxy(t, srv.Addr())
	n := startNode(t, "", mysqlEnv(db, proxiedURL(db, proxy.Addr()),
		"TOKENCACHE_CACHE_CAPACITY=10", "TOKENCACHE_CACHE_SHARDS=1"))
	admin := n.adminToken()
	const total = 1000
	toks := make([]issued, total)
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < total; i = int(next.Add(1)) - 1 {
				toks[i] = n.issue(admin, map[string]any{"username": fmt.Sprintf("u%d", i), "type": "session"})
			}
		})
	}
	wg.Wait()
	if rows, _ := rowCount(t, db, nil); rows != total {
		t.Fatalf("MySQL holds %d rows after %d write-through issues, want %d", rows, total, total)
	}
	before := proxy.Queries()
	for _, tk := range toks {
		if code, reason := n.validate(tk.Token); code != 200 {
			t.Fatalf("validate(%s) = %d %s, want 200", tk.Key, code, reason)
		}
	}
	reads := proxy.Queries() - before
	st, _ := n.stats(admin)
	t.Logf("1000 validations through a cache of 10: %d queries on the wire; cache size %d", reads, st.CacheSize)
	if st.CacheSize > 10 {
		t.Errorf("cache holds %d tokens, want at most its capacity 10", st.CacheSize)
	}
	if reads < total-10 {
		t.Errorf("1000 validations through a cache of 10 cost %d queries: the cache cannot hold them, want about 1000", reads)
	}

	before = proxy.Queries()
	const flood = 10000
	var unknown atomic.Int64
	next.Store(0)
	client := &http.Client{}
	for range 16 {
		wg.Go(func() {
			for next.Add(1) <= flood {
				req, _ := http.NewRequest("GET", n.addr+"/v1/validate", nil)
				req.Header.Set("Authorization", "Bearer "+randomToken())
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode == 401 {
					unknown.Add(1)
				}
			}
		})
	}
	wg.Wait()
	flooded := proxy.Queries() - before
	t.Logf("flood of %d unknown tokens: %d queries on the wire", flood, flooded)
	if unknown.Load() != flood {
		t.Errorf("%d of %d unknown tokens answered 401, want all", unknown.Load(), flood)
	}
	// Unknown keys are answered by the key filter (a Bloom filter of every
	// stored key) and the negative cache; without them every unknown token
	// would cost a query.
	if flooded > 5 {
		t.Errorf("a flood of %d unknown tokens cost %d SQL queries, want at most a handful (5)", flood, flooded)
	}
}

// TestMySQLWriteBehindSIGTERM: with the database link silent, write-behind
// acknowledges writes into its bounded queue, answers 503 overloaded once
// it is full (dropping nothing), and SIGTERM flushes the whole queue once
// the database answers again: every acknowledged token is in MySQL.
func TestMySQLWriteBehindSIGTERM(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.NewDatabase(t)
	proxy := startSQLProxy(t, srv.Addr())
	const maxPending = 300
	n := startNode(t, "", mysqlEnv(db, proxiedURL(db, proxy.Addr()),
		"TOKENCACHE_PERSIST_WRITE_MODE=behind", fmt.Sprintf("TOKENCACHE_PERSIST_MAX_PENDING=%d", maxPending),
		"TOKENCACHE_PERSIST_BATCH_SIZE=100", "TOKENCACHE_HTTP_SHUTDOWN_TIMEOUT=60s", "TOKENCACHE_HTTP_DRAIN_DELAY=0s"))
	admin := n.adminToken()
	first := n.issue(admin, map[string]any{"username": "before", "type": "user"})
	waitFor(t, 10*time.Second, "the first token in MySQL", func() bool { r, _ := rowCount(t, db, []string{first.Key}); return r == 1 })
	var raw map[string]any
	if code, _ := n.call("GET", "/v1/stats", admin, nil, &raw); code != 200 || raw["persist_lag_entries"] == nil || raw["persist_lag_seconds"] == nil {
		t.Errorf("GET /v1/stats = %d %v, want persist_lag_entries and persist_lag_seconds", code, raw)
	}

	proxy.Hold()
	acked := []string{first.Key}
	var full string
	for i := 0; i < 2*maxPending && full == ""; i++ {
		tk, code, reason := n.tryIssue(admin, map[string]any{"username": fmt.Sprintf("u%d", i%10), "type": "session"})
		switch code {
		case 201:
			acked = append(acked, tk.Key)
		case 503:
			full = reason
		default:
			t.Fatalf("issue %d with the database silent = %d %s, want 201 or 503", i, code, reason)
		}
	}
	if full != "overloaded" {
		t.Fatalf("write-behind with the database silent: no 503 overloaded after %d writes (last error %q)", 2*maxPending, full)
	}
	if len(acked) < maxPending-1 {
		t.Errorf("the queue took %d writes before 503, want about max_pending (%d)", len(acked), maxPending)
	}
	lag, age := n.metric("tokencache_persist_backlog_entries"), n.metric("tokencache_persist_lag_seconds")
	t.Logf("queue full: %d acknowledged, backlog %.0f entries, %.2fs old", len(acked), lag, age)
	if int(lag) < maxPending-1 || age <= 0 {
		t.Errorf("persist lag = %.0f entries, %.2fs; want the full queue and a positive age", lag, age)
	}

	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the node is flushing into a silent link
	proxy.Release()
	select {
	case <-n.done:
	case <-time.After(60 * time.Second):
		t.Fatal("tokencache did not exit within 60s of SIGTERM")
	}
	if n.exitErr != nil {
		t.Fatalf("exit after SIGTERM with a full queue: %v\n%s", n.exitErr, n.logs.String())
	}
	if rows, _ := rowCount(t, db, acked); rows != len(acked) {
		t.Fatalf("after SIGTERM MySQL holds %d of the %d acknowledged tokens, want all", rows, len(acked))
	}
}

// TestMySQLWriteBehindSIGKILL checks the documented loss bound of
// write-behind on SIGKILL (docs/persistence.md): with a durable log, nothing
// acknowledged is lost (the restarted node replays what SQL lacks); without
// one (serve on a single-process log), at most the changes that were
// queued, persist_lag_entries, at the kill. A revocation is flushed at once,
// without waiting for flush_interval.
func TestMySQLWriteBehindSIGKILL(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.NewDatabase(t)
	proxy := startSQLProxy(t, srv.Addr())
	dataDir := t.TempDir()
	env := mysqlEnv(db, proxiedURL(db, proxy.Addr()), "TOKENCACHE_PERSIST_WRITE_MODE=behind",
		"TOKENCACHE_PERSIST_FLUSH_INTERVAL=30s", "TOKENCACHE_PERSIST_BATCH_SIZE=10000", "TOKENCACHE_PERSIST_MAX_PENDING=10000")
	n := startNode(t, dataDir, env)
	admin := n.adminToken()

	// A revocation is not held back by write-behind: it reaches MySQL long
	// before flush_interval (30s), and takes what was queued before it.
	a := n.issue(admin, map[string]any{"username": "rev", "type": "user"})
	b := n.issue(admin, map[string]any{"username": "rev", "type": "user"})
	if code, _ := n.call("DELETE", "/v1/tokens/"+b.Key, admin, nil, nil); code != 200 {
		t.Fatalf("DELETE = %d", code)
	}
	waitFor(t, 5*time.Second, "the revocation in MySQL", func() bool {
		r, rev := rowCount(t, db, []string{a.Key, b.Key})
		return r == 2 && rev == 1
	})

	proxy.Hold()
	acked := []string{a.Key, b.Key}
	for i := range 200 {
		tk, code, reason := n.tryIssue(admin, map[string]any{"username": fmt.Sprintf("k%d", i%10), "type": "session"})
		if code != 201 {
			t.Fatalf("issue %d = %d %s, want 201 (queued)", i, code, reason)
		}
		acked = append(acked, tk.Key)
	}
	lag := int(n.metric("tokencache_persist_backlog_entries"))
	applied := uint64(n.metric("tokencache_state_applied_index"))
	if lag < 200 {
		t.Fatalf("persist backlog = %d before the kill, want the 200 queued writes", lag)
	}
	if err := n.stop(syscall.SIGKILL); err == nil {
		t.Fatal("SIGKILL: process exited cleanly")
	}
	proxy.Release()

	n.start() // same data dir: a durable log would be replayed from it
	// A durable log is replayed at start; give the replay a moment.
	var after uint64
	deadline := time.Now().Add(5 * time.Second)
	for {
		after = uint64(n.metric("tokencache_state_applied_index"))
		if after >= applied || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	durable := after >= applied
	var missing int
	if durable {
		waitFor(t, 20*time.Second, "every acknowledged token in MySQL after the replay", func() bool {
			r, _ := rowCount(t, db, acked)
			return r == len(acked)
		})
	} else {
		rows, _ := rowCount(t, db, acked)
		missing = len(acked) - rows
		if missing > lag {
			t.Fatalf("SIGKILL lost %d acknowledged tokens, more than the %d queued at the kill", missing, lag)
		}
	}
	t.Logf("durable log: %v (applied index %d before the kill, %d after the restart); lost %d of %d acknowledged, %d were queued",
		durable, applied, after, missing, len(acked), lag)
	// Whatever was lost, nothing that reached MySQL came back different:
	// the revoked token is still revoked.
	if code, reason := n.validate(b.Token); code != 401 || reason != "revoked" {
		t.Errorf("validate(revoked) after SIGKILL and restart = %d %q, want 401 revoked", code, reason)
	}
	if code, _ := n.validate(a.Token); code != 200 {
		t.Errorf("validate(persisted) after SIGKILL and restart = %d, want 200", code)
	}
}

// TestMySQLNoSecretInDump: a mariadb-dump of the database holds no token
// secret, in any encoding a tool would print it.
func TestMySQLNoSecretInDump(t *testing.T) {
	srv := mysqltest.Shared(t)
	dump := requireTool(t, "mariadb-dump", "mysqldump")
	db := srv.NewDatabase(t)
	n := startNode(t, "", mysqlEnv(db, ""))
	admin := n.adminToken()
	var toks []issued
	for i := range 50 {
		toks = append(toks, n.issue(admin, map[string]any{"username": fmt.Sprintf("d%d", i), "type": "user"}))
	}
	if err := n.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(srv.Addr(), ":")
	cmd := exec.Command(dump, "--no-defaults", "--host="+host, "--port="+port, "--protocol=tcp",
		"--user="+db.User, "--single-transaction", "--skip-extended-insert", db.Name)
	cmd.Env = append(cmd.Environ(), "MYSQL_PWD="+db.Password)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", dump, err)
	}
	text := string(out)
	if !strings.Contains(text, "INSERT INTO `tokens`") {
		t.Fatalf("the dump has no token rows:\n%.2000s", text)
	}
	for _, tk := range toks {
		_, secret, _ := strings.Cut(tk.Token, ".")
		raw, err := base64.RawURLEncoding.DecodeString(secret)
		if err != nil {
			t.Fatal(err)
		}
		for _, form := range []string{secret, tk.Token, fmt.Sprintf("%X", raw), fmt.Sprintf("%x", raw), string(raw)} {
			if strings.Contains(text, form) {
				t.Fatalf("the dump contains the secret of %s", tk.Key)
			}
		}
	}
}

// TestMySQLOutage freezes (kill -STOP) and then stops a private mariadbd
// under two nodes, one writing through and one writing behind, and checks
// DESIGN §4's outage rules: cached tokens keep validating; a miss answers
// 503 store_unavailable, never valid, well within pool_timeout; a
// write-through write answers 503; write-behind queues up to its bound and
// then answers 503; once the database is back, both nodes reconnect by
// themselves and every acknowledged write is in MySQL.
func TestMySQLOutage(t *testing.T) {
	srv := mysqltest.StartPrivate(t)
	dbT, dbB := srv.NewDatabase(t), srv.NewDatabase(t)
	const poolTimeout, queryTimeout = 3 * time.Second, time.Second
	common := []string{"TOKENCACHE_CACHE_CAPACITY=10", "TOKENCACHE_CACHE_SHARDS=1",
		"TOKENCACHE_PERSIST_POOL_TIMEOUT=3s", "TOKENCACHE_PERSIST_QUERY_TIMEOUT=1s"}
	through := startNode(t, "", mysqlEnv(dbT, "", common...))
	behind := startNode(t, "", mysqlEnv(dbB, "", append(common, "TOKENCACHE_PERSIST_WRITE_MODE=behind",
		"TOKENCACHE_PERSIST_MAX_PENDING=50", "TOKENCACHE_PERSIST_BATCH_SIZE=10")...))
	adminT, adminB := through.adminToken(), behind.adminToken()
	var ackedT, ackedB []string

	for _, fault := range []string{"pause", "stop"} {
		t.Logf("== %s", fault)
		var toks []issued
		for i := range 30 {
			tk := through.issue(adminT, map[string]any{"username": fmt.Sprintf("%s%d", fault, i), "type": "user"})
			toks = append(toks, tk)
			ackedT = append(ackedT, tk.Key)
		}
		cached, evicted := toks[29], toks[0]
		if code, _ := through.validate(cached.Token); code != 200 {
			t.Fatalf("validate(cached) = %d before the fault", code)
		}
		switch fault {
		case "pause":
			srv.Pause(t)
		case "stop":
			srv.Stop(t)
		}

		start := time.Now()
		if code, reason := through.validate(cached.Token); code != 200 || time.Since(start) > 500*time.Millisecond {
			t.Errorf("%s: validate(cached) = %d %s after %s, want 200 at once", fault, code, reason, time.Since(start))
		}
		for range 3 {
			start = time.Now()
			code, reason := through.validate(evicted.Token)
			took := time.Since(start)
			if code != 503 || reason != "store_unavailable" {
				t.Errorf("%s: validate(evicted) = %d %q, want 503 store_unavailable", fault, code, reason)
			}
			if took > poolTimeout {
				t.Errorf("%s: validate(evicted) took %s, more than pool_timeout %s", fault, took, poolTimeout)
			}
			t.Logf("%s: miss answered %d in %s", fault, code, took.Round(time.Millisecond))
		}
		if code, _ := through.validate(randomToken()); code == 200 {
			t.Errorf("%s: validate(never issued) = 200", fault)
		}
		start = time.Now()
		if _, code, reason := through.tryIssue(adminT, map[string]any{"username": "during", "type": "user"}); code != 503 {
			t.Errorf("%s: write-through issue = %d %s, want 503", fault, code, reason)
		} else {
			t.Logf("%s: write-through issue answered 503 %s in %s", fault, reason, time.Since(start).Round(time.Millisecond))
		}
		queued, full := 0, ""
		for i := 0; i < 100 && full == ""; i++ {
			tk, code, reason := behind.tryIssue(adminB, map[string]any{"username": fmt.Sprintf("b%s%d", fault, i), "type": "session"})
			switch code {
			case 201:
				queued++
				ackedB = append(ackedB, tk.Key)
			case 503:
				full = reason
			default:
				t.Fatalf("%s: write-behind issue = %d %s", fault, code, reason)
			}
		}
		if queued < 40 || full == "" {
			t.Errorf("%s: write-behind queued %d writes, then %q; want about max_pending (50), then 503", fault, queued, full)
		}
		t.Logf("%s: write-behind queued %d, then 503 %s", fault, queued, full)

		switch fault {
		case "pause":
			srv.Resume(t)
		case "stop":
			srv.Restart(t)
		}
		waitFor(t, 30*time.Second, fault+": the evicted token validates again", func() bool {
			code, _ := through.validate(evicted.Token)
			return code == 200
		})
		waitFor(t, 30*time.Second, fault+": write-through accepts writes again", func() bool {
			tk, code, _ := through.tryIssue(adminT, map[string]any{"username": "after" + fault, "type": "user"})
			if code == 201 {
				ackedT = append(ackedT, tk.Key)
			}
			return code == 201
		})
		for _, n := range []*node{through, behind} {
			waitFor(t, 30*time.Second, fault+": the write backlog drained", func() bool {
				return n.metric("tokencache_persist_backlog_entries") == 0
			})
		}
		if rows, _ := rowCount(t, dbT, ackedT); rows != len(ackedT) {
			t.Errorf("%s: MySQL holds %d of the %d acknowledged write-through tokens", fault, rows, len(ackedT))
		}
		if rows, _ := rowCount(t, dbB, ackedB); rows != len(ackedB) {
			t.Errorf("%s: MySQL holds %d of the %d acknowledged write-behind tokens", fault, rows, len(ackedB))
		}
	}
}
