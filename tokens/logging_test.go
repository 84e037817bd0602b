package tokens

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/tokencache/tokencache/cache"
	"github.com/tokencache/tokencache/replica"
)

// TestComponentTaggedOnce checks that the service tags the logger it is
// given with its own component, once (replica's test of the same name covers
// the state and its writer).
func TestComponentTaggedOnce(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	c, err := cache.New(cache.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	state, err := replica.NewMachine(replica.DefaultWriterConfig(), c, openMemory(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(DefaultConfig(), state, replica.NewLocalLog(state, 0), log)
	if err != nil {
		t.Fatal(err)
	}
	svc.log.Info("from service")
	want := []string{`"component":"tokens"`}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("logged %d lines, want %d: %s", len(lines), len(want), buf.String())
	}
	for i, l := range lines {
		if n := strings.Count(l, `"component":`); n != 1 || !strings.Contains(l, want[i]) {
			t.Errorf("log line %q carries component %d times, want once as %s", l, n, want[i])
		}
	}
}
