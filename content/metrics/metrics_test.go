package metrics_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/metrics"
	"github.com/pulpgo/pulpgo/content/metrics/metricstest"
	"github.com/pulpgo/pulpgo/content/registry"
)

// scrape GETs /metrics through m.Serve and parses it.
func scrape(t *testing.T, m *metrics.Metrics) metricstest.Families {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Serve(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, metrics.Path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	fams, err := metricstest.Parse(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is metricstest.Sum.
func value(fams metricstest.Families, name string, want map[string]string) (float64, int) {
	return metricstest.Sum(fams, name, want)
}

// TestInstrument checks the request metrics of a wrapped handler: counts by route template,
// method and code, a latency sample each, and the bytes of bodies written with Write and with
// ReadFrom.
func TestInstrument(t *testing.T) {
	m := metrics.New("content")
	h := m.Requests(metrics.AppContent).Instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/blobs/"):
			_, _ = io.Copy(w, strings.NewReader("0123456789")) // ReadFrom
		case strings.Contains(r.URL.Path, "/manifests/"):
			_, _ = w.Write([]byte("{}"))
		default:
			http.Error(w, "no", http.StatusNotFound)
		}
	}), registry.Route)
	for _, p := range []string{"/v2/a/manifests/1", "/v2/b/c/manifests/2", "/v2/a/blobs/sha256:" + strings.Repeat("a", 64), "/v2/x/tags/list", "/nothing"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, p, nil))
	}
	fams := scrape(t, m)
	for _, c := range []struct {
		route, code string
		want        float64
	}{
		{registry.RouteManifest, "200", 2},
		{registry.RouteBlob, "200", 1},
		{registry.RouteTags, "404", 1},
		{registry.RouteOther, "404", 1},
	} {
		if got, _ := value(fams, "pulpgo_http_requests_total", map[string]string{"app": "content", "route": c.route, "method": "GET", "code": c.code}); got != c.want {
			t.Errorf("requests of %s with %s: %v, want %v", c.route, c.code, got, c.want)
		}
	}
	if got, _ := value(fams, "pulpgo_http_request_duration_seconds", map[string]string{"route": registry.RouteManifest}); got != 2 {
		t.Errorf("latency samples of manifests: %v, want 2", got)
	}
	if got, _ := value(fams, "pulpgo_http_response_bytes_total", map[string]string{"route": registry.RouteBlob}); got != 10 {
		t.Errorf("blob bytes served: %v, want 10 (through ReadFrom)", got)
	}
	if got, _ := value(fams, "pulpgo_http_response_bytes_total", map[string]string{"route": registry.RouteManifest}); got != 4 {
		t.Errorf("manifest bytes served: %v, want 4", got)
	}
	if _, n := value(fams, "pulpgo_build_info", map[string]string{"role": "content"}); n != 1 {
		t.Errorf("build_info with role content: %d series", n)
	}
}

