package cluster

import (
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics is the node's prometheus.Collector (Node.Collector). The caller
// registers it on a per-node registry, so several nodes in one process count
// separately.
type metrics struct {
	n *Node

	hasLeader, isLeader, term, commit, applied, members *prometheus.Desc

	leaderChanges prometheus.Counter
	fenceSeconds  prometheus.Histogram
	asyncPending  prometheus.Gauge
	asyncFailed   prometheus.Counter
}

func newMetrics(n *Node) *metrics {
	return &metrics{
		n:         n,
		hasLeader: prometheus.NewDesc("tokencache_raft_has_leader", "1 when this node knows a Raft leader.", nil, nil),
		isLeader:  prometheus.NewDesc("tokencache_raft_is_leader", "1 when this node is the ready Raft leader.", nil, nil),
		term:      prometheus.NewDesc("tokencache_raft_term", "Current Raft term.", nil, nil),
		commit:    prometheus.NewDesc("tokencache_raft_commit_index", "Raft commit index known to this node.", nil, nil),
		applied:   prometheus.NewDesc("tokencache_raft_applied_index", "Index of the last entry applied to the token state.", nil, nil),
		members:   prometheus.NewDesc("tokencache_cluster_members", "Gossip members by status.", []string{"status"}, nil),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tokencache_raft_leader_changes_total", Help: "Leader changes seen by this node.",
		}),
		fenceSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tokencache_revoke_fence_seconds",
			Help:    "Time a revocation waited until every node applied it or was fenced off (WaitApplied).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		asyncPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tokencache_raft_async_pending", Help: "Async writes acknowledged but not yet committed (the loss window).",
		}),
		asyncFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tokencache_raft_async_lost_total", Help: "Acknowledged async writes that failed to commit.",
		}),
	}
}

// Collector returns the node's metrics collector.
func (n *Node) Collector() prometheus.Collector { return n.metrics }

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.hasLeader, m.isLeader, m.term, m.commit, m.applied, m.members} {
		ch <- d
	}
	m.leaderChanges.Describe(ch)
	m.fenceSeconds.Describe(ch)
	m.asyncPending.Describe(ch)
	m.asyncFailed.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	n := m.n
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	var hasLeader bool
	var term, commit uint64
	if n.raft != nil {
		addr, _ := n.raft.LeaderWithID()
		hasLeader = addr != "" && n.raft.State() != raft.Shutdown
		term, commit = n.raft.CurrentTerm(), n.raft.CommitIndex()
	}
	gauge(m.hasLeader, b(hasLeader))
	gauge(m.isLeader, b(n.IsLeader()))
	gauge(m.term, float64(term))
	gauge(m.commit, float64(commit))
	gauge(m.applied, float64(n.state.AppliedIndex()))
	counts := map[string]int{"alive": 0, "suspect": 0, "dead": 0, "left": 0}
	if n.disc != nil {
		for _, mem := range n.disc.snapshot() {
			counts[mem.status.String()]++
		}
	}
	for s, c := range counts {
		gauge(m.members, float64(c), s)
	}
	m.leaderChanges.Collect(ch)
	m.fenceSeconds.Collect(ch)
	m.asyncPending.Collect(ch)
	m.asyncFailed.Collect(ch)
}
