package httpapi

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "http.admin_token: is required") {
		t.Errorf("DefaultConfig().Validate() = %v, want only the missing admin token", err)
	}
	c.AdminToken = testAdminToken
	if err := c.Validate(); err != nil {
		t.Errorf("DefaultConfig() with an admin token: Validate() = %v, want nil", err)
	}
	for name, got := range map[string]any{
		"MaxBodyBytes": c.MaxBodyBytes, "MaxHeaderBytes": c.MaxHeaderBytes,
		"ReadTimeout": c.ReadTimeout, "WriteTimeout": c.WriteTimeout, "IdleTimeout": c.IdleTimeout,
	} {
		want := map[string]any{
			"MaxBodyBytes": 64 << 10, "MaxHeaderBytes": 8 << 10,
			"ReadTimeout": 5 * time.Second, "WriteTimeout": 5 * time.Second, "IdleTimeout": 60 * time.Second,
		}[name]
		if got != want {
			t.Errorf("DefaultConfig().%s = %v, want %v", name, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"addr", func(c *Config) { c.Addr = "localhost" }, "http.addr"},
		{"admin token charset", func(c *Config) { c.AdminToken = "has space" }, "http.admin_token"},
		{"admin token too long", func(c *Config) { c.AdminToken = strings.Repeat("a", maxTokenLen+1) }, "http.admin_token"},
		{"body", func(c *Config) { c.MaxBodyBytes = 0 }, "http.max_body_bytes"},
		{"headers", func(c *Config) { c.MaxHeaderBytes = 100 }, "http.max_header_bytes"},
		{"read timeout", func(c *Config) { c.ReadTimeout = 0 }, "http.read_timeout"},
		{"write timeout", func(c *Config) { c.WriteTimeout = -time.Second }, "http.write_timeout"},
		{"idle timeout", func(c *Config) { c.IdleTimeout = 0 }, "http.idle_timeout"},
		{"request timeout", func(c *Config) { c.RequestTimeout = 0 }, "http.request_timeout"},
		{"concurrency", func(c *Config) { c.Concurrency = 0 }, "http.concurrency"},
		{"conns per ip", func(c *Config) { c.MaxConnsPerIP = -1 }, "http.max_conns_per_ip"},
		{"drain", func(c *Config) { c.DrainDelay = -1 }, "http.drain_delay"},
		{"cookie", func(c *Config) { c.Authz.Cookie = "a;b" }, "authz.cookie"},
		{"rule prefix", func(c *Config) { c.Authz.Rules = []AuthzRule{{PathPrefix: "admin"}} }, "authz.rules[0].path_prefix"},
		{"rule encoded", func(c *Config) { c.Authz.Rules = []AuthzRule{{PathPrefix: "/a%2Fb"}} }, "authz.rules[0].path_prefix"},
		{"rule duplicate", func(c *Config) {
			c.Authz.Rules = []AuthzRule{{PathPrefix: "/a"}, {PathPrefix: "/a", Scopes: []string{"x"}}}
		}, "authz.rules[1].path_prefix"},
		{"rule scope", func(c *Config) { c.Authz.Rules = []AuthzRule{{PathPrefix: "/", Scopes: []string{"a b"}}} }, "authz.rules[0].scopes"},
	} {
		c := testConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want an error naming %s", tc.name, err, tc.want)
		}
	}

	// Every problem is reported, not just the first.
	c := testConfig()
	c.MaxBodyBytes, c.ReadTimeout, c.Concurrency = -1, 0, 0
	err := c.Validate()
	for _, key := range []string{"http.max_body_bytes", "http.read_timeout", "http.concurrency"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Validate() = %v, want it to name %s", err, key)
		}
	}
}

func TestCompileRulesLongestFirst(t *testing.T) {
	rules := compileRules([]AuthzRule{
		{PathPrefix: "/", Scopes: []string{"b", "a"}},
		{PathPrefix: "/api/admin", Scopes: []string{"admin"}},
		{PathPrefix: "/api"},
	})
	var got []string
	for _, r := range rules {
		got = append(got, r.prefix+"="+string(r.scopes))
	}
	wantEqual(t, "compiled rules", got, []string{"/api/admin=admin", "/api=", "/=a b"})
	s := &Server{rules: rules}
	for path, want := range map[string]int{"/api/admin/x": 0, "/api/adminx": 0, "/api/x": 1, "/apix": 1, "/x": 2, "": -1} {
		if got := s.match([]byte(path)); got != want {
			t.Errorf("match(%q) = %d, want %d", path, got, want)
		}
	}
}
