package replica

import (
	"strings"
	"testing"
	"time"
)

// TestDefaultWriterConfig pins the defaults of persist.write_mode,
// batch_size, flush_interval and max_pending (formerly in persist.Config).
func TestDefaultWriterConfig(t *testing.T) {
	c := DefaultWriterConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("DefaultWriterConfig().Validate() = %v, want nil", err)
	}
	if c.Mode != "through" || c.BatchSize != 512 || c.FlushInterval != 50*time.Millisecond || c.MaxPending != 100000 {
		t.Errorf("DefaultWriterConfig() = %+v, want through, 512, 50ms, 100000", c)
	}
}

func TestWriterConfigValidate(t *testing.T) {
	ok := func(f func(c *WriterConfig)) WriterConfig {
		c := DefaultWriterConfig()
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  WriterConfig
		want []string // substrings of the error; nil = valid
	}{
		{"behind", ok(func(c *WriterConfig) { c.Mode = "behind" }), nil},
		// The writer works with fewer pending changes than a batch (the
		// configuration check refuses it on the persist.* keys).
		{"pending below batch", ok(func(c *WriterConfig) { c.MaxPending = 2 }), nil},
		{"every number wrong", ok(func(c *WriterConfig) {
			c.BatchSize, c.FlushInterval, c.MaxPending, c.Mode = 0, 0, 0, "sideways"
		}), []string{`write_mode "sideways"`, "batch_size must be between", "flush_interval must be positive",
			"max_pending must be between"}},
		{"huge batch", ok(func(c *WriterConfig) { c.BatchSize = 1 << 30 }), []string{"batch_size must be between 1 and 100000"}},
		{"huge pending", ok(func(c *WriterConfig) { c.MaxPending = 1 << 30 }), []string{"max_pending must be between 1 and 100000000"}},
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
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tc.want)
			}
			lines := strings.Split(err.Error(), "\n")
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
			if len(lines) != len(tc.want) {
				t.Errorf("Validate() reported %d problems, want %d: %v", len(lines), len(tc.want), err)
			}
			for _, l := range lines {
				if !strings.HasPrefix(l, "persist.") {
					t.Errorf("problem %q does not start with its key", l)
				}
			}
		})
	}
}
