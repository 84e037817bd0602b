package persist

import (
	"errors"
	"strings"
	"testing"
)

func TestConfigShards(t *testing.T) {
	mysqlCfg := func(shards ...string) Config {
		c := DefaultConfig()
		c.Store, c.Username, c.Shards = StoreMySQL, "tc", shards
		return c
	}
	if err := mysqlCfg("jdbc:mysql://a/tc", "jdbc:mysql://b/tc").Validate(); err != nil {
		t.Errorf("Validate(2 mysql shards, no url) = %v, want nil", err)
	}
	bad := []struct {
		cfg  Config
		want string
	}{
		{mysqlCfg("jdbc:mysql://a/tc", "jdbc:mysql://a/tc"), "repeats persist.shards[0]"},
		{mysqlCfg("jdbc:mysql://a/tc", "jdbc:sqlite:x.db"), "persist.shards[1] is a sqlite URL"},
		{mysqlCfg("jdbc:mysql://a/tc?useFoo=1"), "persist.shards[0]"},
		{mysqlCfg("jdbc:mysql://a/tc?sql_mode=%27%27"), "not strict"},
		{func() Config { c := DefaultConfig(); c.Shards = []string{"jdbc:sqlite::memory:"}; return c }(), "in-memory"},
		{func() Config {
			c := DefaultConfig()
			c.Store, c.Shards = StoreMemory, []string{"jdbc:sqlite:a.db"}
			return c
		}(), "not used by the memory store"},
	}
	for _, tc := range bad {
		err := tc.cfg.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(shards %v) = %v, want ErrConfig mentioning %q", tc.cfg.Shards, err, tc.want)
		}
	}
	// A shard URL never shows a password when the config is printed.
	c := mysqlCfg("jdbc:mysql://u:s3cr3t@a/tc")
	if s := c.String(); strings.Contains(s, "s3cr3t") {
		t.Errorf("Config.String() = %s, shows a shard's password", s)
	}
}
