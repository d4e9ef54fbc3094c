package models_test

import (
	"encoding/json"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

// syncTo makes the version of a sync of add (mirror or additive) and returns its number (-1
// for none) and the counts.
func (f *repoFixture) syncTo(add []models.ContentRef, mirror bool) (int64, models.SyncChange) {
	f.t.Helper()
	var n int64 = -1
	var ch models.SyncChange
	err := f.db.Transaction(func(tx *gorm.DB) error {
		v, c, err := models.SyncVersion(tx, f.repo, add, mirror)
		if v != nil {
			n = v.Number
		}
		ch = c
		return err
	})
	if err != nil {
		f.t.Fatalf("sync version: %v", err)
	}
	return n, ch
}

// tag stores a manifest named m (once) and a tag name on it, and returns the tag's ref.
func (f *repoFixture) tag(name, m string) models.ContentRef {
	f.t.Helper()
	mf, err := models.GetOrCreateManifest(f.db, &models.Manifest{Digest: digest(m), MediaType: models.MediaTypeOCIManifest}, nil, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	tg, err := models.GetOrCreateTag(f.db, name, mf.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	f.names[tg.ID] = name + "→" + m
	f.names[mf.ID] = m
	return models.ContentRef{Type: models.KindTag.PulpType, ID: tg.ID}
}

func manifestRef(t *testing.T, db *gorm.DB, m string) models.ContentRef {
	t.Helper()
	var mf models.Manifest
	if err := db.Take(&mf, "digest = ?", digest(m)).Error; err != nil {
		t.Fatal(err)
	}
	return models.ContentRef{Type: models.KindManifest.PulpType, ID: mf.ID}
}

// TestSyncVersion checks the versions syncs make: additive syncs keep what the upstream
// dropped and replace a moved tag; mirror syncs keep exactly what they found; unchanged syncs
// make no version.
func TestSyncVersion(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		f := newRepo(t, db, "synced", nil)
		a, b := f.tag("a", "m1"), f.tag("b", "m2")
		m1, m2 := manifestRef(t, db, "m1"), manifestRef(t, db, "m2")
		l := f.blobs("layer")
		first := []models.ContentRef{a, m1, b, m2, l[0]}
		if n, ch := f.syncTo(first, false); n != 1 || ch.Added != 5 || ch.Removed != 0 {
			t.Fatalf("first sync: version %d %+v, want 1 with 5 added", n, ch)
		}
		if n, _ := f.syncTo(first, false); n != -1 {
			t.Errorf("unchanged additive sync made version %d", n)
		}
		if n, _ := f.syncTo(first, true); n != -1 {
			t.Errorf("unchanged mirror sync made version %d", n)
		}
		held, err := models.TagDigestsInVersion(db, f.repo, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(held) != 2 || held["a"] != digest("m1") || held["b"] != digest("m2") {
			t.Errorf("tag digests of version 1: %v", held)
		}

		// "a" moves to m3, "b" is gone upstream: additive keeps b and replaces a.
		a3 := f.tag("a", "m3")
		m3 := manifestRef(t, db, "m3")
		if n, ch := f.syncTo([]models.ContentRef{a3, m3, l[0]}, false); n != 2 || ch.Added != 2 || ch.Removed != 1 {
			t.Fatalf("additive sync: version %d %+v, want 2 with 2 added, 1 removed", n, ch)
		}
		eqList(t, "content of 2", f.present(2), []string{"a→m3", "b→m2", "layer", "m1", "m2", "m3"})
		// Mirror: only what was found.
		if n, ch := f.syncTo([]models.ContentRef{a3, m3}, true); n != 3 || ch.Added != 0 || ch.Removed != 4 {
			t.Fatalf("mirror sync: version %d %+v, want 3 with 4 removed", n, ch)
		}
		eqList(t, "content of 3", f.present(3), []string{"a→m3", "m3"})
	})
}

// TestProgress checks that progress reports reach the task row while it runs, in Pulp's
// shape, and that Fail marks the running ones failed.
func TestProgress(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		task, err := models.CreateTask(db, models.NewTask{Name: "sync", Args: map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		reports := func() []map[string]any {
			t.Helper()
			got, err := models.GetTask(db, task.ID)
			if err != nil {
				t.Fatal(err)
			}
			var out []map[string]any
			if err := json.Unmarshal(got.ProgressReports, &out); err != nil {
				t.Fatalf("progress_reports %s: %v", got.ProgressReports, err)
			}
			return out
		}
		p := models.NewProgress(db, task.ID)
		one := int64(1)
		bar := p.Bar("Downloading tag list", "sync.downloading.tag_list", &one)
		jsonEq(t, reports(), `[{"message":"Downloading tag list","code":"sync.downloading.tag_list","state":"running","total":1,"done":0,"suffix":null}]`)
		bar.Add(1)
		bar.Finish()
		jsonEq(t, reports(), `[{"message":"Downloading tag list","code":"sync.downloading.tag_list","state":"completed","total":1,"done":1,"suffix":null}]`)

		art := p.Bar("Downloading Artifacts", "sync.downloading.artifacts", nil)
		// Counts are written at most every 200 ms: one keeps counting until the row shows the
		// count (a writer that never flushes counts fails at the deadline).
		var n int64
		for deadline := time.Now().Add(10 * time.Second); ; {
			art.Add(1)
			n++
			if reports()[1]["done"] == float64(n) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %d increments over 10 s the row shows %v", n, reports()[1])
			}
		}
		p.Fail()
		r := reports()
		if r[0]["state"] != "completed" || r[1]["state"] != "failed" {
			t.Errorf("after Fail: %v", r)
		}
	})
}
