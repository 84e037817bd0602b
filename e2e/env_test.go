package e2e

import (
	"os"
	"strings"
)

// daemonEnviron returns the test process's environment without the
// TOKENCACHE_TEST_* variables of the test harness (scripts/test.sh,
// scripts/mariadb.sh) and the TOKENCACHE_CHAOS and TOKENCACHE_LIN_* knobs of
// the long runs: tokencache refuses TOKENCACHE_ variables that name
// no configuration key, so they must not leak into the daemons the tests
// start.
func daemonEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOKENCACHE_TEST_") && !strings.HasPrefix(kv, "TOKENCACHE_LIN_") &&
			!strings.HasPrefix(kv, "TOKENCACHE_CHAOS=") {
			env = append(env, kv)
		}
	}
	return env
}
