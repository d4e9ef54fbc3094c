package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
)

// NameDownloadImageData is Pulp's name of the task that records what a pull fetched.
const NameDownloadImageData = "pulp_container.app.tasks.download_image_data.download_image_data"

// RecordArgs are the arguments of download_image_data: manifests (stored byte for byte by the
// cache) and the tags they were pulled by.
type RecordArgs struct {
	RepositoryID string       `json:"repository_id"`
	Items        []RecordItem `json:"items"`
}

// RecordItem is one pulled manifest and its tag ("" when pulled by digest).
type RecordItem struct {
	Digest string `json:"digest"`
	Tag    string `json:"tag,omitempty"`
}

// RecordJob returns the download_image_data job: it turns pulled manifests into blob,
// manifest and tag content of one new version of the repository (layers are recorded from
// the manifest, whether or not their bytes have arrived yet).
func RecordJob(store storage.Driver) Job {
	return func(ctx context.Context, db *gorm.DB, t *models.Task) ([]string, any, error) {
		var a RecordArgs
		if err := json.Unmarshal(t.Args, &a); err != nil {
			return nil, nil, fmt.Errorf("decode arguments of task %s: %w", t.ID, err)
		}
		var created []string
		err := db.Transaction(func(tx *gorm.DB) error {
			var repo models.Repository
			if err := tx.Take(&repo, "id = ?", a.RepositoryID).Error; err != nil {
				return fmt.Errorf("repository %s: %w", a.RepositoryID, err)
			}
			r := newRecording(ctx, tx, store)
			var remove []models.ContentRef
			tagged := map[string]string{} // tag name → id of the tag added for it so far
			for _, it := range a.Items {
				id, err := r.manifest(it.Digest)
				if err != nil {
					return err
				}
				if it.Tag == "" {
					continue
				}
				tag, err := models.GetOrCreateTag(tx, it.Tag, id)
				if err != nil {
					return err
				}
				// A tag name appears once per version: the new tag replaces the old one, including
				// one added by an earlier item of this batch (the tag moved between two pulls).
				if prev, ok := tagged[it.Tag]; ok && prev != tag.ID {
					r.drop(prev)
				}
				tagged[it.Tag] = tag.ID
				r.addRef(models.ContentRef{Type: models.KindTag.PulpType, ID: tag.ID})
				var old []string
				members := models.PresentIn(tx.Model(&models.RepositoryContent{}).Select("content_id"), repo.ID, repo.LatestNumber)
				if err := tx.Model(&models.Tag{}).Where("name = ? AND id <> ? AND id IN (?)", it.Tag, tag.ID, members).
					Pluck("id", &old).Error; err != nil {
					return err
				}
				for _, o := range old {
					remove = append(remove, models.ContentRef{Type: models.KindTag.PulpType, ID: o})
				}
			}
			// Content this version keeps is not removed (a tag moved and moved back).
			remove = slices.DeleteFunc(remove, func(c models.ContentRef) bool { return r.added[c.ID] })
			v, err := models.NewVersion(tx, &repo, r.add, remove)
			if err != nil {
				return err
			}
			if v != nil {
				created = append(created, repo.VersionHref(v.Number))
			}
			return nil
		})
		return created, nil, err
	}
}

// recording gathers the content of one recording task.
type recording struct {
	ctx   context.Context
	tx    *gorm.DB
	store storage.Driver
	add   []models.ContentRef
	added map[string]bool   // ids in add: each content unit is added once
	seen  map[string]string // manifest digest → id
}

func newRecording(ctx context.Context, tx *gorm.DB, store storage.Driver) *recording {
	return &recording{ctx: ctx, tx: tx, store: store, seen: map[string]string{}, added: map[string]bool{}}
}

// addRef adds c to the version unless it is added already.
func (r *recording) addRef(c models.ContentRef) {
	if r.added[c.ID] {
		return
	}
	r.added[c.ID] = true
	r.add = append(r.add, c)
}

// drop takes the content unit id out of what the version adds.
func (r *recording) drop(id string) {
	delete(r.added, id)
	r.add = slices.DeleteFunc(r.add, func(c models.ContentRef) bool { return c.ID == id })
}

func (r *recording) read(digest string, limit int64) ([]byte, error) {
	p, err := storage.BlobPath(digest)
	if err != nil {
		return nil, err
	}
	rd, err := r.store.Reader(r.ctx, p, 0)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(io.LimitReader(rd, limit))
}

