// Package mysqltest gives tests a real MariaDB (or MySQL) server: the one
// `make test` starts with scripts/mariadb.sh (TOKENCACHE_TEST_MYSQL_DSN), a
// fresh database on it per test, or a private server of a test's own that
// it may pause, stop and restart.
//
// Without TOKENCACHE_TEST_MYSQL_DSN a test skips, unless
// TOKENCACHE_TEST_REQUIRE or CI is set: then it fails, since make test and
// CI always provide the server. A DSN that is set but whose server cannot be
// reached always fails the test.
package mysqltest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Environment variables scripts/mariadb.sh prints and scripts/test.sh
// exports.
const (
	EnvDSN     = "TOKENCACHE_TEST_MYSQL_DSN"
	EnvRequire = "TOKENCACHE_TEST_REQUIRE"
)

// Server is a MariaDB server the tests can reach.
type Server struct {
	// DSN is the go-sql-driver/mysql DSN of a user that may create
	// databases (user:pass@tcp(127.0.0.1:port)/db).
	DSN string
	// PID is the mariadbd process id (0 when unknown: a shared server
	// given only by its DSN).
	PID int
	cfg *mysql.Config
	dir string // private server: its scripts/mariadb.sh directory
}

// Required reports whether a missing server fails a test instead of
// skipping it.
func Required() bool { return os.Getenv(EnvRequire) != "" || os.Getenv("CI") != "" }

// Shared returns the server of TOKENCACHE_TEST_MYSQL_DSN, checking that it
// answers. It skips the test when no DSN is set and a server is not
// required.
func Shared(t testing.TB) *Server {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		if Required() {
			t.Fatalf("%s is not set: make test starts MariaDB with scripts/mariadb.sh and exports it", EnvDSN)
		}
		t.Skipf("%s is not set; run make test (or eval \"$(scripts/mariadb.sh start DIR)\")", EnvDSN)
	}
	s, err := newServer(dsn, 0, "")
	if err != nil {
		t.Fatalf("%s: %v", EnvDSN, err)
	}
	s.ping(t)
	return s
}

func newServer(dsn string, pid int, dir string) (*Server, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("cannot parse the DSN: %w", err)
	}
	return &Server{DSN: dsn, PID: pid, cfg: cfg, dir: dir}, nil
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.cfg.Addr }

// User returns the user name of the DSN.
func (s *Server) User() string { return s.cfg.User }

// Password returns the password of the DSN.
func (s *Server) Password() string { return s.cfg.Passwd }

// DB opens a connection pool to database name ("" for none) as the DSN's
// user; the test closes it at its end.
func (s *Server) DB(t testing.TB, name string) *sql.DB {
	t.Helper()
	c := s.cfg.Clone()
	c.DBName = name
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 10*time.Second, 60*time.Second, 60*time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func (s *Server) ping(t testing.TB) {
	t.Helper()
	db := s.DB(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("cannot reach the MariaDB server at %s: %v", s.cfg.Addr, err)
	}
}

// Database is one database on a server, created for one test.
type Database struct {
	Name     string
	URL      string // jdbc:mysql://host:port/name
	User     string
	Password string
	server   *Server
}

// NewDatabase creates an empty database (utf8mb4) with a random name and
// drops it when the test ends.
func (s *Server) NewDatabase(t testing.TB) Database {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "tc_" + hex.EncodeToString(b[:])
	db := s.DB(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		t.Fatalf("cannot create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c := s.cfg.Clone()
		c.DBName, c.Timeout = "", 5*time.Second
		conn, err := mysql.NewConnector(c)
		if err != nil {
			return
		}
		db := sql.OpenDB(conn)
		defer db.Close()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil && !s.stopped() {
			t.Logf("cannot drop database %s: %v", name, err)
		}
	})
	return Database{
		Name: name, URL: "jdbc:mysql://" + s.cfg.Addr + "/" + name,
		User: s.cfg.User, Password: s.cfg.Passwd, server: s,
	}
}

// DB opens a connection pool to the database.
func (d Database) DB(t testing.TB) *sql.DB { t.Helper(); return d.server.DB(t, d.Name) }

// RepoRoot returns the directory of the module (where go.mod is), found
// from the working directory of the test.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root := repoRoot()
	if root == "" {
		t.Fatal("cannot find go.mod above the test's directory")
	}
	return root
}

