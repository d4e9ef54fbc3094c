package pullthrough

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/metrics/metricstest"
	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestMetrics scrapes /metrics of pulpgo serve after a cold pull, a warm pull, a pull of a
// name the upstream does not have and a repository sync, and checks the figures against what
// the test caused and what the fake Docker Hub counted.
func TestMetrics(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		img, err := hub.PushLarge(ctx, "library/metrics", "1", 2, 2)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := hub.PushSmall(ctx, "library/synced", "1"); err != nil {
			t.Fatal(err)
		}
		const name = "docker-cache/library/metrics"
		e := startServer(t, eng, "", "--tag-freshness", "10m")
		e.createCache(t, cacheBase, cacheBase, hub.URL(), nil, nil)
		hub.Reset()
		blobs := float64(len(img.Blobs()))
		var size float64
		for _, b := range img.Blobs() {
			size += float64(b.Size)
		}
		const blobRoute = "/v2/{name}/blobs/{digest}"

		// Cold: every blob fetched once, each a cache miss and a fill. A request is recorded
		// when its handler returns, which may be just after the client has read the body.
		e.reg.mustPull(t, name, "1", img)
		cold := waitMetrics(t, e.srv.URL, "the blob bytes of the cold pull", func(f families) bool {
			return sum(f, "pulpgo_http_response_bytes_total", labels{"route": blobRoute}) >= size
		})
		counts := hub.Counts()
		check(t, cold, "pulpgo_upstream_requests_total", labels{"kind": "blob_get", "code": "200"}, float64(counts.BlobGets))
		check(t, cold, "pulpgo_upstream_requests_total", labels{"kind": "manifest_get", "code": "200"}, float64(counts.ManifestGets))
		check(t, cold, "pulpgo_fills_started_total", nil, blobs)
		check(t, cold, "pulpgo_cache_lookups_total", labels{"kind": "blob", "result": "miss"}, blobs)
		check(t, cold, "pulpgo_cache_lookups_total", labels{"kind": "blob", "result": "hit"}, 0)
		if got := sum(cold, "pulpgo_upstream_received_bytes_total", labels{"kind": "blob_get"}); got != size {
			t.Errorf("blob bytes from upstream: %v, want the blobs' %v", got, size)
		}
		if counts.BlobGets != len(img.Blobs()) {
			t.Errorf("the hub counted %d blob GETs for %d blobs", counts.BlobGets, len(img.Blobs()))
		}

		// Warm, once the pull is recorded (its fills have ended): everything from storage, no
		// upstream request.
		e.api.waitRecorded(t, name, 1)
		e.reg.mustPull(t, name, "1", img)
		warm := waitMetrics(t, e.srv.URL, "the blob bytes of the warm pull", func(f families) bool {
			return sum(f, "pulpgo_http_response_bytes_total", labels{"route": blobRoute}) >= 2*size
		})
		check(t, warm, "pulpgo_cache_lookups_total", labels{"kind": "blob", "result": "hit"}, blobs)
		check(t, warm, "pulpgo_fills_started_total", nil, blobs)
		if got := sum(warm, "pulpgo_cache_lookups_total", labels{"kind": "tag_fresh", "result": "hit"}); got < 1 {
			t.Errorf("tag_fresh hits after a warm pull: %v", got)
		}
		if after := hub.Counts(); after != counts {
			t.Errorf("the warm pull reached the upstream: %+v, then %+v", counts, after)
		}
		check(t, warm, "pulpgo_upstream_requests_total", labels{"kind": "blob_get"}, float64(counts.BlobGets))
		check(t, warm, "pulpgo_fills_in_flight", nil, 0)

		// A name the upstream does not have: a 404 under the manifest route's template.
		if _, _, _, err := e.reg.manifest(ctx, "docker-cache/library/absent", "1"); err == nil {
			t.Fatal("pulled a manifest the upstream does not have")
		}
		after404 := waitMetrics(t, e.srv.URL, "a 404", func(f families) bool {
			return sum(f, "pulpgo_http_requests_total", labels{"code": "404"}) > 0
		})
		check(t, after404, "pulpgo_http_requests_total", labels{"app": "content", "route": "/v2/{name}/manifests/{reference}", "method": "GET", "code": "404"}, 1)
		if got := sum(after404, "pulpgo_http_requests_total", labels{"app": "content", "route": "/v2/{name}/manifests/{reference}", "code": "200"}); got < 2 {
			t.Errorf("manifest GETs answered 200: %v, want at least 2", got)
		}
		if got := sum(after404, "pulpgo_upstream_requests_total", labels{"kind": "manifest_get", "code": "404"}) +
			sum(after404, "pulpgo_upstream_requests_total", labels{"kind": "manifest_head", "code": "404"}); got < 1 {
			t.Errorf("upstream manifest requests answered 404: %v", got)
		}

		// Single flight: concurrent GETs of a tag the cache has not seen. Each either makes
		// the one upstream call (a HEAD), joins it, or comes after it and finds the tag fresh.
		if _, err := hub.PushLarge(ctx, "library/metrics", "2", 1, 1); err != nil {
			t.Fatal(err)
		}
		heads := hub.Counts().ManifestHeads
		hub.SetDelay(300 * time.Millisecond) // the call stays in flight while the others arrive
		var wg sync.WaitGroup
		for range concurrentPulls {
			wg.Go(func() {
				if _, _, _, err := e.reg.manifest(ctx, name, "2"); err != nil {
					t.Errorf("concurrent GET of a new tag: %v", err)
				}
			})
		}
		wg.Wait()
		hub.SetDelay(0)
		flight := waitMetrics(t, e.srv.URL, "the concurrent tag GETs", func(f families) bool {
			return sum(f, "pulpgo_http_requests_total", labels{"route": "/v2/{name}/manifests/{reference}", "code": "200"}) >=
				sum(after404, "pulpgo_http_requests_total", labels{"route": "/v2/{name}/manifests/{reference}", "code": "200"})+concurrentPulls
		})
		joins := sum(flight, "pulpgo_flight_joins_total", labels{"kind": "tag_revalidated"})
		fresh := sum(flight, "pulpgo_cache_lookups_total", labels{"kind": "tag_fresh"}) - sum(after404, "pulpgo_cache_lookups_total", labels{"kind": "tag_fresh"})
		newHeads := hub.Counts().ManifestHeads - heads
		if newHeads != 1 || joins+fresh+float64(newHeads) != concurrentPulls {
			t.Errorf("%d concurrent GETs of a new tag: %d upstream HEADs, %v joins, %v fresh hits; want 1 HEAD and the rest joins or fresh hits",
				concurrentPulls, newHeads, joins, fresh)
		}
		t.Logf("%d concurrent GETs of a new tag: %v joined the upstream call, %v found it fresh", concurrentPulls, joins, fresh)

		// Cardinality: many distinct unknown names, in the registry and the API, add no series
		// beyond their route templates (a registry 404 for a name no distribution serves, and
		// the API's "unmatched").
		total, before := metricstest.Sum(after404, "pulpgo_http_requests_total", nil)
		hc := client.NewHTTPClient()
		for i := range 300 {
			for _, p := range []string{fmt.Sprintf("/v2/nothere-%d/manifests/latest", i), fmt.Sprintf("/pulp/api/v3/nothing-%d/", i)} {
				resp, err := hc.Get(e.srv.URL + p)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("GET %s: %s", p, resp.Status)
				}
			}
		}
		flood := waitMetrics(t, e.srv.URL, "the 600 requests to unknown names", func(f families) bool {
			n, _ := metricstest.Sum(f, "pulpgo_http_requests_total", nil)
			return n >= total+600
		})
		if _, after := metricstest.Sum(flood, "pulpgo_http_requests_total", nil); after > before+2 {
			t.Errorf("600 requests to unknown names took the request series from %d to %d", before, after)
		}

		// A sync: one task latency sample for it, and the API's requests under their routes.
		remote := client.Str(post(t, e, "/pulp/api/v3/remotes/container/container/",
			map[string]any{"name": "synced", "url": hub.URL(), "upstream_name": "library/synced"}), "pulp_href")
		repo := client.Str(post(t, e, "/pulp/api/v3/repositories/container/container/", map[string]any{"name": "synced"}), "pulp_href")
		task := e.api.WaitTask(t, client.Str(post(t, e, repo+"sync/", map[string]any{"remote": remote}), "task"))
		if client.Str(task, "state") != "completed" {
			t.Fatalf("sync: %v", task)
		}
		// The task's sample is taken just after its row is finished; the storage used is
		// sampled at most every few seconds.
		synced := waitMetrics(t, e.srv.URL, "the sync's task sample and the storage used", func(f families) bool {
			return sum(f, "pulpgo_task_run_seconds", labels{"name": client.Str(task, "name")}) > 0 &&
				sum(f, "pulpgo_storage_used_bytes", nil) >= size
		})
		check(t, synced, "pulpgo_task_run_seconds", labels{"name": client.Str(task, "name"), "state": "completed"}, 1)
		check(t, synced, "pulpgo_task_wait_seconds", labels{"name": client.Str(task, "name"), "state": "completed"}, 1)
		check(t, synced, "pulpgo_http_requests_total", labels{"app": "api", "route": "/pulp/api/v3/repositories/container/container/:pulp_id/sync/", "method": "POST", "code": "202"}, 1)
		if _, ok := synced["pulpgo_tasks"]; !ok {
			t.Error("no pulpgo_tasks (queue depth) series")
		}
		if got := sum(synced, "pulpgo_storage_used_bytes", nil); got < size {
			t.Errorf("storage used %v, want at least the pulled blobs' %v", got, size)
		}
		check(t, synced, "pulpgo_storage_quota_bytes", nil, 0)
	})
}

