package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/tasks"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// pushEnv is a registry taking pushes, over a real HTTP server (so that a client can break
// off a body), on a database of one engine.
type pushEnv struct {
	t     *testing.T
	db    *gorm.DB
	store *storage.Filesystem
	reg   *Registry
	srv   *httptest.Server
}

func newPushEnv(t *testing.T, e testenv.Engine, mod func(*Config)) *pushEnv {
	t.Helper()
	db := testenv.OpenDB(t, e)
	store, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	cfg := Config{DB: db, Storage: store, AdminPassword: adminPassword, ResolveTTL: -1,
		// Errors (what a 500 hides) go to the test's log.
		Logger:    slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelError})),
		UploadDir: filepath.Join(store.Dir(), ".uploads"), Recorder: tasks.ManifestRecorder{Store: store}}
	if mod != nil {
		mod(&cfg)
	}
	reg, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return &pushEnv{t: t, db: db, store: store, reg: reg, srv: srv}
}

// testLog writes a server's log lines to the test's log.
type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// do sends a request as the admin (unless header says otherwise) and returns the response with
// its body read.
func (p *pushEnv) do(method, path string, body []byte, header map[string]string) (*http.Response, []byte) {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, p.srv.URL+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	req.SetBasicAuth(models.AdminUsername, adminPassword)
	for k, v := range header {
		if k == "Authorization" && v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// expect checks a response's status and, when code is set, its registry error code.
func expect(t *testing.T, what string, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s: status %d, want %d: %s", what, resp.StatusCode, status, body)
	}
	if code == "" {
		return
	}
	var e struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) == 0 || e.Errors[0].Code != code {
		t.Fatalf("%s: body %s, want code %s", what, body, code)
	}
}

// pushBlob uploads b monolithically to name and returns its digest.
func (p *pushEnv) pushBlob(name string, b []byte) string {
	p.t.Helper()
	d := oci.Digest(b)
	resp, body := p.do(http.MethodPost, "/v2/"+name+"/blobs/uploads/?digest="+d, b, nil)
	expect(p.t, "monolithic upload", resp, body, http.StatusCreated, "")
	return d
}

// blobRows counts the blob rows of digest.
func (p *pushEnv) blobRows(digest string) int64 {
	var n int64
	p.db.Model(&models.Blob{}).Where("digest = ?", digest).Count(&n)
	return n
}

