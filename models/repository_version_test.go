package models_test

import (
	"errors"
	"reflect"
	"sort"
	"testing"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

// repoFixture is a repository and helpers to change and inspect it.
type repoFixture struct {
	t    *testing.T
	db   *gorm.DB
	repo *models.Repository
	// names maps content ids to test names.
	names map[string]string
}

func newRepo(t *testing.T, db *gorm.DB, name string, retain *int64) *repoFixture {
	t.Helper()
	repo := &models.Repository{PulpType: models.KindContainerRepository.PulpType, Name: name, RetainRepoVersions: retain}
	if err := models.CreateRepository(db, repo); err != nil {
		t.Fatal(err)
	}
	return &repoFixture{t: t, db: db, repo: repo, names: map[string]string{}}
}

// blobs stores blobs named names and returns their refs.
func (f *repoFixture) blobs(names ...string) []models.ContentRef {
	f.t.Helper()
	var out []models.ContentRef
	for _, n := range names {
		b := blob(f.t, f.db, n)
		f.names[b.ID] = n
		out = append(out, models.ContentRef{Type: models.KindBlob.PulpType, ID: b.ID})
	}
	return out
}

// change makes a new version inside a transaction, as the tasks do, and returns its number or
// -1 when no version was made.
func (f *repoFixture) change(add, remove []models.ContentRef) int64 {
	f.t.Helper()
	var n int64 = -1
	err := f.db.Transaction(func(tx *gorm.DB) error {
		v, err := models.NewVersion(tx, f.repo, add, remove)
		if v != nil {
			n = v.Number
		}
		return err
	})
	if err != nil {
		f.t.Fatalf("new version: %v", err)
	}
	return n
}

// versions returns the numbers of the repository's versions, ascending.
func (f *repoFixture) versions() []int64 {
	f.t.Helper()
	var nums []int64
	if err := f.db.Model(&models.RepositoryVersion{}).Where("repository_id = ?", f.repo.ID).Order("number").Pluck("number", &nums).Error; err != nil {
		f.t.Fatal(err)
	}
	return nums
}

// present returns the names of the content in version n, sorted.
func (f *repoFixture) present(n int64) []string {
	f.t.Helper()
	var ids []string
	if err := models.PresentIn(f.db.Model(&models.RepositoryContent{}), f.repo.ID, n).Pluck("content_id", &ids).Error; err != nil {
		f.t.Fatal(err)
	}
	out := []string{}
	for _, id := range ids {
		out = append(out, f.names[id])
	}
	sort.Strings(out)
	return out
}

// latest reloads the repository and returns its latest version number.
func (f *repoFixture) latest() int64 {
	f.t.Helper()
	r, err := models.GetRepository(f.db, models.KindContainerRepository, f.repo.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return r.LatestNumber
}

func (f *repoFixture) deleteVersion(n int64) error {
	return f.db.Transaction(func(tx *gorm.DB) error { return models.DeleteVersion(tx, f.repo, n) })
}

func (f *repoFixture) serialize(n int64) map[string]any {
	f.t.Helper()
	v, err := models.GetVersion(f.db, f.repo, n)
	if err != nil {
		f.t.Fatal(err)
	}
	m, err := models.SerializeVersion(f.db, f.repo, v)
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func eqList[T any](t *testing.T, what string, got, want []T) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestRepositoryVersions(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		f := newRepo(t, db, "r", nil)
		eqList(t, "versions", f.versions(), []int64{0})
		refs := f.blobs("a", "b", "c", "d")
		a, b, c, d := refs[0:1], refs[1:2], refs[2:3], refs[3:4]

		if n := f.change(refs[0:2], nil); n != 1 {
			t.Fatalf("adding a, b made version %d, want 1", n)
		}
		eqList(t, "versions", f.versions(), []int64{0, 1})
		eqList(t, "content of 1", f.present(1), []string{"a", "b"})
		eqList(t, "content of 0", f.present(0), nil)
		if f.latest() != 1 || f.repo.LatestNumber != 1 {
			t.Errorf("latest %d (in memory %d), want 1", f.latest(), f.repo.LatestNumber)
		}

		t.Run("no-op changes make no version", func(t *testing.T) {
			for _, ch := range []struct{ add, remove []models.ContentRef }{{a, nil}, {nil, nil}, {nil, c}, {refs[0:2], c}} {
				if n := f.change(ch.add, ch.remove); n != -1 {
					t.Errorf("no-op change made version %d", n)
				}
			}
			eqList(t, "versions", f.versions(), []int64{0, 1})
			if f.latest() != 1 {
				t.Errorf("latest %d", f.latest())
			}
		})

		if n := f.change(c, a); n != 2 {
			t.Fatalf("add c, remove a made version %d, want 2", n)
		}
		eqList(t, "versions", f.versions(), []int64{0, 1, 2})
		eqList(t, "content of 2", f.present(2), []string{"b", "c"})
		eqList(t, "content of 1", f.present(1), []string{"a", "b"})

		t.Run("content_summary", func(t *testing.T) {
			m := f.serialize(2)
			h := f.repo.VersionHref(2)
			const blobs = "/pulp/api/v3/content/container/blobs/"
			jsonEq(t, m["content_summary"], `{
				"added": {"container.blob": {"count": 1, "href": "`+blobs+`?repository_version_added=`+h+`"}},
				"removed": {"container.blob": {"count": 1, "href": "`+blobs+`?repository_version_removed=`+h+`"}},
				"present": {"container.blob": {"count": 2, "href": "`+blobs+`?repository_version=`+h+`"}}}`)
			if m["pulp_href"] != h || m["number"] != int64(2) || m["base_version"] != f.repo.VersionHref(1) || m["repository"] != f.repo.Href() {
				t.Errorf("version 2: %v", m)
			}
			jsonEq(t, f.serialize(0)["content_summary"], `{"added": {}, "removed": {}, "present": {}}`)
		})

		t.Run("deleting a middle version keeps later content", func(t *testing.T) {
			if err := f.deleteVersion(1); err != nil {
				t.Fatal(err)
			}
			eqList(t, "versions", f.versions(), []int64{0, 2})
			eqList(t, "content of 2", f.present(2), []string{"b", "c"})
			eqList(t, "content of 0", f.present(0), nil)
			m := f.serialize(2)
			if m["base_version"] != f.repo.VersionHref(0) {
				t.Errorf("base_version %v", m["base_version"])
			}
			h := f.repo.VersionHref(2)
			jsonEq(t, m["content_summary"], `{
				"added": {"container.blob": {"count": 2, "href": "/pulp/api/v3/content/container/blobs/?repository_version_added=`+h+`"}},
				"removed": {},
				"present": {"container.blob": {"count": 2, "href": "/pulp/api/v3/content/container/blobs/?repository_version=`+h+`"}}}`)
		})

		t.Run("deleting the latest version", func(t *testing.T) {
			n := f.change(d, nil)
			eqList(t, "content", f.present(n), []string{"b", "c", "d"})
			if err := f.deleteVersion(n); err != nil {
				t.Fatal(err)
			}
			eqList(t, "versions", f.versions(), []int64{0, 2})
			if f.latest() != 2 {
				t.Errorf("latest %d, want 2", f.latest())
			}
			eqList(t, "content of 2", f.present(2), []string{"b", "c"})
			if n := f.change(b, nil); n != -1 {
				t.Errorf("re-adding b made version %d", n)
			}
		})

		t.Run("the only version cannot be deleted", func(t *testing.T) {
			g := newRepo(t, db, "single", nil)
			if err := g.deleteVersion(0); !errors.Is(err, models.ErrOnlyVersion) {
				t.Errorf("deleting the only version: %v, want %v", err, models.ErrOnlyVersion)
			}
			eqList(t, "versions", g.versions(), []int64{0})
		})

		t.Run("a pinned version cannot be deleted", func(t *testing.T) {
			v, err := models.GetVersion(db, f.repo, 0)
			if err != nil {
				t.Fatal(err)
			}
			now := models.Now()
			dist := &models.Distribution{ID: models.NewID(), PulpType: models.KindContainerDistribution.PulpType, Name: "pin",
				BasePath: "pin", RepositoryVersionID: &v.ID, PulpCreated: now, PulpLastUpdated: now}
			if err := db.Create(dist).Error; err != nil {
				t.Fatal(err)
			}
			if err := f.deleteVersion(0); err == nil {
				t.Error("deleted a version a distribution serves")
			}
			eqList(t, "versions", f.versions(), []int64{0, 2})
		})
	})
}

func TestRetainRepoVersions(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		one := int64(1)
		f := newRepo(t, db, "cache", &one)
		refs := f.blobs("a", "b", "c")
		for i := range refs {
			if n := f.change(refs[i:i+1], nil); n != int64(i+1) {
				t.Fatalf("change %d made version %d", i, n)
			}
			eqList(t, "versions", f.versions(), []int64{int64(i + 1)})
		}
		eqList(t, "content of 3", f.present(3), []string{"a", "b", "c"})
		m := f.serialize(3)
		if m["base_version"] != nil {
			t.Errorf("base_version %v, want nil", m["base_version"])
		}
		h := f.repo.VersionHref(3)
		jsonEq(t, m["content_summary"], `{
			"added": {"container.blob": {"count": 3, "href": "/pulp/api/v3/content/container/blobs/?repository_version_added=`+h+`"}},
			"removed": {},
			"present": {"container.blob": {"count": 3, "href": "/pulp/api/v3/content/container/blobs/?repository_version=`+h+`"}}}`)

		if n := f.change(nil, refs[0:1]); n != 4 {
			t.Fatalf("removing a made version %d", n)
		}
		eqList(t, "versions", f.versions(), []int64{4})
		eqList(t, "content of 4", f.present(4), []string{"b", "c"})

		two := int64(2)
		g := newRepo(t, db, "two", &two)
		refs = g.blobs("x", "y", "z")
		for i := range refs {
			g.change(refs[i:i+1], nil)
		}
		eqList(t, "versions", g.versions(), []int64{2, 3})
		eqList(t, "content of 2", g.present(2), []string{"x", "y"})
		eqList(t, "content of 3", g.present(3), []string{"x", "y", "z"})
	})
}

