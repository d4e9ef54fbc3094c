package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
)

// image stores an image manifest with a config and one layer of content, with true sizes,
// and returns its digest and the bytes it stores.
func (e *recordEnv) image(t *testing.T, content string) (string, int64) {
	t.Helper()
	cfgRaw := []byte(`{"architecture":"amd64","os":"linux","c":"` + content + `"}`)
	cfg, layer := e.put(t, cfgRaw), e.put(t, []byte(content))
	raw, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeOCIManifest,
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": len(cfgRaw)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": len(content)}}})
	return e.put(t, raw), int64(len(raw) + len(cfgRaw) + len(content))
}

// TestEvictIndexImage: an index pulled less recently than a single image is evicted whole
// (the index, the manifests it lists, their configs and layers: rows and bytes), in one new
// version of the repository that keeps the other image; the task's result counts the bytes
// the storage measures as freed.
func TestEvictIndexImage(t *testing.T) {
	e := newRecordEnv(t)
	ctx := context.Background()
	amd, amdBytes := e.image(t, "amd64 layer")
	arm, armBytes := e.image(t, "arm64 layer, longer")
	var children []any
	for _, d := range []string{amd, arm} {
		var n int64
		if info, err := e.store.Stat(ctx, mustPath(t, d)); err == nil {
			n = info.Size
		}
		children = append(children, map[string]any{"mediaType": oci.MediaTypeOCIManifest, "digest": d, "size": n,
			"platform": map[string]any{"os": "linux", "architecture": "amd64"}})
	}
	indexRaw, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeOCIIndex, "manifests": children})
	index := e.put(t, indexRaw)
	single, singleBytes := e.image(t, "single")
	e.record(t, RecordItem{Digest: index, Tag: "multi"}, RecordItem{Digest: single, Tag: "s"})
	now := models.Now()
	if err := models.RecordLastPulls(e.db, map[string]time.Time{index: now.Add(-time.Hour), single: now}); err != nil {
		t.Fatal(err)
	}
	used, err := e.store.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	indexBytes := int64(len(indexRaw)) + amdBytes + armBytes
	if used != indexBytes+singleBytes {
		t.Fatalf("storage holds %d bytes, want %d", used, indexBytes+singleBytes)
	}
	// Above half the quota; down to just above the single image.
	ev := NewEviction(Quota{Bytes: used, High: 0.5, Low: float64(singleBytes+1) / float64(used)}, e.store, nil, nil, nil)
	args, _ := json.Marshal(EvictArgs{RepositoryIDs: []string{e.repo.ID}})
	task, err := models.CreateTask(e.db, models.NewTask{Name: NameEvict, Args: json.RawMessage(args)})
	if err != nil {
		t.Fatal(err)
	}
	created, result, err := ev.Job()(ctx, e.db, task)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.Take(&e.repo, "id = ?", e.repo.ID).Error; err != nil {
		t.Fatal(err)
	}
	if len(created) != 1 || created[0] != e.repo.VersionHref(e.repo.LatestNumber) {
		t.Errorf("created %v, want [%s]", created, e.repo.VersionHref(e.repo.LatestNumber))
	}
	res := result.(EvictResult)
	if res.Images != 1 || res.BytesFreed != indexBytes || res.UsedAfter != singleBytes {
		t.Errorf("result %+v, want 1 image, %d bytes freed, %d used after", res, indexBytes, singleBytes)
	}
	if s := ev.Stats(); s.ImagesEvicted != 1 || s.BytesFreed != indexBytes || s.Runs != 1 || s.UsedBytes != singleBytes {
		t.Errorf("stats %+v", s)
	}
	var digests []string
	if err := e.db.Model(&models.Manifest{}).Order("digest").Pluck("digest", &digests).Error; err != nil {
		t.Fatal(err)
	}
	if len(digests) != 1 || digests[0] != single {
		t.Errorf("manifests left %v, want [%s]", digests, single)
	}
	if n := len(e.latest(t)); n != 4 {
		t.Errorf("latest version holds %d units, want 4 (tag s, its manifest, config, layer)", n)
	}
	for _, d := range []string{index, amd, arm} {
		_, err := e.store.Stat(ctx, mustPath(t, d))
		var nf *storage.PathNotFoundError
		if !errors.As(err, &nf) {
			t.Errorf("%s: stat %v, want not found", d, err)
		}
	}
	if pulled, err := models.LastPulled(e.db, []string{index, single}); err != nil || len(pulled) != 1 {
		t.Errorf("pull times left %v (%v), want the single image's only", pulled, err)
	}
}

func mustPath(t *testing.T, digest string) string {
	t.Helper()
	p, err := storage.BlobPath(digest)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
