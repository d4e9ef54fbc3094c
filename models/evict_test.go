package models_test

import (
	"slices"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

// TestEvictionCandidates: only images at the top of pull-through repositories' latest
// versions are candidates (not an ordinary repository's, not the manifests an index lists),
// least recently pulled first, an image never pulled by when it was recorded; repoIDs and
// skip narrow them; ImageBytes sums what the image stores.
func TestEvictionCandidates(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		one := int64(1)
		cache := newRepo(t, db, "cache/a", &one)
		if err := db.Model(cache.repo).Update("pull_through", true).Error; err != nil {
			t.Fatal(err)
		}
		cache.repo.PullThrough = true
		other := newRepo(t, db, "cache/b", &one)
		if err := db.Model(other.repo).Update("pull_through", true).Error; err != nil {
			t.Fatal(err)
		}
		other.repo.PullThrough = true
		ordinary := newRepo(t, db, "team/app", nil)

		image := func(name string, layers ...string) *models.Manifest {
			t.Helper()
			var ids []string
			for _, l := range layers {
				ids = append(ids, blob(t, db, l).ID)
			}
			m, err := models.GetOrCreateManifest(db, &models.Manifest{Digest: digest(name), MediaType: models.MediaTypeOCIManifest, Size: 100}, ids, nil)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		old, recent, never := image("old", "l1"), image("recent", "l2"), image("never", "l3")
		child := image("child", "l4")
		index, err := models.GetOrCreateManifest(db, &models.Manifest{Digest: digest("index"), MediaType: models.MediaTypeOCIIndex, Size: 50},
			nil, []models.ManifestListManifest{{ManifestID: child.ID}})
		if err != nil {
			t.Fatal(err)
		}
		ordinaryImage := image("ordinary", "l5")
		add := func(f *repoFixture, ms ...*models.Manifest) {
			t.Helper()
			var ids []string
			for _, m := range ms {
				ids = append(ids, m.ID)
			}
			if err := db.Transaction(func(tx *gorm.DB) error {
				_, err := models.RecursiveAdd(tx, f.repo, ids)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		add(cache, old, recent, never)
		add(other, index)
		add(ordinary, ordinaryImage, old)

		base := models.Now().Add(-time.Hour)
		// "never" was recorded two hours ago and not pulled since; the index 30 minutes ago.
		if err := db.Model(&models.Manifest{}).Where("id = ?", never.ID).Update("timestamp_of_interest", base.Add(-time.Hour)).Error; err != nil {
			t.Fatal(err)
		}
		if err := models.RecordLastPulls(db, map[string]time.Time{old.Digest: base, recent.Digest: base.Add(50 * time.Minute),
			index.Digest: base.Add(30 * time.Minute), child.Digest: base.Add(-5 * time.Hour), ordinaryImage.Digest: base.Add(-9 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		digests := func(cs []models.EvictionCandidate) []string {
			var out []string
			for _, c := range cs {
				out = append(out, c.Digest)
			}
			return out
		}
		want := []string{never.Digest, old.Digest, index.Digest, recent.Digest}
		got, err := models.EvictionCandidates(db, nil, nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(digests(got), want) {
			t.Fatalf("candidates %v, want %v (never, old, index, recent)", digests(got), want)
		}
		if !got[1].LastPulled.Equal(base) || got[1].RepositoryID != cache.repo.ID {
			t.Errorf("candidate %s: %+v, want last pulled %s in %s", old.Digest, got[1], base, cache.repo.ID)
		}
		if got, err = models.EvictionCandidates(db, []string{cache.repo.ID}, []string{never.ID}, 1); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(digests(got), []string{old.Digest}) {
			t.Errorf("candidates of %s but %s, one: %v, want [%s]", cache.repo.Name, never.Digest, digests(got), old.Digest)
		}
		if got, err = models.EvictionCandidates(db, []string{}, nil, 10); err != nil || len(got) != 0 {
			t.Errorf("no repositories: %v, %v", got, err)
		}

		units, err := models.ImageUnits(db, other.repo, other.repo.LatestNumber, index.ID)
		if err != nil {
			t.Fatal(err)
		}
		n, err := models.ImageBytes(db, units)
		if err != nil {
			t.Fatal(err)
		}
		// The index (50), its child (100) and the child's layer ("l4": 2 bytes).
		if n != 152 {
			t.Errorf("bytes of the index image: %d, want 152 (units %v)", n, units)
		}
	})
}