// post POSTs body to path and returns the answer, failing t on a status other than 201 or 202.
func post(t *testing.T, e *env, path string, body any) map[string]any {
	t.Helper()
	status, raw := e.api.Do(t, http.MethodPost, path, body)
	if status != http.StatusCreated && status != http.StatusAccepted {
		t.Fatalf("POST %s: %d %s", path, status, raw)
	}
	return client.DecodeObject(t, raw)
}

// families are the metric families of one scrape, by name.
type families = metricstest.Families

// labels select series by some of their labels.
type labels = metricstest.Labels

// waitMetrics scrapes base/metrics until ok holds (what describes it), or fails t after 30 s.
func waitMetrics(t *testing.T, base, what string, ok func(families) bool) families {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		f := scrapeMetrics(t, base)
		if ok(f) {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics did not show %s within 30 s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scrapeMetrics GETs base/metrics and parses it with Prometheus's text parser.
func scrapeMetrics(t *testing.T, base string) families {
	t.Helper()
	resp, err := client.NewHTTPClient().Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	fams, err := metricstest.Parse(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sum adds up name's series with want's labels.
func sum(fams families, name string, want labels) float64 {
	total, _ := metricstest.Sum(fams, name, want)
	return total
}

// check fails t unless the series of name with want's labels add up to exactly n.
func check(t *testing.T, fams families, name string, want labels, n float64) {
	t.Helper()
	if got := sum(fams, name, want); got != n {
		var seen []string
		if f := fams[name]; f != nil {
			for _, m := range f.Metric {
				seen = append(seen, m.String())
			}
		}
		t.Errorf("%s%v = %v, want %v; series:\n%s", name, want, got, n, strings.Join(seen, "\n"))
	}
}
