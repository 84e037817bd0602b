package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// logLines decodes JSON log lines.
func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// waitServeLog waits until started holds for what serve logged so far,
// polling every 10ms; the test fails when serve exits first (a code on done;
// nil done is not watched) or timeout passes.
func waitServeLog(t *testing.T, stderr *syncBuffer, done <-chan int, timeout time.Duration, started func(log string) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !started(stderr.String()) {
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d before serving: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// httpAddrRE finds the HTTP address serve logs (JSON) once it listens.
var httpAddrRE = regexp.MustCompile(`"http_addr":"([^"]+)"`)

// waitHTTPAddr waits (waitServeLog, 30s) until serve, logging JSON, has
// logged the address its HTTP server listens on, and returns it.
func waitHTTPAddr(t *testing.T, stderr *syncBuffer, done <-chan int) string {
	t.Helper()
	var addr string
	waitServeLog(t, stderr, done, 30*time.Second, func(log string) bool {
		if m := httpAddrRE.FindStringSubmatch(log); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	return addr
}

func TestServeStartsAndStops(t *testing.T) {
	file := writeFile(t, "c.yaml", "node:\n  id: file-node\npersist:\n  store: memory\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runCLIContext(t, ctx, []string{"TOKENCACHE_CONFIG=" + file}, "", &stdout, &stderr,
			"serve", "--node-id", "flag-node", "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0",
			"--log-format", "json", "--log-level", "debug")
	}()
	waitServeLog(t, &stderr, done, 20*time.Second, func(log string) bool {
		return strings.Contains(log, "tokencache is serving")
	})
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("serve: exit code = %d after cancel, want %d", code, exitOK)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop after its context was cancelled")
	}
	if stdout.String() != "" {
		t.Errorf("serve wrote %q to stdout, want logs on stderr only", stdout.String())
	}
	var msgs []string
	for _, l := range logLines(t, stderr.String()) {
		msgs = append(msgs, l["msg"].(string))
		if l["node"] != "flag-node" {
			t.Errorf("log line %v: node = %v, want flag-node (the flag wins over the file)", l, l["node"])
		}
	}
	all := strings.Join(msgs, "|")
	for _, want := range []string{"starting tokencache", "tokencache is serving", "shutting down", "tokencache stopped"} {
		if !strings.Contains(all, want) {
			t.Errorf("serve logged %q, want %q among them", msgs, want)
		}
	}
}

func TestServeRefusesInvalidConfig(t *testing.T) {
	file := writeFile(t, "c.yaml", "cache:\n  capacity: 0\ntokens:\n  prefix: BAD\n  pepper: PEPPER-SECRET-XYZ\nlog:\n  levl: debug\n")
	code, stdout, stderr := runCLI(t, []string{"TOKENCACHE_HTTP_ADDR=nowhere"}, "",
		"serve", "--config", file, "--bootstrap-expect", "0")
	if code != exitError {
		t.Errorf("serve: exit code = %d, want %d", code, exitError)
	}
	for _, want := range []string{"invalid configuration (5 problems)", "cache.capacity:", "tokens.prefix:",
		"log.levl: unknown key", "http.addr:", "cluster.bootstrap_expect:"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("serve stderr = %q, want %q in it", stderr, want)
		}
	}
	if strings.Contains(stderr, "starting") || stdout != "" {
		t.Errorf("serve started with an invalid configuration: %q %q", stdout, stderr)
	}
	assertNoSecrets(t, "serve", stderr, []string{"PEPPER-SECRET-XYZ"})
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, lv, err := newLogger(&buf, "warn", "")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "k", "v")
	lines := logLines(t, buf.String()) // not a terminal: JSON
	if len(lines) != 1 || lines[0]["msg"] != "shown" {
		t.Errorf("newLogger(warn, \"\") logged %v, want only the warning as JSON", lines)
	}
	lv.Set(slog.LevelDebug)
	buf.Reset()
	log.Debug("now shown")
	if !strings.Contains(buf.String(), "now shown") {
		t.Errorf("after LevelVar.Set(debug), Debug logged %q", buf.String())
	}

	buf.Reset()
	log, _, err = newLogger(&buf, "INFO", "text")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hello", "k", "v")
	if got := buf.String(); !strings.Contains(got, "level=INFO msg=hello k=v") {
		t.Errorf("text logger wrote %q", got)
	}
	if _, _, err := newLogger(io.Discard, "loud", ""); err == nil {
		t.Errorf("newLogger(loud) = nil error, want one")
	}
}

// recordExit records calls of exit.
type recordExit struct {
	mu    sync.Mutex
	codes []int
	done  chan struct{}
}

func (r *recordExit) exit(code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.codes = append(r.codes, code)
	close(r.done)
}

func TestHandleSignals(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	rec := &recordExit{done: make(chan struct{})}
	var logBuf syncBuffer
	log := slog.New(slog.NewJSONHandler(&logBuf, nil))
	ctx, stop := handleSignals(context.Background(), sigs, log, rec.exit)
	defer stop()

	if ctx.Err() != nil {
		t.Fatalf("context done before any signal: %v", ctx.Err())
	}
	sigs <- syscall.SIGTERM
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("context not cancelled after SIGTERM")
	}
	if cause := context.Cause(ctx); cause == nil || !strings.Contains(cause.Error(), "terminated") {
		t.Errorf("Cause() = %v, want the signal", cause)
	}
	sigs <- syscall.SIGINT
	select {
	case <-rec.done:
	case <-time.After(5 * time.Second):
		t.Fatal("exit not called after a second signal")
	}
	if rec.codes[0] != exitError {
		t.Errorf("exit(%d), want exit(%d)", rec.codes[0], exitError)
	}
	if !strings.Contains(logBuf.String(), "exiting at once") {
		t.Errorf("log = %q, want the second signal logged", logBuf.String())
	}
}

func TestHandleSignalsStopWithoutSignal(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	ctx, stop := handleSignals(context.Background(), sigs, slog.New(slog.DiscardHandler), func(code int) {
		t.Errorf("exit(%d) called without a signal", code)
	})
	stop()
	stop() // idempotent
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("after stop, ctx.Err() = %v, want Canceled", ctx.Err())
	}
	sigs <- syscall.SIGTERM // nobody listens any more: must not call exit
}
