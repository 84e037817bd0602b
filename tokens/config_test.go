package tokens

import (
	"strings"
	"testing"
)

// The listing limits and the token prefix are the service's alone (the HTTP
// API only checks a listing's limit is a positive integer): their defaults
// and their validation, formerly also in httpapi.Config.
func TestConfigListingLimitsAndPrefix(t *testing.T) {
	c := DefaultConfig()
	if c.ListLimit != 100 || c.MaxListLimit != 10000 || c.Prefix != "tc" {
		t.Errorf("DefaultConfig() lists %d (at most %d), prefix %q; want 100 (at most 10000), tc", c.ListLimit, c.MaxListLimit, c.Prefix)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"prefix", func(c *Config) { c.Prefix = "TC" }, "tokens.prefix"},
		{"empty prefix", func(c *Config) { c.Prefix = "" }, "tokens.prefix"},
		{"list limit", func(c *Config) { c.ListLimit = 20000 }, "default listing limit"},
		{"max list limit", func(c *Config) { c.MaxListLimit = 0 }, "largest listing limit"},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
}
