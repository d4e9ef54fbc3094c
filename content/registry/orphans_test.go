package registry

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/inuse"
	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/tasks"
)

// TestOrphanCleanupKeepsBlobsBeingRead: a blob whose repository is deleted while a client
// is reading it is an orphan, but an orphan cleanup with no protection time keeps its row and
// its bytes until the read ends; the next cleanup removes them.
func TestOrphanCleanupKeepsBlobsBeingRead(t *testing.T) {
	f := newFixture(t)
	uses := inuse.New(nil, nil)
	t.Cleanup(uses.Close)
	srv := f.serve(t, Config{Uses: uses})

	// A blob larger than the socket buffers, so that the server blocks on a client that
	// stops reading.
	big := make([]byte, 32<<20)
	for i := range big {
		big[i] = byte(i * 31)
	}
	b := f.blob(t, big, "application/octet-stream", true)
	repo := &models.Repository{PulpType: models.KindContainerRepository.PulpType, Name: "big"}
	if err := models.CreateRepository(f.db, repo); err != nil {
		t.Fatal(err)
	}
	if err := f.db.Transaction(func(tx *gorm.DB) error {
		_, err := models.NewVersion(tx, repo, []models.ContentRef{{Type: models.KindBlob.PulpType, ID: b.ID}}, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	f.dist(t, models.Distribution{BasePath: "big", RepositoryID: &repo.ID})

	resp, err := http.Get(srv.URL + "/v2/big/blobs/" + b.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET blob: %d", resp.StatusCode)
	}
	body := bufio.NewReader(resp.Body)
	if _, err := body.Peek(1); err != nil {
		t.Fatal(err)
	}
	if err := f.db.Transaction(func(tx *gorm.DB) error { return models.DeleteRepository(tx, repo.ID) }); err != nil {
		t.Fatal(err)
	}

	cleanup := tasks.OrphanCleanupJob(f.store, uses)
	run := func() {
		t.Helper()
		args, _ := json.Marshal(tasks.OrphanArgs{OrphanProtectionTime: 0})
		task := &models.Task{ID: models.NewID(), Args: args}
		if _, _, err := cleanup(context.Background(), f.db, task); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := storage.BlobPath(b.Digest)
	present := func() (row, bytes bool) {
		var n int64
		f.db.Model(&models.Blob{}).Where("id = ?", b.ID).Count(&n)
		_, err := f.store.Stat(context.Background(), p)
		return n > 0, err == nil
	}

	run()
	if row, stored := present(); !row || !stored {
		t.Fatalf("blob being read: row %v, bytes %v after a cleanup", row, stored)
	}
	h := sha256.New()
	if _, err := io.Copy(h, body); err != nil {
		t.Fatal(err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != b.Digest || got != oci.Digest(big) {
		t.Fatalf("client read %s, want %s", got, b.Digest)
	}
	resp.Body.Close()
	// The handler returns (and releases its hold) just after the last byte went out.
	deadline := time.Now().Add(10 * time.Second)
	for {
		held, err := uses.Held(context.Background(), []string{b.Digest})
		if err != nil {
			t.Fatal(err)
		}
		if !held[b.Digest] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the blob is still held after its read ended")
		}
		time.Sleep(5 * time.Millisecond)
	}
	run()
	if row, stored := present(); row || stored {
		t.Fatalf("orphan blob no longer read: row %v, bytes %v after a cleanup", row, stored)
	}
}
