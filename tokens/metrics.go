package tokens

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns a Prometheus collector of the service's cache, writer and
// log counters, read at scrape time (nothing is counted on the hot path
// beyond what the cache already counts). Register it on a per-node registry.
func (s *Service) Collector() prometheus.Collector { return &collector{s: s} }

var (
	descCacheEntries   = prometheus.NewDesc("tokencache_cache_entries", "Tokens held in the evictable part of the cache.", nil, nil)
	descCachePinned    = prometheus.NewDesc("tokencache_cache_pinned_entries", "Changes applied but not yet persisted (pinned, never evicted).", nil, nil)
	descCacheCapacity  = prometheus.NewDesc("tokencache_cache_capacity", "Configured cache capacity (cache.capacity).", nil, nil)
	descCacheHits      = prometheus.NewDesc("tokencache_cache_hits_total", "Lookups answered from memory.", nil, nil)
	descCacheMisses    = prometheus.NewDesc("tokencache_cache_misses_total", "Lookups that found no record in memory.", nil, nil)
	descStoreLoads     = prometheus.NewDesc("tokencache_store_reads_total", "Store reads started by cache misses.", nil, nil)
	descNegativeHits   = prometheus.NewDesc("tokencache_cache_negative_hits_total", "Unknown keys answered by the negative cache.", nil, nil)
	descFilterRejects  = prometheus.NewDesc("tokencache_cache_filter_rejects_total", "Unknown keys answered by the key filter without a store read.", nil, nil)
	descEvictions      = prometheus.NewDesc("tokencache_cache_evictions_total", "Tokens evicted from the cache.", nil, nil)
	descApplied        = prometheus.NewDesc("tokencache_state_applied_index", "Last log index applied on this node.", nil, nil)
	descPersisted      = prometheus.NewDesc("tokencache_persist_persisted_index", "Log index up to which the store is known complete.", nil, nil)
	descLagSeconds     = prometheus.NewDesc("tokencache_persist_lag_seconds", "Age of the oldest change not yet persisted.", nil, nil)
	descStoreHealthy   = prometheus.NewDesc("tokencache_persist_healthy", "1 when the last store write succeeded.", nil, nil)
	descWriterActive   = prometheus.NewDesc("tokencache_persist_writer_active", "1 when this node writes the store.", nil, nil)
	descPersistBacklog = prometheus.NewDesc("tokencache_persist_backlog_entries", "Changes waiting for the store (same as pinned entries).", nil, nil)
	descWriteBatches   = prometheus.NewDesc("tokencache_persist_write_batches_total", "Store transactions committed by this node's writer.", nil, nil)
	descWriteChanges   = prometheus.NewDesc("tokencache_persist_write_changes_total", "Token changes (puts and deletions) those transactions held.", nil, nil)
	descWriteSeconds   = prometheus.NewDesc("tokencache_persist_write_seconds_total", "Time spent in those transactions, from begin to commit.", nil, nil)
)

type collector struct{ s *Service }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCacheEntries, descCachePinned, descCacheCapacity, descCacheHits, descCacheMisses,
		descStoreLoads, descNegativeHits, descFilterRejects, descEvictions, descApplied, descPersisted, descLagSeconds,
		descStoreHealthy, descWriterActive, descPersistBacklog, descWriteBatches, descWriteChanges, descWriteSeconds} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	st := s.cache.Stats()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(descCacheEntries, float64(st.Len))
	gauge(descCachePinned, float64(st.Pinned))
	gauge(descCacheCapacity, float64(st.Capacity))
	counter(descCacheHits, st.Hits)
	counter(descCacheMisses, st.Misses)
	counter(descStoreLoads, st.Loads)
	counter(descNegativeHits, st.NegativeHits)
	counter(descFilterRejects, st.FilterRejects)
	counter(descEvictions, st.Evictions)
	gauge(descApplied, float64(s.state.AppliedIndex()))
	gauge(descPersisted, float64(s.state.PersistedIndex()))
	lag := 0.0
	if at, ok := s.cache.OldestPinned(); ok {
		lag = max(0, time.Since(at).Seconds())
	}
	gauge(descLagSeconds, lag)
	gauge(descStoreHealthy, b2f(s.state.Writer().Healthy()))
	gauge(descWriterActive, b2f(s.state.Writer().Active()))
	gauge(descPersistBacklog, float64(st.Pinned))
	w := s.state.Writer().Stats()
	counter(descWriteBatches, w.Batches)
	counter(descWriteChanges, w.Changes)
	ch <- prometheus.MustNewConstMetric(descWriteSeconds, prometheus.CounterValue, w.Time.Seconds())
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
