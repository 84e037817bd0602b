package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveOutcome runs serve with environ and reports whether it accepted the
// configuration: it reached "tokencache is serving", or failed only because
// the database did not answer (a condition of the moment, not of the
// configuration). It stops a serve that started.
func serveOutcome(t *testing.T, environ []string) (accepted bool, stderr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() { done <- runCLIContext(t, ctx, environ, "", &out, &errOut, "serve") }()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case code := <-done:
			s := errOut.String()
			if code == exitOK {
				t.Errorf("serve exited 0 by itself: %s", s)
			}
			return strings.Contains(s, "cannot open the mysql store") && strings.Contains(s, "connection refused"), s
		case <-deadline:
			t.Fatalf("serve neither served nor stopped within 60s: %s", errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
		if s := errOut.String(); strings.Contains(s, "tokencache is serving") {
			cancel()
			<-done
			return true, s
		}
	}
}

// TestConfigCheckAgreesWithServe feeds every example configuration and a
// table of bad ones to `config check` and to `serve`: check must accept
// exactly what serve accepts. A row with a want says which of the two it
// must be as well.
func TestConfigCheckAgreesWithServe(t *testing.T) {
	const (
		accepted = "accepted"
		refused  = "refused"
	)
	type tc struct{ name, file, yaml, want string }
	var cases []tc
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("configs: %v, %v", files, err)
	}
	for _, f := range files {
		cases = append(cases, tc{name: filepath.Base(f), file: f})
	}
	keys := writeKeysFile(t, "EdDSA")
	openKeys := writeKeysFile(t, "EdDSA")
	if err := os.Chmod(openKeys, 0o644); err != nil {
		t.Fatal(err)
	}
	emptyJWKS := writeFile(t, "empty.jwks", `{"keys":[]}`)
	idpJWKS := writeFile(t, "idp.jwks", string(publicJWKS(t)))
	trusted := "    trusted:\n      - issuer: https://idp.example.org\n        jwks_file: " + idpJWKS + "\n        audiences: [api]\n"
	for _, b := range []struct{ name, yaml, want string }{
		{"staleness below twice the heartbeat", "cluster:\n  max_staleness: 1500ms\n  election_timeout: 1s\n", ""},
		{"multi-host JDBC URL", "persist:\n  store: mysql\n  username: tc\n  url: jdbc:mysql://db1:3306,db2:3306/tok\n", ""},
		{"short admin token", "http:\n  admin_token: short-token\n", ""},
		{"cache capacity zero", "cache:\n  capacity: 0\n", ""},
		{"expiry above retention", "tokens:\n  expiry: 48h\n  retention: 24h\n", ""},
		{"bad prefix", "tokens:\n  prefix: BAD\n", ""},
		{"unknown store", "persist:\n  store: postgres\n", ""},
		{"password in URL", "persist:\n  store: mysql\n  username: tc\n  url: jdbc:mysql://db:3306/tok?password=x\n", ""},
		{"eviction in upper case", "cache:\n  eviction: ARC\n", ""},
		{"unknown eviction", "cache:\n  eviction: lfu\n", ""},
		{"valid minimal", "node:\n  id: ok1\n", ""},
		{"jwt valid", "tokens:\n  format: jwt\n  jwt:\n    keys_file: " + keys + "\n", ""},
		{"jwt with store none", "persist:\n  store: none\ntokens:\n  format: jwt\n  jwt:\n    keys_file: " + keys + "\n", ""},
		{"jwt keys file missing", "tokens:\n  jwt:\n    keys_file: /nonexistent/keys.pem\n", ""},
		{"jwt keys file readable by others", "tokens:\n  jwt:\n    keys_file: " + openKeys + "\n", ""},
		{"jwt format without keys", "tokens:\n  format: jwt\n", refused},
		{"jwt leeway too long", "tokens:\n  jwt:\n    keys_file: " + keys + "\n    leeway: 6m\n", ""},
		{"jwt trusted JWKS without keys", "tokens:\n  jwt:\n    keys_file: " + keys + "\n    trusted:\n      - issuer: https://idp.example.org\n        jwks_file: " + emptyJWKS + "\n        audiences: [api]\n", ""},
		{"jwt trusted valid", "tokens:\n  jwt:\n    keys_file: " + keys + "\n    trusted:\n      - issuer: https://idp.example.org\n        jwks_file: " + idpJWKS + "\n        audiences: [api]\n", ""},
		{"store none without jwt", "persist:\n  store: none\n", ""},
		// A validate-only node: trusted issuers, no keys of its own.
		{"jwt trusted without keys file", "tokens:\n  jwt:\n" + trusted, accepted},
		{"jwt trusted without keys file, issuer empty", "tokens:\n  jwt:\n    issuer: \"\"\n" + trusted, accepted},
		{"jwt trusted without keys file, store none", "persist:\n  store: none\ntokens:\n  jwt:\n" + trusted, accepted},
		{"jwt format with trusted, without keys file", "tokens:\n  format: jwt\n  jwt:\n" + trusted, refused},
		{"jwt keys file, issuer empty", "tokens:\n  jwt:\n    issuer: \"\"\n    keys_file: " + keys + "\n", refused},
	} {
		cases = append(cases, tc{name: b.name, yaml: b.yaml, want: b.want})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := c.file
			if file == "" {
				file = writeFile(t, "c.yaml", c.yaml)
			}
			environ := []string{
				"TOKENCACHE_CONFIG=" + file,
				"TOKENCACHE_NODE_DATA_DIR=" + t.TempDir(),
				"TOKENCACHE_HTTP_ADDR=127.0.0.1:0",
				"TOKENCACHE_CLUSTER_GOSSIP_ADDR=" + freeAddr(t),
				"TOKENCACHE_CLUSTER_RAFT_ADDR=" + freeAddr(t),
				"TOKENCACHE_LOG_FORMAT=json",
			}
			if strings.Contains(c.name, "mysql") {
				// The example's host does not exist here; a closed port
				// on loopback makes the database refuse, not the name fail.
				environ = append(environ, "TOKENCACHE_PERSIST_URL=jdbc:mysql://127.0.0.1:1/tokencache?tls=preferred",
					"TOKENCACHE_PERSIST_PASSWORD=example-password")
			}
			code, stdout, checkErr := runCLI(t, environ, "", "config", "check", file)
			checked := code == exitOK
			served, serveErr := serveOutcome(t, environ)
			if checked != served {
				t.Errorf("config check accepted=%v (exit %d: %s%s) but serve accepted=%v:\n%s", checked, code, stdout, checkErr, served, serveErr)
			}
			if c.want != "" && (c.want == accepted) != checked {
				t.Errorf("config check accepted=%v (exit %d: %s%s), serve accepted=%v; want both %s:\n%s", checked, code, stdout, checkErr, served, c.want, serveErr)
			}
		})
	}
}
