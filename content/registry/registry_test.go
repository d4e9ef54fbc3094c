package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/metrics"
	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/testenv"
)

const adminPassword = "s3cret"

// absent in a call's header expectations means the header must not be set.
const absent = "<absent>"

// fixture is a database and a storage holding one repository, served by a few distributions.
type fixture struct {
	db    *gorm.DB
	store *storage.Filesystem
	repo  *models.Repository

	manifest, manifestDigest   []byte
	config, layer, extra       []byte
	configD, layerD, extraD    string
	orphanD, missingD, mD      string
	corruptD                   string
	corruptBytes, corruptStore []byte
}

func (f *fixture) put(t testing.TB, digest string, b []byte) {
	t.Helper()
	p, err := storage.BlobPath(digest)
	if err != nil {
		t.Fatal(err)
	}
	w, err := f.store.Writer(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// must returns v, panicking on err (fixture setup only).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func (f *fixture) blob(t testing.TB, b []byte, mediaType string, store bool) *models.Blob {
	t.Helper()
	d := oci.Digest(b)
	if store {
		f.put(t, d, b)
	}
	return must(models.GetOrCreateBlob(f.db, &models.Blob{Digest: d, Size: int64(len(b)), MediaType: mediaType}))
}

func (f *fixture) dist(t testing.TB, d models.Distribution) *models.Distribution {
	t.Helper()
	d.ID = models.NewID()
	if d.PulpType == "" {
		d.PulpType = models.KindContainerDistribution.PulpType
	}
	d.Name = d.BasePath
	d.PulpCreated, d.PulpLastUpdated = models.Now(), models.Now()
	d.PulpLabels = models.Labels{}
	if err := f.db.Create(&d).Error; err != nil {
		t.Fatal(err)
	}
	return &d
}

// newFixture builds repository "test" whose latest version holds a docker v2 manifest
// (config and layer reached through it), the tags latest, v1 and v2 on it, a blob "extra" of
// its own, a manifest whose stored bytes do not hash to its digest (tag "corrupt") and a blob
// whose bytes are missing from storage. Distributions: test, private/test (private),
// pinned (version 0), empty (no repository), docker-cache/library/busybox (a pull-through
// child) and the pull-through distributions docker, docker-cache, deep, deep/er and secret
// (private).
func newFixture(t testing.TB) *fixture {
	t.Helper()
	db := testenv.OpenDB(t, testenv.Embedded())
	store, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	f := &fixture{db: db, store: store}
	f.repo = &models.Repository{PulpType: models.KindContainerRepository.PulpType, Name: "test"}
	if err := models.CreateRepository(db, f.repo); err != nil {
		t.Fatal(err)
	}

	f.config = []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`)
	f.layer = make([]byte, 200_000) // more than one copy buffer
	for i := range f.layer {
		f.layer[i] = byte(i * 7)
	}
	f.extra = []byte("extra blob")
	config := f.blob(t, f.config, oci.MediaTypeDockerConfig, true)
	layer := f.blob(t, f.layer, "application/vnd.docker.image.rootfs.diff.tar.gzip", true)
	extra := f.blob(t, f.extra, "application/octet-stream", true)
	orphan := f.blob(t, []byte("orphan: stored but in no version"), "", true)
	missing := f.blob(t, []byte("missing: in the version, not in storage"), "", false)
	f.configD, f.layerD, f.extraD, f.orphanD, f.missingD = config.Digest, layer.Digest, extra.Digest, orphan.Digest, missing.Digest

	f.manifest = []byte(fmt.Sprintf(`{
   "schemaVersion": 2,
   "mediaType": %q,
   "config": {"mediaType": %q, "size": %d, "digest": %q},
   "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": %d, "digest": %q}]
}`, oci.MediaTypeDockerManifest, oci.MediaTypeDockerConfig, len(f.config), f.configD, len(f.layer), f.layerD))
	f.mD = oci.Digest(f.manifest)
	f.put(t, f.mD, f.manifest)
	mf := must(models.GetOrCreateManifest(db, &models.Manifest{Digest: f.mD, MediaType: oci.MediaTypeDockerManifest,
		SchemaVersion: 2, Size: int64(len(f.manifest)), ConfigBlobID: &config.ID}, []string{layer.ID}, nil))

	f.corruptBytes = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}`)
	f.corruptD = oci.Digest(f.corruptBytes)
	f.corruptStore = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[ ]}`)
	f.put(t, f.corruptD, f.corruptStore)
	corrupt := must(models.GetOrCreateManifest(db, &models.Manifest{Digest: f.corruptD, MediaType: oci.MediaTypeOCIManifest,
		SchemaVersion: 2, Size: int64(len(f.corruptStore))}, nil, nil))

	refs := []models.ContentRef{{Type: models.KindManifest.PulpType, ID: mf.ID},
		{Type: models.KindManifest.PulpType, ID: corrupt.ID},
		{Type: models.KindBlob.PulpType, ID: extra.ID},
		{Type: models.KindBlob.PulpType, ID: missing.ID}}
	for _, name := range []string{"v2", "latest", "v1"} {
		tag := must(models.GetOrCreateTag(db, name, mf.ID))
		refs = append(refs, models.ContentRef{Type: models.KindTag.PulpType, ID: tag.ID})
	}
	tag := must(models.GetOrCreateTag(db, "corrupt", corrupt.ID))
	refs = append(refs, models.ContentRef{Type: models.KindTag.PulpType, ID: tag.ID})
	if err := db.Transaction(func(tx *gorm.DB) error {
		_, err := models.NewVersion(tx, f.repo, refs, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	v0 := must(models.GetVersion(db, f.repo, 0))

	f.dist(t, models.Distribution{BasePath: "test", RepositoryID: &f.repo.ID})
	f.dist(t, models.Distribution{BasePath: "private/test", RepositoryID: &f.repo.ID, Private: true})
	f.dist(t, models.Distribution{BasePath: "pinned", RepositoryVersionID: &v0.ID})
	f.dist(t, models.Distribution{BasePath: "empty"})
	pt := models.KindPullThroughDist.PulpType
	cache := f.dist(t, models.Distribution{BasePath: "docker-cache", PulpType: pt})
	f.dist(t, models.Distribution{BasePath: "docker", PulpType: pt})
	f.dist(t, models.Distribution{BasePath: "deep", PulpType: pt})
	f.dist(t, models.Distribution{BasePath: "deep/er", PulpType: pt})
	secret := f.dist(t, models.Distribution{BasePath: "secret", PulpType: pt, Private: true})
	f.dist(t, models.Distribution{BasePath: "docker-cache/library/busybox", RepositoryID: &f.repo.ID, PullThroughID: &cache.ID})
	f.dist(t, models.Distribution{BasePath: "secret/hidden", RepositoryID: &f.repo.ID, PullThroughID: &secret.ID, Private: true})
	return f
}

func (f *fixture) server(t *testing.T, pt PullThrough) *httptest.Server {
	t.Helper()
	return f.serve(t, Config{PullThrough: pt})
}

// serve serves the fixture with cfg, whose database, storage, password and logger it sets.
func (f *fixture) serve(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	cfg.DB, cfg.Storage, cfg.AdminPassword = f.db, f.store, adminPassword
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	reg, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return srv
}

// call is one request and what must come back.
type call struct {
	name    string
	method  string
	path    string
	header  map[string]string
	status  int
	code    string            // the registry error code, for errors
	body    string            // the exact body, when set
	headers map[string]string // exact header values (absent: not set)
}

var admin = map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+adminPassword))}

func errBody(code, msg, key, v string) string {
	detail := "{}"
	if key != "" {
		detail = fmt.Sprintf("{%q:%q}", key, v)
	}
	return fmt.Sprintf(`{"errors":[{"code":%q,"detail":%s,"message":%q}]}`, code, detail, msg)
}

func run(t *testing.T, srv *httptest.Server, calls []call) {
	t.Helper()
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			method := c.method
			if method == "" {
				method = http.MethodGet
			}
			req, err := http.NewRequest(method, srv.URL+c.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Keep the path as written (no cleaning, escapes kept).
			p, _, _ := strings.Cut(c.path, "?")
			req.URL.Opaque = "//" + req.URL.Host + p
			for k, v := range c.header {
				for _, vv := range strings.Split(v, "\n") {
					req.Header.Add(k, vv)
				}
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, c.status, body)
			}
			if got := resp.Header.Get("Docker-Distribution-API-Version"); got != "registry/2.0" {
				t.Errorf("Docker-Distribution-API-Version = %q", got)
			}
			if c.code != "" {
				if !strings.Contains(string(body), `"code":"`+c.code+`"`) {
					t.Errorf("body %s, want code %s", body, c.code)
				}
				if method != http.MethodHead && resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("error Content-Type %q", resp.Header.Get("Content-Type"))
				}
			}
			if c.body != "" && string(body) != c.body {
				t.Errorf("body\n%s\nwant\n%s", body, c.body)
			}
			if method == http.MethodHead && len(body) != 0 {
				t.Errorf("HEAD body %q", body)
			}
			for k, want := range c.headers {
				got, ok := resp.Header[http.CanonicalHeaderKey(k)]
				switch {
				case want == absent && ok:
					t.Errorf("header %s = %q, want none", k, got)
				case want != absent && (len(got) != 1 || got[0] != want):
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestLocal(t *testing.T) {
	f := newFixture(t)
	srv := f.server(t, nil)
	m, mLen := string(f.manifest), strconv.Itoa(len(f.manifest))
	manifestHeaders := map[string]string{"Content-Type": oci.MediaTypeDockerManifest, "Content-Length": mLen,
		"Docker-Content-Digest": f.mD, "ETag": `"` + f.mD + `"`}
	layerLen := strconv.Itoa(len(f.layer))
	blobHeaders := func(d string, size int) map[string]string {
		return map[string]string{"Content-Type": "application/octet-stream", "Content-Length": strconv.Itoa(size),
			"Docker-Content-Digest": d, "ETag": `"` + d + `"`, "Accept-Ranges": "bytes"}
	}
	badDigest := "sha256:abc"
	run(t, srv, []call{
		// Anonymous clients are challenged at /v2/ (so that podman and skopeo send credentials
		// they have); they answer with empty Basic credentials, which read public content.
		{name: "base", path: "/v2/", status: 401, code: "UNAUTHORIZED", headers: map[string]string{"WWW-Authenticate": `Basic realm="pulpgo"`}},
		{name: "base without slash", path: "/v2", status: 401, code: "UNAUTHORIZED"},
		{name: "base with empty credentials has JSON", path: "/v2/", header: map[string]string{"Authorization": "Basic Og=="},
			status: 200, body: "{}", headers: map[string]string{"Content-Type": "application/json"}},
		{name: "base as admin", path: "/v2/", header: admin, status: 200, body: "{}"},
		{name: "base with wrong password", path: "/v2/", header: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:nope"))},
			status: 401, code: "UNAUTHORIZED", headers: map[string]string{"WWW-Authenticate": `Basic realm="pulpgo"`}},
		{name: "base with empty credentials", path: "/v2/", header: map[string]string{"Authorization": "Basic Og=="}, status: 200, body: "{}"},

		{name: "catalog", path: "/v2/_catalog", status: 200,
			body: `{"repositories":["docker-cache/library/busybox","empty","pinned","test"]}`, headers: map[string]string{"Link": absent}},
		{name: "catalog as admin", path: "/v2/_catalog", header: admin, status: 200,
			body: `{"repositories":["docker-cache/library/busybox","empty","pinned","private/test","secret/hidden","test"]}`},
		{name: "catalog page 1", path: "/v2/_catalog?n=2", status: 200,
			body:    `{"repositories":["docker-cache/library/busybox","empty"]}`,
			headers: map[string]string{"Link": `</v2/_catalog?n=2&last=empty>; rel="next"`}},
		{name: "catalog page 2", path: "/v2/_catalog?n=2&last=empty", status: 200,
			body: `{"repositories":["pinned","test"]}`, headers: map[string]string{"Link": `</v2/_catalog?n=2&last=test>; rel="next"`}},
		{name: "catalog page 3", path: "/v2/_catalog?n=2&last=test", status: 200, body: `{"repositories":[]}`, headers: map[string]string{"Link": absent}},
		{name: "catalog n=0", path: "/v2/_catalog?n=0", status: 200, body: `{"repositories":[]}`, headers: map[string]string{"Link": absent}},
		{name: "catalog negative n", path: "/v2/_catalog?n=-5", status: 200, body: `{"repositories":[]}`},

		{name: "tags", path: "/v2/test/tags/list", status: 200, body: `{"name":"test","tags":["corrupt","latest","v1","v2"]}`,
			headers: map[string]string{"Link": absent, "Content-Type": "application/json"}},
		{name: "tags page 1", path: "/v2/test/tags/list?n=2", status: 200, body: `{"name":"test","tags":["corrupt","latest"]}`,
			headers: map[string]string{"Link": `</v2/test/tags/list?n=2&last=latest>; rel="next"`}},
		{name: "tags page 2", path: "/v2/test/tags/list?n=2&last=latest", status: 200, body: `{"name":"test","tags":["v1","v2"]}`,
			headers: map[string]string{"Link": `</v2/test/tags/list?n=2&last=v2>; rel="next"`}},
		{name: "tags page 3", path: "/v2/test/tags/list?n=2&last=v2", status: 200, body: `{"name":"test","tags":[]}`,
			headers: map[string]string{"Link": absent}},
		{name: "tags after a missing last", path: "/v2/test/tags/list?last=m", status: 200, body: `{"name":"test","tags":["v1","v2"]}`},
		{name: "tags of a pinned version", path: "/v2/pinned/tags/list", status: 200, body: `{"name":"pinned","tags":[]}`},
		{name: "tags of a child without pull-through", path: "/v2/docker-cache/library/busybox/tags/list", status: 200,
			body: `{"name":"docker-cache/library/busybox","tags":["corrupt","latest","v1","v2"]}`},

		{name: "manifest by tag", path: "/v2/test/manifests/latest", status: 200, body: m, headers: manifestHeaders},
		{name: "manifest by tag HEAD", method: "HEAD", path: "/v2/test/manifests/latest", status: 200, headers: manifestHeaders},
		{name: "manifest by digest", path: "/v2/test/manifests/" + f.mD, status: 200, body: m, headers: manifestHeaders},
		{name: "manifest by digest HEAD", method: "HEAD", path: "/v2/test/manifests/" + f.mD, status: 200, headers: manifestHeaders},
		{name: "accept lists the type", path: "/v2/test/manifests/v1", status: 200, body: m,
			header: map[string]string{"Accept": oci.MediaTypeOCIManifest + ", " + oci.MediaTypeDockerManifest + ";q=0.5"}},
		{name: "accept in two headers", path: "/v2/test/manifests/v1", status: 200,
			header: map[string]string{"Accept": oci.MediaTypeOCIManifest + "\n" + oci.MediaTypeDockerManifest}},
		{name: "accept anything", path: "/v2/test/manifests/v1", status: 200, header: map[string]string{"Accept": "text/plain, */*;q=0.1"}},
		{name: "accept without the type", path: "/v2/test/manifests/v1", status: 404,
			header: map[string]string{"Accept": oci.MediaTypeOCIManifest + ", " + oci.MediaTypeOCIIndex},
			body:   errBody("MANIFEST_UNKNOWN", "Manifest not found.", "reference", "v1")},
		{name: "accept without the type HEAD", method: "HEAD", path: "/v2/test/manifests/v1", status: 404,
			header: map[string]string{"Accept": oci.MediaTypeOCIManifest}, headers: map[string]string{"Docker-Content-Digest": absent}},
		{name: "no accept negotiation by digest", path: "/v2/test/manifests/" + f.mD, status: 200, body: m,
			header: map[string]string{"Accept": oci.MediaTypeOCIManifest}},
		{name: "unknown tag", path: "/v2/test/manifests/nope", status: 404,
			body: errBody("MANIFEST_UNKNOWN", "Manifest not found.", "reference", "nope")},
		{name: "unknown digest", path: "/v2/test/manifests/" + f.configD, status: 404, code: "MANIFEST_UNKNOWN"},
		{name: "tag served without digest check", path: "/v2/test/manifests/corrupt", status: 200, body: string(f.corruptStore),
			headers: map[string]string{"Docker-Content-Digest": f.corruptD}},
		{name: "digest whose bytes do not match", path: "/v2/test/manifests/" + f.corruptD, status: 404, code: "MANIFEST_UNKNOWN"},
		{name: "invalid tag", path: "/v2/test/manifests/-bad", status: 404, code: "MANIFEST_UNKNOWN"},
		{name: "invalid manifest digest", path: "/v2/test/manifests/" + badDigest, status: 400,
			body: errBody("DIGEST_INVALID", oci.ErrDigestInvalid.Message, "digest", badDigest)},
		{name: "pinned version has no manifest", path: "/v2/pinned/manifests/latest", status: 404, code: "MANIFEST_UNKNOWN"},

		{name: "layer through the manifest", path: "/v2/test/blobs/" + f.layerD, status: 200, body: string(f.layer), headers: blobHeaders(f.layerD, len(f.layer))},
		{name: "config through the manifest", path: "/v2/test/blobs/" + f.configD, status: 200, body: string(f.config)},
		{name: "blob of the version", path: "/v2/test/blobs/" + f.extraD, status: 200, body: string(f.extra), headers: blobHeaders(f.extraD, len(f.extra))},
		{name: "blob HEAD", method: "HEAD", path: "/v2/test/blobs/" + f.layerD, status: 200, headers: blobHeaders(f.layerD, len(f.layer))},
		{name: "blob range", path: "/v2/test/blobs/" + f.layerD, header: map[string]string{"Range": "bytes=10-19"}, status: 206,
			body: string(f.layer[10:20]), headers: map[string]string{"Content-Range": "bytes 10-19/" + layerLen, "Content-Length": "10"}},
		{name: "blob open range", path: "/v2/test/blobs/" + f.layerD, header: map[string]string{"Range": "bytes=199990-"}, status: 206,
			body: string(f.layer[199990:]), headers: map[string]string{"Content-Range": "bytes 199990-199999/" + layerLen}},
		{name: "blob range past the end", path: "/v2/test/blobs/" + f.layerD, header: map[string]string{"Range": "bytes=200000-"}, status: 416,
			headers: map[string]string{"Content-Range": "bytes */" + layerLen}},
		{name: "blob not modified", path: "/v2/test/blobs/" + f.layerD, header: map[string]string{"If-None-Match": `"` + f.layerD + `"`}, status: 304,
			headers: map[string]string{"ETag": `"` + f.layerD + `"`}},
		{name: "blob other etag", path: "/v2/test/blobs/" + f.extraD, header: map[string]string{"If-None-Match": `"sha256:other"`}, status: 200, body: string(f.extra)},
		{name: "blob not in the version", path: "/v2/test/blobs/" + f.orphanD, status: 404,
			body: errBody("BLOB_UNKNOWN", "Blob not found.", "digest", f.orphanD)},
		{name: "blob not in storage", path: "/v2/test/blobs/" + f.missingD, status: 404, code: "BLOB_UNKNOWN"},
		{name: "blob not in the pinned version", path: "/v2/pinned/blobs/" + f.layerD, status: 404, code: "BLOB_UNKNOWN"},
		{name: "blob HEAD unknown", method: "HEAD", path: "/v2/test/blobs/" + f.orphanD, status: 404},
		{name: "invalid blob digest", path: "/v2/test/blobs/" + badDigest, status: 400, code: "DIGEST_INVALID"},
		{name: "uppercase blob digest", path: "/v2/test/blobs/" + strings.ToUpper(f.layerD), status: 400, code: "DIGEST_INVALID"},

		{name: "unknown name", path: "/v2/nope/tags/list", status: 404, body: errBody("NAME_UNKNOWN", "Repository not found.", "name", "nope")},
		{name: "unknown name manifest", path: "/v2/nope/manifests/latest", status: 404, code: "NAME_UNKNOWN"},
		{name: "prefix of a distribution", path: "/v2/private/manifests/latest", status: 404, code: "NAME_UNKNOWN"},
		{name: "below an ordinary distribution", path: "/v2/test/sub/manifests/latest", status: 404, code: "NAME_UNKNOWN"},
		{name: "distribution without repository", path: "/v2/empty/tags/list", status: 404, code: "NAME_UNKNOWN"},
		{name: "under pull-through without a cache", path: "/v2/docker-cache/library/alpine/tags/list", status: 404, code: "NAME_UNKNOWN"},

		{name: "traversal", path: "/v2/a/../test/manifests/latest", status: 400, body: errBody("NAME_INVALID", "Invalid repository name.", "name", "a/../test")},
		{name: "encoded traversal", path: "/v2/%2e%2e/test/manifests/latest", status: 400, code: "NAME_INVALID"},
		{name: "encoded slash", path: "/v2/private%2ftest/manifests/latest", status: 400, code: "NAME_INVALID"},
		{name: "uppercase", path: "/v2/Test/manifests/latest", status: 400, code: "NAME_INVALID"},
		{name: "empty segment", path: "/v2/private//test/tags/list", status: 400, code: "NAME_INVALID"},
		{name: "dot segment", path: "/v2/./test/blobs/" + f.layerD, status: 400, code: "NAME_INVALID"},
		{name: "empty name", path: "/v2//tags/list", status: 400, code: "NAME_INVALID"},

		{name: "private anonymous", path: "/v2/private/test/tags/list", status: 401,
			body:    errBody("UNAUTHORIZED", oci.ErrUnauthorized.Message, "", ""),
			headers: map[string]string{"WWW-Authenticate": `Basic realm="pulpgo"`}},
		{name: "private with empty credentials", path: "/v2/private/test/manifests/latest", header: map[string]string{"Authorization": "Basic Og=="}, status: 401, code: "UNAUTHORIZED"},
		{name: "private blob anonymous", path: "/v2/private/test/blobs/" + f.layerD, status: 401, code: "UNAUTHORIZED"},
		{name: "private as admin", path: "/v2/private/test/manifests/latest", header: admin, status: 200, body: m},
		{name: "private tags as admin", path: "/v2/private/test/tags/list", header: admin, status: 200,
			body: `{"name":"private/test","tags":["corrupt","latest","v1","v2"]}`},
		{name: "private wrong user", path: "/v2/private/test/tags/list", status: 401, code: "UNAUTHORIZED",
			header: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("root:"+adminPassword))}},

		// Writes need the admin (push_test.go covers them with credentials).
		{name: "push manifest anonymous", method: "PUT", path: "/v2/test/manifests/latest", status: 401, code: "UNAUTHORIZED",
			headers: map[string]string{"WWW-Authenticate": basicChallenge}},
		{name: "delete manifest anonymous", method: "DELETE", path: "/v2/test/manifests/" + f.mD, status: 401, code: "UNAUTHORIZED"},
		{name: "delete blob anonymous", method: "DELETE", path: "/v2/test/blobs/" + f.layerD, status: 401, code: "UNAUTHORIZED"},
		{name: "start upload anonymous", method: "POST", path: "/v2/test/blobs/uploads/", status: 401, code: "UNAUTHORIZED"},
		{name: "upload chunk anonymous", method: "PATCH", path: "/v2/test/blobs/uploads/0a1b2c", status: 401, code: "UNAUTHORIZED"},
		{name: "upload status anonymous", path: "/v2/test/blobs/uploads/0a1b2c", status: 401, code: "UNAUTHORIZED"},
		{name: "patch a manifest", method: "PATCH", path: "/v2/test/manifests/latest", status: 405, code: "UNSUPPORTED",
			headers: map[string]string{"Allow": "GET, HEAD, PUT, DELETE"}},
		{name: "post catalog", method: "POST", path: "/v2/_catalog", status: 405, code: "UNSUPPORTED"},

		{name: "unknown route", path: "/v2/test/referrers", status: 404, code: "UNSUPPORTED"},
		{name: "unknown route under name", path: "/v2/test/tags/other", status: 404, code: "UNSUPPORTED"},
	})
}

// fakePullThrough records its calls and serves fakeImages.
type fakePullThrough struct {
	mu    sync.Mutex
	calls []string
	opens atomic.Int64
}

var _ PullThrough = (*fakePullThrough)(nil)

func (p *fakePullThrough) record(call string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, call)
}

func (p *fakePullThrough) Calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...)
}

func (p *fakePullThrough) Image(_ context.Context, pt *models.Distribution, upstreamName string) (Image, error) {
	p.record("image " + pt.BasePath + " " + upstreamName)
	if upstreamName == "filtered" {
		return nil, oci.ErrNameUnknown
	}
	return &fakeImage{name: pt.BasePath + "/" + upstreamName, opens: &p.opens}, nil
}

func (p *fakePullThrough) Child(_ context.Context, child *models.Distribution) (Image, error) {
	p.record("child " + child.BasePath)
	return &fakeImage{name: child.BasePath, opens: &p.opens}, nil
}

// fakeImage serves blobs that are being filled: blobOK (complete), blobFails (fails after
// 100 000 of its 200 000 announced bytes), blobFailsChunked (the same, size unknown) and
// blobEarly (fails before the first byte).
type fakeImage struct {
	name  string
	opens *atomic.Int64
}

var _ Image = (*fakeImage)(nil)

var (
	fakeBytes        = bytes.Repeat([]byte("0123456789"), 20_000)
	blobOK           = oci.Digest(fakeBytes)
	blobFails        = "sha256:" + strings.Repeat("f", 64)
	blobFailsChunked = "sha256:" + strings.Repeat("c", 64)
	blobEarly        = "sha256:" + strings.Repeat("e", 64)
)

func (img *fakeImage) Name() string                           { return img.name }
func (img *fakeImage) Tags(context.Context) ([]string, error) { return []string{"b", "a"}, nil }

func (img *fakeImage) Manifest(_ context.Context, ref string) (*oci.Manifest, error) {
	return nil, oci.ErrManifestUnknown
}

// failingReader yields its bytes, then fails.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func (f *failingReader) Close() error { return nil }

func (img *fakeImage) Blob(_ context.Context, digest string, head bool) (*BlobContent, error) {
	size := int64(len(fakeBytes))
	var open func(ctx context.Context, off int64) io.ReadCloser
	switch digest {
	case blobOK:
		open = func(_ context.Context, off int64) io.ReadCloser {
			return io.NopCloser(bytes.NewReader(fakeBytes[off:]))
		}
	case blobFails, blobFailsChunked:
		if digest == blobFailsChunked {
			size = -1
		}
		open = func(_ context.Context, off int64) io.ReadCloser {
			return &failingReader{r: bytes.NewReader(fakeBytes[off : len(fakeBytes)/2]), err: fmt.Errorf("upstream went away")}
		}
	case blobEarly:
		open = func(context.Context, int64) io.ReadCloser {
			return &failingReader{r: bytes.NewReader(nil), err: oci.ErrUpstreamBad}
		}
	default:
		return nil, oci.ErrBlobUnknown
	}
	if head {
		return &BlobContent{Digest: digest, Size: size}, nil
	}
	counted := func(ctx context.Context, off int64) io.ReadCloser { img.opens.Add(1); return open(ctx, off) }
	return &BlobContent{Digest: digest, Size: size, Open: counted}, nil
}

func TestPullThroughResolution(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		path   string
		header map[string]string
		status int
		code   string
		body   string
		calls  []string
	}{
		{path: "/v2/docker-cache/library/alpine/tags/list", status: 200,
			body: `{"name":"docker-cache/library/alpine","tags":["a","b"]}`, calls: []string{"image docker-cache library/alpine"}},
		{path: "/v2/docker/library/alpine/tags/list", status: 200, calls: []string{"image docker library/alpine"}},
		{path: "/v2/docker/alpine/tags/list", status: 200, calls: []string{"image docker alpine"}},
		{path: "/v2/docker-cachex/alpine/tags/list", status: 404, code: "NAME_UNKNOWN"},
		{path: "/v2/docker-cache/library/busybox/tags/list", status: 200,
			body: `{"name":"docker-cache/library/busybox","tags":["a","b"]}`, calls: []string{"child docker-cache/library/busybox"}},
		{path: "/v2/docker-cache/library/busybox/sub/tags/list", status: 200, calls: []string{"image docker-cache library/busybox/sub"}},
		{path: "/v2/deep/er/x/tags/list", status: 200, calls: []string{"image deep/er x"}},
		{path: "/v2/deep/ex/tags/list", status: 200, calls: []string{"image deep ex"}},
		{path: "/v2/deep/er/tags/list", status: 404, code: "NAME_UNKNOWN"},
		{path: "/v2/docker-cache/tags/list", status: 404, code: "NAME_UNKNOWN"},
		{path: "/v2/docker-cache/filtered/tags/list", status: 404,
			body: errBody("NAME_UNKNOWN", "Repository not found.", "name", "docker-cache/filtered"), calls: []string{"image docker-cache filtered"}},
		{path: "/v2/docker-cache/Library/alpine/tags/list", status: 400, code: "NAME_INVALID"},
		{path: "/v2/docker-cache/%2e%2e/test/tags/list", status: 400, code: "NAME_INVALID"},
		{path: "/v2/secret/alpine/tags/list", status: 401, code: "UNAUTHORIZED"},
		{path: "/v2/secret/alpine/tags/list", header: admin, status: 200, calls: []string{"image secret alpine"}},
		{path: "/v2/secret/hidden/tags/list", status: 401, code: "UNAUTHORIZED"},
		{path: "/v2/secret/hidden/tags/list", header: admin, status: 200, calls: []string{"child secret/hidden"}},
		{path: "/v2/test/tags/list", status: 200, body: `{"name":"test","tags":["corrupt","latest","v1","v2"]}`},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			pt := &fakePullThrough{}
			run(t, f.server(t, pt), []call{{name: "request", path: tc.path, header: tc.header, status: tc.status, code: tc.code, body: tc.body}})
			if got := pt.Calls(); fmt.Sprint(got) != fmt.Sprint(tc.calls) {
				t.Errorf("pull-through calls %q, want %q", got, tc.calls)
			}
		})
	}
}

func TestFillingBlobs(t *testing.T) {
	f := newFixture(t)
	pt := &fakePullThrough{}
	srv := f.server(t, pt)
	base := "/v2/docker-cache/library/alpine/blobs/"
	size := strconv.Itoa(len(fakeBytes))
	okHeaders := map[string]string{"Content-Type": "application/octet-stream", "Content-Length": size,
		"Docker-Content-Digest": blobOK, "ETag": `"` + blobOK + `"`, "Accept-Ranges": "bytes"}
	run(t, srv, []call{
		{name: "GET", path: base + blobOK, status: 200, body: string(fakeBytes), headers: okHeaders},
		{name: "range", path: base + blobOK, header: map[string]string{"Range": "bytes=100-199"}, status: 206, body: string(fakeBytes[100:200]),
			headers: map[string]string{"Content-Range": "bytes 100-199/" + size, "Content-Length": "100"}},
		{name: "open range", path: base + blobOK, header: map[string]string{"Range": "bytes=199995-"}, status: 206, body: string(fakeBytes[199995:]),
			headers: map[string]string{"Content-Range": "bytes 199995-199999/" + size}},
		{name: "suffix range", path: base + blobOK, header: map[string]string{"Range": "bytes=-3"}, status: 206, body: string(fakeBytes[len(fakeBytes)-3:])},
		{name: "range clamped", path: base + blobOK, header: map[string]string{"Range": "bytes=199999-300000"}, status: 206, body: string(fakeBytes[199999:]),
			headers: map[string]string{"Content-Range": "bytes 199999-199999/" + size}},
		{name: "range past the end", path: base + blobOK, header: map[string]string{"Range": "bytes=200000-200010"}, status: 416,
			code: "RANGE_INVALID", headers: map[string]string{"Content-Range": "bytes */" + size, "Docker-Content-Digest": absent}},
		{name: "multiple ranges ignored", path: base + blobOK, header: map[string]string{"Range": "bytes=0-1,5-6"}, status: 200, body: string(fakeBytes)},
		{name: "if-range mismatch ignores range", path: base + blobOK, header: map[string]string{"Range": "bytes=0-1", "If-Range": `"other"`}, status: 200},
		{name: "not modified", path: base + blobOK, header: map[string]string{"If-None-Match": `"` + blobOK + `"`}, status: 304},
		{name: "HEAD", method: "HEAD", path: base + blobOK, status: 200, headers: okHeaders},
		{name: "HEAD size unknown", method: "HEAD", path: base + blobFailsChunked, status: 200, headers: map[string]string{"Accept-Ranges": absent}},
		{name: "fails before the first byte", path: base + blobEarly, status: 502, code: "UNSUPPORTED",
			headers: map[string]string{"Docker-Content-Digest": absent, "Content-Length": strconv.Itoa(len(errBody("UNSUPPORTED", oci.ErrUpstreamBad.Message, "", "")))}},
		{name: "unknown", path: base + f.layerD, status: 404, body: errBody("BLOB_UNKNOWN", "Blob not found.", "digest", f.layerD)},
	})
	if n := pt.opens.Load(); n != 8 {
		t.Errorf("Open called %d times, want 8 (never for HEAD, 304 or 416)", n)
	}

	for _, d := range []string{blobFails, blobFailsChunked} {
		t.Run("fails mid-stream "+d[7:8], func(t *testing.T) {
			resp, err := srv.Client().Get(srv.URL + base + d)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			body, err := io.ReadAll(resp.Body)
			if err != io.ErrUnexpectedEOF {
				t.Errorf("read %d bytes, err %v; want io.ErrUnexpectedEOF", len(body), err)
			}
			if len(body) < 65536 || len(body) > len(fakeBytes)/2 {
				t.Errorf("read %d bytes before the failure", len(body))
			}
		})
	}
}

func TestParseRoute(t *testing.T) {
	for _, tc := range []struct {
		path string
		want route
	}{
		{"/v2/", route{kind: routeBase}},
		{"/v2/_catalog", route{kind: routeCatalog}},
		{"/v2/a/b/tags/list", route{kind: routeTags, name: "a/b"}},
		{"/v2/a/manifests/b/manifests/latest", route{kind: routeManifest, name: "a/manifests/b", ref: "latest"}},
		{"/v2/a/blobs/b/blobs/sha256:x", route{kind: routeBlob, name: "a/blobs/b", ref: "sha256:x"}},
		{"/v2/a/b/blobs/uploads/", route{kind: routeUpload, name: "a/b"}},
		{"/v2/a/blobs/uploads/u1", route{kind: routeUpload, name: "a", ref: "u1"}},
		{"/v2/a/blobs/uploads", route{kind: routeBlob, name: "a", ref: "uploads"}},
		{"/v2/manifests/latest", route{}},
		{"/v2/a", route{}},
		{"/v3/a/tags/list", route{}},
		{"/token/", route{}},
	} {
		if got := parseRoute(tc.path); got != tc.want {
			t.Errorf("parseRoute(%q) = %+v, want %+v", tc.path, got, tc.want)
		}
	}
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		h               string
		size            int64
		start, end      int64
		ok, satisfiable bool
	}{
		{"bytes=0-9", 100, 0, 9, true, true},
		{"bytes=90-", 100, 90, 99, true, true},
		{"bytes=90-200", 100, 90, 99, true, true},
		{"bytes=-10", 100, 90, 99, true, true},
		{"bytes=-200", 100, 0, 99, true, true},
		{"bytes=100-", 100, 0, 0, true, false},
		{"bytes=-0", 100, 0, 0, true, false},
		{"bytes=0-", 0, 0, 0, true, false},
		{"bytes=9-0", 100, 0, 0, false, false},
		{"bytes=0-1,3-4", 100, 0, 0, false, false},
		{"bytes=+1-2", 100, 0, 0, false, false},
		{"items=0-1", 100, 0, 0, false, false},
		{"bytes=x", 100, 0, 0, false, false},
	} {
		s, e, ok, sat := parseRange(tc.h, tc.size)
		if s != tc.start || e != tc.end || ok != tc.ok || sat != tc.satisfiable {
			t.Errorf("parseRange(%q, %d) = %d, %d, %v, %v; want %d, %d, %v, %v", tc.h, tc.size, s, e, ok, sat, tc.start, tc.end, tc.ok, tc.satisfiable)
		}
	}
}

func TestAcceptable(t *testing.T) {
	for _, tc := range []struct {
		accept    []string
		mediaType string
		want      bool
	}{
		{nil, oci.MediaTypeOCIManifest, true},
		{[]string{""}, oci.MediaTypeOCIManifest, true},
		{[]string{oci.MediaTypeDockerManifest}, oci.MediaTypeOCIManifest, false},
		{[]string{oci.MediaTypeDockerManifest, oci.MediaTypeOCIManifest + "; q=0.2"}, oci.MediaTypeOCIManifest, true},
		{[]string{"application/json, */*"}, oci.MediaTypeOCIIndex, true},
		{[]string{"application/*"}, oci.MediaTypeOCIIndex, false},
		{[]string{oci.MediaTypeOCIManifest}, oci.MediaTypeDockerSchema1, true},
		{[]string{oci.MediaTypeOCIManifest}, oci.MediaTypeDockerSchema1JWS, true},
	} {
		if got := acceptable(tc.accept, tc.mediaType); got != tc.want {
			t.Errorf("acceptable(%q, %s) = %v", tc.accept, tc.mediaType, got)
		}
	}
}

// TestResolveCache checks that resolutions are reused within the TTL and that a new
// distribution is seen once the cache is disabled (the TTL bounds how late it is seen).
func TestResolveCache(t *testing.T) {
	f := newFixture(t)
	reg, err := New(Config{DB: f.db, Storage: f.store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ResolveTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := reg.resolve(ctx, "later"); err != oci.ErrNameUnknown {
		t.Fatalf("resolve(later) = %v", err)
	}
	f.dist(t, models.Distribution{BasePath: "later", RepositoryID: &f.repo.ID})
	if _, err := reg.resolve(ctx, "later"); err != nil {
		t.Fatalf("resolve(later) after creation: %v", err)
	}

	c := newNameCache(DefaultResolveTTL)
	c.put("x", nil, oci.ErrNameUnknown)
	if _, err, ok := c.get("x"); !ok || err != oci.ErrNameUnknown {
		t.Errorf("get(x) = %v, %v", err, ok)
	}
	c.c.AddTTL("x", cachedName{err: oci.ErrNameUnknown}, time.Nanosecond)
	time.Sleep(time.Millisecond) // expired
	if _, _, ok := c.get("x"); ok {
		t.Error("expired entry served")
	}
}

// BenchmarkManifestByTag measures the warm local path: a cached resolution, one tag query and
// one storage read per request; "instrumented" adds the request metrics the content app wraps
// the registry in (content/metrics), to show what they cost.
func BenchmarkManifestByTag(b *testing.B) {
	f := newFixture(b)
	reg, err := New(Config{DB: f.db, Storage: f.store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"plain", reg},
		{"instrumented", metrics.New("content").Requests(metrics.AppContent).Instrument(reg, Route)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					w := httptest.NewRecorder()
					c.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v2/test/manifests/latest", nil))
					if w.Code != http.StatusOK {
						b.Errorf("status %d", w.Code)
						return
					}
				}
			})
		})
	}
}
