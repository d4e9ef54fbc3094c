package ondemand

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestOnDemand pulls on_demand and streamed content from ordinary distributions: what reaches
// the upstream, what is kept, and what fails how. The subtests share one server and upstream,
// and each uses images of its own (random layers, so no two share a blob).
func TestOnDemand(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		e := start(t, eng)
		ctx := client.Context(t)

		// The first pull fetches each layer once, through the remote, and keeps it: the second
		// pull asks the upstream nothing. A HEAD before it is answered from the recorded size.
		t.Run("on_demand", func(t *testing.T) {
			f := e.onDemand(t, "kept", "on_demand", 2, 2, nil)
			layer := f.img.Layers[0]
			before := e.hub.Counts()
			resp, _ := get(t, e.reg, http.MethodHead, "/v2/kept/blobs/"+layer.Digest, nil)
			if resp.StatusCode != http.StatusOK || resp.ContentLength != layer.Size || resp.Header.Get("Docker-Content-Digest") != layer.Digest {
				t.Errorf("HEAD of a layer not fetched yet: %d, Content-Length %d, digest %q; want 200, %d, %s",
					resp.StatusCode, resp.ContentLength, resp.Header.Get("Docker-Content-Digest"), layer.Size, layer.Digest)
			}
			if after := e.hub.Counts(); after != before {
				t.Errorf("a HEAD reached the upstream:\nbefore %+v\nafter  %+v", before, after)
			}
			if err := pull(ctx, e.reg, "kept", f.img); err != nil {
				t.Fatalf("first pull: %v", err)
			}
			wantGets(t, e.hub, f.img, 1, "first pull")
			for _, l := range f.img.Layers {
				e.waitStored(t, l.Digest)
			}
			before = e.hub.Counts()
			if err := pull(ctx, e.reg, "kept", f.img); err != nil {
				t.Fatalf("second pull: %v", err)
			}
			if after := e.hub.Counts(); after != before {
				t.Errorf("the second pull reached the upstream:\nbefore %+v\nafter  %+v", before, after)
			}
		})

		// The real client: skopeo copies an on_demand image (the manifest, the stored config,
		// the layers fetched through the remote) and a streamed one.
		t.Run("skopeo", func(t *testing.T) {
			client.NeedTools(t, "skopeo")
			home := harness.NewClientHome(t, e.srv)
			for _, policy := range []string{"on_demand", "streamed"} {
				name := "skopeo-" + strings.ReplaceAll(policy, "_", "-")
				f := e.onDemand(t, name, policy, 2, 2, nil)
				dir := filepath.Join(t.TempDir(), "image")
				home.Run(t, "skopeo", "copy", "--quiet", "--src-tls-verify=false",
					"docker://"+e.srv.Addr+"/"+name+":"+f.img.Tag, "dir:"+dir).Must(t)
				for _, d := range append([]string{f.img.ManifestDigest}, blobsOf(f.img)...) {
					file := strings.TrimPrefix(d, "sha256:")
					if d == f.img.ManifestDigest {
						file = "manifest.json"
					}
					b, err := os.ReadFile(filepath.Join(dir, file))
					if err != nil || client.Digest(b) != d {
						t.Errorf("%s: skopeo's copy of %s: %v, hashes to %s", policy, d, err, client.Digest(b))
					}
				}
				wantGets(t, e.hub, f.img, 1, "skopeo copy of a "+policy+" image")
			}
		})

		// A streamed remote's blobs are served and never kept: every pull fetches again.
		t.Run("streamed", func(t *testing.T) {
			f := e.onDemand(t, "streamed", "streamed", 2, 2, nil)
			for i := 1; i <= 2; i++ {
				if err := pull(ctx, e.reg, "streamed", f.img); err != nil {
					t.Fatalf("pull %d: %v", i, err)
				}
				wantGets(t, e.hub, f.img, i, fmt.Sprintf("pull %d", i))
				// A pull that comes while the last one's fill still ends (its readers are
				// done before it) shares it: wait for the end, and the scratch copies' removal.
				client.Poll(t, "the streamed fills to end and their copies to be removed", func() (bool, string) {
					left := fillsLeft(t, e.srv.DataDir)
					return len(left) == 0, fmt.Sprint(left)
				})
				for _, l := range f.img.Layers {
					if e.stored(t, l.Digest) {
						t.Errorf("pull %d: streamed layer %s kept in storage", i, l.Digest)
					}
				}
			}
		})

		// Concurrent pulls share one fetch per layer, and so does a pull-through pull of the
		// same upstream image at the same moment.
		t.Run("concurrent", func(t *testing.T) {
			f := e.onDemand(t, "together", "on_demand", 4, 2, nil)
			e.api.CreatePullThrough(t, "hub", "hub", e.hub.URL(), nil, nil)
			const n = 10
			var wg sync.WaitGroup
			errs := make([]error, n+1)
			begin := make(chan struct{})
			for i := range n + 1 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-begin
					if i == n {
						errs[i] = pull(ctx, e.reg, "hub/"+f.img.Name, f.img)
						return
					}
					errs[i] = pull(ctx, e.reg, "together", f.img)
				}()
			}
			close(begin)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("pull %d: %v", i, err)
				}
			}
			for i, l := range f.img.Layers {
				if got := e.hub.BlobGets(l.Digest); got != 1 {
					t.Errorf("layer %d fetched %d times by %d concurrent pulls (one through the pull-through cache), want 1", i, got, n+1)
				}
			}
		})

		// A client that goes away mid-blob does not stop the fetch: the blob is kept, and the
		// next pull is served from storage.
		t.Run("disconnect", func(t *testing.T) {
			f := e.onDemand(t, "leaver", "on_demand", 8, 1, nil)
			layer := f.img.Layers[0]
			e.hub.SetBlobThrottle(4 << 20)
			defer e.hub.SetBlobThrottle(0)
			cctx, cancel := context.WithCancel(ctx)
			resp, err := e.reg.Request(cctx, http.MethodGet, "/v2/leaver/blobs/"+layer.Digest, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET: %d", resp.StatusCode)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
				t.Fatal(err)
			}
			cancel()
			resp.Body.Close()
			e.hub.SetBlobThrottle(0)
			e.waitStored(t, layer.Digest)
			if err := pull(ctx, e.reg, "leaver", f.img); err != nil {
				t.Fatal(err)
			}
			wantGets(t, e.hub, f.img, 1, "after a client left mid-blob")
		})

		// A Range of a layer not fetched yet gets its bytes (while the fill goes on).
		t.Run("range", func(t *testing.T) {
			f := e.onDemand(t, "ranged", "on_demand", 2, 1, nil)
			layer := f.img.Layers[0]
			want := e.layerBytes(t, f.img, 0)
			resp, body := get(t, e.reg, http.MethodGet, "/v2/ranged/blobs/"+layer.Digest, http.Header{"Range": {"bytes=1000-1999"}})
			wantRange := "bytes 1000-1999/" + strconv.FormatInt(layer.Size, 10)
			if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != wantRange || !bytes.Equal(body, want[1000:2000]) {
				t.Errorf("Range GET: %d, Content-Range %q, %d bytes (equal %v); want 206, %q, the 1000 bytes",
					resp.StatusCode, resp.Header.Get("Content-Range"), len(body), bytes.Equal(body, want[1000:2000]), wantRange)
			}
			e.waitStored(t, layer.Digest)
			if err := pull(ctx, e.reg, "ranged", f.img); err != nil {
				t.Fatal(err)
			}
			wantGets(t, e.hub, f.img, 1, "after a Range request and a pull")
		})

		// Wrong bytes, an upstream that is down or does not have the blob: the client gets an error, nothing is kept,
		// and a pull once the upstream is fixed works.
		t.Run("faults", func(t *testing.T) {
			f := e.onDemand(t, "faulty", "on_demand", 1, 1, nil)
			layer := f.img.Layers[0]
			path := "/v2/faulty/blobs/" + layer.Digest
			e.hub.SetCorrupt(true)
			_, err := e.reg.Blob(ctx, "faulty", layer.Digest)
			e.hub.SetCorrupt(false)
			if err == nil {
				t.Error("a corrupt layer was served whole")
			}
			if e.stored(t, layer.Digest) {
				t.Fatal("a corrupt layer was kept")
			}
			e.hub.SetDown(true)
			resp, body := get(t, e.reg, http.MethodGet, path, nil)
			e.hub.SetDown(false)
			if resp.StatusCode < 500 || !bytes.Contains(body, []byte(`"errors"`)) {
				t.Errorf("GET with the upstream down: %d %s; want a 5xx registry error", resp.StatusCode, short(body))
			}
			if e.stored(t, layer.Digest) {
				t.Fatal("a layer was kept while the upstream was down")
			}
			// An upstream that does not have the blob (any more): BLOB_UNKNOWN.
			e.setUpstreamName(t, layer.Digest, "ondemand/gone")
			resp, body = get(t, e.reg, http.MethodGet, path, nil)
			e.setUpstreamName(t, layer.Digest, f.img.Name)
			if resp.StatusCode != http.StatusNotFound || !bytes.Contains(body, []byte("BLOB_UNKNOWN")) {
				t.Errorf("GET of a blob the upstream does not have: %d %s; want 404 BLOB_UNKNOWN", resp.StatusCode, short(body))
			}
			if e.stored(t, layer.Digest) {
				t.Fatal("a layer was kept after an upstream 404")
			}
			if err := pull(ctx, e.reg, "faulty", f.img); err != nil {
				t.Fatalf("pull after the upstream recovered: %v", err)
			}
			e.waitStored(t, layer.Digest)
		})

		// A blob with several remote artifacts: a remote that fails is skipped for the next.
		t.Run("fallback", func(t *testing.T) {
			img, err := e.hub.PushLarge(ctx, "ondemand/fallback", "1", 1, 1)
			if err != nil {
				t.Fatal(err)
			}
			dead := e.remote(t, "dead", fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)), img.Name, "on_demand")
			good := e.remote(t, "fallback", e.hub.URL(), img.Name, "on_demand")
			e.repository(t, "fallback", nil)
			e.record(t, "fallback", img, dead, good)
			e.waitServed(t, "fallback", img, e.reg)
			if err := pull(ctx, e.reg, "fallback", img); err != nil {
				t.Fatalf("pull with a dead first remote: %v", err)
			}
			wantGets(t, e.hub, img, 1, "through the second remote")
		})

		// Who may read what: a remote artifact serves a blob only to a version that holds it
		// (a manifest that lists it is not enough: anyone can make one); a private
		// distribution needs credentials.
		t.Run("access", func(t *testing.T) {
			f := e.onDemand(t, "secret", "on_demand", 1, 1, map[string]any{"private": true})
			layer := f.img.Layers[0]
			e.repository(t, "stranger", nil)
			other, err := e.hub.PushLarge(ctx, "ondemand/stranger", "1", 1, 1)
			if err != nil {
				t.Fatal(err)
			}
			e.record(t, "stranger", other, e.remote(t, "stranger", e.hub.URL(), other.Name, "on_demand"))
			e.waitServed(t, "stranger", other, e.reg)
			e.repository(t, "lister", nil)
			e.recordManifestOnly(t, "lister", f.img.ManifestDigest, f.img.Tag)
			e.waitServed(t, "lister", f.img, e.reg)
			before := e.hub.Counts()
			resp, body := get(t, e.reg, http.MethodGet, "/v2/lister/blobs/"+layer.Digest, nil)
			if resp.StatusCode != http.StatusNotFound || !bytes.Contains(body, []byte("BLOB_UNKNOWN")) {
				t.Errorf("a layer that a version lists but does not hold: %d %s; want 404 BLOB_UNKNOWN", resp.StatusCode, short(body))
			}
			resp, body = get(t, e.reg, http.MethodGet, "/v2/stranger/blobs/"+layer.Digest, nil)
			if resp.StatusCode != http.StatusNotFound || !bytes.Contains(body, []byte("BLOB_UNKNOWN")) {
				t.Errorf("another distribution's layer: %d %s; want 404 BLOB_UNKNOWN", resp.StatusCode, short(body))
			}
			resp, _ = get(t, e.reg, http.MethodGet, "/v2/secret/blobs/"+layer.Digest, nil)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("anonymous GET from a private distribution: %d, want 401", resp.StatusCode)
			}
			if after := e.hub.Counts(); after != before {
				t.Errorf("refused requests reached the upstream:\nbefore %+v\nafter  %+v", before, after)
			}
			if err := pull(ctx, e.admin, "secret", f.img); err != nil {
				t.Fatalf("the admin's pull: %v", err)
			}
			resp, body = get(t, e.reg, http.MethodGet, "/v2/stranger/blobs/"+layer.Digest, nil)
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("another distribution's layer, once kept: %d %s; want 404", resp.StatusCode, short(body))
			}
		})

		// A distribution of a repository version serves that version, not the later ones.
		t.Run("repository_version", func(t *testing.T) {
			f := e.onDemand(t, "pinned", "on_demand", 1, 1, nil)
			repo := e.api.List(t, "/pulp/api/v3/repositories/container/container/", map[string][]string{"name": {"pinned"}})[0]
			v1 := client.Str(repo, "latest_version_href")
			e.create(t, "/pulp/api/v3/distributions/container/container/",
				map[string]any{"name": "pinned-v1", "base_path": "pinned-v1", "repository_version": v1})
			later, err := e.hub.PushLarge(ctx, "ondemand/pinned", "2", 1, 1)
			if err != nil {
				t.Fatal(err)
			}
			e.record(t, "pinned", later, f.remoteID)
			e.waitServed(t, "pinned", later, e.reg)
			e.waitServed(t, "pinned-v1", f.img, e.reg)
			if err := pull(ctx, e.reg, "pinned-v1", f.img); err != nil {
				t.Fatalf("pull of version 1: %v", err)
			}
			wantGets(t, e.hub, f.img, 1, "pull of version 1")
			before := e.hub.Counts()
			resp, body := get(t, e.reg, http.MethodGet, "/v2/pinned-v1/blobs/"+later.Layers[0].Digest, nil)
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("a layer of version 2 through the version 1 distribution: %d %s; want 404", resp.StatusCode, short(body))
			}
			if after := e.hub.Counts(); after != before {
				t.Errorf("a refused request reached the upstream:\nbefore %+v\nafter  %+v", before, after)
			}
			if err := pull(ctx, e.reg, "pinned", later); err != nil {
				t.Fatalf("pull of the latest version: %v", err)
			}
		})
	})
}
