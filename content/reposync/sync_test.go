package reposync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/fill"
	"github.com/pulpgo/pulpgo/content/local"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/testenv"
)

const ociManifest = "application/vnd.oci.image.manifest.v1+json"

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// fakeUpstream is go-containerregistry's in-memory registry behind a hook that may answer a
// request itself (hostile answers, blocked downloads).
type fakeUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	hook func(w http.ResponseWriter, r *http.Request) bool
}

func newFakeUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	f := &fakeUpstream{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		hook := f.hook
		f.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeUpstream) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}

func (f *fakeUpstream) put(t *testing.T, method, path, contentType string, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, f.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	resp, err := f.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("%s %s: %s", method, path, resp.Status)
	}
}

// pushImage pushes repo:tag, an OCI image of a config and one layer made from seed, and
// returns the manifest's digest and the layer's.
func (f *fakeUpstream) pushImage(t *testing.T, repo, tag, seed string) (string, string) {
	t.Helper()
	config := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"seed":%q}`, seed))
	layer := bytes.Repeat([]byte(seed), 4096)
	for _, b := range [][]byte{config, layer} {
		f.put(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+digestOf(b), "application/octet-stream", b)
	}
	manifest := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
		ociManifest, digestOf(config), len(config), digestOf(layer), len(layer)))
	f.put(t, http.MethodPut, "/v2/"+repo+"/manifests/"+tag, ociManifest, manifest)
	return digestOf(manifest), digestOf(layer)
}

// rig is a Syncer over a fresh storage, with a task to report progress on.
type rig struct {
	syncer *Syncer
	store  storage.Driver
	db     *gorm.DB
	task   *models.Task
}

func newRig(t *testing.T, db *gorm.DB) *rig {
	t.Helper()
	dir := t.TempDir()
	store, err := storage.NewFilesystem(filepath.Join(dir, "storage"))
	if err != nil {
		t.Fatal(err)
	}
	staging, err := fill.OpenStaging(filepath.Join(dir, "staging"))
	if err != nil {
		t.Fatal(err)
	}
	fills := fill.New(store, staging, nil)
	t.Cleanup(func() { fills.Wait(); _ = staging.Close() })
	task, err := models.CreateTask(db, models.NewTask{Name: "sync", Args: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{syncer: New(Config{Storage: store, Store: local.New(db, store, nil), Fills: fills, Backoff: 1}), store: store, db: db, task: task}
}

func (g *rig) sync(ctx context.Context, remote *models.Remote, held map[string]string) (*models.SyncResult, error) {
	return g.syncer.Sync(ctx, models.SyncRequest{Remote: remote, Held: held}, models.NewProgress(g.db, g.task.ID))
}

func (g *rig) stored(t *testing.T, digest string) bool {
	t.Helper()
	p, _ := storage.BlobPath(digest)
	_, err := g.store.Stat(context.Background(), p)
	return err == nil
}

// TestSyncAgainstGGCR syncs from a second implementation of the registry API: every tag
// with its manifest and blobs; a held tag that did not move costs a HEAD only.
func TestSyncAgainstGGCR(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		up := newFakeUpstream(t)
		m1, l1 := up.pushImage(t, "library/a", "v1", "one")
		m2, l2 := up.pushImage(t, "library/a", "v2", "two")
		g := newRig(t, testenv.OpenDB(t, e))
		remote := &models.Remote{ID: models.NewID(), Name: "a", URL: up.URL, UpstreamName: "library/a", Policy: "immediate"}
		res, err := g.sync(t.Context(), remote, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []models.SyncedTag{{Name: "v1", Digest: m1}, {Name: "v2", Digest: m2}}
		if fmt.Sprint(res.Tags) != fmt.Sprint(want) {
			t.Errorf("tags %v, want %v", res.Tags, want)
		}
		for _, d := range []string{m1, m2, l1, l2} {
			if !g.stored(t, d) {
				t.Errorf("%s not stored", d)
			}
		}
		var gets []string
		var mu sync.Mutex
		up.setHook(func(_ http.ResponseWriter, r *http.Request) bool {
			if strings.Contains(r.URL.Path, "/manifests/") || strings.Contains(r.URL.Path, "/blobs/") {
				mu.Lock()
				gets = append(gets, r.Method+" "+r.URL.Path)
				mu.Unlock()
			}
			return false
		})
		if _, err := g.sync(t.Context(), remote, map[string]string{"v1": m1, "v2": m2}); err != nil {
			t.Fatal(err)
		}
		for _, req := range gets {
			if !strings.HasPrefix(req, http.MethodHead+" ") {
				t.Errorf("a sync of unchanged held tags made %s", req)
			}
		}
		if len(gets) != 2 {
			t.Errorf("a sync of two unchanged held tags made %v, want two HEADs", gets)
		}
	})
}

// TestSyncCanceled checks that a sync whose context ends while it downloads returns the
// context's error and no result (nothing partial reaches the version).
func TestSyncCanceled(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		up := newFakeUpstream(t)
		up.pushImage(t, "library/a", "v1", "one")
		_, layer := up.pushImage(t, "library/a", "v2", "two")
		g := newRig(t, testenv.OpenDB(t, e))
		ctx, cancel := context.WithCancel(t.Context())
		release := make(chan struct{})
		up.setHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+layer) {
				cancel()
				<-release
				http.Error(w, "gone", http.StatusServiceUnavailable)
				return true
			}
			return false
		})
		defer close(release)
		res, err := g.sync(ctx, &models.Remote{ID: models.NewID(), Name: "a", URL: up.URL, UpstreamName: "library/a"}, nil)
		if err == nil || res != nil {
			t.Fatalf("canceled sync: result %+v, error %v; want no result and an error", res, err)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("canceled sync: error %v, want context.Canceled", err)
		}
	})
}

// TestSyncHostileManifest checks that an index child whose bytes are not its digest fails the
// sync at once (no retry) and is not stored.
func TestSyncHostileManifest(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		up := newFakeUpstream(t)
		// The child is pushed under a tag the remote excludes: the sync meets it only through
		// the index.
		child, _ := up.pushImage(t, "library/b", "child", "one")
		index := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",`+
			`"manifests":[{"mediaType":%q,"digest":%q,"size":10,"platform":{"architecture":"amd64","os":"linux"}}]}`, ociManifest, child))
		up.put(t, http.MethodPut, "/v2/library/b/manifests/v1", "application/vnd.oci.image.index.v1+json", index)
		var asked int
		up.setHook(func(w http.ResponseWriter, r *http.Request) bool {
			if strings.HasSuffix(r.URL.Path, "/library/b/manifests/"+child) {
				asked++
				w.Header().Set("Content-Type", ociManifest)
				_, _ = w.Write([]byte(`{"schemaVersion":2,"mediaType":"` + ociManifest + `","config":{"mediaType":"x","digest":"` + child + `","size":1},"layers":[]}`))
				return true
			}
			return false
		})
		g := newRig(t, testenv.OpenDB(t, e))
		_, err := g.sync(t.Context(), &models.Remote{ID: models.NewID(), Name: "b", URL: up.URL, UpstreamName: "library/b",
			Excludes: models.StringList{"child"}}, nil)
		// The upstream client or the sync itself (whichever sees it first) refuses the bytes.
		if err == nil || !strings.Contains(err.Error(), "digest mismatch") && !strings.Contains(err.Error(), "the upstream sent bytes of digest") {
			t.Fatalf("sync of an index with a forged child: %v, want a digest error", err)
		}
		if asked != 1 {
			t.Errorf("the forged child was asked for %d times, want once", asked)
		}
		if g.stored(t, child) {
			t.Errorf("the forged child is stored under %s", child)
		}
	})
}
