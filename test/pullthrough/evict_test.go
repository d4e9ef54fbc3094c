package pullthrough

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
	"github.com/pulpgo/pulpgo/test/upstream"
)

// evictTaskName is the name of the task that evicts images under a storage quota.
const evictTaskName = "pulpgo.app.tasks.evict"

// storedBytes is what img occupies in the storage: its manifest, config and layers.
func storedBytes(img upstream.Image) int64 {
	n := img.Size
	for _, b := range img.Blobs() {
		n += b.Size
	}
	return n
}

// storedFile is the path of the stored object digest in the server's storage.
func (e *env) storedFile(digest string) string {
	hex := digest[len("sha256:"):]
	return filepath.Join(e.srv.DataDir, "storage", "blobs", "sha256", hex[:2], hex)
}

// checkStored fails t unless each object of img (manifest, config, layers) is stored (want)
// or gone (!want).
func (e *env) checkStored(t testing.TB, what string, img upstream.Image, want bool) {
	t.Helper()
	digests := []string{img.ManifestDigest}
	for _, b := range img.Blobs() {
		digests = append(digests, b.Digest)
	}
	for _, d := range digests {
		_, err := os.Stat(e.storedFile(d))
		switch {
		case want && err != nil:
			t.Errorf("%s: %s of %s is not stored: %v", what, d, img.Ref(), err)
		case !want && err == nil:
			t.Errorf("%s: %s of %s is still stored", what, d, img.Ref())
		}
	}
}

// evictTasks waits until n evict tasks (at least one when n < 0) exist, all finished,
// fails t if one failed, and returns them oldest first.
func (a *apiClient) evictTasks(t testing.TB, n int) []map[string]any {
	t.Helper()
	var tasks []map[string]any
	client.Poll(t, fmt.Sprintf("%d finished evict tasks", n), func() (bool, string) {
		tasks = a.List(t, "/pulp/api/v3/tasks/", url.Values{"name": {evictTaskName}, "ordering": {"pulp_created"}})
		done, states := allCompleted(t, "evict", tasks)
		done = done && (len(tasks) == n || n < 0 && len(tasks) > 0)
		return done, fmt.Sprintf("evict tasks %v", states)
	})
	return tasks
}

// waitEvicted waits until the latest version of each pull-through repository named in
// names holds no tag.
func (e *env) waitEvicted(t testing.TB, names ...string) {
	t.Helper()
	client.Poll(t, fmt.Sprintf("%v to be evicted", names), func() (bool, string) {
		for _, name := range names {
			repo := e.api.byName(t, "/pulp/api/v3/repositories/container/container/", name)
			// The version may be replaced (and the old one squashed) between the two requests.
			q := url.Values{"repository_version": {client.Str(repo, "latest_version_href")}}
			status, body := e.api.Do(t, http.MethodGet, "/pulp/api/v3/content/container/tags/?"+q.Encode(), nil)
			if status != http.StatusOK {
				return false, fmt.Sprintf("tags of %s: %d %s", name, status, body)
			}
			if n := client.DecodeObject(t, body)["count"]; n != 0.0 {
				return false, fmt.Sprintf("%s still has %v tags", name, n)
			}
		}
		return true, ""
	})
}

// progressOf returns the progress report of task with code.
func progressOf(t testing.TB, task map[string]any, code string) map[string]any {
	t.Helper()
	reports, _ := task["progress_reports"].([]any)
	for _, r := range reports {
		if m, ok := r.(map[string]any); ok && m["code"] == code {
			return m
		}
	}
	t.Fatalf("task %s has no progress report %q: %v", task["pulp_href"], code, reports)
	return nil
}

