package baselines

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/tokencache/tokencache/bench"
)

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for an event
	}
}

func TestRaftClusterAppliesCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	c, err := StartRaftCluster(ctx, 3, dir)
	if err != nil {
		t.Fatalf("StartRaftCluster error = %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close error = %v", err)
		}
	})
	const n, writers = 300, 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				errs <- c.Apply(make([]byte, 200), 5*time.Second)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Apply error = %v", err)
		}
	}
	// The leader has applied every command when Apply returns; followers
	// catch up on the next append.
	waitFor(t, 10*time.Second, "every node to apply 300 commands", func() bool {
		for _, a := range c.Applied() {
			if a != n {
				return false
			}
		}
		return true
	})
	if got := c.Dir(); got != dir {
		t.Errorf("Dir() = %q, want %q", got, dir)
	}
}

func TestRaftTarget(t *testing.T) {
	c := bench.DefaultConfig()
	c.Targets = []string{kindRaftBare}
	c.Mix = bench.MustParseMix("issue")
	tgt, err := bench.Open(context.Background(), &c)
	if err != nil {
		t.Fatalf("Open(raft-bare) error = %v", err)
	}
	defer tgt.Close()
	rt := tgt.(*raftTarget)
	cl := tgt.NewClient(0, nil)
	rng := rand.New(rand.NewPCG(1, 1))
	for range 20 {
		if err := cl.Do(context.Background(), bench.Issue, rng); err != nil {
			t.Fatalf("Do(issue) error = %v", err)
		}
	}
	if err := cl.Do(context.Background(), bench.Validate, rng); !errors.Is(err, bench.ErrUnsupported) {
		t.Errorf("Do(validate) error = %v, want ErrUnsupported", err)
	}
	if applied := max(rt.Cluster().Applied()[0], rt.Cluster().Applied()[1], rt.Cluster().Applied()[2]); applied != 20 {
		t.Errorf("the leader applied %d commands, want 20", applied)
	}
	if err := tgt.Close(); err != nil {
		t.Errorf("Close error = %v", err)
	}
}
