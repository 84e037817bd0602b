package main

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestHTTPMaxConnsKeys(t *testing.T) {
	c := validConfig()
	c.HTTP.MaxConns, c.HTTP.MaxConnsPerIP = 7, 3
	if h := httpConfig(c, "admin-token-0123456789"); h.Concurrency != 7 || h.MaxConnsPerIP != 3 {
		t.Errorf("httpConfig() Concurrency, MaxConnsPerIP = %d, %d; want 7, 3", h.Concurrency, h.MaxConnsPerIP)
	}
	for _, tt := range []struct {
		change func(*Config)
		key    string
	}{
		{func(c *Config) { c.HTTP.MaxConns = 0 }, "http.max_conns"},
		{func(c *Config) { c.HTTP.MaxConnsPerIP = -1 }, "http.max_conns_per_ip"},
	} {
		c := validConfig()
		tt.change(c)
		err := c.Validate()
		if probs, ok := err.(Problems); !ok || !hasProblem(probs, tt.key, "") {
			t.Errorf("Validate() = %v, want a problem at %s", err, tt.key)
		}
	}
	c = validConfig()
	c.HTTP.MaxConnsPerIP = c.HTTP.MaxConns + 1
	if !hasProblem(c.Warnings(), "http.max_conns_per_ip", "never applies") {
		t.Errorf("Warnings() = %v, want one at http.max_conns_per_ip", c.Warnings())
	}
}

// TestServeBoundsConnections runs serve with http.max_conns 4, then with
// http.max_conns_per_ip 2: with that many idle connections open, one more is
// answered 503 (429 for the per-IP limit) and closed; once they close,
// requests are served again.
func TestServeBoundsConnections(t *testing.T) {
	for _, tc := range []struct {
		env    string
		open   int
		status string
	}{
		{"TOKENCACHE_HTTP_MAX_CONNS=4", 4, " 503 "},
		{"TOKENCACHE_HTTP_MAX_CONNS_PER_IP=2", 2, " 429 "},
	} {
		t.Run(tc.env, func(t *testing.T) { checkConnLimit(t, tc.env, tc.open, tc.status) })
	}
}

func checkConnLimit(t *testing.T, env string, open int, status string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runCLIContext(t, ctx, []string{"TOKENCACHE_PERSIST_STORE=memory", env}, "", &stdout, &stderr,
			"serve", "--node-id", "n1", "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0",
			"--gossip-addr", freeAddr(t), "--raft-addr", freeAddr(t), "--log-format", "json")
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	// done is not watched here: the deferred stop above waits on it.
	addr := waitHTTPAddr(t, &stderr, nil)
	var idle []net.Conn
	for i := 0; i < open; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	time.Sleep(200 * time.Millisecond) // let the server accept them
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
	line, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if !strings.Contains(line, status) {
		t.Errorf("connection %d with %s answered %q, want%s", open+1, env, line, status)
	}
	for _, c := range idle {
		c.Close()
	}
	ok := false
	for deadline := time.Now().Add(10 * time.Second); !ok && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			ok = resp.StatusCode == 200
			resp.Body.Close()
		}
	}
	if !ok {
		t.Error("GET /healthz after the idle connections closed did not answer 200")
	}
}
