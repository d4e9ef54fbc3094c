package registry

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
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

// presigning is filesystem storage that makes (unusable) presigned URLs, for redirects.
type presigning struct{ *storage.Filesystem }

func (presigning) PresignGet(_ context.Context, p string, _ time.Duration) (string, error) {
	return "http://storage.invalid/" + p + "?signed", nil
}

// TestOrphanCleanupKeepsRedirectedBlobs: with --storage-redirect a client reads the blob from
// the storage after the GET has ended; the redirect leases the blob for the URL's lifetime,
// so an orphan cleanup with no protection time keeps a blob just redirected and removes an
// orphan nobody was sent to.
func TestOrphanCleanupKeepsRedirectedBlobs(t *testing.T) {
	f := newFixture(t)
	uses := inuse.New(nil, nil)
	t.Cleanup(uses.Close)
	reg, err := New(Config{DB: f.db, Storage: presigning{f.store}, AdminPassword: adminPassword, StorageRedirect: true,
		Uses: uses, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)

	sent := f.blob(t, []byte("redirected blob"), "application/octet-stream", true)
	other := f.blob(t, []byte("blob nobody asked for"), "application/octet-stream", true)
	repo := &models.Repository{PulpType: models.KindContainerRepository.PulpType, Name: "redirected"}
	if err := models.CreateRepository(f.db, repo); err != nil {
		t.Fatal(err)
	}
	if err := f.db.Transaction(func(tx *gorm.DB) error {
		_, err := models.NewVersion(tx, repo, []models.ContentRef{{Type: models.KindBlob.PulpType, ID: sent.ID}, {Type: models.KindBlob.PulpType, ID: other.ID}}, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	f.dist(t, models.Distribution{BasePath: "redirected", RepositoryID: &repo.ID})

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(srv.URL + "/v2/redirected/blobs/" + sent.Digest)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(resp.Header.Get("Location"), "http://storage.invalid/") {
		t.Fatalf("GET blob: %d Location %q, want a 307 to the storage", resp.StatusCode, resp.Header.Get("Location"))
	}
	if err := f.db.Transaction(func(tx *gorm.DB) error { return models.DeleteRepository(tx, repo.ID) }); err != nil {
		t.Fatal(err)
	}
	args, _ := json.Marshal(tasks.OrphanArgs{OrphanProtectionTime: 0})
	if _, _, err := tasks.OrphanCleanupJob(f.store, uses)(context.Background(), f.db, &models.Task{ID: models.NewID(), Args: args}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		b    *models.Blob
		kept bool
	}{{sent, true}, {other, false}} {
		var n int64
		f.db.Model(&models.Blob{}).Where("id = ?", c.b.ID).Count(&n)
		p, _ := storage.BlobPath(c.b.Digest)
		_, err := f.store.Stat(context.Background(), p)
		if (n > 0) != c.kept || (err == nil) != c.kept {
			t.Errorf("blob %s after the cleanup: row %v, bytes %v; want kept %v", c.b.Digest, n > 0, err == nil, c.kept)
		}
	}
}
