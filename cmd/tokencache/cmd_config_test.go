package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestConfigCheck(t *testing.T) {
	valid := writeFile(t, "valid.yaml", "node:\n  id: n1\ncache:\n  capacity: 5000\n")
	warns := writeFile(t, "warns.yaml", "node:\n  id: n1\npersist:\n  store: memory\n")
	invalid := writeFile(t, "invalid.yaml", `
node:
  id: n1
cache:
  capacity: 0
  evicton: lru
tokens:
  expiry: 48h
  pepper: PEPPER-SECRET-VALUE
cluster:
  encrypt_key: ENCRYPT-SECRET
`)
	broken := writeFile(t, "broken.yaml", "cache: [\n")
	tests := []struct {
		name       string
		args       []string
		environ    []string
		code       int
		stdout     []string // substrings
		stderr     []string
		notInOuput []string
	}{
		{"valid", []string{"config", "check", valid}, nil, exitOK, []string{"configuration is valid"}, nil, nil},
		{"valid with warnings", []string{"config", "check", warns}, nil, exitOK,
			[]string{"configuration is valid"}, []string{"warning: persist.store: memory"}, nil},
		{"every problem", []string{"config", "check", invalid}, nil, exitError, nil,
			[]string{"4 problems", "cache.evicton: unknown key", "did you mean cache.eviction?", "cache.capacity: must be positive",
				"tokens.expiry: 48h must be less than tokens.retention", "cluster.encrypt_key: "},
			[]string{"PEPPER-SECRET-VALUE", "ENCRYPT-SECRET", "configuration is valid"}},
		{"environment is applied", []string{"config", "check", valid}, []string{"TOKENCACHE_CACHE_CAPACITY=-1"}, exitError, nil,
			[]string{"cache.capacity: must be positive, got -1"}, nil},
		{"unknown variable", []string{"config", "check", valid}, []string{"TOKENCACHE_CACHE_CAPACTY=10"}, exitError, nil,
			[]string{"TOKENCACHE_CACHE_CAPACTY: unknown environment variable"}, nil},
		{"missing file", []string{"config", "check", "/nonexistent/tc.yaml"}, nil, exitError, nil,
			[]string{"error: cannot read config file"}, nil},
		{"syntax error", []string{"config", "check", broken}, nil, exitError, nil, []string{"error: cannot parse config file"}, nil},
		{"no file", []string{"config", "check"}, nil, exitUsage, nil, []string{"takes 1 argument"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.environ, "", tt.args...)
			if code != tt.code {
				t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout = %q, want %q in it", stdout, s)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr = %q, want %q in it", stderr, s)
				}
			}
			for _, s := range tt.notInOuput {
				if strings.Contains(stdout+stderr, s) {
					t.Errorf("output contains %q:\n%s%s", s, stdout, stderr)
				}
			}
		})
	}
}

func TestConfigShow(t *testing.T) {
	file := writeFile(t, "c.yaml", `
node:
  id: n7
http:
  admin_token: FILE-ADMIN-SECRET-000
persist:
  store: mysql
  url: jdbc:mysql://db:3306/tokencache
  username: tc
`)
	environ := []string{
		"TOKENCACHE_PERSIST_PASSWORD=ENV-DB-SECRET",
		"TOKENCACHE_TOKENS_PEPPER=ENV-PEPPER-SECRET-000",
		"TOKENCACHE_TOKENS_SAFE_PASSWORD=ENV-SAFE-SECRET-00000",
		"TOKENCACHE_CLUSTER_ENCRYPT_KEY=MDEyMzQ1Njc4OWFiY2RlZg==",
		"TOKENCACHE_CACHE_CAPACITY=4096",
	}
	secrets := []string{"FILE-ADMIN-SECRET-000", "ENV-DB-SECRET", "ENV-PEPPER-SECRET-000",
		"ENV-SAFE-SECRET-00000", "MDEyMzQ1Njc4OWFiY2RlZg=="}

	code, stdout, stderr := runCLI(t, environ, "", "config", "show", "--config", file)
	if code != exitOK {
		t.Fatalf("config show: exit code %d, stderr %s", code, stderr)
	}
	assertNoSecrets(t, "config show", stdout+stderr, secrets)
	for _, want := range []string{"id: n7", "capacity: 4096", "admin_token: " + redacted, "pepper: " + redacted,
		"url: jdbc:mysql://db:3306/tokencache", "password: " + redacted, "safe_password: " + redacted} {
		if !strings.Contains(stdout, want) {
			t.Errorf("config show = %s\nwant %q in it", stdout, want)
		}
	}

	// -o json, and the file from TOKENCACHE_CONFIG.
	code, stdout, stderr = runCLI(t, append(environ, "TOKENCACHE_CONFIG="+file), "", "config", "show", "-o", "json")
	if code != exitOK {
		t.Fatalf("config show -o json: exit code %d, stderr %s", code, stderr)
	}
	assertNoSecrets(t, "config show -o json", stdout, secrets)
	var m map[string]map[string]any
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatalf("config show -o json = %s: %v", stdout, err)
	}
	if m["node"]["id"] != "n7" || m["http"]["admin_token"] != redacted || m["tokens"]["expiry"] != "1h" {
		t.Errorf("config show -o json = %v, want node.id n7, a redacted admin token, expiry 1h", m)
	}

	// A broken configuration is still shown, with its problems and exit 1.
	code, stdout, stderr = runCLI(t, []string{"TOKENCACHE_CACHE_CAPACITY=0"}, "", "config", "show")
	if code != exitError || !strings.Contains(stdout, "capacity: 0") || !strings.Contains(stderr, "cache.capacity: must be positive") {
		t.Errorf("config show of an invalid configuration: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestConfigDefault(t *testing.T) {
	code, stdout, stderr := runCLI(t, nil, "", "config", "default")
	if code != exitOK {
		t.Fatalf("config default: exit code %d, stderr %s", code, stderr)
	}
	for _, want := range []string{"# Lifetime of a token that asks for none.\n  expiry: 1h", "max_lifetime: 8760h",
		"pool_recycle: -1", "raft_store: boltdb", "TOKENCACHE_PERSIST_URL"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("config default lacks %q", want)
		}
	}
	path := writeFile(t, "default.yaml", stdout)
	code, out, errOut := runCLI(t, nil, "", "config", "check", path)
	if code != exitOK || !strings.Contains(out, "configuration is valid") {
		t.Errorf("config check of `config default`: exit %d, %s%s", code, out, errOut)
	}
}
