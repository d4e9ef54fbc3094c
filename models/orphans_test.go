package models_test

import (
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

// TestTimestampOfInterest: content met again (recorded, synced, served) counts as used from
// that moment, so an orphan cleanup's protection time starts again.
func TestTimestampOfInterest(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		b := blob(t, db, "layer")
		mf, err := models.GetOrCreateManifest(db, &models.Manifest{Digest: digest("m"), MediaType: models.MediaTypeOCIManifest}, []string{b.ID}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := models.GetOrCreateTag(db, "latest", mf.ID); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-48 * time.Hour)
		for _, table := range []string{"blobs", "manifests", "tags"} {
			if err := db.Table(table).Where("1 = 1").Update("timestamp_of_interest", old).Error; err != nil {
				t.Fatal(err)
			}
		}
		orphans := func() int64 {
			t.Helper()
			n, err := models.CountOrphans(db, models.OrphanScope{Expiration: models.OrphanExpiration(models.Now(), 60)})
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := orphans(); n != 3 {
			t.Fatalf("%d orphans older than an hour, want 3", n)
		}
		blob(t, db, "layer")
		if _, err := models.GetOrCreateManifest(db, &models.Manifest{Digest: digest("m")}, nil, nil); err != nil {
			t.Fatal(err)
		}
		if n := orphans(); n != 1 {
			t.Fatalf("%d orphans after the blob and the manifest were met again, want 1 (the tag)", n)
		}
		if _, err := models.GetOrCreateTag(db, "latest", mf.ID); err != nil {
			t.Fatal(err)
		}
		if n := orphans(); n != 0 {
			t.Fatalf("%d orphans after the tag was met again", n)
		}

		// Serving touches at most once a minute.
		if err := db.Table("blobs").Where("id = ?", b.ID).Update("timestamp_of_interest", old).Error; err != nil {
			t.Fatal(err)
		}
		if err := models.TouchDigest(db, b.Digest); err != nil {
			t.Fatal(err)
		}
		var got models.Blob
		if err := db.Take(&got, "id = ?", b.ID).Error; err != nil {
			t.Fatal(err)
		}
		if got.TimestampOfInterest == nil || time.Since(*got.TimestampOfInterest) > time.Minute {
			t.Errorf("timestamp of interest %v after TouchDigest", got.TimestampOfInterest)
		}
	})
}

// TestDeleteOrphansKeepsWhatVersionsNeed: units in a version stay, and so do orphans that a
// kept unit needs; held digests stay too.
func TestDeleteOrphansKeepsWhatVersionsNeed(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		cfg, layer, lone, held := blob(t, db, "cfg"), blob(t, db, "layer"), blob(t, db, "lone"), blob(t, db, "held")
		mf, err := models.GetOrCreateManifest(db, &models.Manifest{Digest: digest("m"), MediaType: models.MediaTypeOCIManifest, ConfigBlobID: &cfg.ID}, []string{layer.ID}, nil)
		if err != nil {
			t.Fatal(err)
		}
		repo := &models.Repository{PulpType: models.KindContainerRepository.PulpType, Name: "r"}
		if err := models.CreateRepository(db, repo); err != nil {
			t.Fatal(err)
		}
		if err := db.Transaction(func(tx *gorm.DB) error {
			_, err := models.NewVersion(tx, repo, []models.ContentRef{{Type: models.KindManifest.PulpType, ID: mf.ID}}, nil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		// cfg and layer are in no version, but the manifest in version 1 needs them.
		res, err := models.DeleteOrphans(db, models.OrphanScope{Expiration: time.Now().Add(time.Second)},
			func(d []string) (map[string]bool, error) { return map[string]bool{held.Digest: true}, nil })
		if err != nil {
			t.Fatal(err)
		}
		if res.Deleted != 1 || len(res.Digests) != 1 || res.Digests[0] != lone.Digest {
			t.Fatalf("deleted %+v, want only the lone blob", res)
		}
		var n int64
		db.Model(&models.Blob{}).Count(&n)
		if n != 3 {
			t.Errorf("%d blobs left, want cfg, layer and the held one", n)
		}
		left, err := models.UnreferencedDigests(db, []string{lone.Digest, cfg.Digest, mf.Digest})
		if err != nil || len(left) != 1 || left[0] != lone.Digest {
			t.Errorf("unreferenced %v, %v", left, err)
		}
	})
}
