package ondemand

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/cacheonly"
	"github.com/pulpgo/pulpgo/content/fill"
	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/remotes"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/testenv"
)

const repo = "library/layers"

// rig is Blobs over a database of one engine, a filesystem storage and go-containerregistry's
// in-memory registry as the upstream, whose blob GETs are counted.
type rig struct {
	b     *Blobs
	db    *gorm.DB
	store *storage.Filesystem
	url   string
	gets  atomic.Int32
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func newRig(t *testing.T, e testenv.Engine) *rig {
	t.Helper()
	r := &rig{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/sha256:") {
			r.gets.Add(1)
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	db := testenv.OpenDB(t, e)
	store, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	staging, err := fill.OpenStaging(filepath.Join(store.Dir(), ".fills"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = staging.Close() })
	fills := fill.New(store, staging, nil)
	transient, err := fill.NewTransient(staging, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = transient.Close(); fills.Wait() })
	r.b, err = New(Config{DB: db, Clients: remotes.NewClients(5 * time.Second), Fills: fills, Transient: transient})
	if err != nil {
		t.Fatal(err)
	}
	r.db, r.store = db, store
	return r
}

// push uploads b to the upstream as a blob of repo.
func (r *rig) push(t *testing.T, b []byte) string {
	t.Helper()
	d := digestOf(b)
	resp, err := http.Post(r.url+"/v2/"+repo+"/blobs/uploads/?digest="+d, "application/octet-stream", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push blob: %s", resp.Status)
	}
	return d
}

// remote creates a container remote of the upstream with policy; url "" is the upstream's.
func (r *rig) remote(t *testing.T, name, url, policy string) string {
	t.Helper()
	if url == "" {
		url = r.url
	}
	now := time.Now()
	rm := models.Remote{ID: models.NewID(), PulpType: models.KindContainerRemote.PulpType, PulpCreated: now,
		PulpLastUpdated: now, Name: name, URL: url, UpstreamName: repo, Policy: policy, TLSValidation: true}
	if err := r.db.Create(&rm).Error; err != nil {
		t.Fatal(err)
	}
	return rm.ID
}

// artifacts records a blob with digest and size and one remote artifact per remote, oldest
// first.
func (r *rig) artifacts(t *testing.T, digest string, size int64, remoteIDs ...string) {
	t.Helper()
	blob, err := models.GetOrCreateBlob(r.db, &models.Blob{Digest: digest, Size: size})
	if err != nil {
		t.Fatal(err)
	}
	var ras []models.RemoteArtifact
	for i, id := range remoteIDs {
		ras = append(ras, models.RemoteArtifact{BlobID: blob.ID, RemoteID: id, Digest: digest, Size: size,
			UpstreamName: repo, PulpCreated: time.Now().Add(time.Duration(i-len(remoteIDs)) * time.Minute)})
	}
	if err := models.RecordRemoteArtifacts(r.db, ras); err != nil {
		t.Fatal(err)
	}
}

// read serves digest through Blobs and reads all of it on a context that ends afterwards.
func (r *rig) read(t *testing.T, digest string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	bc, err := r.b.Blob(ctx, digest, false)
	if err != nil {
		return nil, err
	}
	rc := bc.Open(ctx, 0)
	defer rc.Close()
	return io.ReadAll(rc)
}

func (r *rig) stored(t *testing.T, digest string) bool {
	t.Helper()
	p, err := storage.BlobPath(digest)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.store.Stat(t.Context(), p)
	return err == nil
}

// TestBlobsTryRemoteArtifactsInOrder checks the choice of source: a blob without remote
// artifacts is unknown; a HEAD is answered from the recorded size without any request; a
// remote that cannot be reached, or whose upstream announces another size than the one
// recorded, is skipped for the next; on_demand keeps the blob, streamed does not.
func TestBlobsTryRemoteArtifactsInOrder(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		r := newRig(t, e)
		layer := bytes.Repeat([]byte("on demand "), 10000)
		d := r.push(t, layer)

		if _, err := r.b.Blob(t.Context(), d, false); !errors.Is(err, oci.ErrBlobUnknown) {
			t.Fatalf("a blob without remote artifacts: %v, want BLOB_UNKNOWN", err)
		}

		dead := r.remote(t, "dead", "http://127.0.0.1:1", "on_demand")
		kept := r.remote(t, "kept", "", "on_demand")
		r.artifacts(t, d, int64(len(layer)), dead, kept)
		bc, err := r.b.Blob(t.Context(), d, true)
		if err != nil || bc.Size != int64(len(layer)) || bc.Open != nil || bc.File != nil {
			t.Fatalf("HEAD = %+v, %v; want the recorded size and no body", bc, err)
		}
		if n := r.gets.Load(); n != 0 {
			t.Fatalf("a HEAD made %d upstream GETs", n)
		}
		got, err := r.read(t, d)
		if err != nil || !bytes.Equal(got, layer) {
			t.Fatalf("GET through a dead remote, then a good one: %d bytes, %v", len(got), err)
		}
		r.b.cfg.Fills.Wait()
		if !r.stored(t, d) {
			t.Error("an on_demand blob was not kept")
		}

		// A recorded size the upstream contradicts: that source is not used.
		other := bytes.Repeat([]byte("streamed "), 5000)
		od := r.push(t, other)
		wrong := r.remote(t, "wrong-size", "", "on_demand")
		r.artifacts(t, od, int64(len(other))+1, wrong)
		before := r.gets.Load()
		if _, err := r.read(t, od); !errors.Is(err, oci.ErrUpstreamBad) {
			t.Errorf("an upstream size that is not the recorded one: %v, want a bad upstream answer", err)
		}
		r.b.cfg.Fills.Wait()
		if r.stored(t, od) {
			t.Error("a blob of the wrong size was kept")
		}

		// Streamed: served, never kept, fetched each time.
		if err := r.db.Where("digest = ?", od).Delete(&models.RemoteArtifact{}).Error; err != nil {
			t.Fatal(err)
		}
		streamed := r.remote(t, "streamed", "", "streamed")
		r.artifacts(t, od, int64(len(other)), streamed)
		for i := range 2 {
			got, err := r.read(t, od)
			if err != nil || !bytes.Equal(got, other) {
				t.Fatalf("streamed GET %d: %d bytes, %v", i, len(got), err)
			}
			r.b.cfg.Transient.Wait()
		}
		if n := r.gets.Load() - before; n != 3 {
			t.Errorf("upstream GETs: %d, want 3 (one refused for its size, two streamed)", n)
		}
		if r.stored(t, od) {
			t.Error("a streamed blob was kept")
		}
	})
}

