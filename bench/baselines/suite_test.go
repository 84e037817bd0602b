package baselines

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/bench"
)

// TestMain registers the target kinds of the package, as tokencache-bench
// does.
func TestMain(m *testing.M) {
	Register()
	os.Exit(m.Run())
}

func TestCompareGroups(t *testing.T) {
	o := Options{SuiteOptions: bench.SuiteOptions{Warmup: time.Second, Duration: 2 * time.Second}, Redis: "redis://127.0.0.1:1", Etcd3: "etcd://a:1,b:2,c:3",
		MySQLDSN: "u:p@tcp(127.0.0.1:3306)/tc", ValidateConns: []int{64, 256}, IssueClients: []int{1, 16, 64}}
	groups := Groups(o)
	sides := map[string][]string{}
	for _, g := range groups {
		for _, s := range g.Sides {
			sides[g.Name] = append(sides[g.Name], s.Name)
			if err := s.Config.Validate(); err != nil {
				t.Errorf("%s / %s: invalid config: %v", g.Name, s.Name, err)
			}
		}
	}
	want := map[string]string{
		"validate":          "tokencache (1 node),redis GET,baseline-http",
		"unknown":           "tokencache validate (cache hit),tokencache unknown (random tokens)",
		"validate-miss":     "tokencache (1 node, MySQL),MariaDB PK SELECT",
		"issue":             "tokencache (3 nodes, sync, MySQL write-through),etcd put (3 members),bare raft (3 nodes)",
		"issue single node": "tokencache (1 node, sync, SQLite)",
	}
	for g, w := range want {
		if got := strings.Join(sides[g], ","); got != w {
			t.Errorf("group %s sides = %q, want %q", g, got, w)
		}
	}
	var keys []string
	for _, g := range groups {
		keys = append(keys, g.Key())
	}
	if strings.Join(keys, ",") != "validate,unknown,validate-miss,issue,issue-single" {
		t.Errorf("case keys = %v, want validate, unknown, validate-miss, issue, issue-single", keys)
	}
	if groups[4].Skip == "" {
		t.Error("issue single node without --etcd is not skipped")
	}
	env := strings.Join(groups[3].Sides[0].Config.SpawnEnv, " ")
	for _, kv := range []string{"TOKENCACHE_PERSIST_STORE=mysql", "TOKENCACHE_PERSIST_URL=jdbc:mysql://127.0.0.1:3306/tc",
		"TOKENCACHE_PERSIST_USERNAME=u", "TOKENCACHE_PERSIST_PASSWORD=p", "TOKENCACHE_CLUSTER_REPLICATION_POLICY=sync", "TOKENCACHE_PERSIST_WRITE_MODE=through"} {
		if !strings.Contains(env, kv) {
			t.Errorf("3-node issue side env %q lacks %s", env, kv)
		}
	}
	if g := Groups(Options{ValidateConns: []int{64}, IssueClients: []int{1}})[2]; g.Skip == "" {
		t.Error("validate-miss without a MySQL DSN is not skipped")
	}
}

func TestRunRefusesUnsupportedWorkload(t *testing.T) {
	c := bench.DefaultConfig()
	c.Targets = []string{kindRaftBare}
	c.Mix = bench.MustParseMix("validate")
	_, err := bench.Run(context.Background(), c, &raftTarget{}, nil)
	if err == nil || !strings.Contains(err.Error(), "cannot run validate") {
		t.Errorf("Run(raft-bare, validate) error = %v, want ErrUnsupported", err)
	}
}

// TestRegisteredKinds: a --target of each kind validates once registered,
// and a baseline-http side in a compare group starts this executable's
// baseline server with the arguments of its command.
func TestRegisteredKinds(t *testing.T) {
	for _, target := range []string{"redis://127.0.0.1:6379", "etcd://a:1,b:2", "mysql://u:p@tcp(127.0.0.1:3306)/tc", "raft-bare"} {
		c := bench.DefaultConfig()
		c.Targets = []string{target}
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(--target %s) error = %v, want none", target, err)
		}
	}
	o := Options{SuiteOptions: bench.SuiteOptions{BaselineArgs: []string{"baseline-server"}}, ValidateConns: []int{64}, IssueClients: []int{1}}
	for _, s := range Groups(o)[0].Sides {
		if s.Name == "baseline-http" && strings.Join(s.Config.BaselineArgs, " ") != "baseline-server" {
			t.Errorf("baseline-http side BaselineArgs = %q, want [baseline-server]", s.Config.BaselineArgs)
		}
	}
}
