package ondemand

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/content/storage/storagetest"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
	"github.com/pulpgo/pulpgo/test/upstream"
)

// env is one running server, its database opened by the test, its upstream and its clients.
type env struct {
	srv *harness.Server
	db  *gorm.DB
	hub *upstream.Upstream
	api *client.API
	// reg is an anonymous registry client; admin sends the admin's Basic credentials.
	reg, admin *client.Registry
	// store is the server's blob storage, opened by the test.
	store *storage.Filesystem
}

// start runs bin/pulpgo serve on engine e in front of a new upstream.
func start(t *testing.T, e testenv.Engine) *env {
	t.Helper()
	hub := client.StartHub(t)
	srv := harness.Start(t, harness.Options{Engine: e})
	db, err := models.Open(e.DatabaseURL, srv.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	store, err := storage.NewFilesystem(filepath.Join(srv.DataDir, "storage"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return &env{srv: srv, db: db, hub: hub, store: store,
		api:   &client.API{Base: srv.URL, HTTP: client.NewHTTPClient()},
		reg:   &client.Registry{Base: srv.URL, HTTP: client.NewHTTPClient()},
		admin: &client.Registry{Base: srv.URL, HTTP: client.NewHTTPClient(), User: harness.Username, Pass: harness.Password}}
}

// create POSTs body to an API list endpoint and returns the created object's href, waiting
// for the task when the API answers with one.
func (e *env) create(t testing.TB, path string, body map[string]any) string {
	t.Helper()
	status, raw := e.api.Do(t, http.MethodPost, path, body)
	obj := client.DecodeObject(t, raw)
	switch status {
	case http.StatusCreated:
		return client.Str(obj, "pulp_href")
	case http.StatusAccepted:
		task := e.api.WaitTask(t, client.Str(obj, "task"))
		created, _ := task["created_resources"].([]any)
		if len(created) != 1 {
			t.Fatalf("POST %s: the task created %v, want one object", path, task["created_resources"])
		}
		return created[0].(string)
	}
	t.Fatalf("POST %s %v: %d %s", path, body, status, raw)
	return ""
}

// remote creates a container remote of the upstream named name, for upstreamName, with
// policy; it returns the remote's id.
func (e *env) remote(t testing.TB, name, url, upstreamName, policy string) string {
	t.Helper()
	href := e.create(t, "/pulp/api/v3/remotes/container/container/",
		map[string]any{"name": name, "url": url, "upstream_name": upstreamName, "policy": policy})
	parts := strings.Split(strings.TrimSuffix(href, "/"), "/")
	return parts[len(parts)-1]
}

// repository creates a container repository named name and a distribution of it at base
// path name (with distExtra); it returns the repository's href.
func (e *env) repository(t testing.TB, name string, distExtra map[string]any) string {
	t.Helper()
	href := e.create(t, "/pulp/api/v3/repositories/container/container/", map[string]any{"name": name})
	body := map[string]any{"name": name, "base_path": name, "repository": href}
	for k, v := range distExtra {
		body[k] = v
	}
	e.create(t, "/pulp/api/v3/distributions/container/container/", body)
	return href
}

// fixture is an image pushed to the upstream and recorded as an on_demand sync of its remote
// would record it, in a repository served at base path name.
type fixture struct {
	name     string
	img      upstream.Image
	remoteID string
}

// onDemand pushes a new image (totalMiB of random bytes in layers layers) as ondemand/<name>,
// creates a remote with policy for it, a repository and a distribution at name, records the
// image in the repository (version 1) and waits until the distribution serves its tag.
func (e *env) onDemand(t *testing.T, name, policy string, totalMiB, layers int, distExtra map[string]any) fixture {
	t.Helper()
	img, err := e.hub.PushLarge(client.Context(t), "ondemand/"+name, "1", totalMiB, layers)
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{name: name, img: img}
	f.remoteID = e.remote(t, name, e.hub.URL(), img.Name, policy)
	e.repository(t, name, distExtra)
	e.record(t, name, img, f.remoteID)
	e.waitServed(t, name, img, e.admin)
	return f
}

// record adds img to repository repoName as an on_demand sync through the remotes would: the
// manifest and config in storage (read from the upstream's registry directly, which counts no
// request), the layers as Blob rows each with a RemoteArtifact per remote (in the order given,
// oldest first), and one new version holding all of it and the tag.
func (e *env) record(t testing.TB, repoName string, img upstream.Image, remoteIDs ...string) {
	t.Helper()
	raw := e.fromRegistry(t, img.Name, "manifests/"+img.ManifestDigest, img.MediaType)
	e.put(t, img.ManifestDigest, raw)
	e.put(t, img.Config.Digest, e.fromRegistry(t, img.Name, "blobs/"+img.Config.Digest, ""))
	err := e.db.Transaction(func(tx *gorm.DB) error {
		var repo models.Repository
		if err := tx.Take(&repo, "name = ?", repoName).Error; err != nil {
			return err
		}
		var add []models.ContentRef
		blob := func(b upstream.Blob) (string, error) {
			row, err := models.GetOrCreateBlob(tx, &models.Blob{Digest: b.Digest, Size: b.Size, MediaType: b.MediaType})
			if err != nil {
				return "", err
			}
			add = append(add, models.ContentRef{Type: models.KindBlob.PulpType, ID: row.ID})
			return row.ID, nil
		}
		configID, err := blob(*img.Config)
		if err != nil {
			return err
		}
		var layerIDs []string
		var ras []models.RemoteArtifact
		created := time.Now().Add(-time.Hour)
		for _, l := range img.Layers {
			id, err := blob(l)
			if err != nil {
				return err
			}
			layerIDs = append(layerIDs, id)
			for i, r := range remoteIDs {
				ras = append(ras, models.RemoteArtifact{BlobID: id, RemoteID: r, Digest: l.Digest, Size: l.Size,
					UpstreamName: img.Name, PulpCreated: created.Add(time.Duration(i) * time.Second)})
			}
		}
		if err := models.RecordRemoteArtifacts(tx, ras); err != nil {
			return err
		}
		typ := "image"
		m, err := models.GetOrCreateManifest(tx, &models.Manifest{Digest: img.ManifestDigest, MediaType: img.MediaType,
			SchemaVersion: 2, Size: int64(len(raw)), Type: &typ, ConfigBlobID: &configID}, layerIDs, nil)
		if err != nil {
			return err
		}
		tag, err := models.GetOrCreateTag(tx, img.Tag, m.ID)
		if err != nil {
			return err
		}
		add = append(add, models.ContentRef{Type: models.KindManifest.PulpType, ID: m.ID},
			models.ContentRef{Type: models.KindTag.PulpType, ID: tag.ID})
		_, err = models.NewVersion(tx, &repo, add, nil)
		return err
	})
	if err != nil {
		t.Fatalf("record %s in %s: %v", img.Ref(), repoName, err)
	}
}

// recordManifestOnly adds the manifest digest (recorded already) and a tag of it to repository
// repoName, without its blobs: a version that lists a layer without holding it.
func (e *env) recordManifestOnly(t testing.TB, repoName, digest, tag string) {
	t.Helper()
	err := e.db.Transaction(func(tx *gorm.DB) error {
		var repo models.Repository
		if err := tx.Take(&repo, "name = ?", repoName).Error; err != nil {
			return err
		}
		var m models.Manifest
		if err := tx.Take(&m, "digest = ?", digest).Error; err != nil {
			return err
		}
		tg, err := models.GetOrCreateTag(tx, tag, m.ID)
		if err != nil {
			return err
		}
		_, err = models.NewVersion(tx, &repo, []models.ContentRef{{Type: models.KindManifest.PulpType, ID: m.ID},
			{Type: models.KindTag.PulpType, ID: tg.ID}}, nil)
		return err
	})
	if err != nil {
		t.Fatalf("record manifest %s in %s: %v", digest, repoName, err)
	}
}

// setUpstreamName points the remote artifacts of digest at another upstream repository.
func (e *env) setUpstreamName(t testing.TB, digest, name string) {
	t.Helper()
	if err := e.db.Model(&models.RemoteArtifact{}).Where("digest = ?", digest).Update("upstream_name", name).Error; err != nil {
		t.Fatal(err)
	}
}

// fromRegistry GETs /v2/<name>/<rest> from the upstream's registry behind the front.
func (e *env) fromRegistry(t testing.TB, name, rest, accept string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+e.hub.RegistryAddr()+"/v2/"+name+"/"+rest, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := client.NewHTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s from the upstream registry: %d %v", rest, resp.StatusCode, err)
	}
	return body
}

// put stores b in the server's storage under digest, as a sync stores manifests and configs.
func (e *env) put(t testing.TB, digest string, b []byte) {
	t.Helper()
	if client.Digest(b) != digest {
		t.Fatalf("bytes of %s hash to %s", digest, client.Digest(b))
	}
	p, err := storage.BlobPath(digest)
	if err != nil {
		t.Fatal(err)
	}
	storagetest.Put(t, e.store, p, b)
}

// waitServed waits until the distribution name serves img's tag (the registry reuses a
// name's resolution for a second, so a new version shows a moment later).
func (e *env) waitServed(t testing.TB, name string, img upstream.Image, r *client.Registry) {
	t.Helper()
	client.Poll(t, name+" to serve "+img.Tag, func() (bool, string) {
		_, _, digest, err := r.Manifest(context.Background(), name, img.Tag)
		if err != nil {
			return false, err.Error()
		}
		return digest == img.ManifestDigest, "serves " + digest
	})
}

// stored reports whether the server's storage holds the blob digest.
func (e *env) stored(t testing.TB, digest string) bool {
	t.Helper()
	p, err := storage.BlobPath(digest)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.store.Stat(context.Background(), p)
	var nf *storage.PathNotFoundError
	if err != nil && !errors.As(err, &nf) {
		t.Fatal(err)
	}
	return err == nil
}

// waitStored waits until the server's storage holds the blob digest: a fill commits it just
// after its readers got their last byte.
func (e *env) waitStored(t testing.TB, digest string) {
	t.Helper()
	client.Poll(t, "blob "+digest+" to be kept", func() (bool, string) { return e.stored(t, digest), "not in storage" })
}

// pull GETs name's manifest by tag and every blob it lists, checking each digest.
func pull(ctx context.Context, r *client.Registry, name string, img upstream.Image) error {
	if _, _, digest, err := r.Manifest(ctx, name, img.Tag); err != nil {
		return err
	} else if digest != img.ManifestDigest {
		return fmt.Errorf("%s:%s is %s, want %s", name, img.Tag, digest, img.ManifestDigest)
	}
	for _, b := range img.Blobs() {
		if _, err := r.Blob(ctx, name, b.Digest); err != nil {
			return err
		}
	}
	return nil
}

// blobsOf returns the digests of img's config and layers.
func blobsOf(img upstream.Image) []string {
	var out []string
	for _, b := range img.Blobs() {
		out = append(out, b.Digest)
	}
	return out
}

// gets returns the upstream's blob GETs of each layer of img.
func gets(hub *upstream.Upstream, img upstream.Image) []int {
	var out []int
	for _, l := range img.Layers {
		out = append(out, hub.BlobGets(l.Digest))
	}
	return out
}

// wantGets checks that each layer of img was fetched n times from the upstream, and its config
// (stored by the sync) never.
func wantGets(t testing.TB, hub *upstream.Upstream, img upstream.Image, n int, when string) {
	t.Helper()
	for i, got := range gets(hub, img) {
		if got != n {
			t.Errorf("%s: layer %d (%s) fetched %d times from the upstream, want %d", when, i, img.Layers[i].Digest, got, n)
		}
	}
	if got := hub.BlobGets(img.Config.Digest); got != 0 {
		t.Errorf("%s: the stored config was fetched %d times from the upstream", when, got)
	}
}

// get sends GET (or HEAD) path with the headers and returns the answer with its body read.
func get(t testing.TB, r *client.Registry, method, path string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	resp, err := r.Request(context.Background(), method, path, hdr)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, append(body, []byte("<read failed: "+err.Error()+">")...)
	}
	return resp, body
}

// layerBytes returns a layer's bytes from the upstream's registry.
func (e *env) layerBytes(t testing.TB, img upstream.Image, i int) []byte {
	t.Helper()
	return e.fromRegistry(t, img.Name, "blobs/"+img.Layers[i].Digest, "")
}

// fillsLeft lists the files below the server's staging root (<storage>/.fills) other than
// the processes' lock files: staging files of fills in progress and the scratch copies of
// streamed blobs (<process>/transient/...). Once a pull has ended, none left means that its
// fills have ended too.
func fillsLeft(t testing.TB, dataDir string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(dataDir, "storage", ".fills")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".lock") {
			out = append(out, p)
		}
		return err
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

// short is the start of a response body, for messages (a blob body is binary and long).
func short(b []byte) string {
	const n = 300
	if len(b) > n {
		return fmt.Sprintf("%q... (%d bytes)", b[:n], len(b))
	}
	return string(b)
}
