package metrics

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Apps that serve HTTP requests, the app label of the request metrics.
const (
	AppAPI     = "api"
	AppContent = "content"
)

// RouteUnmatched is the route label of requests no route matched.
const RouteUnmatched = "unmatched"

// httpMetrics are the request counters and latency histograms.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytes    *prometheus.CounterVec

	// series is copied on write: requests read it without a lock; mu serializes additions.
	series atomic.Pointer[map[httpKey]*httpSeries]
	mu     sync.Mutex
}

// httpKey names one series; every field comes from a bounded set.
type httpKey struct {
	app, route, method string
	code               int
}

// httpSeries are the resolved children of one key: no label hashing per request.
type httpSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
	bytes    prometheus.Counter
}

// durationBuckets suit both a warm manifest GET (well under a millisecond) and a blob stream
// of minutes.
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	h := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests answered, by app (api, content), route template, method and status code."},
			[]string{"app", "route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "http_request_duration_seconds",
			Help: "Time from a request's arrival to the end of its answer's body, by app, route template and method.", Buckets: durationBuckets},
			[]string{"app", "route", "method"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "http_response_bytes_total",
			Help: "Bytes of answer bodies served, by app and route template."},
			[]string{"app", "route"}),
	}
	h.series.Store(&map[httpKey]*httpSeries{})
	reg.MustRegister(h.requests, h.duration, h.bytes)
	return h
}

// method maps a request method to a label value: the standard ones, else "other".
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// of returns the series of k, creating it the first time.
func (h *httpMetrics) of(k httpKey) *httpSeries {
	if s := (*h.series.Load())[k]; s != nil {
		return s
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *h.series.Load()
	if s := old[k]; s != nil {
		return s
	}
	s := &httpSeries{
		requests: h.requests.WithLabelValues(k.app, k.route, k.method, strconv.Itoa(k.code)),
		duration: h.duration.WithLabelValues(k.app, k.route, k.method),
		bytes:    h.bytes.WithLabelValues(k.app, k.route),
	}
	next := make(map[httpKey]*httpSeries, len(old)+1)
	for key, v := range old {
		next[key] = v
	}
	next[k] = s
	h.series.Store(&next)
	return s
}

// RequestObserver records the requests of one app; route must be a template from a bounded
// set (RouteUnmatched for a request no route matched).
type RequestObserver struct {
	h   *httpMetrics
	app string
}

// Requests returns the observer of app's requests (AppAPI, AppContent).
func (m *Metrics) Requests(app string) *RequestObserver {
	return &RequestObserver{h: m.http, app: app}
}

// ObserveRequest records one answered request.
func (o *RequestObserver) ObserveRequest(route, meth string, status int, elapsed time.Duration, written int64) {
	s := o.h.of(httpKey{app: o.app, route: route, method: method(meth), code: status})
	s.requests.Inc()
	s.duration.Observe(elapsed.Seconds())
	if written > 0 {
		s.bytes.Add(float64(written))
	}
}

// Instrument wraps h so that each request is recorded under the route template route(r)
// returns.
func (o *RequestObserver) Instrument(h http.Handler, route func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &responseWriter{ResponseWriter: w}
		defer func() {
			status := rw.status
			if status == 0 {
				status = http.StatusOK
			}
			o.ObserveRequest(route(r), r.Method, status, time.Since(start), rw.written)
		}()
		h.ServeHTTP(rw, r)
	})
}

// responseWriter records the status and the body bytes of an answer. It passes ReadFrom on
// (sendfile for stored blobs and staging files), Flush, Hijack and Unwrap (for
// http.ResponseController).
type responseWriter struct {
	http.ResponseWriter
	status  int
	written int64
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}

// ReadFrom copies r into the answer through the underlying writer's ReadFrom when it has one.
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	}
	w.written += n
	return n, err
}

// Flush sends what is buffered to the client.
func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack hands the connection over, when the underlying writer allows it.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if hj, ok := w.ResponseWriter.(http.Hijacker); ok {
		return hj.Hijack()
	}
	return nil, nil, errors.New("metrics: the response writer cannot hijack")
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
