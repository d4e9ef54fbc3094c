package models_test

import (
	"fmt"
	"testing"

	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/tmpfs"
)

// TestSQLiteFullDiskIsUnavailable runs the embedded database on a small tmpfs and fills the
// disk: writes fail with an error models.IsUnavailable recognises (SQLITE_FULL, answered 503),
// reads go on, and once the space is back writes succeed and the database passes SQLite's
// integrity check with every row written before the disk filled.
func TestSQLiteFullDiskIsUnavailable(t *testing.T) {
	dir := tmpfs.Mount(t, 16)
	db, err := models.Open("", dir)
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := db.DB()
	t.Cleanup(func() { _ = sqlDB.Close() })
	if err := models.Migrate(db); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := models.GetOrCreateBlob(db, &models.Blob{Digest: digest(fmt.Sprint("before", i)), Size: 1}); err != nil {
			t.Fatal(err)
		}
	}

	filler := tmpfs.Fill(t, dir, 0)
	var werr error
	// The WAL may hold a page or two more: write until a write fails (a few at most).
	for i := range 1000 {
		if _, werr = models.GetOrCreateBlob(db, &models.Blob{Digest: digest(fmt.Sprint("full", i)), Size: 1}); werr != nil {
			break
		}
	}
	if werr == nil {
		t.Fatal("1000 writes succeeded on a full disk")
	}
	if !models.IsUnavailable(werr) {
		t.Errorf("write on a full disk failed with %v (%T), which IsUnavailable does not recognise", werr, werr)
	}
	var n int64
	if err := db.Model(&models.Blob{}).Count(&n).Error; err != nil {
		t.Errorf("read on a full disk: %v", err)
	}

	filler.Remove(t)
	if _, err := models.GetOrCreateBlob(db, &models.Blob{Digest: digest("after"), Size: 1}); err != nil {
		t.Fatalf("write after the space came back: %v", err)
	}
	var check string
	if err := db.Raw("PRAGMA integrity_check").Scan(&check).Error; err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v", check, err)
	}
	for i := range 20 {
		var b models.Blob
		if err := db.Where("digest = ?", digest(fmt.Sprint("before", i))).First(&b).Error; err != nil {
			t.Errorf("blob written before the disk filled: %v", err)
		}
	}
}
