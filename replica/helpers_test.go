package replica

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokencache/tokencache/cache"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

type bytesBuffer struct{ b []byte }

func (w *bytesBuffer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *bytesBuffer) bytes() []byte               { return bytes.Clone(w.b) }
func (w *bytesBuffer) reader() io.Reader           { return bytes.NewReader(w.b) }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func openMemory(t testing.TB) persist.Store {
	t.Helper()
	return openStore(t, "memory", t.TempDir())
}

func openStore(t testing.TB, kind, dir string) persist.Store {
	t.Helper()
	cfg := persist.DefaultConfig()
	cfg.Store = kind
	st, err := persist.Open(context.Background(), cfg, dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newState returns a state over a fresh cache and store (a memory store when
// store is nil) whose writer runs until the test ends.
func newState(t testing.TB, store persist.Store, mode string) *Machine {
	t.Helper()
	if mode == "" {
		mode = WriteThrough
	}
	wcfg := DefaultWriterConfig()
	wcfg.Mode = mode
	wcfg.FlushInterval = 5 * time.Millisecond
	wcfg.RetryMax = 50 * time.Millisecond
	return newStateConfig(t, store, wcfg)
}

// newStateConfig is newState with a writer configured by wcfg.
func newStateConfig(t testing.TB, store persist.Store, wcfg WriterConfig) *Machine {
	t.Helper()
	if store == nil {
		store = openMemory(t)
	}
	ccfg := cache.DefaultConfig()
	ccfg.Shards = 1
	c, err := cache.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewMachine(wcfg, c, store, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Writer().Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Writer().Close(ctx); err != nil {
			t.Errorf("Writer().Close: %v", err)
		}
	})
	return s
}

// record returns a valid record of user, created at now.
func record(user string, now token.Time) *token.Token {
	return &token.Token{
		Key: token.NewKey(), Hash: token.Hash{1}, Created: now, Expires: now.Add(time.Hour),
		Username: user, Realm: token.DefaultRealm, Type: token.TypeSession,
	}
}

// put returns an OpPut of ts at now.
func put(now token.Time, ts ...*token.Token) *Command {
	return &Command{Op: OpPut, Time: now, Puts: ts}
}

// restoreInto writes a snapshot of src and restores it into dst.
func restoreInto(t testing.TB, src, dst *Machine) *Machine {
	t.Helper()
	var buf bytesBuffer
	if err := src.Snapshot().WriteTo(context.Background(), &buf); err != nil {
		t.Fatalf("Snapshot().WriteTo: %v", err)
	}
	if err := dst.Restore(context.Background(), buf.reader()); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	return dst
}

// faultyStore is a real store whose writes fail while fail is set, and
// which counts resets; shared makes it claim to be shared by every node.
type faultyStore struct {
	persist.Store
	fail   atomic.Bool
	shared bool
	resets atomic.Int32
}

func (s *faultyStore) Write(ctx context.Context, b *persist.Batch) error {
	if s.fail.Load() {
		return fmt.Errorf("%w: injected failure", persist.ErrUnavailable)
	}
	return s.Store.Write(ctx, b)
}

func (s *faultyStore) Reset(ctx context.Context) error {
	s.resets.Add(1)
	return s.Store.Reset(ctx)
}

func (s *faultyStore) Shared() bool { return s.shared }

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
