package reposync

import (
	"slices"
	"sort"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/testenv"
	"github.com/pulpgo/pulpgo/test/upstream"
)

// pushSet pushes the images the sync tests share under name: "1" (busybox, Docker schema 2),
// "10" and "11" (two Debian-like images) and "multi" (an OCI index of linux/amd64 and
// linux/arm64), and returns them by tag.
func pushSet(t *testing.T, hub *upstream.Upstream, name string) map[string]upstream.Image {
	t.Helper()
	ctx := client.Context(t)
	out := map[string]upstream.Image{}
	small, err := hub.PushSmall(ctx, name, "1")
	if err != nil {
		t.Fatal(err)
	}
	out["1"] = small
	debian, err := hub.PushDebianLike(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range debian {
		out[im.Tag] = im
	}
	idx, err := hub.PushIndex(ctx, name, "multi")
	if err != nil {
		t.Fatal(err)
	}
	out["multi"] = idx
	return out
}

// allBlobs returns the blobs of imgs, each once.
func allBlobs(imgs map[string]upstream.Image) map[string]upstream.Blob {
	out := map[string]upstream.Blob{}
	for _, im := range imgs {
		for _, b := range im.Blobs() {
			out[b.Digest] = b
		}
	}
	return out
}

// TestSyncImmediate syncs every tag of an upstream repository (an index with all its
// platforms among them) with the immediate policy: one manifest GET per tag and per index
// child and no HEAD, each blob fetched once; the ordinary distribution of the repository then
// serves every tag. A second sync of the unchanged upstream makes one HEAD per tag and nothing
// else, and no version.
func TestSyncImmediate(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		imgs := pushSet(t, hub, "library/app")
		e := startServer(t, eng)
		remote := e.createRemote(t, "app", hub.URL(), "library/app", nil)
		repo := e.createRepo(t, "app", nil)
		e.distribute(t, "app", repo)

		hub.Reset()
		task := e.sync(t, repo, map[string]any{"remote": remote})
		c := hub.Counts()
		t.Logf("first sync: upstream %+v", c)
		if got, want := created(task), []string{repo + "versions/1/"}; !slices.Equal(got, want) {
			t.Errorf("created_resources %v, want %v", got, want)
		}
		if c.ManifestHeads != 0 {
			t.Errorf("first sync made %d manifest HEADs, want 0 (a new tag gets one GET)", c.ManifestHeads)
		}
		// One GET per tag, one per index child.
		if want := len(imgs) + len(imgs["multi"].Children); c.ManifestGets != want {
			t.Errorf("first sync made %d manifest GETs, want %d", c.ManifestGets, want)
		}
		for d, b := range allBlobs(imgs) {
			if n := hub.BlobGets(d); n != 1 {
				t.Errorf("blob %s (%d bytes): %d upstream GETs, want 1", d, b.Size, n)
			}
		}
		rs := reports(task)
		for code, msg := range map[string]string{
			"sync.downloading.tag_list":  "Downloading tag list",
			"sync.processing.manifest":   "Processing Manifests",
			"sync.downloading.artifacts": "Downloading Artifacts",
			"associating.content":        "Associating Content",
		} {
			r, ok := rs[code]
			if !ok {
				t.Errorf("no progress report %s in %v", code, task["progress_reports"])
				continue
			}
			if client.Str(r, "message") != msg || client.Str(r, "state") != "completed" {
				t.Errorf("progress report %s: %v, want message %q completed", code, r, msg)
			}
		}
		if r := rs["sync.processing.manifest"]; r["total"] != float64(len(imgs)) || r["done"] != float64(len(imgs)) {
			t.Errorf("Processing Manifests: %v, want %d of %d", r, len(imgs), len(imgs))
		}
		if r := rs["sync.downloading.artifacts"]; r["done"] != float64(len(allBlobs(imgs))) {
			t.Errorf("Downloading Artifacts: %v, want done %d", r, len(allBlobs(imgs)))
		}

		v1 := e.latest(t, repo)
		got := e.tags(t, v1)
		for tag, im := range imgs {
			if got[tag] != im.ManifestDigest {
				t.Errorf("tag %s names %s, want %s", tag, got[tag], im.ManifestDigest)
			}
		}
		if len(got) != len(imgs) {
			t.Errorf("version 1 has tags %v, want %d", got, len(imgs))
		}
		// The index and its children, each with its platform.
		for _, m := range e.api.List(t, "/pulp/api/v3/content/container/manifests/", map[string][]string{"repository_version": {v1}}) {
			switch d := client.Str(m, "digest"); {
			case d == imgs["multi"].ManifestDigest:
				if l, _ := m["listed_manifests"].([]any); len(l) != 2 {
					t.Errorf("index %s lists %v, want 2 manifests", d, m["listed_manifests"])
				}
			case m["architecture"] == nil || m["os"] == nil || m["config_blob"] == nil:
				t.Errorf("manifest %s: architecture %v, os %v, config_blob %v: want them set", d, m["architecture"], m["os"], m["config_blob"])
			}
		}
		var wantBlobs []string
		for d := range allBlobs(imgs) {
			wantBlobs = append(wantBlobs, d)
		}
		sort.Strings(wantBlobs)
		if gotBlobs := e.digests(t, "blobs", v1); !slices.Equal(gotBlobs, wantBlobs) {
			t.Errorf("version 1 blobs %v, want %v", gotBlobs, wantBlobs)
		}

		// The ordinary distribution serves every tag, every platform, from storage.
		hub.Reset()
		for tag, im := range imgs {
			digest, blobs, err := e.pullAll(ctx, "app", tag)
			if err != nil {
				t.Fatalf("pull app:%s: %v", tag, err)
			}
			if digest != im.ManifestDigest {
				t.Errorf("pull app:%s: digest %s, want %s", tag, digest, im.ManifestDigest)
			}
			if len(blobs) != len(im.Blobs()) {
				t.Errorf("pull app:%s fetched %d blobs, want %d", tag, len(blobs), len(im.Blobs()))
			}
		}
		if c := hub.Counts(); c.Requests != 0 {
			t.Errorf("pulls from the synced repository reached the upstream: %+v", c)
		}

		// An unchanged upstream: tags/list and one HEAD per tag; no GET, no version.
		hub.Reset()
		task = e.sync(t, repo, map[string]any{"remote": remote})
		c = hub.Counts()
		t.Logf("unchanged re-sync: upstream %+v", c)
		if len(created(task)) != 0 {
			t.Errorf("re-sync of an unchanged upstream created %v", created(task))
		}
		if c.ManifestGets != 0 || c.BlobGets != 0 || c.CDNGets != 0 {
			t.Errorf("re-sync of an unchanged upstream made %d manifest GETs and %d blob GETs, want 0", c.ManifestGets, c.BlobGets)
		}
		if c.ManifestHeads != len(imgs) {
			t.Errorf("re-sync made %d manifest HEADs, want one per tag (%d)", c.ManifestHeads, len(imgs))
		}
		if l := e.latest(t, repo); l != v1 {
			t.Errorf("latest version %s after an unchanged re-sync, want %s", l, v1)
		}
	})
}
