package tokens

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestWriterMetrics: every write-through issue is committed by the writer,
// and its transactions, their changes and their time are counted.
func TestWriterMetrics(t *testing.T) {
	n := newNode(t, nodeOpts{})
	const issued = 5
	for range issued {
		n.issue(t, IssueRequest{})
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(n.svc.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]float64)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				got[mf.GetName()] = c.GetValue()
			}
		}
	}
	batches, changes, secs := got["tokencache_persist_write_batches_total"], got["tokencache_persist_write_changes_total"], got["tokencache_persist_write_seconds_total"]
	if batches < 1 || batches > issued || changes != issued || secs <= 0 {
		t.Errorf("writer metrics: %v batches, %v changes, %vs; want 1 to %d batches holding %d changes in a positive time",
			batches, changes, secs, issued, issued)
	}
}
