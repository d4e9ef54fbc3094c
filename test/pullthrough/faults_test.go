package pullthrough

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/testenv"
	"github.com/pulpgo/pulpgo/test/upstream"
)

// faultWindow is the tag freshness of the fault tests' server: short, so that tag pulls ask
// the upstream again soon.
const faultWindow = time.Second

// TestFaults breaks the upstream (down, 429, wrong bytes), the client (gone mid-blob) and the
// request (bad names and digests) against one server on the embedded engine.
func TestFaults(t *testing.T) {
	ctx := client.Context(t)
	hub := client.StartHub(t)
	busybox, err := hub.PushSmall(ctx, "library/busybox", "latest")
	if err != nil {
		t.Fatal(err)
	}
	e := startServer(t, testenv.Embedded(), "", "--tag-freshness", faultWindow.String(), "--upstream-timeout", "2s")
	e.createCache(t, cacheBase, cacheBase, hub.URL(), nil, nil)
	const name = "docker-cache/library/busybox"
	first := e.reg.mustPull(t, name, "latest", busybox)
	lastPull := time.Now()

	// Each subtest leaves the upstream working.
	healthy := func() {
		hub.SetDown(false)
		hub.SetTooManyRequests(false)
		hub.SetCorrupt(false)
		hub.SetBlobThrottle(0)
		hub.SetDelay(0)
	}
	t.Cleanup(healthy)

	// staleIfError pulls by tag (after the freshness window) and by digest while the upstream
	// misbehaves, and checks that the upstream was asked (counted by asked) and that the
	// cached image was served.
	staleIfError := func(t *testing.T, asked func(upstream.Counts) int) {
		waitPast(lastPull.Add(faultWindow + 100*time.Millisecond))
		before := asked(hub.Counts())
		p := e.reg.mustPull(t, name, "latest", busybox)
		lastPull = time.Now()
		if p.Digest != first.Digest {
			t.Errorf("tag pull served %s, want the cached %s", p.Digest, first.Digest)
		}
		if asked(hub.Counts()) == before {
			t.Errorf("the tag pull after the freshness window did not ask the upstream: the test proves nothing")
		}
		e.reg.mustPull(t, name, busybox.ManifestDigest, busybox)
		mustSkopeoCopy(t, e, name+":latest", busybox)
		lastPull = time.Now()
	}

	t.Run("upstream-down", func(t *testing.T) {
		defer healthy()
		hub.SetDown(true)
		staleIfError(t, func(c upstream.Counts) int { return c.Requests })
	})

	t.Run("upstream-429", func(t *testing.T) {
		defer healthy()
		hub.SetTooManyRequests(true)
		staleIfError(t, func(c upstream.Counts) int { return c.TooManyRequests })
	})

	t.Run("client-gone-mid-blob", func(t *testing.T) {
		defer healthy()
		img := pushLargeAndFetchConfig(t, e, hub, "library/large")
		const name = "docker-cache/library/large"
		layer := img.Layers[0].Digest
		hub.SetBlobThrottle(256 << 10) // 4 MiB take 16 s
		readFirstBytesAndHangUp(t, e.reg, name, layer, 1)
		hub.SetBlobThrottle(0) // let the fill finish quickly, if it still runs
		waitCommitted(t, e, hub, name, img.Layers[0])
		if front, cdn := hub.BlobGets(layer), hub.CDNGets(layer); front != 1 || cdn != 1 {
			t.Errorf("layer %s: %d blob GETs at the front and %d at the CDN, want 1 and 1 (the fill should outlive its client)", layer, front, cdn)
		}
		before := hub.Counts()
		e.reg.mustPull(t, name, "1", img)
		if after := hub.Counts(); after.BlobGets != before.BlobGets || after.CDNGets != before.CDNGets {
			t.Errorf("the pull after the fill cost %d blob GETs and %d CDN GETs upstream, want 0",
				after.BlobGets-before.BlobGets, after.CDNGets-before.CDNGets)
		}
	})

	t.Run("upstream-cut-mid-blob", func(t *testing.T) {
		defer healthy()
		defer hub.SetCutBlobs(0, 0)
		img := pushLargeAndFetchConfig(t, e, hub, "library/cut") // so that the cuts fall on the layer
		const name = "docker-cache/library/cut"
		layer := img.Layers[0].Digest
		const cut = 1 << 20
		hub.SetCutBlobs(cut, 2) // the first two bodies of the layer break after 1 MiB each
		e.reg.mustPull(t, name, "1", img)
		waitCommitted(t, e, hub, name, img.Layers[0])
		// One fill: its first GET, then a resume from each cut's offset (never from 0 again),
		// each through the front for a fresh CDN URL.
		want := []string{"", fmt.Sprintf("bytes=%d-", cut), fmt.Sprintf("bytes=%d-", 2*cut)}
		if got := hub.CDNRanges(layer); !slices.Equal(got, want) {
			t.Errorf("layer %s: CDN GETs with Range %q, want %q", layer, got, want)
		}
		if front := hub.BlobGets(layer); front != 3 {
			t.Errorf("layer %s: %d blob GETs at the front, want 3", layer, front)
		}
		before := hub.Counts()
		e.reg.mustPull(t, name, "1", img)
		if after := hub.Counts(); after.CDNGets != before.CDNGets {
			t.Errorf("the pull after the resumed fill cost %d CDN GETs, want 0", after.CDNGets-before.CDNGets)
		}
	})

	t.Run("corrupt-upstream", func(t *testing.T) {
		defer healthy()
		img, err := hub.PushLarge(ctx, "library/corrupt", "1", 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		const name = "docker-cache/library/corrupt"
		layer := img.Layers[0].Digest
		hub.SetCorrupt(true)
		if r, _ := skopeoCopy(t, e, name+":1"); r.Code == 0 {
			t.Errorf("skopeo copied an image whose blobs the upstream corrupted:\n%s%s", r.Stdout, r.Stderr)
		}
		for i := range 2 {
			before := hub.CDNGets(layer)
			if _, err := e.reg.Blob(ctx, name, layer); err == nil {
				t.Fatalf("GET %s attempt %d: served corrupt bytes without an error", layer, i+1)
			} else {
				t.Logf("GET of the corrupt layer, attempt %d: %v", i+1, err)
			}
			if hub.CDNGets(layer) == before {
				t.Errorf("GET %s attempt %d did not go upstream: something was kept from a corrupt fill", layer, i+1)
			}
		}
		if _, err := os.Stat(blobFile(t, e, layer)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the corrupt layer was stored at %s (stat: %v)", blobFile(t, e, layer), err)
		}
		hub.SetCorrupt(false)
		mustSkopeoCopy(t, e, name+":1", img)
	})

	t.Run("bad-requests", func(t *testing.T) {
		const zeros = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
		invalid := []struct {
			path   string
			status int
			code   string
		}{
			{"/v2/docker-cache/../etc/passwd/manifests/latest", 400, "NAME_INVALID"},
			{"/v2/docker-cache/library/../../etc/passwd/manifests/latest", 400, "NAME_INVALID"},
			{"/v2/docker-cache/%2e%2e/etc/passwd/manifests/latest", 400, "NAME_INVALID"},
			{"/v2/docker-cache/library%2f..%2f..%2fetc/manifests/latest", 400, "NAME_INVALID"},
			{"/v2/docker-cache/library/BusyBox/manifests/latest", 400, "NAME_INVALID"},
			{"/v2/docker-cache/Library/busybox/blobs/" + busybox.Layers[0].Digest, 400, "NAME_INVALID"},
			{"/v2/docker-cache/library/busybox/blobs/sha256:../../x", 400, "DIGEST_INVALID"},
			{"/v2/docker-cache/library/busybox/blobs/sha256:..%2f..%2fx", 400, "DIGEST_INVALID"},
			{"/v2/docker-cache/library/busybox/blobs/sha256:xyz", 400, "DIGEST_INVALID"},
			{"/v2/docker-cache/library/busybox/blobs/sha256:" + strings.ToUpper(strings.TrimPrefix(busybox.Layers[0].Digest, "sha256:")), 400, "DIGEST_INVALID"},
		}
		// Unknown names: the admin learns they are unknown; an anonymous token grants nothing
		// for them (Pulp's rule), so anonymous clients cannot tell them from private ones.
		unknown := []string{"/v2/nosuch/library/busybox/manifests/latest", "/v2/docker-cachex/library/busybox/manifests/latest"}
		before := hub.Counts()
		for _, c := range invalid {
			expectRegError(t, e.reg, http.MethodGet, c.path, c.status, c.code)
		}
		for _, p := range unknown {
			expectRegError(t, e.regAdmin, http.MethodGet, p, 404, "NAME_UNKNOWN")
			expectRegError(t, e.reg, http.MethodGet, p, 401, "UNAUTHORIZED")
		}
		if after := hub.Counts(); after != before {
			t.Errorf("invalid names and digests reached the upstream:\nbefore %+v\nafter  %+v", before, after)
		}

		// Unknown things below a valid name may ask the upstream, which does not have them.
		expectRegError(t, e.reg, http.MethodGet, "/v2/"+name+"/blobs/"+zeros, 404, "BLOB_UNKNOWN")
		expectRegError(t, e.reg, http.MethodGet, "/v2/"+name+"/manifests/"+zeros, 404, "MANIFEST_UNKNOWN")
		expectRegError(t, e.reg, http.MethodGet, "/v2/"+name+"/manifests/nosuchtag", 404, "MANIFEST_UNKNOWN")
		expectRegError(t, e.reg, http.MethodGet, "/v2/docker-cache/library/nosuchimage/manifests/latest", 404, "NAME_UNKNOWN", "MANIFEST_UNKNOWN")
		expectRegError(t, e.reg, http.MethodHead, "/v2/"+name+"/blobs/"+zeros, 404)
		expectRegError(t, e.reg, http.MethodHead, "/v2/"+name+"/manifests/nosuchtag", 404)
	})
}

// pushLargeAndFetchConfig pushes a 4 MiB image of one layer as repo:1 to hub, and fetches
// its manifest and config through the cache (docker-cache/<repo>), as a client does before
// the layers.
func pushLargeAndFetchConfig(t *testing.T, e *env, hub *upstream.Upstream, repo string) upstream.Image {
	t.Helper()
	ctx := client.Context(t)
	img, err := hub.PushLarge(ctx, repo, "1", 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	name := "docker-cache/" + repo
	if _, _, _, err := e.reg.manifest(ctx, name, "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Blob(ctx, name, img.Config.Digest); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestKilledMidFill kills the server with SIGKILL while a throttled blob streams into the
// cache, restarts it, and checks that no staging file from before the restart is left, that
// the partial blob is never served, and that a full pull then works.
func TestKilledMidFill(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		img, err := hub.PushLarge(ctx, "library/large", "1", 4, 1)
		if err != nil {
			t.Fatal(err)
		}
		e := startServer(t, eng, "")
		e.createCache(t, cacheBase, cacheBase, hub.URL(), nil, nil)
		const name = "docker-cache/library/large"
		layer := img.Layers[0]
		if _, _, _, err := e.reg.manifest(ctx, name, "1"); err != nil {
			t.Fatal(err)
		}

		hub.SetBlobThrottle(256 << 10) // 4 MiB take 16 s
		t.Cleanup(func() { hub.SetBlobThrottle(0) })
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		resp, err := e.reg.Request(fctx, http.MethodGet, "/v2/"+name+"/blobs/"+layer.Digest, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET the layer: %s", resp.Status)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
			t.Fatalf("read the first 64 KiB of the layer: %v", err)
		}
		var parts map[string]time.Time
		client.Poll(t, "a fill-*.part staging file under the data directory", func() (bool, string) {
			parts = stagingFiles(t, e.srv.DataDir)
			return len(parts) > 0, "none found; the test cannot check the sweep"
		})

		e.srv.Kill()
		cancel()
		restart := time.Now()
		e.srv.Restart(t)
		t.Logf("restarted in %s", time.Since(restart).Round(time.Millisecond))
		for path, mtime := range stagingFiles(t, e.srv.DataDir) {
			if mtime.Before(restart) {
				t.Errorf("staging file %s (modified %s) survived the restart at %s", path, mtime.Format(time.RFC3339Nano), restart.Format(time.RFC3339Nano))
			}
		}
		if _, err := os.Stat(blobFile(t, e, layer.Digest)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the partial layer is in storage at %s (stat: %v)", blobFile(t, e, layer.Digest), err)
		}

		// With the upstream down, the layer cannot be complete: it must not be served.
		hub.SetDown(true)
		start := time.Now()
		n, err := e.reg.Blob(ctx, name, layer.Digest)
		t.Logf("GET of the layer with the upstream down after the restart: %v after %s", err, time.Since(start).Round(time.Millisecond))
		if err == nil {
			t.Errorf("with the upstream down after the crash, the layer was served whole (%d bytes): from where?", n)
		} else {
			var re *client.RegistryError
			if !errors.As(err, &re) {
				t.Errorf("with the upstream down after the crash, GET of the layer started a 200 answer and failed (%v): partial data was served", err)
			}
		}
		hub.SetDown(false)
		hub.SetBlobThrottle(0)
		start = time.Now()
		mustSkopeoCopy(t, e, name+":1", img)
		e.reg.mustPull(t, name, "1", img)
		t.Logf("full pulls after the restart took %s", time.Since(start).Round(time.Millisecond))
	})
}

// readFirstBytesAndHangUp GETs a blob, reads n bytes of it, and closes the connection.
func readFirstBytesAndHangUp(t testing.TB, r *regClient, name, digest string, n int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := r.Request(ctx, http.MethodGet, "/v2/"+name+"/blobs/"+digest, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", digest, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", digest, resp.Status)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, n)); err != nil {
		t.Fatalf("GET %s: read the first %d bytes: %v", digest, n, err)
	}
	cancel()
}

