package models_test

import (
	"fmt"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

// TestBatchContent: the batch forms of GetOrCreateBlob, GetOrCreateManifest and
// GetOrCreateTag keep what exists (same ids, touched), create the rest once however often it
// is named, and span more rows than one statement takes.
func TestBatchContent(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		old := blob(t, db, "old")
		if err := db.Table("blobs").Where("id = ?", old.ID).Update("timestamp_of_interest", time.Now().Add(-48*time.Hour)).Error; err != nil {
			t.Fatal(err)
		}
		var blobs []models.Blob
		for i := range 1200 {
			blobs = append(blobs, models.Blob{Digest: digest(fmt.Sprint("b", i)), Size: int64(i)})
		}
		blobs = append(blobs, models.Blob{Digest: old.Digest}, models.Blob{Digest: digest("b7")})
		ids, err := models.GetOrCreateBlobs(db, blobs)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1201 || ids[old.Digest] != old.ID {
			t.Fatalf("%d ids (want 1201), old blob %q (want %q)", len(ids), ids[old.Digest], old.ID)
		}
		var n int64
		db.Model(&models.Blob{}).Count(&n)
		if n != 1201 {
			t.Fatalf("%d blob rows, want 1201", n)
		}
		var touched models.Blob
		db.Take(&touched, "id = ?", old.ID)
		if touched.TimestampOfInterest == nil || time.Since(*touched.TimestampOfInterest) > time.Hour {
			t.Fatalf("existing blob not touched: %v", touched.TimestampOfInterest)
		}

		// One manifest exists already (with its own links), 300 are new.
		existing, err := models.GetOrCreateManifest(db, &models.Manifest{Digest: digest("m0"), MediaType: models.MediaTypeOCIManifest},
			[]string{ids[digest("b0")]}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ms []models.NewImageManifest
		for i := range 301 {
			ms = append(ms, models.NewImageManifest{
				Row:     models.Manifest{Digest: digest(fmt.Sprint("m", i)), MediaType: models.MediaTypeOCIManifest},
				BlobIDs: []string{ids[digest(fmt.Sprint("b", i))], ids[digest(fmt.Sprint("b", i+1))]},
			})
		}
		mids, err := models.CreateImageManifests(db, ms)
		if err != nil {
			t.Fatal(err)
		}
		if len(mids) != 301 || mids[digest("m0")] != existing.ID {
			t.Fatalf("%d manifest ids (want 301), existing %q (want %q)", len(mids), mids[digest("m0")], existing.ID)
		}
		var links []models.ManifestBlob
		db.Where("manifest_id = ?", existing.ID).Find(&links)
		if len(links) != 1 {
			t.Fatalf("the existing manifest has %d blob links, want its own 1", len(links))
		}
		db.Where("manifest_id = ?", mids[digest("m300")]).Find(&links)
		if len(links) != 2 {
			t.Fatalf("a new manifest has %d blob links, want 2", len(links))
		}

		first, err := models.GetOrCreateTag(db, "latest", existing.ID)
		if err != nil {
			t.Fatal(err)
		}
		keys := []models.TagKey{{Name: "latest", ManifestID: existing.ID}, {Name: "latest", ManifestID: mids[digest("m1")]},
			{Name: "v1", ManifestID: existing.ID}, {Name: "v1", ManifestID: existing.ID}}
		tags, err := models.GetOrCreateTags(db, keys)
		if err != nil {
			t.Fatal(err)
		}
		if len(tags) != 3 || tags[keys[0]] != first.ID || tags[keys[1]] == "" || tags[keys[2]] == "" {
			t.Fatalf("tags %v, want 3 with latest→%s kept", tags, first.ID)
		}
		db.Model(&models.Tag{}).Count(&n)
		if n != 3 {
			t.Fatalf("%d tag rows, want 3", n)
		}
	})
}

// TestNewVersionAddsOnce: content named twice in one change, or already present, is added
// once; what is removed and added back in the same change stays.
func TestNewVersionAddsOnce(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		f := newRepo(t, db, "once", nil)
		a, b := blob(t, db, "a"), blob(t, db, "b")
		ref := func(x *models.Blob) models.ContentRef {
			return models.ContentRef{Type: models.KindBlob.PulpType, ID: x.ID}
		}
		v, err := models.NewVersion(db, f.repo, []models.ContentRef{ref(a), ref(a)}, nil)
		if err != nil || v == nil {
			t.Fatalf("version 1: %v, %v", v, err)
		}
		if v, err := models.NewVersion(db, f.repo, []models.ContentRef{ref(a)}, nil); err != nil || v != nil {
			t.Fatalf("adding what is there made version %v (%v)", v, err)
		}
		v, err = models.NewVersion(db, f.repo, []models.ContentRef{ref(a), ref(b), ref(b)}, []models.ContentRef{ref(a)})
		if err != nil || v == nil {
			t.Fatalf("version 2: %v, %v", v, err)
		}
		var rows []models.RepositoryContent
		models.PresentIn(db.Model(&models.RepositoryContent{}), f.repo.ID, f.repo.LatestNumber).Find(&rows)
		got := map[string]int{}
		for _, r := range rows {
			got[r.ContentID]++
		}
		if len(rows) != 2 || got[a.ID] != 1 || got[b.ID] != 1 {
			t.Fatalf("version 2 holds %v, want a and b once each", got)
		}
	})
}