// stored reads the bytes storage holds for digest (nil if none).
func (p *pushEnv) stored(digest string) []byte {
	p.t.Helper()
	rc, err := p.store.Reader(context.Background(), must(storage.BlobPath(digest)), 0)
	if err != nil {
		return nil
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return b
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBlobUploads covers the upload endpoints: monolithic POST and PUT, chunks with their
// order checked, status, cancel, wrong digests (nothing committed) and sha512.
func TestBlobUploads(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		p := newPushEnv(t, e, nil)
		blob := randomBytes(t, 300_000)
		d := oci.Digest(blob)

		// Monolithic POST ?digest=.
		resp, body := p.do(http.MethodPost, "/v2/team/app/blobs/uploads/?digest="+d, blob, nil)
		expect(t, "monolithic POST", resp, body, http.StatusCreated, "")
		if resp.Header.Get("Location") != "/v2/team/app/blobs/"+d || resp.Header.Get(headerContentDigest) != d {
			t.Errorf("monolithic POST headers: %v", resp.Header)
		}
		if !bytes.Equal(p.stored(d), blob) {
			t.Errorf("stored blob %s differs", d)
		}
		if p.blobRows(d) != 1 {
			t.Errorf("blob row of %s missing", d)
		}
		if _, err := p.store.Stat(context.Background(), must(storage.BlobPath(d))); err != nil {
			t.Errorf("blob %s not in storage: %v", d, err)
		}

		// Chunked: POST, PATCH, a chunk out of order, status, PUT with the last chunk.
		blob2 := randomBytes(t, 250_000)
		d2 := oci.Digest(blob2)
		resp, body = p.do(http.MethodPost, "/v2/team/app/blobs/uploads/", nil, nil)
		expect(t, "POST", resp, body, http.StatusAccepted, "")
		loc, uuid := resp.Header.Get("Location"), resp.Header.Get("Docker-Upload-UUID")
		if loc != "/v2/team/app/blobs/uploads/"+uuid || resp.Header.Get("Range") != "0-0" {
			t.Fatalf("POST headers: %v", resp.Header)
		}
		resp, body = p.do(http.MethodPatch, loc, blob2[:100_000], map[string]string{"Content-Range": "0-99999"})
		expect(t, "PATCH 1", resp, body, http.StatusAccepted, "")
		if resp.Header.Get("Range") != "0-99999" {
			t.Errorf("PATCH 1 Range = %q", resp.Header.Get("Range"))
		}
		resp, body = p.do(http.MethodPatch, loc, blob2[50_000:150_000], map[string]string{"Content-Range": "50000-149999"})
		expect(t, "PATCH out of order", resp, body, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID")
		resp, body = p.do(http.MethodGet, loc, nil, nil)
		expect(t, "status", resp, body, http.StatusNoContent, "")
		if resp.Header.Get("Range") != "0-99999" {
			t.Errorf("status Range = %q", resp.Header.Get("Range"))
		}
		resp, body = p.do(http.MethodPatch, loc, blob2[100_000:200_000], map[string]string{"Content-Range": "100000-199999"})
		expect(t, "PATCH 2", resp, body, http.StatusAccepted, "")
		resp, body = p.do(http.MethodPut, loc+"?digest="+d2, blob2[200_000:], map[string]string{"Content-Range": "200000-249999"})
		expect(t, "PUT last chunk", resp, body, http.StatusCreated, "")
		if got := p.stored(d2); !bytes.Equal(got, blob2) {
			t.Fatalf("stored chunked blob: %d bytes", len(got))
		}
		resp, body = p.do(http.MethodGet, loc, nil, nil)
		expect(t, "status of a finished upload", resp, body, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")

		// PUT with the whole body, sha512.
		blob3 := randomBytes(t, 1000)
		sum := sha512.Sum512(blob3)
		d3 := "sha512:" + hex.EncodeToString(sum[:])
		resp, _ = p.do(http.MethodPost, "/v2/team/app/blobs/uploads/", nil, nil)
		resp, body = p.do(http.MethodPut, resp.Header.Get("Location")+"?digest="+d3, blob3, nil)
		expect(t, "PUT sha512", resp, body, http.StatusCreated, "")
		if p.blobRows(d3) != 1 {
			t.Errorf("no blob row of %s", d3)
		}

		// A wrong digest commits nothing, and ends the upload.
		bad := randomBytes(t, 5000)
		wrong := oci.Digest([]byte("something else"))
		resp, _ = p.do(http.MethodPost, "/v2/team/app/blobs/uploads/", nil, nil)
		loc = resp.Header.Get("Location")
		resp, body = p.do(http.MethodPut, loc+"?digest="+wrong, bad, nil)
		expect(t, "PUT wrong digest", resp, body, http.StatusBadRequest, "DIGEST_INVALID")
		resp, body = p.do(http.MethodPost, "/v2/team/app/blobs/uploads/?digest="+wrong, bad, nil)
		expect(t, "monolithic wrong digest", resp, body, http.StatusBadRequest, "DIGEST_INVALID")
		for _, dg := range []string{wrong, oci.Digest(bad)} {
			if p.blobRows(dg) != 0 {
				t.Errorf("a blob row of %s was made", dg)
			}
			if _, err := p.store.Stat(context.Background(), must(storage.BlobPath(dg))); err == nil {
				t.Errorf("blob %s committed to storage", dg)
			}
		}
		resp, body = p.do(http.MethodGet, loc, nil, nil)
		expect(t, "status after a wrong digest", resp, body, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		resp, body = p.do(http.MethodPut, loc+"?digest=sha256:nothex", nil, nil)
		expect(t, "PUT malformed digest", resp, body, http.StatusBadRequest, "DIGEST_INVALID")

		// Cancel.
		resp, _ = p.do(http.MethodPost, "/v2/team/app/blobs/uploads/", nil, nil)
		loc = resp.Header.Get("Location")
		resp, body = p.do(http.MethodDelete, loc, nil, nil)
		expect(t, "DELETE upload", resp, body, http.StatusNoContent, "")
		resp, body = p.do(http.MethodDelete, loc, nil, nil)
		expect(t, "DELETE again", resp, body, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		resp, body = p.do(http.MethodPatch, "/v2/team/app/blobs/uploads/../../etc", []byte("x"), nil)
		if resp.StatusCode < 400 {
			t.Errorf("PATCH of a traversing upload id: %d", resp.StatusCode)
		}
		resp, body = p.do(http.MethodGet, "/v2/team/other/blobs/uploads/"+uuid, nil, nil)
		expect(t, "status under another name", resp, body, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		var left int64
		p.db.Model(&models.Upload{}).Count(&left)
		if left != 0 {
			t.Errorf("%d upload rows left", left)
		}
	})
}

// TestAbandonedUpload breaks a chunk off mid-body: nothing is visible, the upload resumes
// from the bytes that arrived (status, then PATCH from the offset), and an upload left alone
// is swept after the timeout.
func TestAbandonedUpload(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		p := newPushEnv(t, e, func(c *Config) { c.UploadTimeout = time.Hour })
		blob := randomBytes(t, 200_000)
		d := oci.Digest(blob)
		resp, _ := p.do(http.MethodPost, "/v2/abandon/blobs/uploads/", nil, nil)
		loc := resp.Header.Get("Location")

		conn, err := net.Dial("tcp", strings.TrimPrefix(p.srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\nContent-Length: %d\r\nContent-Range: 0-%d\r\n\r\n",
			loc, strings.TrimPrefix(basicAuth(models.AdminUsername, adminPassword)["Authorization"], "Basic "), len(blob), len(blob)-1)
		if _, err := conn.Write(blob[:80_000]); err != nil {
			t.Fatal(err)
		}
		conn.Close() // the client dies mid-body

		// The server records what arrived once it sees the connection end.
		deadline := time.Now().Add(10 * time.Second)
		var rng string
		for {
			resp, _ = p.do(http.MethodGet, loc, nil, nil)
			rng = resp.Header.Get("Range")
			if rng != "0-0" || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond) // polling the server's progress, not timing it
		}
		var got int64
		if _, err := fmt.Sscanf(rng, "0-%d", &got); err != nil || got <= 0 || got >= 80_000 {
			t.Fatalf("status Range after the broken chunk = %q", rng)
		}
		got++ // bytes received
		resp, body := p.do(http.MethodHead, "/v2/abandon/blobs/"+d, nil, nil)
		if resp.StatusCode == http.StatusOK {
			t.Fatal("the blob of a broken upload is visible")
		}
		resp, body = p.do(http.MethodPatch, loc, blob[got:], map[string]string{"Content-Range": fmt.Sprintf("%d-%d", got, len(blob)-1)})
		expect(t, "resume", resp, body, http.StatusAccepted, "")
		resp, body = p.do(http.MethodPut, loc+"?digest="+d, nil, nil)
		expect(t, "finish resumed", resp, body, http.StatusCreated, "")
		if got := p.stored(d); !bytes.Equal(got, blob) {
			t.Fatalf("resumed blob differs (%d bytes)", len(got))
		}

		// An upload left alone past the timeout is swept with its bytes.
		resp, _ = p.do(http.MethodPost, "/v2/abandon/blobs/uploads/", nil, nil)
		loc, uuid := resp.Header.Get("Location"), resp.Header.Get("Docker-Upload-UUID")
		p.do(http.MethodPatch, loc, blob[:1000], nil)
		if n, err := p.reg.SweepUploads(context.Background()); err != nil || n != 0 {
			t.Fatalf("sweep of a fresh upload: %d, %v", n, err)
		}
		p.db.Model(&models.Upload{}).Where("id = ?", uuid).Update("pulp_last_updated", time.Now().Add(-2*time.Hour))
		if n, err := p.reg.SweepUploads(context.Background()); err != nil || n != 1 {
			t.Fatalf("sweep of an abandoned upload: %d, %v", n, err)
		}
		resp, body = p.do(http.MethodGet, loc, nil, nil)
		expect(t, "status of a swept upload", resp, body, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		if _, err := os.Stat(p.reg.uploadPath(uuid)); !os.IsNotExist(err) {
			t.Errorf("bytes of the swept upload remain: %v", err)
		}
	})
}

// TestPushNames refuses invalid names, anonymous pushes and pushes below a pull-through
// distribution.
func TestPushNames(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		p := newPushEnv(t, e, nil)
		for _, name := range []string{"a/../b", "Upper/case", strings.Repeat("a", 300), "a/%2e%2e/b"} {
			resp, body := p.do(http.MethodPost, "/v2/"+name+"/blobs/uploads/", nil, nil)
			expect(t, "POST to "+name, resp, body, http.StatusBadRequest, "NAME_INVALID")
			resp, body = p.do(http.MethodPut, "/v2/"+name+"/manifests/latest", []byte("{}"), nil)
			expect(t, "PUT manifest to "+name, resp, body, http.StatusBadRequest, "NAME_INVALID")
		}
		resp, body := p.do(http.MethodPost, "/v2/anon/blobs/uploads/", nil, map[string]string{"Authorization": ""})
		expect(t, "anonymous POST", resp, body, http.StatusUnauthorized, "UNAUTHORIZED")
		if resp.Header.Get("WWW-Authenticate") != basicChallenge {
			t.Errorf("anonymous challenge %q", resp.Header.Get("WWW-Authenticate"))
		}
		pt := models.Distribution{ID: models.NewID(), PulpType: models.KindPullThroughDist.PulpType, Name: "cache",
			BasePath: "cache", PulpLabels: models.Labels{}, PulpCreated: models.Now(), PulpLastUpdated: models.Now()}
		if err := p.db.Create(&pt).Error; err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"cache", "cache/library/busybox"} {
			resp, body = p.do(http.MethodPost, "/v2/"+name+"/blobs/uploads/", nil, nil)
			expect(t, "POST below a pull-through distribution", resp, body, http.StatusBadRequest, "NAME_INVALID")
			if !strings.Contains(string(body), "read-only") {
				t.Errorf("%s: %s", name, body)
			}
		}
		var n int64
		p.db.Model(&models.Distribution{}).Count(&n)
		if n != 1 {
			t.Errorf("%d distributions after refused pushes", n)
		}
	})
}

// image is a pushed test image: its blobs and its manifest.
type image struct {
	config, layer []byte
	manifest      []byte
	digest        string
}

func (p *pushEnv) pushImage(name, tag string) image {
	p.t.Helper()
	img := image{config: []byte(`{"architecture":"arm64","os":"linux","rootfs":{"type":"layers"},"r":"` + hex.EncodeToString(randomBytes(p.t, 8)) + `"}`),
		layer: randomBytes(p.t, 5000)}
	cd, ld := p.pushBlob(name, img.config), p.pushBlob(name, img.layer)
	img.manifest = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}`,
		oci.MediaTypeOCIManifest, cd, len(img.config), ld, len(img.layer)))
	img.digest = oci.Digest(img.manifest)
	resp, body := p.do(http.MethodPut, "/v2/"+name+"/manifests/"+tag, img.manifest, map[string]string{"Content-Type": oci.MediaTypeOCIManifest})
	expect(p.t, "PUT manifest", resp, body, http.StatusCreated, "")
	return img
}

// TestPushManifest pushes an image by tag into a new name (which creates its namespace,
// repository and distribution), pulls it back, and checks the refusals of manifest pushes.
func TestPushManifest(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		p := newPushEnv(t, e, nil)
		img := p.pushImage("team/app", "v1")
		for _, ref := range []string{"v1", img.digest} {
			resp, body := p.do(http.MethodGet, "/v2/team/app/manifests/"+ref, nil, nil)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, img.manifest) || resp.Header.Get(headerContentDigest) != img.digest {
				t.Fatalf("GET manifest %s: %d %s", ref, resp.StatusCode, body)
			}
		}
		var d models.Distribution
		if err := p.db.Take(&d, "base_path = ?", "team/app").Error; err != nil {
			t.Fatalf("no distribution: %v", err)
		}
		var repo models.Repository
		if err := p.db.Take(&repo, "name = ?", "team/app").Error; err != nil || d.RepositoryID == nil || *d.RepositoryID != repo.ID {
			t.Fatalf("repository: %v %+v", err, d)
		}
		if repo.LatestNumber != 1 || repo.PulpType != models.KindContainerRepository.PulpType || d.ContentGuardID == nil || d.Name != "team/app" {
			t.Errorf("repository %+v distribution %+v", repo, d)
		}
		var ns models.Namespace
		if err := p.db.Take(&ns, "name = ?", "team").Error; err != nil || d.NamespaceID == nil || *d.NamespaceID != ns.ID {
			t.Errorf("namespace: %v", err)
		}
		var task models.Task
		if err := p.db.Order("id desc").Take(&task).Error; err != nil || task.State != models.TaskCompleted {
			t.Errorf("immediate task %+v: %v", task, err)
		}

		// A second push to the same tag moves it, in a new version.
		img2 := p.pushImage("team/app", "v1")
		resp, body := p.do(http.MethodGet, "/v2/team/app/manifests/v1", nil, nil)
		if !bytes.Equal(body, img2.manifest) {
			t.Fatalf("tag not moved: %d", resp.StatusCode)
		}
		resp, body = p.do(http.MethodGet, "/v2/team/app/tags/list", nil, nil)
		if !strings.Contains(string(body), `"tags":["v1"]`) {
			t.Errorf("tags: %s", body)
		}

		hdr := map[string]string{"Content-Type": oci.MediaTypeOCIManifest}
		missing := strings.Replace(string(img.manifest), oci.Digest(img.layer), oci.Digest([]byte("missing layer")), 1)
		resp, body = p.do(http.MethodPut, "/v2/team/app/manifests/broken", []byte(missing), hdr)
		expect(t, "manifest with a missing blob", resp, body, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN")
		if _, err := p.store.Stat(context.Background(), must(storage.BlobPath(oci.Digest([]byte(missing))))); err == nil {
			t.Error("a refused manifest was stored")
		}
		big := append(append([]byte{}, img.manifest[:len(img.manifest)-1]...), []byte(`,"annotations":{"x":"`+strings.Repeat("a", oci.MaxManifestSize)+`"}}`)...)
		resp, body = p.do(http.MethodPut, "/v2/team/app/manifests/big", big, hdr)
		expect(t, "oversize manifest", resp, body, http.StatusRequestEntityTooLarge, "MANIFEST_INVALID")
		resp, body = p.do(http.MethodPut, "/v2/team/app/manifests/"+oci.Digest([]byte("other")), img.manifest, hdr)
		expect(t, "manifest under another digest", resp, body, http.StatusBadRequest, "DIGEST_INVALID")
		resp, body = p.do(http.MethodPut, "/v2/team/app/manifests/old", []byte(`{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}`),
			map[string]string{"Content-Type": oci.MediaTypeDockerSchema1})
		expect(t, "schema 1", resp, body, http.StatusBadRequest, "MANIFEST_INVALID")
		resp, body = p.do(http.MethodPut, "/v2/team/app/manifests/junk", []byte(`not json`), hdr)
		expect(t, "junk", resp, body, http.StatusBadRequest, "MANIFEST_INVALID")
		resp, body = p.do(http.MethodPut, "/v2/team/app/manifests/bad%20tag", img.manifest, hdr)
		expect(t, "bad tag", resp, body, http.StatusBadRequest, "TAG_INVALID")

		// An index: of stored manifests only.
		index := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%d,"platform":{"architecture":"arm64","os":"linux"}}]}`,
			oci.MediaTypeOCIIndex, oci.MediaTypeOCIManifest, img.digest, len(img.manifest))
		resp, body = p.do(http.MethodPut, "/v2/team/app/manifests/multi", []byte(index), map[string]string{"Content-Type": oci.MediaTypeOCIIndex})
		expect(t, "index", resp, body, http.StatusCreated, "")
		badIndex := strings.Replace(index, img.digest, oci.Digest([]byte("nothing")), 1)
		resp, body = p.do(http.MethodPut, "/v2/team/app/manifests/multi2", []byte(badIndex), map[string]string{"Content-Type": oci.MediaTypeOCIIndex})
		expect(t, "index of a missing manifest", resp, body, http.StatusBadRequest, "MANIFEST_INVALID")
	})
}

