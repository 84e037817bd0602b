package lincheck

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Schedule injects faults for length, one at a time: every kind in kinds
// once, in an order rnd shuffles, then kinds rnd picks. Before each fault it
// pauses 300-800ms; after each it calls recover, which waits until the
// cluster serves again. It stops at the first error of inject or recover.
func Schedule(rnd *rand.Rand, kinds []string, length time.Duration, inject func(kind string) error, recover func() error) error {
	deadline := time.Now().Add(length)
	order := slices.Clone(kinds)
	rnd.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for i := 0; time.Now().Before(deadline); i++ {
		Pause(rnd, 300*time.Millisecond, 800*time.Millisecond)
		kind := kinds[rnd.IntN(len(kinds))]
		if i < len(order) {
			kind = order[i]
		}
		if err := inject(kind); err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		if err := recover(); err != nil {
			return fmt.Errorf("after %s: %w", kind, err)
		}
	}
	return nil
}

// Pause sleeps for a duration rnd picks in [lo, hi).
func Pause(rnd *rand.Rand, lo, hi time.Duration) {
	time.Sleep(lo + time.Duration(rnd.Int64N(int64(hi-lo))))
}

// Finish ends a run whose faults have healed and whose clients have
// stopped: when the cluster converged (converged is nil) it sweeps every
// token on every node, then checks the history (the visualization of an
// illegal one is kept in ArtifactsDir) and fails tb when it is not
// linearizable, when the nemesis failed (nemesisErr), or when the cluster
// did not converge.
func Finish(tb testing.TB, cs *Clients, rec *Recorder, seed uint64, faults []string, nemesisErr, converged error) {
	tb.Helper()
	if converged == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cs.Sweep(ctx)
		cancel()
	}
	v, err := Check(rec, ArtifactsDir(tb.Name()), time.Minute)
	tb.Logf("faults:\n%s", rec.FaultLog())
	tb.Logf("checked: %s; result %s", rec.Summary(), v.Result)
	if err != nil {
		tb.Fatal(err)
	}
	if v.Result == porcupine.Illegal {
		tb.Errorf("history not linearizable in families %v (seed %d, faults %v); visualization kept in %s\n%s",
			v.Illegal, seed, faults, v.Visualization, v.History)
	}
	if nemesisErr != nil {
		tb.Errorf("nemesis: %v", nemesisErr)
	}
	if converged != nil {
		tb.Errorf("after the faults healed: %v", converged)
	}
}
