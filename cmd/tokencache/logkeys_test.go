package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// duplicateKeys returns the keys that appear more than once in one JSON
// object (a log line), at any depth.
func duplicateKeys(line []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	var dups []string
	var walk func(prefix string) error
	walk = func(prefix string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				key := prefix + k.(string)
				if seen[key] {
					dups = append(dups, key)
				}
				seen[key] = true
				if err := walk(key + "."); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(prefix); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	if err := walk(""); err != nil {
		return nil, err
	}
	return dups, nil
}

func TestDuplicateKeys(t *testing.T) {
	dups, err := duplicateKeys([]byte(`{"a":1,"b":{"c":1,"c":2},"a":[{"d":1}]}`))
	if err != nil || strings.Join(dups, ",") != "b.c,a" {
		t.Errorf("duplicateKeys() = %v, %v; want [b.c a]", dups, err)
	}
}

// TestLogLinesCarryEachKeyOnce runs serve with JSON logs at debug level,
// sends requests that log, and checks that no line carries a key (such as
// component) twice.
func TestLogLinesCarryEachKeyOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runCLIContext(t, ctx, []string{"TOKENCACHE_PERSIST_STORE=memory"}, "", &stdout, &stderr,
			"serve", "--node-id", "n1", "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0",
			"--gossip-addr", freeAddr(t), "--raft-addr", freeAddr(t), "--log-format", "json", "--log-level", "debug")
	}()
	addr := waitHTTPAddr(t, &stderr, done)
	for _, path := range []string{"/healthz", "/readyz", "/v1/validate", "/v1/tokens"} {
		resp, err := http.Get(fmt.Sprintf("http://%s%s", addr, path))
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	components := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		dups, err := duplicateKeys([]byte(line))
		if err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if len(dups) > 0 {
			t.Errorf("log line carries %v more than once: %s", dups, line)
		}
		var m map[string]any
		json.Unmarshal([]byte(line), &m)
		if c, ok := m["component"].(string); ok {
			components[c] = true
		}
	}
	if !components["httpapi"] {
		t.Errorf("components seen in the log = %v, want httpapi among them (the request log)", components)
	}
}
