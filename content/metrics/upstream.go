package metrics

import (
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// upstreamKinds are the kinds of upstream requests (content/upstream's).
var upstreamKinds = []string{"token", "manifest_get", "manifest_head", "blob_get", "blob_head", "tags"}

// upstreamMetrics count the requests made to upstream registries and what they brought, and
// hold the pull budgets and breaker states the upstreams reported.
type upstreamMetrics struct {
	requests *prometheus.CounterVec
	bytes    map[string]prometheus.Counter // by kind; fixed after construction
	bytesVec *prometheus.CounterVec

	mu     sync.RWMutex
	series map[upstreamKey]prometheus.Counter

	remaining *prometheus.GaugeVec
	limit     *prometheus.GaugeVec
	breaker   *prometheus.GaugeVec
}

type upstreamKey struct {
	kind string
	code int
}

func newUpstreamMetrics(reg prometheus.Registerer) *upstreamMetrics {
	u := &upstreamMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "upstream_requests_total",
			Help: "Requests to upstream registries by kind (token, manifest_get, manifest_head, blob_get, blob_head, tags) and status code (\"error\": no answer: connection failure or timeout)."},
			[]string{"kind", "code"}),
		bytesVec: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "upstream_received_bytes_total",
			Help: "Body bytes received from upstream registries, by kind."}, []string{"kind"}),
		bytes:  map[string]prometheus.Counter{},
		series: map[upstreamKey]prometheus.Counter{},
		remaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "upstream_budget_remaining",
			Help: "Manifest GETs the upstream's pull budget has left, as last reported, by upstream host and key (a short id of the remote's settings, never its credentials)."},
			[]string{"host", "key"}),
		limit: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "upstream_budget_limit",
			Help: "The upstream's pull budget per window, as last reported, by upstream host and key."},
			[]string{"host", "key"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "upstream_breaker_state",
			Help: "The circuit breaker of an upstream host: 0 closed, 1 half-open, 2 open."},
			[]string{"host"}),
	}
	for _, k := range append(upstreamKinds, "other") {
		u.bytes[k] = u.bytesVec.WithLabelValues(k)
	}
	reg.MustRegister(u.requests, u.bytesVec, u.remaining, u.limit, u.breaker)
	return u
}

// UpstreamObserver records upstream requests (upstream.Observer), budgets and breakers.
type UpstreamObserver struct{ u *upstreamMetrics }

// Upstream returns the observer of the upstream clients.
func (m *Metrics) Upstream() UpstreamObserver { return UpstreamObserver{m.upstream} }

// UpstreamRequest records one request of kind answered with status (0: no answer).
func (o UpstreamObserver) UpstreamRequest(kind string, status int) {
	if _, ok := o.u.bytes[kind]; !ok {
		kind = "other"
	}
	k := upstreamKey{kind, status}
	o.u.mu.RLock()
	c := o.u.series[k]
	o.u.mu.RUnlock()
	if c == nil {
		code := "error"
		if status > 0 {
			code = strconv.Itoa(status)
		}
		o.u.mu.Lock()
		if c = o.u.series[k]; c == nil {
			c = o.u.requests.WithLabelValues(kind, code)
			o.u.series[k] = c
		}
		o.u.mu.Unlock()
	}
	c.Inc()
}

// UpstreamBytes records n body bytes received for a request of kind.
func (o UpstreamObserver) UpstreamBytes(kind string, n int) {
	c, ok := o.u.bytes[kind]
	if !ok {
		c = o.u.bytes["other"]
	}
	c.Add(float64(n))
}

// Budget records the pull budget host reported for the remote settings key (a budget not
// reported, limit 0, is left out).
func (o UpstreamObserver) Budget(key, host string, limit, remaining int) {
	if limit <= 0 {
		return
	}
	o.u.limit.WithLabelValues(host, shortKey(key)).Set(float64(limit))
	o.u.remaining.WithLabelValues(host, shortKey(key)).Set(float64(remaining))
}

// Breaker states, the values of pulpgo_upstream_breaker_state.
const (
	BreakerClosed   = 0
	BreakerHalfOpen = 1
	BreakerOpen     = 2
)

// Breaker records the state (BreakerClosed, BreakerHalfOpen, BreakerOpen) of host's breaker.
func (o UpstreamObserver) Breaker(host string, state int) {
	o.u.breaker.WithLabelValues(host).Set(float64(state))
}

// shortKey is the first 12 characters of a settings key's hash (a MAC, after any "kind:"
// prefix, as in "budget:<hex>"): enough to tell remotes apart on a dashboard.
func shortKey(k string) string {
	if i := strings.LastIndexByte(k, ':'); i >= 0 {
		k = k[i+1:]
	}
	if len(k) > 12 {
		return k[:12]
	}
	return k
}

// fillMetrics count the fill engine's fills and joins.
type fillMetrics struct {
	started  prometheus.Counter
	joined   prometheus.Counter
	failed   prometheus.Counter
	inflight prometheus.Gauge
}

func newFillMetrics(reg prometheus.Registerer) *fillMetrics {
	f := &fillMetrics{
		started: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "fills_started_total",
			Help: "Blob fills started from an upstream (one upstream fetch each)."}),
		joined: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "fill_joins_total",
			Help: "Requests that joined a fill already running for the same blob instead of fetching it again (single flight)."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "fills_failed_total",
			Help: "Blob fills that ended without a verified blob."}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "fills_in_flight",
			Help: "Blob fills running now in this process."}),
	}
	reg.MustRegister(f.started, f.joined, f.failed, f.inflight)
	return f
}

// FillObserver records fills (fill.Observer).
type FillObserver struct{ f *fillMetrics }

// Fills returns the observer of the fill engine.
func (m *Metrics) Fills() FillObserver { return FillObserver{m.fills} }

// FillStarted records a fill that starts.
func (o FillObserver) FillStarted() { o.f.started.Inc(); o.f.inflight.Inc() }

// FillJoined records a request that joined a running fill.
func (o FillObserver) FillJoined() { o.f.joined.Inc() }

// FillEnded records the end of a fill, failed or not.
func (o FillObserver) FillEnded(ok bool) {
	o.f.inflight.Dec()
	if !ok {
		o.f.failed.Inc()
	}
}
