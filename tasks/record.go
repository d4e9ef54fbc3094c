package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
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

// ManifestRecorder records stored manifests as content in the caller's transaction: what the
// registry needs to add a pushed manifest to a repository version.
type ManifestRecorder struct {
	Store storage.Driver
}

// RecordManifest records the stored manifest digest (an image manifest with its config and
// layer blobs, an index with its stored children) as content rows in tx, as a pull records
// it, and returns the manifest's id.
func (m ManifestRecorder) RecordManifest(ctx context.Context, tx *gorm.DB, digest string) (string, error) {
	return newRecording(ctx, tx, m.Store).manifest(digest)
}

// recording gathers the content of one recording task.
type recording struct {
	ctx   context.Context
	tx    *gorm.DB
	store storage.Driver
	add   []models.ContentRef
	added map[string]bool   // ids in add: each content unit is added once
	seen  map[string]string // manifest digest → id

	// Filled by prefetch: blob ids by digest, and image manifests already stored (touched).
	blobIDs map[string]string
	images  map[string]string
}

func newRecording(ctx context.Context, tx *gorm.DB, store storage.Driver) *recording {
	return &recording{ctx: ctx, tx: tx, store: store, seen: map[string]string{}, added: map[string]bool{},
		blobIDs: map[string]string{}, images: map[string]string{}}
}

// prefetch records in a few statements what recording the manifests digests (and the stored
// children of the indexes among them) needs: every blob their image manifests name, and the
// image manifests themselves; manifest then only adds them. A sync of a thousand tags costs a
// handful of statements rather than ten per tag.
func (r *recording) prefetch(digests []string) error {
	var (
		blobs  []models.Blob
		images []string
		walked = map[string]bool{}
	)
	var walk func(digest string) error
	walk = func(digest string) error {
		if walked[digest] {
			return nil
		}
		walked[digest] = true
		_, m, err := r.parsed(digest)
		if err != nil {
			return err
		}
		if oci.IsIndex(m.MediaType) {
			for _, d := range m.Manifests {
				if r.stored(d.Digest) {
					if err := walk(d.Digest); err != nil {
						return err
					}
				}
			}
			return nil
		}
		images = append(images, digest)
		for _, l := range m.Layers {
			if !oci.Foreign(l.MediaType) {
				blobs = append(blobs, models.Blob{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType})
			}
		}
		if m.Config != nil {
			blobs = append(blobs, models.Blob{Digest: m.Config.Digest, Size: m.Config.Size, MediaType: m.Config.MediaType})
		}
		return nil
	}
	for _, d := range digests {
		if err := walk(d); err != nil {
			return err
		}
	}
	ids, err := models.GetOrCreateBlobs(r.tx, blobs)
	if err != nil {
		return err
	}
	r.blobIDs = ids
	stored, err := models.ManifestIDsByDigest(r.tx, images)
	if err != nil {
		return err
	}
	touch := make([]string, 0, len(stored))
	var create []models.NewImageManifest
	for _, d := range images {
		if id, ok := stored[d]; ok {
			touch = append(touch, id)
			continue
		}
		raw, m, err := r.parsed(d)
		if err != nil {
			return err
		}
		row, blobIDs, err := r.imageRow(d, raw, m)
		if err != nil {
			return err
		}
		create = append(create, models.NewImageManifest{Row: *row, BlobIDs: blobIDs})
	}
	if err := models.TouchManifests(r.tx, touch); err != nil {
		return err
	}
	created, err := models.CreateImageManifests(r.tx, create)
	if err != nil {
		return err
	}
	maps.Copy(r.images, stored)
	maps.Copy(r.images, created)
	return nil
}

// blobID returns the id of the blob l, created if need be (one statement per blob unless
// prefetch recorded it).
func (r *recording) blobID(l oci.Descriptor) (string, error) {
	if id, ok := r.blobIDs[l.Digest]; ok {
		return id, nil
	}
	b, err := models.GetOrCreateBlob(r.tx, &models.Blob{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType})
	if err != nil {
		return "", err
	}
	r.blobIDs[l.Digest] = b.ID
	return b.ID, nil
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

// parsed reads and parses the stored manifest digest.
func (r *recording) parsed(digest string) ([]byte, *oci.Manifest, error) {
	raw, err := r.read(digest, oci.MaxManifestSize)
	if err != nil {
		return nil, nil, fmt.Errorf("read pulled manifest %s: %w", digest, err)
	}
	m, err := oci.ParseManifest(raw, "")
	if err != nil {
		return nil, nil, fmt.Errorf("manifest %s: %w", digest, err)
	}
	return raw, m, nil
}

// manifest records the stored manifest digest (an index with those of its children that were
// pulled) and returns its id.
func (r *recording) manifest(digest string) (string, error) {
	if id, ok := r.seen[digest]; ok {
		return id, nil
	}
	raw, m, err := r.parsed(digest)
	if err != nil {
		return "", err
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
		referrerFields(row, m)
	} else {
		// An image manifest adds its blobs with it: the layers, then the config.
		for _, l := range m.Layers {
			if oci.Foreign(l.MediaType) {
				continue
			}
			id, err := r.blobID(l)
			if err != nil {
				return "", err
			}
			r.addRef(models.ContentRef{Type: models.KindBlob.PulpType, ID: id})
		}
		if m.Config != nil {
			id, err := r.blobID(*m.Config)
			if err != nil {
				return "", err
			}
			r.addRef(models.ContentRef{Type: models.KindBlob.PulpType, ID: id})
		}
		if id, ok := r.images[digest]; ok {
			r.seen[digest] = id
			r.addRef(models.ContentRef{Type: models.KindManifest.PulpType, ID: id})
			return id, nil
		}
		if row, blobIDs, err = r.imageRow(digest, raw, m); err != nil {
			return "", err
		}
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

// imageRow builds the content row of the image manifest m (raw, stored under digest) and
// returns it with the ids of its layer blobs: the config's platform and labels, the
// compressed size, and its classification.
func (r *recording) imageRow(digest string, raw []byte, m *oci.Manifest) (*models.Manifest, []string, error) {
	row := &models.Manifest{Digest: digest, MediaType: m.MediaType, SchemaVersion: m.SchemaVersion,
		Size: int64(len(raw)), Annotations: cappedJSON(m.Annotations)}
	var blobIDs []string
	var total int64
	for _, l := range m.Layers {
		if oci.Foreign(l.MediaType) {
			continue
		}
		id, err := r.blobID(l)
		if err != nil {
			return nil, nil, err
		}
		blobIDs = append(blobIDs, id)
		if l.Size > 0 {
			total += l.Size
		}
	}
	row.CompressedImageSize = &total
	if m.Config != nil {
		id, err := r.blobID(*m.Config)
		if err != nil {
			return nil, nil, err
		}
		row.ConfigBlobID = &id
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
	referrerFields(row, m)
	return row, blobIDs, nil
}

// referrerFields records what the referrers API lists of m: its subject, and its artifact
// type (for an image manifest without one, its config's media type, as the OCI spec says).
func referrerFields(row *models.Manifest, m *oci.Manifest) {
	if m.Subject != nil {
		d := m.Subject.Digest
		row.SubjectDigest = &d
	}
	t := m.ArtifactType
	if t == "" && m.Config != nil {
		t = m.Config.MediaType
	}
	if t != "" {
		row.ArtifactType = &t
	}
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
