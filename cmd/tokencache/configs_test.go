package main

import (
	"path/filepath"
	"testing"
)

// TestExampleConfigs loads and validates every file in configs/, so that a
// new example is covered as soon as it is added. It runs where the examples
// say tokencache runs, in a directory of its own: the JWT example's keys
// file is generated there first, as its header says.
func TestExampleConfigs(t *testing.T) {
	files, err := filepath.Glob("../../configs/*")
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		if files[i], err = filepath.Abs(f); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(t.TempDir())
	if code, _, stderr := runCLI(t, nil, "", "jwt", "keygen", "--out", "./data/jwt-keys.pem"); code != exitOK {
		t.Fatalf("jwt keygen = %d: %s", code, stderr)
	}
	if len(files) < 5 {
		t.Fatalf("found %d files in configs/, want at least 5: %v", len(files), files)
	}
	ids := make(map[string]string)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, warns, err := loadConfig(Loader{File: f, Environ: func() []string { return nil }})
			if err != nil {
				t.Fatalf("loadConfig(%s) = %v", f, err)
			}
			if len(warns) > 0 {
				t.Errorf("loadConfig(%s) warnings = %v, want none", f, warns)
			}
			if prev, dup := ids[cfg.Node.ID+"@"+cfg.HTTP.Addr]; dup && cfg.Cluster.BootstrapExpect > 1 {
				t.Errorf("%s and %s share node id and HTTP address", f, prev)
			}
			ids[cfg.Node.ID+"@"+cfg.HTTP.Addr] = f
		})
	}
}

// TestClusterConfigsFormOneCluster checks that the three cluster files
// describe three distinct nodes that find each other.
func TestClusterConfigsFormOneCluster(t *testing.T) {
	files, err := filepath.Glob("../../configs/cluster-node*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("found %d cluster-node files, want 3", len(files))
	}
	gossip := make(map[string]bool)
	seen := make(map[string]string)
	var cfgs []*Config
	for _, f := range files {
		cfg, _, err := loadConfig(Loader{File: f, Environ: func() []string { return nil }})
		if err != nil {
			t.Fatalf("loadConfig(%s) = %v", f, err)
		}
		cfgs = append(cfgs, cfg)
		gossip[cfg.Cluster.GossipAddr] = true
		for _, v := range []string{cfg.Node.ID, cfg.Node.DataDir, cfg.HTTP.Addr, cfg.Cluster.GossipAddr, cfg.Cluster.RaftAddr} {
			if prev, dup := seen[v]; dup {
				t.Errorf("%s and %s both use %q", prev, f, v)
			}
			seen[v] = f
		}
		if cfg.Cluster.BootstrapExpect != 3 {
			t.Errorf("%s: cluster.bootstrap_expect = %d, want 3", f, cfg.Cluster.BootstrapExpect)
		}
	}
	for i, cfg := range cfgs {
		if len(cfg.Cluster.Join) == 0 {
			t.Errorf("%s: cluster.join is empty", files[i])
		}
		for _, j := range cfg.Cluster.Join {
			if !gossip[j] {
				t.Errorf("%s: joins %s, which is no node's gossip address", files[i], j)
			}
		}
	}
}
