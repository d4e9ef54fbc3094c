package pullthrough

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
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

// evictTasks waits until n evict tasks exist, all finished, fails t if one failed, and
// returns them oldest first.
func (a *apiClient) evictTasks(t testing.TB, n int) []map[string]any {
	t.Helper()
	var tasks []map[string]any
	client.Poll(t, fmt.Sprintf("%d finished evict tasks", n), func() (bool, string) {
		tasks = a.List(t, "/pulp/api/v3/tasks/", url.Values{"name": {evictTaskName}, "ordering": {"pulp_created"}})
		done, states := allCompleted(t, "evict", tasks)
		done = done && len(tasks) == n
		return done, fmt.Sprintf("evict tasks %v", states)
	})
	return tasks
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