// TestCardinality: requests to 1000 distinct unknown names, and odd methods, add no label
// values beyond the route templates.
func TestCardinality(t *testing.T) {
	m := metrics.New("content")
	h := m.Requests(metrics.AppContent).Instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}), registry.Route)
	for i := range 1000 {
		for _, p := range []string{
			fmt.Sprintf("/v2/unknown-%d/manifests/latest", i),
			fmt.Sprintf("/v2/unknown-%d/blobs/sha256:%064d", i, i),
			fmt.Sprintf("/v2/unknown-%d/whatever/%d", i, i),
			fmt.Sprintf("/pulp/api/v3/x%d/", i),
		} {
			method := http.MethodGet
			if i%2 == 1 {
				method = fmt.Sprintf("M%d", i)
			}
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, p, nil))
		}
	}
	fams := scrape(t, m)
	total, n := value(fams, "pulpgo_http_requests_total", nil)
	if total != 4000 {
		t.Errorf("%v requests counted, want 4000", total)
	}
	// 3 routes (manifest, blob, unmatched) x 2 methods (GET, other).
	if n != 6 {
		t.Errorf("%d request series after 4000 requests to 1000 names, want 6", n)
	}
	for _, f := range fams {
		for _, s := range f.Metric {
			for _, l := range s.Label {
				if strings.Contains(l.GetValue(), "unknown-") || strings.Contains(l.GetValue(), "sha256:") {
					t.Fatalf("%s has a label from a request path: %s=%q", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
}

// TestObservers checks the cache, upstream, fill, task and storage figures.
func TestObservers(t *testing.T) {
	m := metrics.New("serve")
	c := m.Cache()
	c.CacheLookup("blob", true)
	c.CacheLookup("blob", true)
	c.CacheLookup("tag_revalidated", false)
	c.CacheLookup("nonsense", false)
	c.FlightJoined("tag_revalidated")
	c.FlightJoined("tag_revalidated")
	u := m.Upstream()
	u.UpstreamRequest("blob_get", 200)
	u.UpstreamRequest("blob_get", 0)
	u.UpstreamRequest("token", 200)
	u.UpstreamBytes("blob_get", 1000)
	u.UpstreamBytes("blob_get", 24)
	u.Budget("budget:0123456789abcdef", "hub.example:5000", 100, 42)
	u.Breaker("hub.example:5000", metrics.BreakerOpen)
	f := m.Fills()
	f.FillStarted()
	f.FillStarted()
	f.FillJoined()
	f.FillEnded(true)
	m.ObserveTask("pulp_container.app.tasks.synchronize", "completed", time.Second, 2*time.Second)
	loads := 0
	m.SetTaskCounts(func() (map[string]int64, error) {
		loads++
		return map[string]int64{"waiting": 3, "running": 1}, nil
	})
	m.SetStorageUsed(func() (int64, error) { return 0, errors.New("database down") })
	fams := scrape(t, m)
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"pulpgo_cache_lookups_total", map[string]string{"kind": "blob", "result": "hit"}, 2},
		{"pulpgo_cache_lookups_total", map[string]string{"kind": "tag_revalidated", "result": "miss"}, 1},
		{"pulpgo_cache_lookups_total", map[string]string{"kind": "other", "result": "miss"}, 1},
		{"pulpgo_flight_joins_total", map[string]string{"kind": "tag_revalidated"}, 2},
		{"pulpgo_upstream_requests_total", map[string]string{"kind": "blob_get", "code": "200"}, 1},
		{"pulpgo_upstream_requests_total", map[string]string{"kind": "blob_get", "code": "error"}, 1},
		{"pulpgo_upstream_requests_total", map[string]string{"kind": "token", "code": "200"}, 1},
		{"pulpgo_upstream_received_bytes_total", map[string]string{"kind": "blob_get"}, 1024},
		{"pulpgo_upstream_budget_remaining", map[string]string{"host": "hub.example:5000", "key": "0123456789ab"}, 42},
		{"pulpgo_upstream_budget_limit", map[string]string{"host": "hub.example:5000"}, 100},
		{"pulpgo_upstream_breaker_state", map[string]string{"host": "hub.example:5000"}, 2},
		{"pulpgo_fills_started_total", nil, 2},
		{"pulpgo_fill_joins_total", nil, 1},
		{"pulpgo_fills_in_flight", nil, 1},
		{"pulpgo_task_run_seconds", map[string]string{"name": "pulp_container.app.tasks.synchronize", "state": "completed"}, 1},
		{"pulpgo_task_wait_seconds", map[string]string{"state": "completed"}, 1},
		{"pulpgo_tasks", map[string]string{"state": "waiting"}, 3},
		{"pulpgo_storage_quota_bytes", nil, 0},
	}
	for _, c := range checks {
		if got, n := value(fams, c.name, c.labels); got != c.want || n == 0 {
			t.Errorf("%s%v = %v (%d series), want %v", c.name, c.labels, got, n, c.want)
		}
	}
	if _, n := value(fams, "pulpgo_storage_used_bytes", nil); n != 0 {
		t.Errorf("storage used shown although its query failed")
	}
	// Scrapes within the sampling interval reuse the task counts.
	scrape(t, m)
	if loads != 1 {
		t.Errorf("task counts loaded %d times for 2 scrapes within %s, want 1", loads, metrics.SampleEvery)
	}
	m.SetQuota(func() int64 { return 5 << 30 })
	m.SetStorageUsed(func() (int64, error) { return 1234, nil })
	fams = scrape(t, m)
	if got, _ := value(fams, "pulpgo_storage_quota_bytes", nil); got != 5<<30 {
		t.Errorf("quota %v, want %d", got, 5<<30)
	}
	if got, _ := value(fams, "pulpgo_storage_used_bytes", nil); got != 1234 {
		t.Errorf("storage used %v, want 1234", got)
	}
}

// TestServe: /metrics is answered by the metrics, every other path by the wrapped handler.
func TestServe(t *testing.T) {
	m := metrics.New("api")
	h := m.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("app")) }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/pulp/api/v3/", nil))
	if rec.Body.String() != "app" {
		t.Errorf("another path: %q", rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !bytes.Contains(rec.Body.Bytes(), []byte("pulpgo_build_info")) {
		t.Errorf("/metrics has no pulpgo_build_info:\n%s", rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/metrics", strings.NewReader("x")))
	if rec.Body.String() != "app" {
		t.Errorf("POST /metrics went to the metrics, not to the app: %q", rec.Body)
	}
}

// BenchmarkInstrument measures what the request metrics add to one request: a handler that
// writes a small body, bare and wrapped (the route parsed, the series looked up, a counter,
// a histogram and a byte counter updated).
func BenchmarkInstrument(b *testing.B) {
	body := []byte(`{"schemaVersion":2}`)
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) })
	m := metrics.New("content")
	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", bare},
		{"instrumented", m.Requests(metrics.AppContent).Instrument(bare, registry.Route)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest(http.MethodGet, "/v2/library/busybox/manifests/latest", nil)
			b.RunParallel(func(pb *testing.PB) {
				w := &discard{h: http.Header{}}
				for pb.Next() {
					c.h.ServeHTTP(w, req)
				}
			})
		})
	}
}

// discard is a ResponseWriter that keeps nothing, so that the benchmark measures the handler.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

// TestEviction: the evict counters appear only once a process says it runs evict tasks, with
// the counts it reports.
func TestEviction(t *testing.T) {
	m := metrics.New("worker")
	if _, n := value(scrape(t, m), "pulpgo_evict_runs_total", nil); n != 0 {
		t.Errorf("evict counters of a process without evict tasks: %d series", n)
	}
	m.SetEviction(func() metrics.EvictionCounts {
		return metrics.EvictionCounts{Runs: 3, ImagesEvicted: 7, BytesFreed: 1 << 20}
	})
	fams := scrape(t, m)
	for name, want := range map[string]float64{"pulpgo_evict_runs_total": 3, "pulpgo_evict_images_total": 7,
		"pulpgo_evict_freed_bytes_total": 1 << 20} {
		if v, n := value(fams, name, nil); n != 1 || v != want {
			t.Errorf("%s = %v (%d series), want %v", name, v, n, want)
		}
	}
}
