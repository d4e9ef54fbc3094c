package e2e_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/upstream"
)

// TestQuotaEvictionPodman runs serve with a storage quota of about two and a half images
// (their sizes are known once pushed, so the quota goes in the environment of a server
// started per engine) and pulls three images through the cache with podman: the third
// starts an eviction of the first, which pulp-cli shows as a completed
// pulpgo.app.tasks.evict task with its progress, a new version of the image's repository
// without its tag, and httpie as the task's result; podman pulls the evicted image again
// (from the upstream: one more GET of its layer) and the two others from the cache.
func TestQuotaEvictionPodman(t *testing.T) {
	needTools(t, "podman")
	hub := client.StartHub(t)
	// Images of their own per engine: podman keeps the layers it pulled once, and would not
	// ask the second server for them.
	imgsOf := map[string][]upstream.Image{}
	var size int64
	for _, engine := range []string{"embedded", "postgres"} {
		for _, name := range []string{"a", "b", "c"} {
			img, err := hub.PushLarge(client.Context(t), engine+"/"+name, "1", 1, 1)
			if err != nil {
				t.Fatal(err)
			}
			imgsOf[engine] = append(imgsOf[engine], img)
			n := img.Size
			for _, b := range img.Blobs() {
				n += b.Size
			}
			size = max(size, n)
		}
	}
	args := []string{"--storage-quota", strconv.FormatInt(size*27/10, 10), "--storage-quota-interval", "100ms",
		"--last-pull-flush", "100ms"}
	forEachEngineArgs(t, args, func(t *testing.T, e *env) {
		imgs := imgsOf[e.engine.Name]
		a := imgs[0]
		p := &pulpCLI{e: e}
		p.must(t, "--refresh-api", "status")
		api := &client.API{Base: e.srv.URL, HTTP: client.NewHTTPClient()}
		cache := "cache-" + e.engine.Name
		api.CreatePullThrough(t, cache, cache, hub.URL(), nil, nil)
		reg := e.srv.Addr
		podmanPull := func(img upstream.Image) {
			t.Helper()
			ref := reg + "/" + cache + "/" + img.Ref()
			e.home.Run(t, "podman", "pull", "--tls-verify=false", "--quiet", ref).Must(t)
			got := strings.TrimSpace(e.home.Run(t, "podman", "image", "inspect", "--format", "{{.Digest}}", ref).Must(t).Stdout)
			if got != img.ManifestDigest {
				t.Fatalf("podman pulled %s as %s, want %s", ref, got, img.ManifestDigest)
			}
		}
		repoA := cache + "/" + a.Name
		for i, img := range imgs {
			podmanPull(img)
			client.Poll(t, "the pull of "+img.Ref()+" recorded", func() (bool, string) {
				v := p.list(t, "container", "repository", "version", "list", "--repository", cache+"/"+img.Name)
				return len(v) == 1, fmt.Sprintf("%d versions", len(v))
			})
			if i < 2 {
				if tasks := p.list(t, "task", "list", "--name", "pulpgo.app.tasks.evict"); len(tasks) != 0 {
					t.Fatalf("evict tasks with %d images stored: %v", i+1, tasks)
				}
			}
		}

		var task map[string]any
		client.Poll(t, "a completed evict task", func() (bool, string) {
			tasks := p.list(t, "task", "list", "--name", "pulpgo.app.tasks.evict", "--state", "completed")
			if len(tasks) == 0 {
				return false, "none yet"
			}
			task = tasks[0]
			return true, ""
		})
		versions := p.list(t, "container", "repository", "version", "list", "--repository", repoA)
		if len(versions) != 1 || versions[0]["number"] != 2.0 {
			t.Fatalf("versions of %s: %v, want only 2", repoA, versions)
		}
		if created, _ := task["created_resources"].([]any); len(created) != 1 || created[0] != versions[0]["pulp_href"] {
			t.Errorf("evict task created %v, want [%v]", task["created_resources"], versions[0]["pulp_href"])
		}
		if tags := p.list(t, "container", "content", "-t", "tag", "list", "--repository-version", client.Str(versions[0], "pulp_href")); len(tags) != 0 {
			t.Errorf("%s still has tags %v", versions[0]["pulp_href"], tags)
		}
		shown := e.home.Run(t, "http", "--check-status", "--body", "-a", harness.Username+":"+harness.Password,
			e.srv.URL+client.Str(task, "pulp_href")).Must(t).Stdout
		result, _ := jsonValue(t, shown).(map[string]any)["result"].(map[string]any)
		if result["images_evicted"] != 1.0 || result["bytes_freed"] != float64(a.Size+a.Config.Size+a.Layers[0].Size) {
			t.Errorf("evict task result %v, want 1 image and %s's bytes freed", result, a.Ref())
		}
		if stored(e, a.Layers[0].Digest) {
			t.Errorf("%s's layer is still stored", a.Ref())
		}

		e.home.Run(t, "podman", "rmi", "--all", "--force").Must(t)
		before := hub.BlobGets(a.Layers[0].Digest)
		podmanPull(a)
		if n := hub.BlobGets(a.Layers[0].Digest); n != before+1 {
			t.Errorf("layer of %s: %d upstream GETs after pulling it again, want %d", a.Ref(), n, before+1)
		}
	})
}
