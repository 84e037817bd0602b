package cluster_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/tokencache/tokencache/cluster"
	"github.com/tokencache/tokencache/cluster/clustertest"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// Benchmarks (go test -run '^$' -bench . -benchtime 3s ./cluster/):
//
//	BenchmarkIssue        issue throughput and latency on a 3-node loopback
//	                      cluster (boltdb log, memory token store), sync and
//	                      async, 1/16/64 concurrent clients, through the leader
//	                      and (forwarded) through a follower
//	BenchmarkBareRaft     the ceiling: a bare hashicorp/raft 3-node cluster
//	                      over TCP with the same log store applying no-ops
//	BenchmarkRevocation   revoke latency (incl. the fence wait) and the time
//	                      from the ack until the last node answers revoked
//	BenchmarkFailover     leader crash → next acknowledged write

var benchClients = []int{1, 16, 64}

// runClients runs n operations over c goroutines and reports throughput and
// latency percentiles.
func runClients(b *testing.B, c int, op func(i int) error) {
	b.Helper()
	lat := make([]time.Duration, b.N)
	var next int64
	var mu sync.Mutex
	var errs int
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := int(next)
				next++
				mu.Unlock()
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if err := op(i); err != nil {
					mu.Lock()
					if errs == 0 {
						b.Logf("first error: %v", err)
					}
					errs++
					mu.Unlock()
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(errs), "errors")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

func benchCluster(b *testing.B, policy string) *clustertest.Cluster {
	tc := clustertest.New(b, 3, clustertest.Options{Policy: policy, RaftStore: cluster.StoreBoltDB, LogLevel: slog.LevelError, ProdTiming: true})
	tc.WaitLeader()
	return tc
}

func BenchmarkIssue(b *testing.B) {
	for _, policy := range []string{cluster.PolicySync, cluster.PolicyAsync} {
		b.Run(policy, func(b *testing.B) {
			tc := benchCluster(b, policy)
			benchIssues(b, tc)
		})
	}
}

// benchIssues measures issues on tc sent to the leader and to a follower
// (forwarded), by each count of concurrent clients.
func benchIssues(b *testing.B, tc *clustertest.Cluster) {
	for _, via := range []string{"leader", "follower"} {
		for _, c := range benchClients {
			b.Run(fmt.Sprintf("%s/c%d", via, c), func(b *testing.B) {
				tn := tc.WaitLeader()
				if via == "follower" {
					tn = tc.Followers()[0]
				}
				runClients(b, c, func(i int) error {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					_, err := tn.Svc.Issue(ctx, tokens.IssueRequest{Username: fmt.Sprintf("u%d", i%512), Type: token.TypeUser, Scopes: "read"})
					return err
				})
			})
		}
	}
}

// BenchmarkIssueMutualTLS measures the cost of mutual TLS on the write
// path: the same sync issues on two 3-node clusters, one with plain TCP
// between the nodes, one with mutual TLS (every Raft and RPC connection).
// Through the follower, each issue also crosses the forwarding RPC.
func BenchmarkIssueMutualTLS(b *testing.B) {
	for _, transport := range []string{"plain", "mtls"} {
		b.Run(transport, func(b *testing.B) {
			o := clustertest.Options{Policy: cluster.PolicySync, RaftStore: cluster.StoreBoltDB, LogLevel: slog.LevelError, ProdTiming: true}
			if transport == "mtls" {
				o = pkiOpts(cluster.NewTestPKI(b), o)
			}
			tc := clustertest.New(b, 3, o)
			benchIssues(b, tc)
		})
	}
}

// noopFSM applies nothing.
type noopFSM struct{}

func (noopFSM) Apply(*raft.Log) any                 { return nil }
func (noopFSM) Snapshot() (raft.FSMSnapshot, error) { return noopSnap{}, nil }
func (noopFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type noopSnap struct{}

func (noopSnap) Persist(s raft.SnapshotSink) error { return s.Close() }
func (noopSnap) Release()                          {}

// bareRaft starts a 3-node hashicorp/raft cluster over TCP on loopback with
// raft-boltdb v2 + LogCache, the same timing as the test clusters.
func bareRaft(b *testing.B) []*raft.Raft {
	b.Helper()
	var rafts []*raft.Raft
	var conf raft.Configuration
	type parts struct {
		trans *raft.NetworkTransport
		dir   string
	}
	var ps []parts
	for i := 0; i < 3; i++ {
		trans, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 10*time.Second, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		ps = append(ps, parts{trans, b.TempDir()})
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(fmt.Sprint(i)), Address: trans.LocalAddr()})
	}
	for i, p := range ps {
		bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(p.dir, "raft.db")})
		if err != nil {
			b.Fatal(err)
		}
		logs, _ := raft.NewLogCache(cluster.LogCacheSize, bolt)
		rc := raft.DefaultConfig()
		rc.LocalID = raft.ServerID(fmt.Sprint(i))
		d := cluster.DefaultConfig() // the same timing as benchCluster
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLease
		rc.CommitTimeout = d.CommitTimeout
		rc.BatchApplyCh, rc.MaxAppendEntries = true, cluster.MaxAppendEntries
		rc.Logger = hclog.NewNullLogger()
		r, err := raft.NewRaft(rc, noopFSM{}, logs, bolt, raft.NewInmemSnapshotStore(), p.trans)
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			if err := r.BootstrapCluster(conf).Error(); err != nil {
				b.Fatal(err)
			}
		}
		rafts = append(rafts, r)
		b.Cleanup(func() { r.Shutdown().Error(); bolt.Close() })
	}
	return rafts
}

