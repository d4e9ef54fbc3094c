package roles

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/pulpgo/pulpgo/content/metrics/metricstest"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/tasks"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/s3server"
	"github.com/pulpgo/pulpgo/test/testenv"
	"github.com/pulpgo/pulpgo/test/upstream"
)

// TestProductionTopology runs the deployment issue 11 describes, as processes: api, two
// content apps and two workers on PostgreSQL, Redis and S3 (SeaweedFS), each with its own
// metrics listener, the quota on the workers. In turn:
//   - 20 concurrent cold pulls of L, alternating between the content apps: one upstream GET
//     per blob, every digest right;
//   - a sync of S into an ordinary repository started while A and B are being filled (the
//     upstream throttled): all succeed;
//   - L and A pulled again, so B is the least recently pulled; pulling C takes the stored
//     size over the high watermark (the quota is computed from the images' sizes so that
//     evicting B alone brings it under the low one): the evict task makes B's version 2, B's
//     blobs leave the bucket, and L, A and C are still served;
//   - each process's metrics show what the test caused: upstream blob GETs summed over the
//     processes equal the upstream's count and the content apps' are one per blob pulled
//     (fills started at least that, none in flight or failed), and so are the blob bytes they
//     received, while they served at least what the pulls read; the manifest GETs served by
//     both content apps; the sync's and the evict task's samples, the evict counters and the
//     quota on the workers; the sync request on the api.
func TestProductionTopology(t *testing.T) {
	ctx := t.Context()
	weed := s3server.Start(t, "")
	bucket := weed.NewBucket(t)
	bin, up, l, common := splitSetup(t, 3, 3)
	s, a, b, c := pushMiB(t, up, "library/s"), pushMiB(t, up, "library/a"), pushMiB(t, up, "library/b"), pushMiB(t, up, "library/c")

	// The quota: usage is the sizes of the blobs and manifests in the database (the S3 driver
	// does not measure itself). Before C it is at most the high watermark, with C above it,
	// and without B under the low one.
	before := storedBytes(l, s, a, b)
	after := storedBytes(l, s, a, b, c)
	withoutB := storedBytes(l, s, a, c)
	quota := after
	highBytes := before + (after-before)/2
	high := float64(highBytes) / float64(quota)
	low := float64((withoutB+highBytes)/2) / float64(quota)
	if !(withoutB <= int64(low*float64(quota)) && low < high) {
		t.Fatalf("no watermarks fit: %d bytes before C, %d after, %d without B", before, after, withoutB)
	}
	t.Logf("quota %d bytes, high %d, low %d; %d stored before C, %d after, %d without B",
		quota, int64(high*float64(quota)), int64(low*float64(quota)), before, after, withoutB)
	fraction := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

	common = append(common, "--storage", "s3://"+bucket+"/pulp", "--s3-endpoint", weed.Endpoint,
		"--s3-access-key", s3server.AccessKey, "--s3-secret-key", s3server.SecretKey)
	metricsAddr := map[*harness.Role]string{}
	role := func(name string, args ...string) *harness.Role {
		m := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		p := harness.StartRole(t, bin, name, append(append([]string{"--metrics-listen", m}, args...), common...)...)
		metricsAddr[p] = m
		return p
	}
	quotaArgs := []string{"--storage-quota", strconv.FormatInt(quota, 10), "--storage-quota-high", fraction(high),
		"--storage-quota-low", fraction(low), "--storage-quota-interval", "100ms"}
	apiProc := role("api")
	w1, w2 := role("worker", quotaArgs...), role("worker", quotaArgs...)
	c1, c2 := role("content", "--last-pull-flush", "100ms"), role("content", "--last-pull-flush", "100ms")
	contents, workers := []*harness.Role{c1, c2}, []*harness.Role{w1, w2}
	base := "http://" + apiProc.Addr
	harness.WaitFor(t, "api, both workers and both content apps online", func() bool {
		var status struct {
			OnlineWorkers     []any `json:"online_workers"`
			OnlineContentApps []any `json:"online_content_apps"`
			OnlineAPIApps     []any `json:"online_api_apps"`
		}
		resp, err := http.Get(base + "/pulp/api/v3/status/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&status)
		return len(status.OnlineWorkers) == 2 && len(status.OnlineContentApps) == 2 && len(status.OnlineAPIApps) == 1
	})
	createCache(t, base, up.URL())
	for _, p := range contents {
		harness.WaitContent(t, p.Addr)
	}
	manifestGets := 0     // pulls through the content apps, one manifest GET each
	var servedBlobs int64 // the bytes of their blobs
	mustPull := func(p *harness.Role, img upstream.Image) {
		t.Helper()
		manifestGets++
		servedBlobs += blobBytes(img)
		if err := pull(ctx, "http://"+p.Addr, "hub/"+img.Name, "latest", img); err != nil {
			t.Fatalf("pull %s through %s: %v", img.Name, p.Addr, err)
		}
	}

	// 20 cold pulls of L at once, alternating between the content apps.
	up.Reset()
	up.SetBlobThrottle(16 << 20) // the fills overlap
	var targets []*harness.Role
	for i := range 20 {
		targets = append(targets, contents[i%2])
	}
	manifestGets += len(targets)
	servedBlobs += int64(len(targets)) * blobBytes(l)
	pullAtOnce(t, up, l, targets)
	up.SetBlobThrottle(0)
	if t.Failed() {
		t.FailNow()
	}

	// A sync of S while A and B are pulled.
	var obj map[string]any
	var task map[string]string
	if code := api(t, "POST", base+"/pulp/api/v3/remotes/container/container/",
		map[string]any{"name": "s", "url": up.URL(), "upstream_name": s.Name}, &obj); code != 201 {
		t.Fatalf("create remote: %d %v", code, obj)
	}
	remote := obj["pulp_href"].(string)
	if code := api(t, "POST", base+"/pulp/api/v3/repositories/container/container/", map[string]any{"name": "s"}, &obj); code != 201 {
		t.Fatalf("create repository: %d %v", code, obj)
	}
	up.SetBlobThrottle(2 << 20) // half a second per layer: the sync starts while A and B fill
	pulled := make(chan error, 2)
	for i, img := range []upstream.Image{a, b} {
		manifestGets++
		servedBlobs += blobBytes(img)
		go func(p *harness.Role, img upstream.Image) {
			pulled <- pull(ctx, "http://"+p.Addr, "hub/"+img.Name, "latest", img)
		}(contents[i], img)
	}
	harness.WaitFor(t, "the pulls of A and B to reach the upstream", func() bool {
		return up.CDNGets(a.Layers[0].Digest) > 0 && up.CDNGets(b.Layers[0].Digest) > 0
	})
	if code := api(t, "POST", base+obj["pulp_href"].(string)+"sync/", map[string]any{"remote": remote}, &task); code != 202 {
		t.Fatalf("sync: %d %v", code, task)
	}
	waitTask(t, base, task["task"])
	for range 2 {
		if err := <-pulled; err != nil {
			t.Fatalf("pull during the sync: %v", err)
		}
	}
	up.SetBlobThrottle(0)
	var synced map[string]any
	api(t, "GET", base+task["task"], nil, &synced)
	if created, _ := synced["created_resources"].([]any); len(created) != 1 || !strings.HasSuffix(created[0].(string), "/versions/1/") {
		t.Fatalf("the sync created %v, want version 1", synced["created_resources"])
	}
	syncName, _ := synced["name"].(string)
	recorded := func(img upstream.Image, version int) {
		t.Helper()
		harness.WaitFor(t, fmt.Sprintf("%s at version %d", img.Name, version), func() bool {
			return latestVersion(t, base, "hub/"+img.Name) == version
		})
	}
	for _, img := range []upstream.Image{l, a, b} {
		recorded(img, 1)
	}

	// L and A again: B is the least recently pulled once the content apps wrote the times.
	mustPull(c2, l)
	mustPull(c1, a)
	db, err := models.Open(argOf(common, "--database-url"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}()
	harness.WaitFor(t, "the pull times of L and A written after B's", func() bool {
		at, err := models.LastPulled(db, []string{l.ManifestDigest, a.ManifestDigest, b.ManifestDigest})
		return err == nil && len(at) == 3 && at[l.ManifestDigest].After(at[b.ManifestDigest]) &&
			at[a.ManifestDigest].After(at[b.ManifestDigest])
	})

	// C takes the storage over the quota's high watermark: B goes, L, A and C stay.
	mustPull(c1, c)
	recorded(c, 1)
	recorded(b, 2)
	for _, img := range []upstream.Image{l, a, c} {
		if v := latestVersion(t, base, "hub/"+img.Name); v != 1 {
			t.Errorf("%s at version %d after the eviction, want 1", img.Name, v)
		}
	}
	inBucket := func(digest string) bool {
		_, err := weed.Client.StatObject(ctx, bucket, "pulp/blobs/sha256/"+digest[7:9]+"/"+digest[7:], minio.StatObjectOptions{})
		return err == nil
	}
	for _, bl := range b.Blobs() {
		harness.WaitFor(t, "B's blob "+bl.Digest+" to leave the bucket", func() bool { return !inBucket(bl.Digest) })
	}
	for _, img := range []upstream.Image{l, s, a, c} {
		for _, bl := range img.Blobs() {
			if !inBucket(bl.Digest) {
				t.Errorf("blob %s of %s is not in the bucket after B's eviction", bl.Digest, img.Name)
			}
		}
	}
	evicts := finishedEvictTasks(t, base)
	var versions []string
	for _, r := range evicts {
		if r.State != "completed" {
			t.Errorf("an evict task ended %s", r.State)
		}
		versions = append(versions, r.CreatedResources...)
	}
	if len(versions) != 1 || !strings.HasSuffix(versions[0], "/versions/2/") {
		t.Errorf("evict tasks created %v, want B's version 2 only", versions)
	}
	for _, img := range []upstream.Image{l, a, c} {
		mustPull(contents[manifestGets%2], img)
	}

	// The metrics of each process.
	scrape := func(ps []*harness.Role) []metricstest.Families {
		var out []metricstest.Families
		for _, p := range ps {
			out = append(out, scrapeOK(t, "http://"+metricsAddr[p]+"/metrics"))
		}
		return out
	}
	sum := func(fams []metricstest.Families, name string, labels metricstest.Labels) float64 {
		var total float64
		for _, f := range fams {
			n, _ := metricstest.Sum(f, name, labels)
			total += n
		}
		return total
	}
	var contentFams, workerFams []metricstest.Families
	// A worker that measured the storage just before the first evict task ended may dispatch
	// a second (which finds nothing to do): the scrape counts the evict tasks listed after it.
	harness.WaitFor(t, "the workers' samples of the evict tasks", func() bool {
		workerFams = scrape(workers)
		evicts = finishedEvictTasks(t, base)
		return sum(workerFams, "pulpgo_task_run_seconds", metricstest.Labels{"name": tasks.NameEvict}) >= float64(len(evicts))
	})
	contentFams = scrape(contents)
	counts := up.Counts()
	t.Logf("upstream: %d blob GETs, %d CDN GETs; %d manifest GETs through the content apps; %d evict tasks",
		counts.BlobGets, counts.CDNGets, manifestGets, len(evicts))
	blobGets := metricstest.Labels{"kind": "blob_get"}
	if got := sum(contentFams, "pulpgo_upstream_requests_total", blobGets) + sum(workerFams, "pulpgo_upstream_requests_total", blobGets); got != float64(counts.BlobGets) {
		t.Errorf("upstream blob GETs in the metrics of the content apps and workers: %v, the upstream counted %d", got, counts.BlobGets)
	}
	pulledBlobs := map[string]bool{}
	for _, img := range []upstream.Image{l, a, b, c} {
		for _, bl := range img.Blobs() {
			pulledBlobs[bl.Digest] = true
		}
	}
	if got := sum(contentFams, "pulpgo_upstream_requests_total", blobGets); got != float64(len(pulledBlobs)) {
		t.Errorf("the content apps made %v upstream blob GETs, want %d (one per blob pulled)", got, len(pulledBlobs))
	}
	var pulledBytes int64
	for _, img := range []upstream.Image{l, a, b, c} {
		pulledBytes += blobBytes(img)
	}
	if got := sum(contentFams, "pulpgo_upstream_received_bytes_total", metricstest.Labels{"kind": "blob_get"}); got != float64(pulledBytes) {
		t.Errorf("the content apps received %v blob bytes from the upstream, want %d (each blob pulled once)", got, pulledBytes)
	}
	// Served: the blobs of every pull, and the bodies of the 401s that send clients for tokens.
	if got := sum(contentFams, "pulpgo_http_response_bytes_total", metricstest.Labels{"route": "/v2/{name}/blobs/{digest}"}); got < float64(servedBlobs) {
		t.Errorf("the content apps served %v bytes of blobs, want at least the %d the pulls read", got, servedBlobs)
	}
	// A fill that finds, once it holds the blob's lock, that the other process has stored it
	// counts as a join (docs/operations.md): exactly one fill started per blob.
	if got := sum(contentFams, "pulpgo_fills_started_total", nil); got != float64(len(pulledBlobs)) {
		t.Errorf("the content apps started %v fills, want %d (one per blob pulled)", got, len(pulledBlobs))
	}
	for _, name := range []string{"pulpgo_fills_failed_total", "pulpgo_fills_in_flight"} {
		if got := sum(contentFams, name, nil); got != 0 {
			t.Errorf("the content apps show %s %v, want 0", name, got)
		}
	}
	manifestOK := metricstest.Labels{"route": "/v2/{name}/manifests/{reference}", "method": "GET", "code": "200"}
	if got := sum(contentFams, "pulpgo_http_requests_total", manifestOK); got != float64(manifestGets) {
		t.Errorf("the content apps answered %v manifest GETs with 200, want %d", got, manifestGets)
	}
	for i, f := range contentFams {
		if n, _ := metricstest.Sum(f, "pulpgo_http_requests_total", manifestOK); n < 10 {
			t.Errorf("content app %d answered %v manifest GETs, want at least the 10 of the cold pulls it was sent", i+1, n)
		}
	}
	for _, m := range []struct {
		name   string
		labels metricstest.Labels
		want   float64
	}{
		{"pulpgo_task_run_seconds", metricstest.Labels{"name": syncName, "state": "completed"}, 1},
		{"pulpgo_evict_images_total", nil, 1},
		{"pulpgo_evict_runs_total", nil, float64(len(evicts))},
		{"pulpgo_task_run_seconds", metricstest.Labels{"name": tasks.NameEvict, "state": "completed"}, float64(len(evicts))},
	} {
		if got := sum(workerFams, m.name, m.labels); got != m.want {
			t.Errorf("workers: %s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
	bBlobs := blobBytes(b)
	if got := sum(workerFams, "pulpgo_evict_freed_bytes_total", nil); got < float64(bBlobs) {
		t.Errorf("workers: %v bytes freed by eviction, want at least B's %d", got, bBlobs)
	}
	for _, f := range workerFams {
		if n, _ := metricstest.Sum(f, "pulpgo_storage_quota_bytes", nil); n != float64(quota) {
			t.Errorf("a worker shows a quota of %v bytes, want %d", n, quota)
		}
	}
	apiFams := scrape([]*harness.Role{apiProc})
	if got := sum(apiFams, "pulpgo_http_requests_total", metricstest.Labels{"app": "api",
		"route": "/pulp/api/v3/repositories/container/container/:pulp_id/sync/", "method": "POST", "code": "202"}); got != 1 {
		t.Errorf("api: %v sync requests answered 202, want 1", got)
	}
}

// storedBytes is what the images store together: the sizes of their distinct blobs and
// manifests.
func storedBytes(imgs ...upstream.Image) int64 {
	seen := map[string]bool{}
	var n int64
	for _, img := range imgs {
		if !seen[img.ManifestDigest] {
			seen[img.ManifestDigest] = true
			n += img.Size
		}
		for _, bl := range img.Blobs() {
			if !seen[bl.Digest] {
				seen[bl.Digest] = true
				n += bl.Size
			}
		}
	}
	return n
}

// argOf returns the value of flag in args, or "".
func argOf(args []string, flag string) string {
	for i, a := range args[:len(args)-1] {
		if a == flag {
			return args[i+1]
		}
	}
	return ""
}

// blobBytes is the size of img's blobs.
func blobBytes(img upstream.Image) int64 {
	var n int64
	for _, bl := range img.Blobs() {
		n += bl.Size
	}
	return n
}
