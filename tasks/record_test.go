package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// recordEnv is a repository in an SQLite database and a filesystem storage for RecordJob.
type recordEnv struct {
	db    *gorm.DB
	store *storage.Filesystem
	repo  models.Repository
}

func newRecordEnv(t *testing.T) *recordEnv {
	t.Helper()
	db := testenv.OpenDB(t, testenv.Embedded())
	store, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	e := &recordEnv{db: db, store: store}
	e.repo = models.Repository{PulpType: models.KindContainerRepository.PulpType, Name: "cache/img", PullThrough: true}
	if err := models.CreateRepository(db, &e.repo); err != nil {
		t.Fatal(err)
	}
	return e
}

// put stores b under its digest and returns the digest.
func (e *recordEnv) put(t *testing.T, b []byte) string {
	t.Helper()
	d := oci.Digest(b)
	p, err := storage.BlobPath(d)
	if err != nil {
		t.Fatal(err)
	}
	w, err := e.store.Writer(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

// manifest stores an image manifest with the given layers and returns its digest.
func (e *recordEnv) manifest(t *testing.T, layers ...string) string {
	t.Helper()
	cfg := e.put(t, []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","n":%d}`, len(layers))))
	var ls []map[string]any
	for _, l := range layers {
		ls = append(ls, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": l, "size": 1})
	}
	raw, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeOCIManifest,
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": 10},
		"layers": ls})
	return e.put(t, raw)
}

func (e *recordEnv) record(t *testing.T, items ...RecordItem) {
	t.Helper()
	args, _ := json.Marshal(RecordArgs{RepositoryID: e.repo.ID, Items: items})
	task := &models.Task{ID: models.NewID(), Args: models.JSON(args)}
	if _, _, err := RecordJob(e.store)(context.Background(), e.db, task); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Take(&e.repo, "id = ?", e.repo.ID).Error; err != nil {
		t.Fatal(err)
	}
}

// latest lists the content rows of the latest version, by content id.
func (e *recordEnv) latest(t *testing.T) []models.RepositoryContent {
	t.Helper()
	var rows []models.RepositoryContent
	if err := models.PresentIn(e.db.Model(&models.RepositoryContent{}), e.repo.ID, e.repo.LatestNumber).
		Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestRecordTagMovedWithinOneBatch checks that a tag pulled twice in one batch, pointing at a
// new manifest the second time, ends up once in the version, on the newer manifest.
func TestRecordTagMovedWithinOneBatch(t *testing.T) {
	e := newRecordEnv(t)
	layer := e.put(t, []byte("layer"))
	m1 := e.manifest(t, layer)
	m2 := e.manifest(t, layer, layer) // another config, so another digest
	if m1 == m2 {
		t.Fatal("manifests should differ")
	}
	e.record(t, RecordItem{Digest: m1, Tag: "latest"}, RecordItem{Digest: m2, Tag: "latest"})
	var tags []models.Tag
	members := models.PresentIn(e.db.Model(&models.RepositoryContent{}).Select("content_id"), e.repo.ID, e.repo.LatestNumber)
	if err := e.db.Where("id IN (?)", members).Find(&tags).Error; err != nil {
		t.Fatal(err)
	}
	if len(tags) != 1 {
		t.Fatalf("version %d has %d tags named latest, want 1", e.repo.LatestNumber, len(tags))
	}
	var m models.Manifest
	if err := e.db.Take(&m, "id = ?", tags[0].TaggedManifestID).Error; err != nil {
		t.Fatal(err)
	}
	if m.Digest != m2 {
		t.Fatalf("latest points at %s, want the newer %s", m.Digest, m2)
	}
}

// TestRecordRepeatedLayerOnce checks that a blob listed twice (a repeated layer, or a layer
// shared by two manifests of one batch) is one content unit of the version, not two rows.
func TestRecordRepeatedLayerOnce(t *testing.T) {
	e := newRecordEnv(t)
	layer := e.put(t, []byte("layer"))
	m1 := e.manifest(t, layer, layer)
	m2 := e.manifest(t, layer)
	e.record(t, RecordItem{Digest: m1, Tag: "a"}, RecordItem{Digest: m2, Tag: "b"})
	seen := map[string]int{}
	for _, rc := range e.latest(t) {
		seen[rc.ContentID]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("content %s is in version %d %d times, want once", id, e.repo.LatestNumber, n)
		}
	}
}

// TestRecordCapsAnnotations checks that a manifest's annotations are copied into the database
// only up to maxRecordedMap: an upstream's 3 MiB of annotations cost no 3 MiB row (issue 6,
// finding 6), while ordinary annotations are kept whole.
func TestRecordCapsAnnotations(t *testing.T) {
	e := newRecordEnv(t)
	cfg := e.put(t, []byte(`{"architecture":"amd64","os":"linux"}`))
	manifest := func(annotations map[string]string) string {
		raw, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeOCIManifest,
			"config":      map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": 10},
			"layers":      []any{},
			"annotations": annotations})
		return e.put(t, raw)
	}
	small := manifest(map[string]string{"org.opencontainers.image.title": "small"})
	big := manifest(map[string]string{"junk": strings.Repeat("x", 3<<20)})
	e.record(t, RecordItem{Digest: small, Tag: "small"}, RecordItem{Digest: big, Tag: "big"})
	var rows []models.Manifest
	if err := e.db.Where("digest IN ?", []string{small, big}).Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("recorded %d manifests, want 2", len(rows))
	}
	for _, m := range rows {
		switch {
		case m.Digest == small && !strings.Contains(string(m.Annotations), "small"):
			t.Errorf("small annotations not kept: %s", m.Annotations)
		case m.Digest == big && len(m.Annotations) > maxRecordedMap:
			t.Errorf("big annotations stored whole: %d bytes", len(m.Annotations))
		}
	}
}
