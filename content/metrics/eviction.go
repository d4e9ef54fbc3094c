package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// EvictionCounts are what a process's evict tasks did since it started.
type EvictionCounts struct {
	Runs, ImagesEvicted, BytesFreed int64
}

// evictionMetrics are the counters of the evict tasks (--storage-quota), read on scrape.
type evictionMetrics struct {
	runsDesc, imagesDesc, bytesDesc *prometheus.Desc

	mu     sync.Mutex
	counts func() EvictionCounts // nil: this process runs no evict tasks
}

func newEvictionMetrics(reg prometheus.Registerer) *evictionMetrics {
	e := &evictionMetrics{
		runsDesc: prometheus.NewDesc(namespace+"_evict_runs_total",
			"Evict tasks (pulpgo.app.tasks.evict) this process ran.", nil, nil),
		imagesDesc: prometheus.NewDesc(namespace+"_evict_images_total",
			"Pull-through images the evict tasks of this process removed.", nil, nil),
		bytesDesc: prometheus.NewDesc(namespace+"_evict_freed_bytes_total",
			"Bytes of storage the evict tasks of this process freed.", nil, nil),
	}
	reg.MustRegister(e)
	return e
}

// Describe implements prometheus.Collector.
func (e *evictionMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- e.runsDesc
	ch <- e.imagesDesc
	ch <- e.bytesDesc
}

// Collect implements prometheus.Collector.
func (e *evictionMetrics) Collect(ch chan<- prometheus.Metric) {
	e.mu.Lock()
	counts := e.counts
	e.mu.Unlock()
	if counts == nil {
		return
	}
	c := counts()
	ch <- prometheus.MustNewConstMetric(e.runsDesc, prometheus.CounterValue, float64(c.Runs))
	ch <- prometheus.MustNewConstMetric(e.imagesDesc, prometheus.CounterValue, float64(c.ImagesEvicted))
	ch <- prometheus.MustNewConstMetric(e.bytesDesc, prometheus.CounterValue, float64(c.BytesFreed))
}

// SetEviction sets where the eviction counters come from, for a process that runs evict tasks.
func (m *Metrics) SetEviction(counts func() EvictionCounts) {
	m.eviction.mu.Lock()
	m.eviction.counts = counts
	m.eviction.mu.Unlock()
}