func BenchmarkBareRaft(b *testing.B) {
	rafts := bareRaft(b)
	leader := func() *raft.Raft {
		for {
			for _, r := range rafts {
				if r.State() == raft.Leader {
					return r
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	payload := make([]byte, 160) // about one issue command
	for _, c := range benchClients {
		b.Run(fmt.Sprintf("c%d", c), func(b *testing.B) {
			l := leader()
			runClients(b, c, func(int) error { return l.Apply(payload, 0).Error() })
		})
	}
}

// BenchmarkRevocation reports the revoke latency (through a follower, with
// the fence wait) and how long after the ack the last node still answered
// anything but revoked (0 when every node had applied it at the ack).
func BenchmarkRevocation(b *testing.B) {
	tc := benchCluster(b, cluster.PolicySync)
	l := tc.WaitLeader()
	f := tc.Followers()[0]
	texts := make([]string, b.N)
	for i := range texts {
		texts[i] = clustertest.Issue(b, l, fmt.Sprintf("r%d", i%64)).Token
	}
	for _, tn := range tc.Nodes {
		for _, text := range texts {
			clustertest.WaitFor(b, 5*time.Second, "token everywhere", func() bool { st, err := clustertest.Validate(tn, text); return err == nil && st == token.StateValid })
		}
	}
	var worst, total time.Duration
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	for i, text := range texts {
		k, _, _ := token.Parse("tc", []byte(text))
		t0 := time.Now()
		if _, err := f.Svc.Revoke(context.Background(), k); err != nil {
			b.Fatal(err)
		}
		ack := time.Now()
		lat[i] = ack.Sub(t0)
		var last time.Duration
		for _, tn := range tc.Nodes {
			for {
				if st, _ := clustertest.Validate(tn, text); st == token.StateRevoked {
					break
				}
				last = time.Since(ack)
			}
		}
		total += last
		worst = max(worst, last)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "revoke-p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "revoke-p99-µs")
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "propagation-after-ack-ns")
	b.ReportMetric(float64(worst.Nanoseconds()), "worst-propagation-ns")
}

// BenchmarkFailover: crash the leader, time until a write through a
// survivor is acknowledged; then bring the node back (new identity).
func BenchmarkFailover(b *testing.B) {
	for _, prod := range []bool{false, true} {
		name := "test-timing"
		if prod {
			name = "production-timing"
		}
		b.Run(name, func(b *testing.B) { benchFailover(b, prod) })
	}
}

func benchFailover(b *testing.B, prod bool) {
	tc := clustertest.New(b, 3, clustertest.Options{LogLevel: slog.LevelError, ProdTiming: prod})
	var total, worst time.Duration
	for i := 0; i < b.N; i++ {
		l := tc.WaitLeader()
		var f *clustertest.Node
		for _, tn := range tc.Up() {
			if tn != l {
				f = tn
			}
		}
		clustertest.Issue(b, f, "fo")
		start := time.Now()
		tc.Kill(l)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := f.Svc.Issue(ctx, tokens.IssueRequest{Username: "fo", Type: token.TypeUser})
			cancel()
			if err == nil {
				break
			}
			if time.Since(start) > 30*time.Second {
				for _, tn := range tc.Up() {
					b.Logf("%s: state %v, config %+v", tn.ID, tn.Node.Raft().State(), tc.Configuration(tn).Servers)
				}
				b.Fatalf("no write acknowledged 30s after the leader crashed: %v", err)
			}
		}
		d := time.Since(start)
		total += d
		worst = max(worst, d)
		b.StopTimer()
		tc.Restart(l)
		// Wait until the restarted node's new identity votes and the old
		// one is gone (else the next kill leaves no quorum).
		clustertest.WaitFor(b, 30*time.Second, "three live voters again", func() bool {
			nl := tc.Leader()
			if nl == nil {
				return false
			}
			c := tc.Configuration(nl)
			for _, s := range c.Servers {
				if s.Suffrage != raft.Voter || tc.Node(cluster.NodeOfRaftID(string(s.ID))).Node.RaftID() != string(s.ID) {
					return false
				}
			}
			return len(c.Servers) == 3
		})
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "failover-ms")
	b.ReportMetric(float64(worst.Milliseconds()), "worst-failover-ms")
	b.ReportMetric(float64(tc.Nodes[0].Cfg.ElectionTimeout.Milliseconds()), "election-timeout-ms")
}
