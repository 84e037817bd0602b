package httpapi

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Everything any server logs during the suite goes to logSink (at Debug,
// so the access log is included). TestMain then greps it for every token
// text the suite minted or sent, for "Bearer " and for the admin token: a
// single hit fails the run (reliability.md B15).

var (
	logSink  lockedBuffer
	secretMu sync.Mutex
	secrets  = map[string]bool{}
)

// noteSecret records a string that must never appear in a log.
func noteSecret(s string) {
	secretMu.Lock()
	secrets[s] = true
	secretMu.Unlock()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testLogger logs at Debug to the sink and to t.Log (until the test ends).
func testLogger(t testing.TB) *slog.Logger {
	tw := &tbWriter{t: t}
	t.Cleanup(func() { tw.done.Store(true) })
	return slog.New(slog.NewTextHandler(io.MultiWriter(&logSink, tw), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tbWriter forwards to t.Log; server goroutines that log after the test
// ended are only kept in the sink.
type tbWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func TestMain(m *testing.M) {
	noteSecret(testAdminToken)
	code := m.Run()
	if code == 0 {
		if err := checkLogSink(); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: log sink check:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// checkLogSink fails when a secret shows up in the logs, or when the logs
// are too thin for the check to mean anything.
func checkLogSink() error {
	logs := logSink.String()
	secretMu.Lock()
	defer secretMu.Unlock()
	// A whole-suite run must have logged enough for the check to mean
	// something; a -run subset may log little.
	if f := flag.Lookup("test.run"); f == nil || f.Value.String() == "" {
		if !strings.Contains(logs, "http request") || !strings.Contains(logs, "route=/v1/validate") {
			return fmt.Errorf("the suite logged no access log lines (%d bytes): the secret check would be vacuous", len(logs))
		}
		if len(secrets) < 10 {
			return fmt.Errorf("only %d secrets were noted: the secret check would be vacuous", len(secrets))
		}
	}
	var hits []string
	for s := range secrets {
		if strings.Contains(logs, s) {
			hits = append(hits, fmt.Sprintf("%.12s…", s))
		}
	}
	for _, s := range []string{"Bearer ", "bearer ", "Authorization"} {
		if strings.Contains(logs, s) {
			hits = append(hits, s)
		}
	}
	if len(hits) > 0 {
		return fmt.Errorf("%d secrets found in %d bytes of logs: %v", len(hits), len(logs), hits)
	}
	fmt.Printf("log sink check: %d bytes of logs, %d secrets, 0 hits\n", len(logs), len(secrets))
	return nil
}