// TestEvictLeastRecentlyPulled pulls images A and B through the cache, pulls A again, and
// restarts the server (which writes the pull times it kept in memory, with --last-pull-flush
// far away, at shutdown). Pulling C then takes the storage above the high watermark of a
// quota that holds about two images: the evict task removes B, pulled least recently though
// created after A, in a new version of its repository (visible with its progress in the
// tasks API), and B's blobs leave the storage; A and C are still served from the cache, and
// pulling B again fetches it from the upstream anew.
func TestEvictLeastRecentlyPulled(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		var imgs []upstream.Image
		for _, name := range []string{"a", "b", "c"} {
			img, err := hub.PushLarge(ctx, "library/"+name, "1", 1, 1)
			if err != nil {
				t.Fatal(err)
			}
			imgs = append(imgs, img)
		}
		a, b, c := imgs[0], imgs[1], imgs[2]
		size := max(storedBytes(a), storedBytes(b), storedBytes(c))
		// High watermark 2.43 images, low 2.16: a third image starts eviction, one evicted
		// ends it.
		quota := size * 27 / 10
		e := startServer(t, eng, "", "--storage-quota", strconv.FormatInt(quota, 10),
			"--storage-quota-interval", "100ms", "--last-pull-flush", "1h")
		e.createCache(t, cacheBase, cacheBase, hub.URL(), nil, nil)
		path := func(img upstream.Image) string { return cacheBase + "/" + img.Name }

		e.reg.mustPull(t, path(a), "1", a)
		e.api.waitRecorded(t, path(a), 1)
		e.reg.mustPull(t, path(b), "1", b)
		e.api.waitRecorded(t, path(b), 1)
		e.reg.mustPull(t, path(a), "1", a)
		e.srv.Restart(t)
		if tasks := e.api.List(t, "/pulp/api/v3/tasks/", url.Values{"name": {evictTaskName}}); len(tasks) != 0 {
			t.Fatalf("evict tasks with two images stored under a quota of %d bytes (image %d): %v", quota, size, tasks)
		}
		e.reg.mustPull(t, path(c), "1", c)
		e.api.waitRecorded(t, path(c), 1)

		task := e.api.evictTasks(t, 1)[0]
		repoB := e.api.byName(t, "/pulp/api/v3/repositories/container/container/", path(b))
		latest := client.Str(repoB, "latest_version_href")
		if versionNumber(latest) != 2 {
			t.Errorf("repository %s: latest version %s, want 2 (the eviction's)", path(b), latest)
		}
		if created, _ := task["created_resources"].([]any); len(created) != 1 || created[0] != latest {
			t.Errorf("evict task created %v, want [%s]", task["created_resources"], latest)
		}
		if tags, _ := e.api.tagsOf(t, latest); len(tags) != 0 {
			t.Errorf("%s still has tags %v", latest, tags)
		}
		for _, kind := range []string{"manifests", "blobs"} {
			if got := e.api.digestsOf(t, kind, latest); len(got) != 0 {
				t.Errorf("%s still has %s %v", latest, kind, got)
			}
		}
		for _, img := range []upstream.Image{a, c} {
			repo := e.api.byName(t, "/pulp/api/v3/repositories/container/container/", path(img))
			if tags, _ := e.api.tagsOf(t, client.Str(repo, "latest_version_href")); len(tags) != 1 {
				t.Errorf("repository %s: tags %v, want [1]", path(img), tags)
			}
		}
		images, freed := progressOf(t, task, "evict.images"), progressOf(t, task, "evict.bytes")
		if images["done"] != 1.0 || images["state"] != "completed" {
			t.Errorf("progress %v, want 1 image evicted", images)
		}
		if freed["done"] != float64(storedBytes(b)) {
			t.Errorf("progress %v, want %d bytes freed (all of %s)", freed, storedBytes(b), b.Ref())
		}
		e.checkStored(t, "after the eviction", b, false)
		e.checkStored(t, "after the eviction", a, true)
		e.checkStored(t, "after the eviction", c, true)

		// A and C come from the cache; B from the upstream again.
		e.reg.mustPull(t, path(a), "1", a)
		e.reg.mustPull(t, path(c), "1", c)
		for _, img := range imgs {
			for _, bl := range img.Blobs() {
				if n := hub.BlobGets(bl.Digest); n != 1 {
					t.Errorf("blob %s of %s: %d upstream GETs before B is pulled again, want 1", bl.Digest, img.Ref(), n)
				}
			}
		}
		e.reg.mustPull(t, path(b), "1", b)
		for _, bl := range b.Blobs() {
			if n := hub.BlobGets(bl.Digest); n != 2 {
				t.Errorf("blob %s of %s: %d upstream GETs after it was evicted and pulled again, want 2", bl.Digest, b.Ref(), n)
			}
		}
		e.api.waitRecorded(t, path(b), 3)

		// Three images again: a second task evicts A, whose last pull written is the one
		// before the restart (the pull since is still in memory), older than C's recording.
		second := e.api.evictTasks(t, 2)[1]
		if got := progressOf(t, second, "evict.images")["done"]; got != 1.0 {
			t.Errorf("second evict task evicted %v images, want 1", got)
		}
		repoA := e.api.byName(t, "/pulp/api/v3/repositories/container/container/", path(a))
		if tags, _ := e.api.tagsOf(t, client.Str(repoA, "latest_version_href")); len(tags) != 0 {
			t.Errorf("repository %s after the second eviction: tags %v, want none", path(a), tags)
		}
		e.checkStored(t, "after the second eviction", a, false)
		e.checkStored(t, "after the second eviction", b, true)
		e.checkStored(t, "after the second eviction", c, true)
	})
}

