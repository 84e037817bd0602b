package replica

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/tokencache/tokencache/cache"
)

// TestComponentTaggedOnce checks that the state and its writer each tag the
// logger they are given with their own component, once (tokens' test of the
// same name covers the service).
func TestComponentTaggedOnce(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	c, err := cache.New(cache.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	state, err := NewMachine(DefaultWriterConfig(), c, openMemory(t), log)
	if err != nil {
		t.Fatal(err)
	}
	state.log.Info("from state")
	state.writer.log.Info("from writer")
	want := []string{`"component":"state"`, `"component":"writer"`}
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
