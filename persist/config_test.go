package persist

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v, want nil", err)
	}
	want := Config{Store: "sqlite", PoolSize: 5, MaxOverflow: 10, PoolRecycle: -1, PoolTimeout: 30 * time.Second,
		QueryTimeout: 2 * time.Second, CreateTables: true}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("DefaultConfig() = %+v, want %+v", c, want)
	}
	if got := c.maxOpen(); got != 15 {
		t.Errorf("DefaultConfig().maxOpen() = %d, want 15", got)
	}
	if got := c.connMaxLifetime(); got != 0 {
		t.Errorf("DefaultConfig().connMaxLifetime() = %s, want 0 (never)", got)
	}
}

func TestValidate(t *testing.T) {
	ok := func(f func(c *Config)) Config {
		c := DefaultConfig()
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; nil = valid
	}{
		{"memory", ok(func(c *Config) { c.Store = "memory" }), nil},
		{"memory ignores the url", ok(func(c *Config) { c.Store = "memory"; c.URL = "jdbc:mysql://db/x" }), nil},
		{"sqlite path", ok(func(c *Config) { c.URL = "jdbc:sqlite:/var/lib/tc/tokens.db" }), nil},
		{"sqlite relative", ok(func(c *Config) { c.URL = "jdbc:sqlite:tokens.db" }), nil},
		{"mysql", ok(func(c *Config) { c.Store = "mysql"; c.URL = "jdbc:mysql://db:3306/tc"; c.Username = "tc" }), nil},
		{"unlimited overflow", ok(func(c *Config) { c.MaxOverflow = -1 }), nil},
		{"recycle", ok(func(c *Config) { c.PoolRecycle = time.Hour }), nil},
		{"unknown store", ok(func(c *Config) { c.Store = "redis" }), []string{`persist.store "redis"`}},
		{"empty store", ok(func(c *Config) { c.Store = "" }), []string{`persist.store ""`}},
		{"bad sqlite url", ok(func(c *Config) { c.URL = "sqlite:/x" }), []string{"must start with jdbc:"}},
		{"mysql url for sqlite", ok(func(c *Config) { c.URL = "jdbc:mysql://db/x" }), []string{"is a mysql URL but persist.store is sqlite"}},
		{"sqlite url for mysql", ok(func(c *Config) { c.Store = "mysql"; c.URL = "jdbc:sqlite:x.db"; c.Username = "u" }), []string{"is a sqlite URL but persist.store is mysql"}},
		{"mysql without url and user", ok(func(c *Config) { c.Store = "mysql" }), []string{"persist.url is required", "persist.username is required"}},
		{"every number wrong", ok(func(c *Config) {
			c.PoolSize, c.MaxOverflow, c.PoolTimeout, c.QueryTimeout = 0, -2, 0, -time.Second
		}), []string{"pool_size must be at least 1, got 0", "max_overflow must be -1", "pool_timeout must be positive",
			"query_timeout must be positive"}},
		{"negative pool size", ok(func(c *Config) { c.PoolSize = -3 }), []string{"pool_size must be at least 1, got -3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate() = %v, want an error wrapping ErrConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
			if got, want := strings.Count(err.Error(), "; ")+1, len(tc.want); got != want {
				t.Errorf("Validate() reported %d problems, want %d: %v", got, want, err)
			}
		})
	}
}

const secretPassword = "hunter2-Sup3rS3cret"

// TestPasswordNeverPrinted prints a Config every way the standard library
// can and checks that the password shows up in none of them.
func TestPasswordNeverPrinted(t *testing.T) {
	c := DefaultConfig()
	c.Store, c.URL, c.Username, c.Password = "mysql", "jdbc:mysql://db:3306/tc", "tc", secretPassword
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v", "%100v", "%-v"} {
		outs = append(outs, fmt.Sprintf(verb, c), fmt.Sprintf(verb, &c))
	}
	outs = append(outs, c.String(), c.GoString(), fmt.Sprint(c), fmt.Sprintln(c), fmt.Sprint([]Config{c}),
		fmt.Sprintf("%v", map[string]Config{"c": c}), fmt.Sprintf("%+v", struct{ C Config }{c}))
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("config", "cfg", c)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("config", "cfg", c, "ptr", &c)
	outs = append(outs, text.String(), js.String())
	for i, out := range outs {
		if strings.Contains(out, secretPassword) || strings.Contains(out, fmt.Sprintf("%x", secretPassword)) ||
			strings.Contains(out, fmt.Sprintf("%X", secretPassword)) {
			t.Errorf("output %d contains the password: %s", i, out)
		}
	}
	// The redacted forms still say that a password is set.
	if s := c.String(); !strings.Contains(s, redacted) || !strings.Contains(s, "Username:tc") {
		t.Errorf("String() = %s, want the username and %s", s, redacted)
	}
	if s := c.GoString(); !strings.HasPrefix(s, "persist.Config{") || !strings.Contains(s, redacted) {
		t.Errorf("GoString() = %s, want persist.Config{… %s …}", s, redacted)
	}
	if !strings.Contains(js.String(), `"password_set":true`) {
		t.Errorf("JSON log = %s, want password_set true", js.String())
	}
	// An empty password is not reported as redacted.
	c.Password = ""
	if s := c.String(); strings.Contains(s, redacted) {
		t.Errorf("String() without a password = %s, want no %s", s, redacted)
	}
	// Nor does a password in the URL (refused by Validate) get printed,
	// by the Config or by Validate.
	c.URL = "jdbc:mysql://tc:" + secretPassword + "@db:3306/tc"
	err := c.Validate()
	for _, out := range []string{c.String(), c.GoString(), fmt.Sprintf("%v", c.LogValue()), fmt.Sprint(err)} {
		if strings.Contains(out, secretPassword) {
			t.Errorf("output contains the password from the URL: %s", out)
		}
	}
	if err == nil || !strings.Contains(err.Error(), "persist.password") {
		t.Errorf("Validate() with a password in the URL = %v, want an error pointing to persist.password", err)
	}
	if !json.Valid(bytes.TrimSpace(js.Bytes())) {
		t.Errorf("JSON log is not valid JSON: %s", js.String())
	}
}
