package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"log"
	"log/slog"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// Raft logs through hclog and memberlist through a *log.Logger; both are
// bridged into the node's slog logger, tagged component=raft|memberlist.

// newHCLogger returns an hclog.Logger that writes JSON lines into l.
func newHCLogger(l *slog.Logger) hclog.Logger {
	level := hclog.Info
	if l.Enabled(context.Background(), slog.LevelDebug) {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "raft",
		Level:      level,
		JSONFormat: true,
		Output:     &hclogBridge{log: l},
	})
}

type hclogBridge struct{ log *slog.Logger }

// reservedLogKeys are attribute names the daemon's own logs use.
var reservedLogKeys = map[string]bool{"node": true, "component": true, "time": true, "level": true, "msg": true, "err": true}

func (b *hclogBridge) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			b.log.Info(string(line))
			continue
		}
		lvl := slog.LevelInfo
		switch rec["@level"] {
		case "trace", "debug":
			lvl = slog.LevelDebug
		case "warn":
			lvl = slog.LevelWarn
		case "error":
			lvl = slog.LevelError
		}
		msg, _ := rec["@message"].(string)
		keys := make([]string, 0, len(rec))
		for k := range rec {
			if !strings.HasPrefix(k, "@") {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		attrs := make([]slog.Attr, 0, len(keys))
		for _, k := range keys {
			name := k
			if reservedLogKeys[k] {
				name = "raft_" + k // raft's own "node" etc. must not shadow ours
			}
			attrs = append(attrs, slog.Any(name, rec[k]))
		}
		b.log.LogAttrs(context.Background(), lvl, msg, attrs...)
	}
	return len(p), nil
}

// newStdLogger returns a *log.Logger whose "[LEVEL] text" lines go to l.
func newStdLogger(l *slog.Logger) *log.Logger {
	return log.New(&stdLogBridge{log: l}, "", 0)
}

type stdLogBridge struct{ log *slog.Logger }

func (b *stdLogBridge) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	lvl := slog.LevelInfo
	for _, pl := range []struct {
		prefix string
		level  slog.Level
	}{
		{"[TRACE]", slog.LevelDebug}, {"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo},
		{"[WARN]", slog.LevelWarn}, {"[ERR]", slog.LevelError}, {"[ERROR]", slog.LevelError},
	} {
		if strings.HasPrefix(line, pl.prefix) {
			lvl = pl.level
			line = strings.TrimSpace(strings.TrimPrefix(line, pl.prefix))
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	b.log.Log(context.Background(), lvl, line)
	return len(p), nil
}

// hclogStdOpts makes raft's snapshot store log through the hclog bridge with
// levels inferred from "[WARN]"-style prefixes.
var hclogStdOpts = hclog.StandardLoggerOptions{InferLevels: true}
