package bench

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRunGroupInterleaves runs a two-sided compare case for two rounds and
// checks the order of the runs (A B A B) and the table of medians.
func TestRunGroupInterleaves(t *testing.T) {
	base := DefaultConfig()
	base.Targets, base.BaselineInProcess = []string{KindBaselineHTTP}, true
	base.Tokens, base.Warmup, base.Duration = 200, 0, 150*time.Millisecond
	g := CompareGroup{Name: "validate", Levels: []int{1, 4}, Sides: []CompareSide{{"first", base}, {"second", base}}}
	res := &SuiteResult{}
	o := SuiteOptions{Rounds: 2}
	if err := runGroup(context.Background(), o, g, res); err != nil {
		t.Fatalf("runGroup error = %v", err)
	}
	var order []string
	for _, r := range res.Runs {
		order = append(order, r.Name)
		checkSane(t, r)
	}
	want := []string{
		"validate c=1 | first | round 1", "validate c=1 | second | round 1", "validate c=1 | first | round 2", "validate c=1 | second | round 2",
		"validate c=4 | first | round 1", "validate c=4 | second | round 1", "validate c=4 | first | round 2", "validate c=4 | second | round 2",
	}
	if strings.Join(order, "\n") != strings.Join(want, "\n") {
		t.Errorf("run order:\n%s\nwant:\n%s", strings.Join(order, "\n"), strings.Join(want, "\n"))
	}
	if len(res.Table) != 4 || res.Table[0].Case != "validate c=1" || res.Table[3].Side != "second" || res.Table[3].Rounds != 2 {
		t.Fatalf("table = %+v, want 2 cases × 2 sides of 2 rounds", res.Table)
	}
	if r := res.Table[1]; r.Throughput <= 0 || r.ThroughputRatio <= 0 || r.P99Ratio <= 0 {
		t.Errorf("second side row = %+v, want a throughput and ratios", r)
	}
	if res.Runs[4].Config.Connections != 4 {
		t.Errorf("level 4 ran with %d connections", res.Runs[4].Config.Connections)
	}
}

// TestStandardSuite runs the standard cases, shortened, against a bare
// server standing in for a node.
func TestStandardSuite(t *testing.T) {
	srv, err := StartBaselineServer("127.0.0.1:0", "admin", "tc")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	res, err := RunStandardSuite(context.Background(), SuiteOptions{
		Targets: []string{srv.URL()}, AdminToken: "admin", Tokens: 2000, Hot: 200, RevokePool: 2000, Warmup: 0, Duration: 150 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("RunStandardSuite error = %v", err)
	}
	if len(res.Runs) != len(standardCases) || res.MainRun() == nil || res.MainRun().Name != mainCase {
		t.Fatalf("standard suite: %d runs, main %v; want %d and %q", len(res.Runs), res.MainRun(), len(standardCases), mainCase)
	}
	for _, r := range res.Runs {
		checkSane(t, r)
		if r.Errors != 0 {
			t.Errorf("%s: errors %v", r.Name, r.ErrorsByKind)
		}
	}
	if open := res.Runs[len(res.Runs)-1]; open.Config.Mode != "open" || open.ServiceTime == nil {
		t.Errorf("last standard run = mode %q, want the open loop", open.Config.Mode)
	}
}
