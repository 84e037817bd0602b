package lincheck

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Seed returns the run's seed: TOKENCACHE_LIN_SEED when set (to replay a
// run), else one from the clock. It logs it either way. The seed fixes the
// clients' and the nemesis's choices, not the interleaving the machine
// produces.
func Seed(tb testing.TB) uint64 {
	tb.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TOKENCACHE_LIN_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			tb.Fatalf("TOKENCACHE_LIN_SEED=%q: %v", s, err)
		}
		seed = v
	}
	tb.Logf("seed %d (replay with TOKENCACHE_LIN_SEED=%d)", seed, seed)
	return seed
}

// Faults returns the fault kinds the nemesis may inject: all of them, or
// the comma-separated list in TOKENCACHE_LIN_FAULTS (unknown names fail the
// test).
func Faults(tb testing.TB, all ...string) []string {
	tb.Helper()
	s := os.Getenv("TOKENCACHE_LIN_FAULTS")
	if s == "" {
		return all
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(all, f) {
			tb.Fatalf("TOKENCACHE_LIN_FAULTS: unknown fault %q (known: %s)", f, strings.Join(all, ","))
		}
		out = append(out, f)
	}
	return out
}

// Length returns how long a run injects faults: short, or five minutes when
// the long runs were asked for (make chaos sets TOKENCACHE_CHAOS=1).
func Length(short time.Duration) time.Duration {
	if os.Getenv("TOKENCACHE_CHAOS") == "1" {
		return 5 * time.Minute
	}
	return short
}
