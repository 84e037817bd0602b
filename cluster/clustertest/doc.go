// Package clustertest starts in-process tokencache clusters for tests, as
// hashicorp/raft's testing.go does for Raft: every node is wired like
// production (cache, store, replica.Machine, tokens.Service and
// cluster.Node), speaks real TCP and UDP on loopback, and runs real Raft and
// memberlist with short timings. Partitions go through the cluster
// configuration's network hook (cluster.Config.Network): a Net cuts links
// between nodes, in one or both directions, and sees every byte sent.
//
// It is for tests only: the tests of cluster, httpapi and e2e import it;
// the daemon and the library packages never do (depguard in make check).
//
// New starts a cluster and waits until one leader leads every node; Kill
// and Restart crash and revive a node on the same addresses and data
// directory. Helpers (Issue, WantValid, WaitFor) fail the test on error.
package clustertest
