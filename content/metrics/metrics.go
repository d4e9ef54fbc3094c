package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every metric name.
const namespace = "pulpgo"

// Metrics is the registry of one process and its collectors. Its methods are safe for
// concurrent use; a nil *Metrics is not valid (use New).
type Metrics struct {
	reg  *prometheus.Registry
	role string

	http     *httpMetrics
	cache    *cacheMetrics
	upstream *upstreamMetrics
	fills    *fillMetrics
	tasks    *taskMetrics
	storage  *storageMetrics
	eviction *evictionMetrics
}

// New returns the metrics of a process of role (serve, api, content or worker), with the Go
// runtime and process collectors.
func New(role string) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	info := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "build_info",
		Help: "Always 1; the role label names what this process runs.", ConstLabels: prometheus.Labels{"role": role}})
	info.Set(1)
	reg.MustRegister(info)
	m := &Metrics{reg: reg, role: role}
	m.http = newHTTPMetrics(reg)
	m.cache = newCacheMetrics(reg)
	m.upstream = newUpstreamMetrics(reg)
	m.fills = newFillMetrics(reg)
	m.tasks = newTaskMetrics(reg)
	m.storage = newStorageMetrics(reg)
	m.eviction = newEvictionMetrics(reg)
	return m
}

// Registry is the process's Prometheus registry, for tests and for collectors added later.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text (or OpenMetrics) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// Path is where every listening role serves its metrics.
const Path = "/metrics"

// Serve answers GET and HEAD of Path with the metrics and sends everything else to h: the
// main listener's handler when no separate --metrics-listen is set.
func (m *Metrics) Serve(h http.Handler) http.Handler {
	mh := m.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == Path && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			mh.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// sampled is a value computed at most once per interval, on scrape: for figures that cost a
// database query (task counts, storage used).
type sampled[T any] struct {
	every time.Duration
	load  func() (T, error)

	mu  sync.Mutex
	at  time.Time
	val T
	ok  bool
}

// get returns the last value when it is younger than every, or loads a new one. A failed
// load keeps the last value (ok false when there never was one).
func (s *sampled[T]) get() (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.ok && now.Sub(s.at) < s.every {
		return s.val, true
	}
	v, err := s.load()
	if err != nil {
		return s.val, s.ok
	}
	s.val, s.at, s.ok = v, now, true
	return v, true
}
