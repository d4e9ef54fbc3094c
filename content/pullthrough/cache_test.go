package pullthrough

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/fill"
	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// fakeUpstream serves manifests by tag and digest, and blobs, for one repository name; it
// counts requests by "METHOD kind ref", and before answering it calls hold, when set.
type fakeUpstream struct {
	mu        sync.Mutex
	manifests map[string][]byte // by digest
	tags      map[string]string // tag → digest
	blobs     map[string][]byte
	hits      map[string]int
	hold      func(r *http.Request)
}

func newFakeUpstream(t *testing.T) (*fakeUpstream, *httptest.Server) {
	u := &fakeUpstream{manifests: map[string][]byte{}, tags: map[string]string{}, blobs: map[string][]byte{}, hits: map[string]int{}}
	srv := httptest.NewServer(u)
	t.Cleanup(srv.Close)
	return u, srv
}

func (u *fakeUpstream) addManifest(tag string, raw []byte) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	d := oci.Digest(raw)
	u.manifests[d] = raw
	if tag != "" {
		u.tags[tag] = d
	}
	return d
}

func (u *fakeUpstream) count(key string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[key]
}

func (u *fakeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v2/" {
		return
	}
	i := strings.LastIndex(r.URL.Path, "/")
	ref := r.URL.Path[i+1:]
	head := r.URL.Path[:i]
	kind := head[strings.LastIndex(head, "/")+1:]
	u.mu.Lock()
	u.hits[r.Method+" "+kind+" "+ref]++
	hold := u.hold
	u.mu.Unlock()
	if hold != nil {
		hold(r)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	switch kind {
	case "manifests":
		d := ref
		if !oci.IsDigest(ref) {
			d = u.tags[ref]
		}
		raw, ok := u.manifests[d]
		serveTestObject(w, r, d, raw, ok, oci.MediaTypeOCIManifest)
	case "blobs":
		b, ok := u.blobs[ref]
		serveTestObject(w, r, ref, b, ok, "")
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// serveTestObject answers a fake upstream's request for a manifest of mediaType, or a blob
// when mediaType is empty: b, or MANIFEST_UNKNOWN or BLOB_UNKNOWN when !ok.
func serveTestObject(w http.ResponseWriter, r *http.Request, digest string, b []byte, ok bool, mediaType string) {
	if !ok {
		code := "BLOB_UNKNOWN"
		if mediaType != "" {
			code = "MANIFEST_UNKNOWN"
		}
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errors":[{"code":"` + code + `","message":"unknown"}]}`))
		return
	}
	if mediaType != "" {
		w.Header().Set("Content-Type", mediaType)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("Docker-Content-Digest", digest)
	if r.Method == http.MethodGet {
		_, _ = w.Write(b)
	}
}

// cacheEnv is a Cache over SQLite and a filesystem storage, with pull-through distribution
// "cache" in front of a fake upstream.
type cacheEnv struct {
	db    *gorm.DB
	store *storage.Filesystem
	cache *Cache
	pt    *models.Distribution
	rec   *countingRecorder
}

func newCacheEnv(t *testing.T, upstreamURL string, cfg Config) *cacheEnv {
	t.Helper()
	db := testenv.OpenDB(t, testenv.Embedded())
	store, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := models.Now()
	remote := &models.Remote{ID: models.NewID(), PulpType: models.KindPullThroughRemote.PulpType, Name: "cache",
		URL: upstreamURL, PulpLabels: models.Labels{}, PulpCreated: now, PulpLastUpdated: now}
	if err := db.Create(remote).Error; err != nil {
		t.Fatal(err)
	}
	pt := &models.Distribution{ID: models.NewID(), PulpType: models.KindPullThroughDist.PulpType, Name: "cache",
		BasePath: "cache", RemoteID: &remote.ID, PulpLabels: models.Labels{}, PulpCreated: now, PulpLastUpdated: now}
	if err := db.Create(pt).Error; err != nil {
		t.Fatal(err)
	}
	rec := &countingRecorder{count: map[RecordItem]int{}}
	staging, err := fill.OpenStaging(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fills := fill.New(store, staging, nil)
	cfg.DB, cfg.Storage, cfg.Fills, cfg.Recorder = db, store, fills, rec
	cfg.Logger = slog.New(slog.DiscardHandler)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		fills.Wait()
		_ = staging.Close()
		_ = store.Close()
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	return &cacheEnv{db: db, store: store, cache: c, pt: pt, rec: rec}
}

// TestManifestByDigestSurvivesItsClientLeaving checks that the upstream fetch of a manifest
// by digest, which every concurrent client of that digest waits for, is not cut short when
// the client that started it goes away: it completes and stores the manifest.
func TestManifestByDigestSurvivesItsClientLeaving(t *testing.T) {
	up, srv := newFakeUpstream(t)
	d := up.addManifest("", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:`+strings.Repeat("a", 64)+`","size":2},"layers":[]}`))
	e := newCacheEnv(t, srv.URL, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	arrived, release := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	up.hold = func(r *http.Request) {
		if r.Method == http.MethodGet && once.CompareAndSwap(false, true) {
			close(arrived)
			<-release
		}
	}
	img, err := e.cache.Image(context.Background(), e.pt, "library/x")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := img.Manifest(ctx, d)
		errc <- err
	}()
	<-arrived
	cancel() // the first client leaves while the upstream answers
	close(release)
	<-errc
	img2, err := e.cache.Image(context.Background(), e.pt, "library/x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img2.Manifest(context.Background(), d); err != nil {
		t.Fatalf("second pull: %v", err)
	}
	if n := up.count("GET manifests " + d); n != 1 {
		t.Fatalf("upstream GETs of the manifest: %d, want 1 (the first fetch was abandoned)", n)
	}
}

// TestFailedFillReadsAsUpstreamError checks that a reader of a fill that failed because of
// the upstream (here: bytes that do not match the digest) fails with the registry error of
// that failure, so that a client whose transfer had not started gets 502, not 500.
func TestFailedFillReadsAsUpstreamError(t *testing.T) {
	up, srv := newFakeUpstream(t)
	good := []byte("the real layer")
	d := oci.Digest(good)
	up.blobs[d] = []byte("a fake layer!!") // same length, other bytes
	e := newCacheEnv(t, srv.URL, Config{})
	img, err := e.cache.Image(context.Background(), e.pt, "library/x")
	if err != nil {
		t.Fatal(err)
	}
	bc, err := img.Blob(context.Background(), d, false)
	if err != nil {
		t.Fatal(err)
	}
	rc := bc.Open(context.Background(), 0)
	defer rc.Close()
	_, err = io.ReadAll(rc)
	var oe *oci.Error
	if !errors.As(err, &oe) || oe.Status != http.StatusBadGateway {
		t.Fatalf("read error %v, want one carrying the registry error %v", err, oci.ErrUpstreamBad)
	}
	p, _ := storage.BlobPath(d)
	if _, serr := e.store.Stat(context.Background(), p); serr == nil {
		t.Fatal("a blob that does not match its digest was stored")
	}
}
