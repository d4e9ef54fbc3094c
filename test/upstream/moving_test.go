package upstream_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/upstream"
)

// TestMovingTags: each moving tag moves to a new manifest with a new config
// on MoveTags, keeps its layers, and the old manifest and config stay
// fetchable by digest; skopeo pulls the moving image whole.
func TestMovingTags(t *testing.T) {
	t.Parallel()
	u := start(t, upstream.Options{})
	gen0, err := u.PushMoving(t.Context(), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(gen0) != 3 || u.MovingGeneration() != 0 {
		t.Fatalf("PushMoving = %d images at generation %d, want 3 at 0", len(gen0), u.MovingGeneration())
	}
	for i, img := range gen0 {
		if img.Name != upstream.MovingName(i) || img.Tag != upstream.MovingTag || img.MediaType != upstream.MediaTypeDockerManifest ||
			img.Config == nil || len(img.Layers) != 2 {
			t.Fatalf("image %d = %+v, want %s:%s, Docker schema 2, a config and 2 layers", i, img, upstream.MovingName(i), upstream.MovingTag)
		}
		if img.Layers[0] != gen0[0].Layers[0] || (i > 0 && img.Layers[1] == gen0[0].Layers[1]) {
			t.Errorf("image %d layers %v: want the base layer shared by all and a layer of its own", i, img.Layers)
		}
	}
	if _, err := u.PushMoving(t.Context(), 1, 0); err == nil {
		t.Error("a second PushMoving succeeded, want an error")
	}

	gen1, err := u.MoveTags(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if u.MovingGeneration() != 1 {
		t.Errorf("generation after MoveTags = %d, want 1", u.MovingGeneration())
	}
	for i := range gen0 {
		old, cur := gen0[i], gen1[i]
		if cur.ManifestDigest == old.ManifestDigest || cur.Config.Digest == old.Config.Digest || cur.Layers[0] != old.Layers[0] || cur.Layers[1] != old.Layers[1] {
			t.Errorf("image %d moved from %+v to %+v: want a new manifest and config, the same layers", i, old, cur)
		}
		tok := token(t, u, cur.Name)
		base := u.URL() + "/v2/" + cur.Name
		resp, _ := do(t, http.MethodHead, base+"/manifests/"+upstream.MovingTag, tok, "Accept: "+upstream.MediaTypeDockerManifest)
		if got := resp.Header.Get("Docker-Content-Digest"); resp.StatusCode != 200 || got != cur.ManifestDigest {
			t.Errorf("HEAD %s:%s: %s, digest %s, want 200 and the new %s", cur.Name, upstream.MovingTag, resp.Status, got, cur.ManifestDigest)
		}
		for _, path := range []string{"/manifests/" + old.ManifestDigest, "/blobs/" + old.Config.Digest} {
			if resp, body := do(t, http.MethodGet, base+path, tok, "Accept: "+upstream.MediaTypeDockerManifest); resp.StatusCode != 200 && resp.StatusCode != 307 {
				t.Errorf("GET %s of the old generation: %s %s, want it still there", path, resp.Status, body)
			}
		}
	}

	dir := t.TempDir()
	if out, err := skopeoPull(t.Context(), u, gen1[2].Ref(), dir); err != nil {
		t.Fatalf("skopeo copy %s: %v\n%s", gen1[2].Ref(), err, out)
	}
	if got := fileDigest(t, filepath.Join(dir, "manifest.json")); got != gen1[2].ManifestDigest {
		t.Errorf("skopeo pulled manifest %s, want %s", got, gen1[2].ManifestDigest)
	}
	for _, b := range gen1[2].Blobs() {
		if got := fileDigest(t, filepath.Join(dir, strings.TrimPrefix(b.Digest, "sha256:"))); got != b.Digest {
			t.Errorf("skopeo pulled blob %s hashing to %s", b.Digest, got)
		}
	}
}

// TestMovingTagsOnTheirOwn: with an interval, the tags move by themselves.
func TestMovingTagsOnTheirOwn(t *testing.T) {
	t.Parallel()
	u := start(t, upstream.Options{})
	gen0, err := u.PushMoving(t.Context(), 1, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	tok := token(t, u, gen0[0].Name)
	tagURL := u.URL() + "/v2/" + gen0[0].Name + "/manifests/" + upstream.MovingTag
	seen := map[string]bool{}
	pollFor(t, 20*time.Second, func() bool {
		resp, _ := do(t, http.MethodHead, tagURL, tok, "Accept: "+upstream.MediaTypeDockerManifest)
		seen[resp.Header.Get("Docker-Content-Digest")] = true
		return len(seen) >= 3
	})
	if u.MovingGeneration() < 2 || u.MovingImages()[0].ManifestDigest == gen0[0].ManifestDigest {
		t.Errorf("generation %d, current %s: want at least 2 moves away from %s", u.MovingGeneration(), u.MovingImages()[0].ManifestDigest, gen0[0].ManifestDigest)
	}
}

// TestMovingTagsWhileMoving: GETs of a moving tag while it moves always get a whole manifest
// of one of its generations, never an error from a tag caught half-written.
func TestMovingTagsWhileMoving(t *testing.T) {
	t.Parallel()
	u := start(t, upstream.Options{})
	gen0, err := u.PushMoving(t.Context(), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	img := gen0[1]
	tok := token(t, u, img.Name)
	known := map[string]bool{img.ManifestDigest: true}
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad []string
	seen := map[string]bool{}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u.URL()+"/v2/"+img.Name+"/manifests/"+upstream.MovingTag, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Accept", upstream.MediaTypeDockerManifest)
				resp, err := noRedirects.Do(req)
				if err != nil {
					mu.Lock()
					bad = append(bad, err.Error())
					mu.Unlock()
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				sum := sha256.Sum256(body)
				got := "sha256:" + hex.EncodeToString(sum[:])
				mu.Lock()
				if resp.StatusCode != http.StatusOK || got != resp.Header.Get("Docker-Content-Digest") {
					bad = append(bad, fmt.Sprintf("%s, body %s, header %s", resp.Status, got, resp.Header.Get("Docker-Content-Digest")))
				} else {
					seen[got] = true
				}
				mu.Unlock()
			}
		}()
	}
	for range 10 {
		imgs, err := u.MoveTags(t.Context())
		if err != nil {
			t.Error(err)
			break
		}
		known[imgs[1].ManifestDigest] = true
	}
	close(stop)
	wg.Wait()
	for d := range seen {
		if !known[d] {
			bad = append(bad, "a digest of no generation: "+d)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d bad answers while the tag moved, first: %s", len(bad), bad[0])
	}
}