// uploadPending uploads the stored blob digest to repository name as the admin, in one
// POST and one PUT, and sends no manifest: the blob stays pending there.
func (e *env) uploadPending(t testing.TB, name, digest string) {
	t.Helper()
	ctx := client.Context(t)
	resp, err := e.regAdmin.Request(ctx, http.MethodPost, "/v2/"+name+"/blobs/uploads/", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusAccepted || err != nil {
		t.Fatalf("POST /v2/%s/blobs/uploads/: %s, Location %v", name, resp.Status, err)
	}
	body, err := os.Open(e.storedFile(digest))
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	q := loc.Query()
	q.Set("digest", digest)
	loc.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), body)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(harness.Username, harness.Password)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = e.regAdmin.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT %s: %s, want 201 Created", loc, resp.Status)
	}
}

// TestEvictionKeeps fills the storage past a quota with three pull-through images whose
// bytes must stay, and checks that the evict task removes all three images from their
// repositories but keeps: S's blobs and manifest, which an ordinary repository's retained
// version holds (pushed there with skopeo; that repository still serves S); P's layer,
// uploaded to a push repository as a pending blob; H's layer, which a client is reading
// while the task runs (read to the end afterwards, whole and right); and the row of F's
// layer, which is being filled from a slowed-down upstream (its bytes arrive afterwards).
func TestEvictionKeeps(t *testing.T) {
	client.NeedTools(t, "skopeo")
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		push := func(name string, mib int) upstream.Image {
			img, err := hub.PushLarge(ctx, "library/"+name, "1", mib, 1)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
		s, p, h := push("s", 1), push("p", 1), push("h", 32)
		// F comes from a second upstream, whose blobs can be slowed down alone.
		slow := client.StartHub(t)
		f, err := slow.PushLarge(ctx, "library/f", "1", 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		small := storedBytes(s) + storedBytes(p) + h.Size + h.Config.Size + f.Size + f.Config.Size
		// The high watermark lies halfway through H's layer: only its fill starts eviction.
		quota := (small + h.Layers[0].Size/2) * 10 / 9
		e := startServer(t, eng, "", "--storage-quota", strconv.FormatInt(quota, 10), "--storage-quota-interval", "100ms")
		e.createCache(t, cacheBase, cacheBase, hub.URL(), nil, nil)
		e.createCache(t, "slow-cache", "slow-cache", slow.URL(), nil, nil)
		path := func(img upstream.Image) string { return cacheBase + "/" + img.Name }
		creds := harness.Username + ":" + harness.Password

		e.reg.mustPull(t, path(s), "1", s)
		e.api.waitRecorded(t, path(s), 1)
		e.home.Run(t, "skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false", "--dest-creds", creds,
			"docker://"+e.srv.Addr+"/"+path(s)+":1", "docker://"+e.srv.Addr+"/team/s:1").Must(t)

		e.reg.mustPull(t, path(p), "1", p)
		e.api.waitRecorded(t, path(p), 1)
		layerP := p.Layers[0].Digest
		e.uploadPending(t, "team/pending", layerP)

		if _, _, _, err := e.reg.manifest(ctx, path(h), "1"); err != nil {
			t.Fatal(err)
		}
		e.api.waitRecorded(t, path(h), 1)
		if _, err := e.reg.Blob(ctx, path(h), h.Config.Digest); err != nil {
			t.Fatal(err)
		}
		// F's layer is being filled, at 2 KiB/s, while the task runs.
		pathF := "slow-cache/" + f.Name
		if _, _, _, err := e.reg.manifest(ctx, pathF, "1"); err != nil {
			t.Fatal(err)
		}
		e.api.waitRecorded(t, pathF, 1)
		if _, err := e.reg.Blob(ctx, pathF, f.Config.Digest); err != nil {
			t.Fatal(err)
		}
		slow.SetBlobThrottle(2 << 10)
		layerF := f.Layers[0]
		// The client reads a byte and goes away; the fill goes on without it.
		started, err := e.reg.Request(ctx, http.MethodGet, "/v2/"+pathF+"/blobs/"+layerF.Digest, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(started.Body, make([]byte, 1)); err != nil || started.StatusCode != http.StatusOK {
			t.Fatalf("GET F's layer: %s, %v", started.Status, err)
		}
		_ = started.Body.Close()
		if tasks := e.api.List(t, "/pulp/api/v3/tasks/", url.Values{"name": {evictTaskName}}); len(tasks) != 0 {
			t.Fatalf("evict tasks before H's layer was pulled (quota %d bytes): %v", quota, tasks)
		}
		// A client starts reading H's layer and stops: the server is blocked writing it.
		layerH := h.Layers[0]
		reading, err := e.reg.Request(ctx, http.MethodGet, "/v2/"+path(h)+"/blobs/"+layerH.Digest, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer reading.Body.Close()
		if reading.StatusCode != http.StatusOK {
			t.Fatalf("GET H's layer: %s", reading.Status)
		}
		hash := sha256.New()
		n, err := io.CopyN(hash, reading.Body, 4096)
		if err != nil {
			t.Fatal(err)
		}

		// One task, or more (each reserves the repositories it expects to need).
		e.waitEvicted(t, path(s), path(p), path(h), pathF)
		var images float64
		for _, task := range e.api.evictTasks(t, -1) {
			images += progressOf(t, task, "evict.images")["done"].(float64)
		}
		if images != 4 {
			t.Errorf("evict tasks evicted %v images, want 4 (S, P, H and F)", images)
		}
		if blobs := e.api.List(t, "/pulp/api/v3/content/container/blobs/", url.Values{"digest": {layerF.Digest}}); len(blobs) != 1 {
			t.Errorf("F's layer, being filled: %d blob rows after the eviction, want 1", len(blobs))
		}
		slow.SetBlobThrottle(0)
		client.Poll(t, "F's layer to be stored", func() (bool, string) {
			_, err := os.Stat(e.storedFile(layerF.Digest))
			return err == nil, fmt.Sprint(err)
		})
		e.reg.mustPull(t, pathF, "1", f)
		if n := slow.BlobGets(layerF.Digest); n != 1 {
			t.Errorf("F's layer: %d upstream GETs, want 1 (the fill the eviction let finish)", n)
		}
		e.checkStored(t, "held by team/s", s, true)
		stored := func(what, digest string, want bool) {
			t.Helper()
			if _, err := os.Stat(e.storedFile(digest)); (err == nil) != want {
				t.Errorf("%s: %s stored: %v, want %v", what, digest, err == nil, want)
			}
		}
		stored("P's layer, pending in team/pending", layerP, true)
		stored("P's config", p.Config.Digest, false)
		stored("P's manifest", p.ManifestDigest, false)
		stored("H's layer, being read", layerH.Digest, true)
		stored("H's config", h.Config.Digest, false)
		stored("H's manifest", h.ManifestDigest, false)

		rest, err := io.Copy(hash, reading.Body)
		if err != nil {
			t.Fatalf("reading the rest of H's layer: %v", err)
		}
		if got := "sha256:" + hex.EncodeToString(hash.Sum(nil)); n+rest != layerH.Size || got != layerH.Digest {
			t.Errorf("H's layer read during the eviction: %d bytes %s, want %d bytes %s", n+rest, got, layerH.Size, layerH.Digest)
		}
		e.regAdmin.mustPull(t, "team/s", "1", s)
	})
}