func (r *recording) stored(digest string) bool {
	p, err := storage.BlobPath(digest)
	if err != nil {
		return false
	}
	_, err = r.store.Stat(r.ctx, p)
	return err == nil
}

// manifest records the stored manifest digest (an index with those of its children that were
// pulled) and returns its id.
func (r *recording) manifest(digest string) (string, error) {
	if id, ok := r.seen[digest]; ok {
		return id, nil
	}
	raw, err := r.read(digest, oci.MaxManifestSize)
	if err != nil {
		return "", fmt.Errorf("read pulled manifest %s: %w", digest, err)
	}
	m, err := oci.ParseManifest(raw, "")
	if err != nil {
		return "", fmt.Errorf("manifest %s: %w", digest, err)
	}
	row := &models.Manifest{Digest: digest, MediaType: m.MediaType, SchemaVersion: m.SchemaVersion,
		Size: int64(len(raw)), Annotations: cappedJSON(m.Annotations)}
	var blobIDs []string
	var children []models.ManifestListManifest
	if oci.IsIndex(m.MediaType) {
		for _, d := range m.Manifests {
			if !r.stored(d.Digest) {
				continue
			}
			id, err := r.manifest(d.Digest)
			if err != nil {
				return "", err
			}
			link := models.ManifestListManifest{ManifestID: id}
			if d.Platform != nil {
				link.Architecture, link.OS = d.Platform.Architecture, d.Platform.OS
				if err := r.tx.Model(&models.Manifest{}).Where("id = ? AND architecture IS NULL", id).
					Updates(map[string]any{"architecture": d.Platform.Architecture, "os": d.Platform.OS}).Error; err != nil {
					return "", err
				}
			}
			children = append(children, link)
		}
		var types []string
		for _, c := range children {
			var typ []*string
			if err := r.tx.Model(&models.Manifest{}).Where("id = ?", c.ManifestID).Pluck("type", &typ).Error; err != nil {
				return "", err
			}
			if len(typ) == 1 && typ[0] != nil {
				types = append(types, *typ[0])
			}
		}
		models.ClassifyIndex(row, types)
	} else {
		var total int64
		for _, l := range m.Layers {
			if oci.Foreign(l.MediaType) {
				continue
			}
			b, err := models.GetOrCreateBlob(r.tx, &models.Blob{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType})
			if err != nil {
				return "", err
			}
			blobIDs = append(blobIDs, b.ID)
			r.addRef(models.ContentRef{Type: models.KindBlob.PulpType, ID: b.ID})
			if l.Size > 0 {
				total += l.Size
			}
		}
		row.CompressedImageSize = &total
		if m.Config != nil {
			b, err := models.GetOrCreateBlob(r.tx, &models.Blob{Digest: m.Config.Digest, Size: m.Config.Size, MediaType: m.Config.MediaType})
			if err != nil {
				return "", err
			}
			row.ConfigBlobID = &b.ID
			r.addRef(models.ContentRef{Type: models.KindBlob.PulpType, ID: b.ID})
			if raw, err := r.read(m.Config.Digest, 1<<20); err == nil {
				var cfg oci.ImageConfig
				if json.Unmarshal(raw, &cfg) == nil {
					if cfg.Architecture != "" {
						row.Architecture = &cfg.Architecture
					}
					if cfg.OS != "" {
						row.OS = &cfg.OS
					}
					row.Labels = cappedJSON(cfg.Config.Labels)
				}
			}
		}
		models.ClassifyImage(row, raw)
	}
	saved, err := models.GetOrCreateManifest(r.tx, row, blobIDs, children)
	if err != nil {
		return "", err
	}
	if err := models.LinkListed(r.tx, saved.ID, children); err != nil {
		return "", err
	}
	r.seen[digest] = saved.ID
	r.addRef(models.ContentRef{Type: models.KindManifest.PulpType, ID: saved.ID})
	return saved.ID, nil
}

// maxRecordedMap bounds the annotations or labels copied from a manifest or config into a
// database column: an upstream cannot make each pulled manifest cost megabytes of database.
const maxRecordedMap = 64 << 10

// cappedJSON encodes annotations or labels for a column: {} when they are absent or, whole,
// larger than maxRecordedMap (they stay readable in the stored manifest or config).
func cappedJSON(m map[string]string) models.JSON {
	if m == nil {
		m = map[string]string{}
	}
	j := models.MustJSON(m)
	if len(j) > maxRecordedMap {
		return models.MustJSON(map[string]string{})
	}
	return j
}