// TestPushDeletes deletes manifests and blobs as Pulp 2.29 does.
func TestPushDeletes(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		p := newPushEnv(t, e, nil)
		img := p.pushImage("del", "v1")
		resp, body := p.do(http.MethodDelete, "/v2/del/manifests/v1", nil, nil)
		expect(t, "DELETE by tag", resp, body, http.StatusBadRequest, "INVALID_REQUEST")
		resp, body = p.do(http.MethodDelete, "/v2/del/blobs/"+oci.Digest(img.layer), nil, nil)
		expect(t, "DELETE blob", resp, body, http.StatusAccepted, "")
		resp, body = p.do(http.MethodDelete, "/v2/del/blobs/"+oci.Digest(img.layer), nil, nil)
		expect(t, "DELETE blob again", resp, body, http.StatusNotFound, "BLOB_UNKNOWN")
		resp, body = p.do(http.MethodDelete, "/v2/del/manifests/"+img.digest, nil, nil)
		expect(t, "DELETE manifest", resp, body, http.StatusAccepted, "")
		resp, body = p.do(http.MethodGet, "/v2/del/manifests/v1", nil, nil)
		expect(t, "tag after DELETE", resp, body, http.StatusNotFound, "MANIFEST_UNKNOWN")
		resp, body = p.do(http.MethodDelete, "/v2/del/manifests/"+img.digest, nil, nil)
		expect(t, "DELETE manifest again", resp, body, http.StatusNotFound, "MANIFEST_UNKNOWN")
		resp, body = p.do(http.MethodDelete, "/v2/nothing/manifests/"+img.digest, nil, nil)
		expect(t, "DELETE in an unknown repository", resp, body, http.StatusNotFound, "NAME_UNKNOWN")
		resp, body = p.do(http.MethodDelete, "/v2/del/manifests/"+img.digest, nil, map[string]string{"Authorization": ""})
		expect(t, "anonymous DELETE", resp, body, http.StatusUnauthorized, "UNAUTHORIZED")
	})
}

