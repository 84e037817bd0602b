package cluster_test

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/tokencache/tokencache/cluster"
	"github.com/tokencache/tokencache/cluster/clustertest"
)

// The raft transport never pipelines replication: hashicorp/raft's
// pipeline can deadlock for good after a follower's Success=false, leaving
// the follower without log entries and Raft.Shutdown hung (noPipelining).
func TestTransportDoesNotPipeline(t *testing.T) {
	c := clustertest.New(t, 1, clustertest.Options{})
	n := c.Nodes[0]
	p, err := n.Node.Transport().AppendEntriesPipeline(raft.ServerID(n.Node.RaftID()), cluster.RaftAddress(n.Node.RaftAdv(), n.Node.RaftID()))
	if !errors.Is(err, raft.ErrPipelineReplicationNotSupported) {
		if p != nil {
			_ = p.Close()
		}
		t.Fatalf("AppendEntriesPipeline = %v, %v; want raft.ErrPipelineReplicationNotSupported", p, err)
	}
}