// waitCommitted waits until blob is in the server's storage, then checks that the server
// serves it whole with the upstream down.
func waitCommitted(t testing.TB, e *env, hub *upstream.Upstream, name string, blob upstream.Blob) {
	t.Helper()
	path := blobFile(t, e, blob.Digest)
	client.Poll(t, "blob "+blob.Digest+" to be committed to "+path, func() (bool, string) {
		fi, err := os.Stat(path)
		if err != nil {
			return false, err.Error()
		}
		if fi.Size() != blob.Size {
			return false, fmt.Sprintf("%d bytes of %d", fi.Size(), blob.Size)
		}
		return fileDigest(t, path) == blob.Digest, "content does not match yet"
	})
	hub.SetDown(true)
	defer hub.SetDown(false)
	var last error
	client.PollFor(t, 10*time.Second, "the committed blob to be served with the upstream down", func() (bool, string) {
		_, last = e.reg.Blob(context.Background(), name, blob.Digest)
		if last != nil {
			return false, last.Error()
		}
		return true, ""
	})
}

// blobFile is where the server's filesystem storage keeps a blob.
func blobFile(t testing.TB, e *env, digest string) string {
	t.Helper()
	rel, err := storage.BlobPath(digest)
	if err != nil {
		t.Fatalf("blob path of %s: %v", digest, err)
	}
	return filepath.Join(e.srv.DataDir, "storage", filepath.FromSlash(rel))
}