// TestReferrers pushes an artifact whose subject is an image and lists it.
func TestReferrers(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		p := newPushEnv(t, e, nil)
		img := p.pushImage("ref", "v1")
		emptyCfg := p.pushBlob("ref", []byte("{}"))
		sig := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","artifactType":"application/vnd.example.sig","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[],"subject":{"mediaType":"%s","digest":"%s","size":%d},"annotations":{"k":"v"}}`,
			oci.MediaTypeOCIManifest, emptyCfg, oci.MediaTypeOCIManifest, img.digest, len(img.manifest)))
		resp, body := p.do(http.MethodPut, "/v2/ref/manifests/"+oci.Digest(sig), sig, map[string]string{"Content-Type": oci.MediaTypeOCIManifest})
		expect(t, "PUT referrer", resp, body, http.StatusCreated, "")
		if resp.Header.Get("OCI-Subject") != img.digest {
			t.Errorf("OCI-Subject = %q", resp.Header.Get("OCI-Subject"))
		}
		resp, body = p.do(http.MethodGet, "/v2/ref/referrers/"+img.digest, nil, nil)
		var idx referrersIndex
		if err := json.Unmarshal(body, &idx); err != nil || resp.Header.Get("Content-Type") != oci.MediaTypeOCIIndex {
			t.Fatalf("referrers: %d %s", resp.StatusCode, body)
		}
		if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != oci.Digest(sig) || idx.Manifests[0].ArtifactType != "application/vnd.example.sig" ||
			idx.Manifests[0].Annotations["k"] != "v" || idx.Manifests[0].Size != int64(len(sig)) {
			t.Errorf("referrers: %s", body)
		}
		resp, body = p.do(http.MethodGet, "/v2/ref/referrers/"+img.digest+"?artifactType=other", nil, nil)
		if resp.Header.Get("OCI-Filters-Applied") != "artifactType" || !strings.Contains(string(body), `"manifests":[]`) {
			t.Errorf("filtered referrers: %v %s", resp.Header, body)
		}
	})
}

// TestMount mounts a blob from a repository that holds it, and falls back to an upload
// otherwise.
func TestMount(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		p := newPushEnv(t, e, nil)
		img := p.pushImage("src", "v1")
		ld := oci.Digest(img.layer)
		resp, body := p.do(http.MethodPost, "/v2/dst/blobs/uploads/?mount="+ld+"&from=src", nil, nil)
		expect(t, "mount", resp, body, http.StatusCreated, "")
		if resp.Header.Get("Location") != "/v2/dst/blobs/"+ld {
			t.Errorf("mount Location %q", resp.Header.Get("Location"))
		}
		resp, body = p.do(http.MethodPost, "/v2/dst/blobs/uploads/?mount="+oci.Digest([]byte("no"))+"&from=src", nil, nil)
		expect(t, "mount of a blob src lacks", resp, body, http.StatusAccepted, "")
		resp, body = p.do(http.MethodPost, "/v2/dst/blobs/uploads/?mount="+ld+"&from=nowhere", nil, nil)
		expect(t, "mount from nowhere", resp, body, http.StatusAccepted, "")
	})
}

// TestUploadWithoutItsBytes: an upload whose staging file is gone (committed by a request that
// died before it dropped the row) or shorter than its row says is dropped, never refilled: a
// later chunk and PUT cannot store zeros and new bytes under a digest computed from the saved
// hash state of bytes no longer there (review finding 2).
func TestUploadWithoutItsBytes(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		p := newPushEnv(t, e, nil)
		head, tail := randomBytes(t, 50_000), randomBytes(t, 1000)
		whole := oci.Digest(append(append([]byte{}, head...), tail...))
		for _, damage := range []string{"gone", "short"} {
			resp, body := p.do(http.MethodPost, "/v2/bytes/blobs/uploads/", nil, nil)
			expect(t, "start", resp, body, http.StatusAccepted, "")
			loc, uuid := resp.Header.Get("Location"), resp.Header.Get("Docker-Upload-UUID")
			resp, body = p.do(http.MethodPatch, loc, head, map[string]string{"Content-Range": fmt.Sprintf("0-%d", len(head)-1)})
			expect(t, "chunk", resp, body, http.StatusAccepted, "")
			path := p.reg.uploadPath(uuid)
			if damage == "gone" {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Truncate(path, 100); err != nil {
				t.Fatal(err)
			}
			resp, body = p.do(http.MethodPatch, loc, tail, map[string]string{"Content-Range": fmt.Sprintf("%d-%d", len(head), len(head)+len(tail)-1)})
			expect(t, damage+": next chunk", resp, body, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
			resp, body = p.do(http.MethodPut, loc+"?digest="+whole, nil, nil)
			expect(t, damage+": finish", resp, body, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("%s: the staging file exists again: %v", damage, err)
			}
			if got := p.stored(whole); got != nil {
				t.Fatalf("%s: %d bytes stored under %s", damage, len(got), whole)
			}
		}
	})
}

// TestPushNamesOnlyItsOwnContent: a pushed manifest may name only blobs its repository holds
// (in its latest version, or uploaded or mounted to it), and an index only manifests of that
// repository: knowing a digest of another repository does not copy its content in (review
// finding 1).
func TestPushNamesOnlyItsOwnContent(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		p := newPushEnv(t, e, nil)
		secret := p.pushImage("bob/secret", "v1")
		// Another repository: its own config, the other's layer, by digest only.
		cd := p.pushBlob("alice/x", []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`))
		ld := oci.Digest(secret.layer)
		m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}`,
			oci.MediaTypeOCIManifest, cd, len(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`), ld, len(secret.layer)))
		resp, body := p.do(http.MethodPut, "/v2/alice/x/manifests/stolen", m, map[string]string{"Content-Type": oci.MediaTypeOCIManifest})
		expect(t, "manifest naming another repository's layer", resp, body, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN")
		resp, _ = p.do(http.MethodGet, "/v2/alice/x/blobs/"+ld, nil, nil)
		if resp.StatusCode == http.StatusOK {
			t.Fatal("the other repository's layer is served through alice/x")
		}
		index := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%d,"platform":{"architecture":"arm64","os":"linux"}}]}`,
			oci.MediaTypeOCIIndex, oci.MediaTypeOCIManifest, secret.digest, len(secret.manifest)))
		resp, body = p.do(http.MethodPut, "/v2/alice/x/manifests/all", index, map[string]string{"Content-Type": oci.MediaTypeOCIIndex})
		expect(t, "index listing another repository's manifest", resp, body, http.StatusBadRequest, "MANIFEST_INVALID")

		// Brought to the repository by a mount, the same layer may be named.
		resp, body = p.do(http.MethodPost, "/v2/alice/x/blobs/uploads/?mount="+ld+"&from=bob/secret", nil, nil)
		expect(t, "mount", resp, body, http.StatusCreated, "")
		resp, body = p.do(http.MethodPut, "/v2/alice/x/manifests/mounted", m, map[string]string{"Content-Type": oci.MediaTypeOCIManifest})
		expect(t, "manifest after the mount", resp, body, http.StatusCreated, "")
	})
}

// TestChunkBeyondItsRange: a chunk sent without a length (chunked transfer) counts up to the
// end of its Content-Range only; more bytes are refused, not appended (review finding 11).
func TestChunkBeyondItsRange(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		p := newPushEnv(t, e, nil)
		resp, body := p.do(http.MethodPost, "/v2/range/blobs/uploads/", nil, nil)
		expect(t, "start", resp, body, http.StatusAccepted, "")
		loc := resp.Header.Get("Location")
		chunk := randomBytes(t, 3000)
		// io.MultiReader hides the length: the client sends the body chunked.
		req, err := http.NewRequest(http.MethodPatch, p.srv.URL+loc, io.MultiReader(bytes.NewReader(chunk)))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(models.AdminUsername, adminPassword)
		req.Header.Set("Content-Range", "0-999")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		expect(t, "chunk longer than its range", resp, body, http.StatusBadRequest, "SIZE_INVALID")
		resp, _ = p.do(http.MethodGet, loc, nil, nil)
		if got := resp.Header.Get("Range"); got != "0-999" {
			t.Errorf("upload status Range %q: bytes past the chunk's range were kept", got)
		}
	})
}

// TestFirstUploadMakesItsDirectory: an upload that comes before the sweeper has made the
// upload directory (a new process's first push) makes it, rather than failing with a 500.
func TestFirstUploadMakesItsDirectory(t *testing.T) {
	// With an hour's timeout the sweeper runs at start, then once a minute.
	p := newPushEnv(t, testenv.Embedded(), func(c *Config) { c.UploadTimeout = time.Hour })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(p.reg.cfg.UploadDir); err == nil || time.Now().After(deadline) {
			break // the sweeper's first pass made it (or never will: removed all the same)
		}
	}
	if err := os.RemoveAll(p.reg.cfg.UploadDir); err != nil {
		t.Fatal(err)
	}
	p.pushImage("own/first", "v1")
}