// TestBlobsCacheOnly: with --fills-require-auth an anonymous GET of a blob that only a remote
// artifact delivers gets the challenge and makes no upstream request; a HEAD is still
// answered from the recorded size; an authenticated GET fetches it.
func TestBlobsCacheOnly(t *testing.T) {
	r := newRig(t, testenv.Embedded())
	layer := bytes.Repeat([]byte("anonymous "), 5000)
	d := r.push(t, layer)
	r.artifacts(t, d, int64(len(layer)), r.remote(t, "kept", "", "on_demand"))
	anon := cacheonly.With(t.Context())
	if _, err := r.b.Blob(anon, d, false); !errors.Is(err, cacheonly.ErrAuthRequired) {
		t.Fatalf("anonymous GET: %v, want the challenge", err)
	}
	if bc, err := r.b.Blob(anon, d, true); err != nil || bc.Size != int64(len(layer)) {
		t.Fatalf("anonymous HEAD = %+v, %v; want the recorded size", bc, err)
	}
	if n := r.gets.Load(); n != 0 {
		t.Fatalf("anonymous requests made %d upstream GETs", n)
	}
	if _, err := r.b.Blob(anon, digestOf([]byte("nothing")), false); !errors.Is(err, oci.ErrBlobUnknown) {
		t.Errorf("anonymous GET of a blob without remote artifacts: %v, want BLOB_UNKNOWN", err)
	}
	if got, err := r.read(t, d); err != nil || !bytes.Equal(got, layer) {
		t.Fatalf("authenticated GET: %d bytes, %v", len(got), err)
	}
}
