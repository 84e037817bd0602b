package clustertest

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// WaitFor polls cond every 10ms until it holds, and fails the test when
// timeout passes first; what names the condition in the failure.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Logger returns a logger that sends to tb.Log (quiet unless the test
// fails or runs with -v).
func Logger(tb testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(&tbWriter{tb: tb}, &slog.HandlerOptions{Level: level}))
}

// tbWriter writes to tb.Log until stop: a node's goroutines may log after
// its test returned, which testing does not allow.
type tbWriter struct {
	mu   sync.Mutex
	tb   testing.TB
	done bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tbWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// WriteJSON encodes w as the token service sends a write to forward.
func WriteJSON(tb testing.TB, w *tokens.WriteRequest) json.RawMessage {
	tb.Helper()
	b, err := json.Marshal(w)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Issue issues a user token for user through tn's service.
func Issue(tb testing.TB, tn *Node, user string) tokens.Issued {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iss, err := tn.Svc.Issue(ctx, tokens.IssueRequest{Username: user, Type: token.TypeUser, Scopes: "read"})
	if err != nil {
		tb.Fatalf("Issue on %s: %v", tn.ID, err)
	}
	return iss
}

// Validate returns the state tn answers for text, or the error when it
// cannot decide.
func Validate(tn *Node, text string) (token.State, error) {
	v := tn.Svc.Validate(context.Background(), []byte(text))
	return v.State, v.Err
}

// WantValid checks the state tn answers for text. A node whose fence is
// closed for a moment (a new leader, a heal) is given up to 3s to open it;
// any definite answer is checked at once.
func WantValid(tb testing.TB, tn *Node, text string, want token.State) {
	tb.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		st, err := Validate(tn, text)
		if errors.Is(err, tokens.ErrStale) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err != nil || st != want {
			tb.Fatalf("Validate on %s = %v, %v; want %v", tn.ID, st, err, want)
		}
		return
	}
}
