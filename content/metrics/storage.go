package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// storageMetrics are the storage used and the quota, computed on scrape.
type storageMetrics struct {
	usedDesc, quotaDesc *prometheus.Desc

	mu    sync.Mutex
	used  *sampled[int64] // nil until SetStorageUsed
	quota func() int64    // nil: no quota (0)
}

func newStorageMetrics(reg prometheus.Registerer) *storageMetrics {
	s := &storageMetrics{
		usedDesc: prometheus.NewDesc(namespace+"_storage_used_bytes",
			"Bytes of blobs in storage (the blobs table's sizes), sampled at most every few seconds.", nil, nil),
		quotaDesc: prometheus.NewDesc(namespace+"_storage_quota_bytes",
			"The storage quota (--storage-quota) in bytes; 0 when there is none.", nil, nil),
	}
	reg.MustRegister(s)
	return s
}

// Describe implements prometheus.Collector.
func (s *storageMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- s.usedDesc; ch <- s.quotaDesc }

// Collect implements prometheus.Collector.
func (s *storageMetrics) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	used, quota := s.used, s.quota
	s.mu.Unlock()
	if used != nil {
		if n, ok := used.get(); ok {
			ch <- prometheus.MustNewConstMetric(s.usedDesc, prometheus.GaugeValue, float64(n))
		}
	}
	var q int64
	if quota != nil {
		q = quota()
	}
	ch <- prometheus.MustNewConstMetric(s.quotaDesc, prometheus.GaugeValue, float64(q))
}

// SetStorageUsed sets where the storage used comes from; used is called on scrape, at most
// every SampleEvery.
func (m *Metrics) SetStorageUsed(used func() (int64, error)) {
	m.storage.mu.Lock()
	m.storage.used = &sampled[int64]{every: SampleEvery, load: used}
	m.storage.mu.Unlock()
}

// SetQuota sets the function that tells the storage quota in bytes (0: none), for the
// quota's side (--storage-quota) to call once it knows it.
func (m *Metrics) SetQuota(quota func() int64) {
	m.storage.mu.Lock()
	m.storage.quota = quota
	m.storage.mu.Unlock()
}
