package cache

import (
	"testing"
	"time"

	"github.com/tokencache/tokencache/token"
)

func TestMarkUsed(t *testing.T) {
	cfg := testConfig(newFakeClock())
	cfg.UseGranularity = time.Second
	c := mustNew(t, cfg)
	k := keyN(1)
	r := rec(k, 1)
	r.LastUsed = token.At(epoch0)
	c.Put(r)
	at := func(d time.Duration) token.Time { return token.At(epoch0.Add(d)) }

	steps := []struct {
		name     string
		use      time.Duration
		recorded bool
	}{
		{"within the granularity of the record's LastUsed", 500 * time.Millisecond, false},
		{"exactly one granularity later", time.Second, false},
		{"older than the granularity", 1001 * time.Millisecond, true},
		{"within the granularity of the recorded use", 1500 * time.Millisecond, false},
		{"before the recorded use", 200 * time.Millisecond, false},
		{"next granularity", 3 * time.Second, true},
	}
	want := at(0)
	for _, s := range steps {
		c.MarkUsed(k, at(s.use))
		if s.recorded {
			want = at(s.use)
		}
		if _, used, _ := c.Get(k); used != want {
			t.Errorf("%s: Get(%q) last used = %v, want %v", s.name, k, used, want)
		}
	}
	uses := c.DrainUsed(10)
	if len(uses) != 1 || uses[0] != (Use{Key: k, At: at(3 * time.Second)}) {
		t.Errorf("DrainUsed(10) = %v, want the latest use only", uses)
	}
	if uses := c.DrainUsed(10); len(uses) != 0 {
		t.Errorf("second DrainUsed(10) = %v, want none", uses)
	}
}

func TestMarkUsedNotInMemory(t *testing.T) {
	c := mustNew(t, testConfig(newFakeClock()))
	k := keyN(1)
	c.MarkUsed(k, token.At(epoch0))
	c.Delete(keyN(2), 1, 0)
	c.MarkUsed(keyN(2), token.At(epoch0)) // a pinned deletion
	if uses := c.DrainUsed(10); len(uses) != 0 {
		t.Errorf("DrainUsed(10) = %v, want none", uses)
	}
}

func TestMarkUsedOnCachedRecord(t *testing.T) {
	c := mustNew(t, testConfig(newFakeClock()))
	k := keyN(1)
	mustLookup(t, c, k, newFakeStore(rec(k, 1)).get)
	c.MarkUsed(k, token.At(epoch0))
	if _, used, _ := c.Get(k); used != token.At(epoch0) {
		t.Errorf("Get(%q) last used = %v, want %v", k, used, token.At(epoch0))
	}
	// A deleted key's pending use is dropped.
	c.Delete(k, 2, 1)
	if uses := c.DrainUsed(10); len(uses) != 0 {
		t.Errorf("DrainUsed(10) after Delete = %v, want none", uses)
	}
}

func TestDrainUsed(t *testing.T) {
	c := mustNew(t, testConfig(newFakeClock()))
	const n = 100
	want := map[token.Key]token.Time{}
	for i := range n {
		k := keyN(i)
		c.Put(rec(k, uint64(i+1)))
		at := token.At(epoch0.Add(time.Duration(i) * time.Hour))
		c.MarkUsed(k, at)
		want[k] = at
	}
	if uses := c.DrainUsed(0); uses != nil {
		t.Errorf("DrainUsed(0) = %v, want nil", uses)
	}
	got := map[token.Key]token.Time{}
	for range n {
		uses := c.DrainUsed(7)
		if len(uses) > 7 {
			t.Fatalf("DrainUsed(7) returned %d uses", len(uses))
		}
		if len(uses) == 0 {
			break
		}
		for _, u := range uses {
			if _, dup := got[u.Key]; dup {
				t.Errorf("DrainUsed returned %q twice", u.Key)
			}
			got[u.Key] = u.At
		}
	}
	if len(got) != n {
		t.Fatalf("DrainUsed drained %d uses, want %d", len(got), n)
	}
	for k, at := range want {
		if got[k] != at {
			t.Errorf("use of %q = %v, want %v", k, got[k], at)
		}
	}
}

func TestApplyTouch(t *testing.T) {
	c := mustNew(t, testConfig(newFakeClock()))
	a, b := keyN(1), keyN(2)
	c.Put(rec(a, 1))
	c.Put(rec(b, 2))
	t1, t2, t3 := token.At(epoch0.Add(time.Hour)), token.At(epoch0.Add(2*time.Hour)), token.At(epoch0.Add(3*time.Hour))
	c.MarkUsed(a, t2)
	c.MarkUsed(b, t2)

	c.ApplyTouch(a, t1) // older than the local use: nothing changes
	c.ApplyTouch(b, t3) // newer: moves forward and the local use is moot
	c.ApplyTouch(keyN(3), t3)
	if _, used, _ := c.Get(a); used != t2 {
		t.Errorf("Get(%q) last used = %v, want %v", a, used, t2)
	}
	if _, used, _ := c.Get(b); used != t3 {
		t.Errorf("Get(%q) last used = %v, want %v", b, used, t3)
	}
	uses := c.DrainUsed(10)
	if len(uses) != 1 || uses[0].Key != a {
		t.Errorf("DrainUsed(10) = %v, want only the use of %q", uses, a)
	}
	// Touches reach cached records too.
	c.Unpin(2)
	c.ApplyTouch(a, t3)
	if _, used, _ := c.Get(a); used != t3 {
		t.Errorf("Get(%q) last used after touching the cached record = %v, want %v", a, used, t3)
	}
}
