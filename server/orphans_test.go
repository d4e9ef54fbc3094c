package server_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/inuse"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/tasks"
	"github.com/pulpgo/pulpgo/test/testenv"
)

const orphansCleanup = api + "orphans/cleanup/"

// orphanRig is an API whose worker runs the orphan cleanup over its own storage, with a
// tracker the test holds blobs through.
type orphanRig struct {
	*env
	store *storage.Filesystem
	uses  *inuse.Tracker
}

func runOrphans(t *testing.T, fn func(t *testing.T, r *orphanRig)) {
	t.Helper()
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		store, err := storage.NewFilesystem(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		uses := inuse.New(nil, nil)
		t.Cleanup(uses.Close)
		e := newEnv(t, eng, map[string]tasks.Job{tasks.NameOrphanCleanup: tasks.OrphanCleanupJob(store, uses)})
		fn(t, &orphanRig{env: e, store: store, uses: uses})
	})
}

// put stores s as the bytes of its digest.
func (r *orphanRig) put(t *testing.T, s string) string {
	t.Helper()
	d := sha(s)
	p, _ := storage.BlobPath(d)
	w, err := r.store.Writer(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

// stored reports whether storage holds the bytes of digest.
func (r *orphanRig) stored(t *testing.T, digest string) bool {
	t.Helper()
	p, _ := storage.BlobPath(digest)
	_, err := r.store.Stat(context.Background(), p)
	var nf *storage.PathNotFoundError
	if errors.As(err, &nf) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

func (r *orphanRig) blob(t *testing.T, s string) *models.Blob {
	t.Helper()
	b, err := models.GetOrCreateBlob(r.db, &models.Blob{Digest: r.put(t, s), Size: int64(len(s))})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (r *orphanRig) manifest(t *testing.T, s string, config *models.Blob, layers []*models.Blob, listed ...*models.Manifest) *models.Manifest {
	t.Helper()
	mf := &models.Manifest{Digest: r.put(t, s), MediaType: models.MediaTypeOCIManifest, SchemaVersion: 2}
	if config != nil {
		mf.ConfigBlobID = &config.ID
	}
	var ids []string
	for _, l := range layers {
		ids = append(ids, l.ID)
	}
	var children []models.ManifestListManifest
	for _, m := range listed {
		mf.MediaType = models.MediaTypeOCIIndex
		children = append(children, models.ManifestListManifest{ManifestID: m.ID, Architecture: "amd64", OS: "linux"})
	}
	m, err := models.GetOrCreateManifest(r.db, mf, ids, children)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (r *orphanRig) tag(t *testing.T, name string, m *models.Manifest) *models.Tag {
	t.Helper()
	tg, err := models.GetOrCreateTag(r.db, name, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// age makes the units of table look last used two days ago.
func (r *orphanRig) age(t *testing.T, table string, ids ...string) {
	t.Helper()
	old := time.Now().Add(-48 * time.Hour)
	if err := r.db.Table(table).Where("id IN ?", ids).Update("timestamp_of_interest", old).Error; err != nil {
		t.Fatal(err)
	}
}

// exists reports whether a row of model with id exists.
func (r *orphanRig) exists(t *testing.T, model any, id string) bool {
	t.Helper()
	var n int64
	if err := r.db.Model(model).Where("id = ?", id).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// cleanup runs an orphan cleanup with body and returns its finished task.
func (r *orphanRig) cleanup(t *testing.T, body any) map[string]any {
	t.Helper()
	return r.waitTaskOK(r.post(orphansCleanup, body).taskHref(t))
}

// addToNewRepository puts refs into version 1 of a new repository and returns its href.
func (r *orphanRig) addToNewRepository(t *testing.T, name string, refs ...models.ContentRef) string {
	t.Helper()
	rh := href(r.create(repositories, map[string]any{"name": name}))
	newVersion(t, r.db, rh, refs, nil)
	return rh
}

func cref(k models.Kind, id string) models.ContentRef {
	return models.ContentRef{Type: k.PulpType, ID: id}
}

func TestOrphanCleanupRefusesBadInput(t *testing.T) {
	runOrphans(t, func(t *testing.T, r *orphanRig) {
		b := r.blob(t, "a blob")
		rh := href(r.create(repositories, map[string]any{"name": "r"}))
		missing := api + "content/container/blobs/" + models.NewID() + "/"
		cases := []struct {
			body any
			want string
		}{
			{map[string]any{"content_hrefs": []string{}}, `{"content_hrefs": ["Must not be []."]}`},
			{map[string]any{"content_hrefs": []string{"/nope/"}}, `{"content_hrefs": ["URI not valid: /nope/"]}`},
			{map[string]any{"content_hrefs": []string{b.Href(), missing}}, `{"content_hrefs": ["URI ` + missing + ` not found for content."]}`},
			{map[string]any{"content_hrefs": []string{rh}}, `{"content_hrefs": ["URI ` + rh + ` not found for content."]}`},
			{map[string]any{"content_hrefs": []string{api + "content/container/blobs/abc/"}}, `{"content_hrefs": ["ID invalid: abc"]}`},
			{map[string]any{"content_hrefs": []string{"prn:container.blob:" + models.NewID()}}, ""},
			{map[string]any{"content_hrefs": nil}, `{"content_hrefs": ["This field may not be null."]}`},
			{map[string]any{"content_hrefs": "x"}, `{"content_hrefs": ["Expected a list of items but got type \"str\"."]}`},
			{map[string]any{"orphan_protection_time": -1}, `{"orphan_protection_time": ["Ensure this value is greater than or equal to 0."]}`},
			{map[string]any{"orphan_protection_time": 4294967296}, `{"orphan_protection_time": ["Ensure this value is less than or equal to 4294967295."]}`},
			{map[string]any{"orphan_protection_time": "soon"}, `{"orphan_protection_time": ["A valid integer is required."]}`},
			{map[string]any{"bogus": 1}, `{"bogus": ["Unexpected field"]}`},
		}
		for _, c := range cases {
			want := c.want
			if want == "" { // an unknown PRN: its text names itself
				href := c.body.(map[string]any)["content_hrefs"].([]string)[0]
				want = `{"content_hrefs": ["URI ` + href + ` not found for content."]}`
			}
			r.post(orphansCleanup, c.body).bodyIs(t, http.StatusBadRequest, want)
		}
		if n := len(r.get(taskList+"?name="+tasks.NameOrphanCleanup).expect(t, http.StatusOK).results(t)); n != 0 {
			t.Fatalf("%d cleanup tasks dispatched for bad input", n)
		}
		r.age(t, "blobs", b.ID)
		r.cleanup(t, map[string]any{"orphan_protection_time": 0, "content_hrefs": []string{b.Href()}})
		if r.exists(t, &models.Blob{}, b.ID) {
			t.Fatal("the blob named survived")
		}
	})
}

func TestOrphanCleanup(t *testing.T) {
	runOrphans(t, func(t *testing.T, r *orphanRig) {
		// Kept: what repository version 1 holds, and cfg, which it shares with an orphan.
		cfg, layer := r.blob(t, "config"), r.blob(t, "layer")
		m1 := r.manifest(t, "m1", cfg, []*models.Blob{layer})
		latest := r.tag(t, "latest", m1)
		// Orphans, old: a tagged manifest with its own layer, an index and the manifest it
		// lists, a lone blob with a remote artifact.
		layer2 := r.blob(t, "layer2")
		m2 := r.manifest(t, "m2", cfg, []*models.Blob{layer2})
		t2 := r.tag(t, "old", m2)
		child := r.manifest(t, "child", nil, nil)
		index := r.manifest(t, "index", nil, nil, child)
		lone := r.blob(t, "lone")
		// An orphan manifest that a kept index lists stays (keptChild).
		keptChild := r.manifest(t, "kept child", nil, nil)
		keptIndex := r.manifest(t, "kept index", nil, nil, keptChild)
		// Orphan, recent: protected by the default protection time.
		fresh := r.blob(t, "fresh")
		remote := r.create(remotes, map[string]any{"name": "up", "url": "https://registry.example", "upstream_name": "x"})
		if err := models.RecordRemoteArtifacts(r.db, []models.RemoteArtifact{
			{BlobID: lone.ID, RemoteID: idOf(href(remote)), Digest: lone.Digest, UpstreamName: "x"},
		}); err != nil {
			t.Fatal(err)
		}
		rh := r.addToNewRepository(t, "kept", cref(models.KindBlob, cfg.ID), cref(models.KindBlob, layer.ID),
			cref(models.KindManifest, m1.ID), cref(models.KindTag, latest.ID), cref(models.KindManifest, keptIndex.ID))
		r.age(t, "blobs", cfg.ID, layer.ID, layer2.ID, lone.ID)
		r.age(t, "manifests", m1.ID, m2.ID, child.ID, index.ID, keptChild.ID, keptIndex.ID)
		r.age(t, "tags", latest.ID, t2.ID)

		// The content lists' orphaned_for filter shows what a cleanup would consider.
		for _, c := range []struct {
			path string
			want []string
		}{
			{blobList + "?orphaned_for=0", sorted(layer2.Href(), lone.Href(), fresh.Href())},
			{blobList + "?orphaned_for=60.9", sorted(layer2.Href(), lone.Href())},
			{blobList + "?orphaned_for=-1", sorted(layer2.Href(), lone.Href())}, // the server's 1440
			{blobList + "?orphaned_for=4000", nil},
			{manifestList + "?orphaned_for=0", sorted(m2.Href(), child.Href(), index.Href(), keptChild.Href())},
			{tagList + "?orphaned_for=0&name=old", sorted(t2.Href())},
			{tagList + "?orphaned_for=0&name=latest", nil},
		} {
			if got := r.get(c.path).sortedHrefs(t); !reflect.DeepEqual(got, c.want) && len(got)+len(c.want) > 0 {
				t.Errorf("%s: got %v, want %v", c.path, got, c.want)
			}
		}
		r.get(blobList+"?orphaned_for=soon").bodyIs(t, http.StatusBadRequest, `{"orphaned_for": ["Enter a number."]}`)

		task := r.cleanup(t, map[string]any{})
		if task["name"] != tasks.NameOrphanCleanup || task["result"] != nil {
			t.Fatalf("task %v", task)
		}
		jsonEq(t, mustJSON(t, task["reserved_resources_record"]), `["pdrn:`+models.DefaultDomainID+`:orphans", "shared:prn:core.domain:`+models.DefaultDomainID+`"]`)
		// Orphans past the protection time: t2, m2, layer2, index, child, lone, keptChild (7);
		// removed: all but keptChild, 6 units, with the bytes of the 5 that have bytes.
		jsonEq(t, mustJSON(t, task["progress_reports"]), `[
			{"message": "Clean up orphan Content", "code": "clean-up.content", "state": "completed", "total": 7, "done": 6, "suffix": null},
			{"message": "Clean up orphan Artifacts", "code": "clean-up.artifacts", "state": "completed", "total": 5, "done": 5, "suffix": null}]`)
		for _, gone := range []struct {
			model  any
			id, d  string
			stored bool
		}{{&models.Tag{}, t2.ID, "", false}, {&models.Manifest{}, m2.ID, m2.Digest, true}, {&models.Blob{}, layer2.ID, layer2.Digest, true},
			{&models.Manifest{}, index.ID, index.Digest, true}, {&models.Manifest{}, child.ID, child.Digest, true}, {&models.Blob{}, lone.ID, lone.Digest, true}} {
			if r.exists(t, gone.model, gone.id) || (gone.stored && r.stored(t, gone.d)) {
				t.Errorf("orphan %T %s survived", gone.model, gone.id)
			}
		}
		for _, kept := range []struct {
			model any
			id, d string
		}{{&models.Blob{}, cfg.ID, cfg.Digest}, {&models.Blob{}, layer.ID, layer.Digest}, {&models.Manifest{}, m1.ID, m1.Digest},
			{&models.Manifest{}, keptIndex.ID, keptIndex.Digest}, {&models.Manifest{}, keptChild.ID, keptChild.Digest}, {&models.Blob{}, fresh.ID, fresh.Digest}} {
			if !r.exists(t, kept.model, kept.id) || !r.stored(t, kept.d) {
				t.Errorf("%T %s was removed", kept.model, kept.id)
			}
		}
		if !r.exists(t, &models.Tag{}, latest.ID) {
			t.Error("the tag in a version was removed")
		}
		var links int64
		r.db.Model(&models.ManifestBlob{}).Where("manifest_id = ?", m2.ID).Count(&links)
		var ras int64
		r.db.Model(&models.RemoteArtifact{}).Where("blob_id = ?", lone.ID).Count(&ras)
		var listed int64
		r.db.Model(&models.ManifestListManifest{}).Where("manifest_list_id = ?", index.ID).Count(&listed)
		if links+ras+listed != 0 {
			t.Errorf("left behind: %d manifest blob links, %d remote artifacts, %d listed links", links, ras, listed)
		}

		// A blob being read is kept, with its bytes, even with no protection time.
		release := r.uses.Hold(context.Background(), fresh.Digest)
		r.cleanup(t, map[string]any{"orphan_protection_time": 0, "content_hrefs": []string{fresh.Href()}})
		if !r.exists(t, &models.Blob{}, fresh.ID) || !r.stored(t, fresh.Digest) {
			t.Fatal("a blob being read was removed")
		}
		release()
		r.cleanup(t, map[string]any{"orphan_protection_time": 0, "content_hrefs": []string{fresh.Href()}})
		if r.exists(t, &models.Blob{}, fresh.ID) || r.stored(t, fresh.Digest) {
			t.Fatal("the blob released was kept")
		}

		// The content of a deleted repository is orphaned; content_hrefs limits the cleanup.
		r.waitTaskOK(r.del(rh).taskHref(t))
		r.cleanup(t, map[string]any{"orphan_protection_time": 0, "content_hrefs": []string{latest.Href()}})
		if r.exists(t, &models.Tag{}, latest.ID) || !r.exists(t, &models.Manifest{}, m1.ID) {
			t.Fatal("content_hrefs did not limit the cleanup to the tag")
		}
		r.cleanup(t, map[string]any{"orphan_protection_time": 0})
		for _, m := range []any{&models.Blob{}, &models.Manifest{}, &models.Tag{}} {
			var n int64
			r.db.Model(m).Count(&n)
			if n != 0 {
				t.Errorf("%d %T left after the repository was deleted", n, m)
			}
		}
	})
}
