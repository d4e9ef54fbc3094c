package roles

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/pulpgo/pulpgo/content/metrics/metricstest"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestSplitRolesMetrics runs api, worker and content apart: the content app serves /metrics
// on its listener, the api and the worker on --metrics-listen (the api's main listener then
// does not), and each shows what it did: the content app the pull, the api the sync request,
// the worker the sync's task and its upstream requests.
func TestSplitRolesMetrics(t *testing.T) {
	bin, up, img, common := splitSetup(t, 2, 1)
	apiMetrics := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	workerMetrics := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	a := harness.StartRole(t, bin, "api", append(common, "--metrics-listen", apiMetrics)...)
	harness.StartRole(t, bin, "worker", append(common, "--metrics-listen", workerMetrics)...)
	c := harness.StartRole(t, bin, "content", common...)
	base := "http://" + a.Addr
	harness.WaitAPI(t, base)
	createCache(t, base, up.URL())
	harness.WaitContent(t, c.Addr)
	if err := pull(t.Context(), "http://"+c.Addr, "hub/library/large", "latest", img); err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	var task map[string]string
	if code := api(t, "POST", base+"/pulp/api/v3/remotes/container/container/",
		map[string]any{"name": "large", "url": up.URL(), "upstream_name": "library/large"}, &obj); code != 201 {
		t.Fatalf("create remote: %d %v", code, obj)
	}
	remote := obj["pulp_href"].(string)
	if code := api(t, "POST", base+"/pulp/api/v3/repositories/container/container/", map[string]any{"name": "large"}, &obj); code != 201 {
		t.Fatalf("create repository: %d %v", code, obj)
	}
	if code := api(t, "POST", base+obj["pulp_href"].(string)+"sync/", map[string]any{"remote": remote}, &task); code != 202 {
		t.Fatalf("sync: %d %v", code, task)
	}
	waitTask(t, base, task["task"])
	var done map[string]any
	api(t, "GET", base+task["task"], nil, &done)
	syncName, _ := done["name"].(string)

	// The worker: the sync's latency samples and its tag list request upstream.
	var worker metricstest.Families
	harness.WaitFor(t, "the worker's sample of the sync", func() bool {
		worker = scrapeOK(t, "http://"+workerMetrics+"/metrics")
		n, _ := metricstest.Sum(worker, "pulpgo_task_run_seconds", metricstest.Labels{"name": syncName, "state": "completed"})
		return n == 1
	})
	for _, c := range []struct {
		name   string
		labels metricstest.Labels
	}{
		{"pulpgo_build_info", metricstest.Labels{"role": "worker"}},
		{"pulpgo_task_wait_seconds", metricstest.Labels{"name": syncName, "state": "completed"}},
		{"pulpgo_upstream_requests_total", metricstest.Labels{"kind": "tags", "code": "200"}},
		{"pulpgo_upstream_requests_total", metricstest.Labels{"kind": "manifest_get", "code": "200"}},
	} {
		if n, _ := metricstest.Sum(worker, c.name, c.labels); n < 1 {
			t.Errorf("worker: %s%v = %v, want at least 1", c.name, c.labels, n)
		}
	}
	if _, n := metricstest.Sum(worker, "pulpgo_http_requests_total", nil); n != 0 {
		t.Errorf("the worker shows %d request series; it serves no requests", n)
	}

	// The content app, on its own listener: the pull's requests, fills and misses.
	content := scrapeOK(t, "http://"+c.Addr+"/metrics")
	blobs := float64(len(img.Blobs()))
	if n, _ := metricstest.Sum(content, "pulpgo_fills_started_total", nil); n != blobs {
		t.Errorf("content: %v fills started, want %v", n, blobs)
	}
	if n, _ := metricstest.Sum(content, "pulpgo_cache_lookups_total", metricstest.Labels{"kind": "blob", "result": "miss"}); n != blobs {
		t.Errorf("content: %v blob misses, want %v", n, blobs)
	}
	if n, _ := metricstest.Sum(content, "pulpgo_http_requests_total", metricstest.Labels{"app": "content", "route": "/v2/{name}/manifests/{reference}", "code": "200"}); n != 1 {
		t.Errorf("content: %v manifest GETs answered 200, want 1", n)
	}

	// The api: /metrics only on --metrics-listen, where the sync request shows.
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the api's main listener with --metrics-listen: %d, want 404", resp.StatusCode)
	}
	apiFams := scrapeOK(t, "http://"+apiMetrics+"/metrics")
	if n, _ := metricstest.Sum(apiFams, "pulpgo_http_requests_total", metricstest.Labels{"app": "api",
		"route": "/pulp/api/v3/repositories/container/container/:pulp_id/sync/", "method": "POST", "code": "202"}); n != 1 {
		t.Errorf("api: %v sync requests answered 202, want 1", n)
	}
	if n, _ := metricstest.Sum(apiFams, "pulpgo_http_requests_total", metricstest.Labels{"route": "unmatched", "code": "404"}); n != 1 {
		t.Errorf("api: %v unmatched requests answered 404 (the GET /metrics), want 1", n)
	}
}

// scrapeOK GETs a metrics URL and parses it, failing t on any error.
func scrapeOK(t *testing.T, url string) metricstest.Families {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	fams, err := metricstest.Parse(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}