func TestContentSummaryTypes(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		f := newRepo(t, db, "r", nil)
		cfg := blob(t, db, "config")
		layer := blob(t, db, "layer")
		mf, err := models.GetOrCreateManifest(db, &models.Manifest{Digest: digest("manifest"), MediaType: models.MediaTypeOCIManifest,
			SchemaVersion: 2, ConfigBlobID: &cfg.ID}, []string{layer.ID}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tag, err := models.GetOrCreateTag(db, "latest", mf.ID)
		if err != nil {
			t.Fatal(err)
		}
		n := f.change([]models.ContentRef{{Type: models.KindBlob.PulpType, ID: cfg.ID}, {Type: models.KindBlob.PulpType, ID: layer.ID},
			{Type: models.KindManifest.PulpType, ID: mf.ID}, {Type: models.KindTag.PulpType, ID: tag.ID}}, nil)
		h := f.repo.VersionHref(n)
		sum := func(param string, blobs int) string {
			return `{"container.blob": {"count": ` + map[int]string{2: "2"}[blobs] + `, "href": "/pulp/api/v3/content/container/blobs/?` + param + `=` + h + `"},
				"container.manifest": {"count": 1, "href": "/pulp/api/v3/content/container/manifests/?` + param + `=` + h + `"},
				"container.tag": {"count": 1, "href": "/pulp/api/v3/content/container/tags/?` + param + `=` + h + `"}}`
		}
		jsonEq(t, f.serialize(n)["content_summary"], `{"added": `+sum("repository_version_added", 2)+`, "removed": {}, "present": `+
			sum("repository_version", 2)+`}`)
	})
}

// TestVersionNumbersNotReused checks that a version made after the latest one was deleted gets
// a new number, as Pulp's next_version does.
func TestVersionNumbersNotReused(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		f := newRepo(t, db, "numbers", nil)
		if n := f.change(f.blobs("a"), nil); n != 1 {
			t.Fatalf("first version %d, want 1", n)
		}
		if err := f.deleteVersion(1); err != nil {
			t.Fatal(err)
		}
		if n := f.change(f.blobs("b"), nil); n != 2 {
			t.Fatalf("version after deleting the latest: %d, want 2 (numbers are not reused)", n)
		}
		if got := f.present(2); !reflect.DeepEqual(got, []string{"b"}) {
			t.Fatalf("version 2 holds %v, want [b]", got)
		}
	})
}