// StartPrivate starts a MariaDB server of the test's own with
// scripts/mariadb.sh in a temporary directory and stops it when the test
// ends. It is for tests that pause, stop or restart the server. Without a
// required server and without mariadbd installed, it skips.
func StartPrivate(t testing.TB) *Server {
	t.Helper()
	if os.Getenv(EnvDSN) == "" && !Required() {
		if _, err := exec.LookPath("mariadbd"); err != nil {
			if _, err := os.Stat("/usr/sbin/mariadbd"); err != nil {
				t.Skip("mariadbd is not installed; run make test")
			}
		}
	}
	dir, err := os.MkdirTemp("", "tc-mariadb-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{dir: dir}
	t.Cleanup(func() {
		if err := s.script("stop"); err != nil {
			t.Errorf("cannot stop the private MariaDB: %v", err)
		}
		os.RemoveAll(dir)
	})
	s.start(t)
	return s
}

func (s *Server) scriptPath() string {
	return filepath.Join(repoRoot(), "scripts", "mariadb.sh")
}

func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func (s *Server) script(cmd string) error {
	c := exec.Command(s.scriptPath(), cmd, s.dir)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return fmt.Errorf("scripts/mariadb.sh %s: %w\n%s", cmd, err, stderr.String())
	}
	if cmd != "start" {
		return nil
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimPrefix(sc.Text(), "export ")
		k, v, ok := strings.Cut(line, "=")
		if ok {
			env[k] = strings.Trim(v, "'")
		}
	}
	pid, err := strconv.Atoi(env["TOKENCACHE_TEST_MYSQL_PID"])
	if err != nil || env[EnvDSN] == "" {
		return fmt.Errorf("scripts/mariadb.sh start printed %q", out)
	}
	ns, err := newServer(env[EnvDSN], pid, s.dir)
	if err != nil {
		return err
	}
	s.DSN, s.PID, s.cfg = ns.DSN, ns.PID, ns.cfg
	return nil
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	if err := s.script("start"); err != nil {
		t.Fatal(err)
	}
	s.ping(t)
}

// Pause freezes the server (SIGSTOP): connections stay open and nothing
// answers, like a server stuck on I/O.
func (s *Server) Pause(t testing.TB) { t.Helper(); s.signal(t, syscall.SIGSTOP) }

// Resume thaws a paused server (SIGCONT).
func (s *Server) Resume(t testing.TB) { t.Helper(); s.signal(t, syscall.SIGCONT) }

func (s *Server) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if s.dir == "" || s.PID == 0 {
		t.Fatal("only a private server (StartPrivate) may be signalled")
	}
	if err := syscall.Kill(s.PID, sig); err != nil {
		t.Fatalf("kill -%v %d: %v", sig, s.PID, err)
	}
}

// Kill kills the server with SIGKILL and waits until it is gone: committed
// transactions survive (InnoDB), connections break.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for !s.stopped() {
		if time.Now().After(deadline) {
			t.Fatalf("mariadbd %d still runs 10s after SIGKILL", s.PID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts the server down cleanly (scripts/mariadb.sh stop).
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.script("stop"); err != nil {
		t.Fatal(err)
	}
}

// Restart starts a stopped or killed private server again, on the same
// port with the same data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.dir == "" {
		t.Fatal("only a private server (StartPrivate) may be restarted")
	}
	s.start(t)
}

func (s *Server) stopped() bool {
	if s.PID == 0 {
		return false
	}
	if err := syscall.Kill(s.PID, 0); err != nil {
		return true
	}
	// A killed child of the script is reparented and reaped by init; a
	// zombie still answers kill 0.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.PID))
	return err != nil || strings.Contains(string(b), ") Z ")
}

// Latencies runs b.N calls of fn over 16 goroutines and reports p50, p99
// and the rate: the miss-path benchmarks of persist and e2e and their
// SELECT floors measure with it, so that their figures compare.
func Latencies(b *testing.B, fn func(i int) error) {
	const clients = 16
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < b.N; i = int(next.Add(1)) - 1 {
				t0 := time.Now()
				if err := fn(i); err != nil {
					failed.Store(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}

// PointSelectFloor measures the floor of the miss path: a prepared
// primary-key SELECT of a whole token row, from Go, over conns pooled
// connections, for random keys of the tokens table of db (Latencies).
func PointSelectFloor(b *testing.B, db *sql.DB, conns int) {
	b.Helper()
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	var keys [][]byte
	rows, err := db.Query("SELECT token_key FROM tokens")
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var k []byte
		if err := rows.Scan(&k); err != nil {
			b.Fatal(err)
		}
		keys = append(keys, k)
	}
	rows.Close()
	st, err := db.Prepare("SELECT token_key, idx, hash, format, type, username, realm, uid, scopes, name, service, client_id, " +
		"parent_key, credentials, sealed, created, expires, last_used, revoked_at, end_of_use FROM tokens WHERE token_key = ?")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	Latencies(b, func(int) error {
		r, err := st.Query(keys[mrand.N(len(keys))])
		if err != nil {
			return err
		}
		defer r.Close()
		if !r.Next() {
			return fmt.Errorf("row not found")
		}
		dest := make([]any, 20)
		for j := range dest {
			dest[j] = new(any)
		}
		return r.Scan(dest...)
	})
}
