package metrics

import "github.com/prometheus/client_golang/prometheus"

// Cache lookup kinds, the kind label of pulpgo_cache_lookups_total (pullthrough's).
var cacheKinds = []string{"tag_fresh", "tag_revalidated", "manifest", "blob"}

// cacheMetrics count the pull-through cache's lookups.
type cacheMetrics struct {
	vec    *prometheus.CounterVec
	series map[cacheKey]prometheus.Counter // fixed after construction: read without a lock
	joins  map[string]prometheus.Counter   // by kind; fixed after construction
}

type cacheKey struct {
	kind string
	hit  bool
}

func newCacheMetrics(reg prometheus.Registerer) *cacheMetrics {
	c := &cacheMetrics{
		vec: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "cache_lookups_total",
			Help: "Pull-through cache lookups by kind (tag_fresh: a tag within its freshness window; tag_revalidated: a tag checked upstream, a hit when the upstream confirmed the held digest; manifest: by digest; blob) and result (hit: served from storage; miss: fetched from upstream)."},
			[]string{"kind", "result"}),
		series: map[cacheKey]prometheus.Counter{},
		joins:  map[string]prometheus.Counter{},
	}
	joins := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "flight_joins_total",
		Help: "Requests that waited for the upstream call another request had started for the same tag (kind tag_revalidated) or manifest digest (kind manifest) instead of making their own (single flight; blobs' are pulpgo_fill_joins_total)."},
		[]string{"kind"})
	for _, k := range append(cacheKinds, "other") {
		c.series[cacheKey{k, true}] = c.vec.WithLabelValues(k, "hit")
		c.series[cacheKey{k, false}] = c.vec.WithLabelValues(k, "miss")
		c.joins[k] = joins.WithLabelValues(k)
	}
	reg.MustRegister(c.vec, joins)
	return c
}

// CacheObserver records the pull-through cache's lookups (pullthrough.Observer).
type CacheObserver struct{ c *cacheMetrics }

// Cache returns the observer of the pull-through cache.
func (m *Metrics) Cache() CacheObserver { return CacheObserver{m.cache} }

// CacheLookup records one lookup of kind, a hit or a miss.
func (o CacheObserver) CacheLookup(kind string, hit bool) {
	s, ok := o.c.series[cacheKey{kind, hit}]
	if !ok {
		s = o.c.series[cacheKey{"other", hit}]
	}
	s.Inc()
}

// FlightJoined records a request that joined another's upstream call for a tag or manifest.
func (o CacheObserver) FlightJoined(kind string) {
	c, ok := o.c.joins[kind]
	if !ok {
		c = o.c.joins["other"]
	}
	c.Inc()
}
