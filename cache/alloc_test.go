package cache

import (
	"context"
	"testing"
	"time"

	"github.com/tokencache/tokencache/token"
)

// TestHotPathAllocs proves that Get, MarkUsed and a Lookup hit do not
// allocate, with every eviction policy.
func TestHotPathAllocs(t *testing.T) {
	for _, eviction := range []string{"lru", "2q", "arc"} {
		t.Run(eviction, func(t *testing.T) {
			cfg := testConfig(newFakeClock())
			cfg.Eviction, cfg.UseGranularity = eviction, time.Second
			c := mustNew(t, cfg)
			cached, pinned, missing := keyN(1), keyN(2), keyN(3)
			c.Put(rec(cached, 1))
			c.Unpin(1)
			c.Put(rec(pinned, 2))
			mustGet(t, c, cached, 1) // 2q and arc: promote to "frequent" once
			load := newFakeStore().get
			ctx := context.Background()
			at := token.At(epoch0)

			tests := []struct {
				name string
				fn   func()
			}{
				{"Get cached", func() { c.Get(cached) }},
				{"Get pinned", func() { c.Get(pinned) }},
				{"Get miss", func() { c.Get(missing) }},
				{"Lookup hit", func() { _, _, _ = c.Lookup(ctx, cached, load) }},
				{"MarkUsed within the granularity", func() { c.MarkUsed(cached, at) }},
				{"MarkUsed recorded", func() {
					at += token.Time(2 * time.Second)
					c.MarkUsed(cached, at)
					c.MarkUsed(pinned, at)
				}},
				{"MarkUsed missing key", func() { c.MarkUsed(missing, at) }},
			}
			for _, tt := range tests {
				if got := testing.AllocsPerRun(1000, tt.fn); got != 0 {
					t.Errorf("%s: %v allocations per call, want 0", tt.name, got)
				}
			}
			if uses := c.DrainUsed(10); len(uses) != 2 {
				t.Errorf("DrainUsed(10) = %d uses, want 2 (the loop recorded uses)", len(uses))
			}
		})
	}
}
