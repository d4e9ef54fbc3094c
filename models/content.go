package models

import (
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Blob is a layer or config blob, stored once per digest.
type Blob struct {
	ID              string `gorm:"primaryKey;size:36"`
	PulpCreated     time.Time
	PulpLastUpdated time.Time
	Digest          string `gorm:"uniqueIndex;size:200;not null"`
	Size            int64
	MediaType       string
	PulpLabels      Labels `gorm:"type:text"`
	// TimestampOfInterest is when the blob was last created, recorded or served (Pulp's
	// timestamp_of_interest): an orphan cleanup's protection time counts from it.
	TimestampOfInterest *time.Time `gorm:"index"`
}

// Manifest is an image manifest or an index (manifest list), stored byte for byte (the bytes
// live in blob storage under the manifest digest).
type Manifest struct {
	ID                  string `gorm:"primaryKey;size:36"`
	PulpCreated         time.Time
	PulpLastUpdated     time.Time
	Digest              string `gorm:"uniqueIndex;size:200;not null"`
	MediaType           string `gorm:"index"`
	SchemaVersion       int64
	Size                int64
	ConfigBlobID        *string `gorm:"size:36;index"`
	Annotations         JSON    `gorm:"type:text"`
	Labels              JSON    `gorm:"type:text"`
	IsBootable          bool
	IsFlatpak           bool
	Type                *string
	Architecture        *string
	OS                  *string
	CompressedImageSize *int64
	PulpLabels          Labels `gorm:"type:text"`
	// TimestampOfInterest is as Blob's.
	TimestampOfInterest *time.Time `gorm:"index"`
	// SubjectDigest is the digest of the manifest this one refers to (its "subject"), which
	// the referrers API lists it under; nil without a subject.
	SubjectDigest *string `gorm:"size:200;index"`
	// ArtifactType is what the referrers API reports: the manifest's artifactType, or for an
	// image manifest without one its config's media type.
	ArtifactType *string
}

// ManifestBlob links a manifest to one of its layer blobs.
type ManifestBlob struct {
	ManifestID string `gorm:"primaryKey;size:36"`
	BlobID     string `gorm:"primaryKey;size:36;index"`
}

// ManifestListManifest links an index to one of the manifests it lists.
type ManifestListManifest struct {
	ManifestListID string `gorm:"primaryKey;size:36"`
	ManifestID     string `gorm:"primaryKey;size:36;index"`
	Architecture   string
	OS             string
}

// Tag names a manifest; a (name, manifest) pair is stored once.
type Tag struct {
	ID               string `gorm:"primaryKey;size:36"`
	PulpCreated      time.Time
	PulpLastUpdated  time.Time
	Name             string `gorm:"uniqueIndex:idx_tag_name_manifest;not null"`
	TaggedManifestID string `gorm:"uniqueIndex:idx_tag_name_manifest;size:36;not null;index"`
	PulpLabels       Labels `gorm:"type:text"`
	// TimestampOfInterest is as Blob's.
	TimestampOfInterest *time.Time `gorm:"index"`
}

// Manifest media types.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeOCIManifest        = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex           = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerSchema1      = "application/vnd.docker.distribution.manifest.v1+json"
)

// IsIndex reports whether mediaType is a manifest list or an OCI index.
func IsIndex(mediaType string) bool {
	return mediaType == MediaTypeDockerManifestList || mediaType == MediaTypeOCIIndex
}

func contentIdentity(k Kind, id string, created, updated time.Time, labels Labels) map[string]any {
	return map[string]any{
		"pulp_href":         k.Href(id),
		"prn":               k.PRNOf(id),
		"pulp_created":      FormatTime(created),
		"pulp_last_updated": FormatTime(updated),
		"pulp_labels":       labelsAny(labels),
		"vuln_report":       nil,
	}
}

// Serialize renders b as Pulp's BlobResponse.
func (b *Blob) Serialize(_ *gorm.DB, _ string) (map[string]any, error) {
	m := contentIdentity(KindBlob, b.ID, b.PulpCreated, b.PulpLastUpdated, b.PulpLabels)
	m["digest"] = b.Digest
	m["artifact"] = nil
	return m, nil
}

// Serialize renders mf as Pulp's ManifestResponse.
func (mf *Manifest) Serialize(db *gorm.DB, _ string) (map[string]any, error) {
	m := contentIdentity(KindManifest, mf.ID, mf.PulpCreated, mf.PulpLastUpdated, mf.PulpLabels)
	var listed []string
	if err := db.Model(&ManifestListManifest{}).Where("manifest_list_id = ?", mf.ID).Order("manifest_id").Pluck("manifest_id", &listed).Error; err != nil {
		return nil, err
	}
	var blobs []string
	if err := db.Model(&ManifestBlob{}).Where("manifest_id = ?", mf.ID).Order("blob_id").Pluck("blob_id", &blobs).Error; err != nil {
		return nil, err
	}
	listedHrefs := make([]string, 0, len(listed))
	for _, id := range listed {
		listedHrefs = append(listedHrefs, KindManifest.Href(id))
	}
	blobHrefs := make([]string, 0, len(blobs))
	for _, id := range blobs {
		blobHrefs = append(blobHrefs, KindBlob.Href(id))
	}
	var config any
	if mf.ConfigBlobID != nil {
		config = KindBlob.Href(*mf.ConfigBlobID)
	}
	annotations, labels := mf.Annotations.Any(), mf.Labels.Any()
	if annotations == nil {
		annotations = map[string]any{}
	}
	if labels == nil {
		labels = map[string]any{}
	}
	m["digest"] = mf.Digest
	m["schema_version"] = mf.SchemaVersion
	m["media_type"] = mf.MediaType
	m["listed_manifests"] = listedHrefs
	m["config_blob"] = config
	m["blobs"] = blobHrefs
	m["annotations"] = annotations
	m["labels"] = labels
	m["is_bootable"] = mf.IsBootable
	m["is_flatpak"] = mf.IsFlatpak
	m["type"] = strPtrAny(mf.Type)
	m["architecture"] = strPtrAny(mf.Architecture)
	m["os"] = strPtrAny(mf.OS)
	m["compressed_image_size"] = ptrAny(mf.CompressedImageSize)
	return m, nil
}

// Serialize renders t as Pulp's TagResponse.
func (t *Tag) Serialize(_ *gorm.DB, _ string) (map[string]any, error) {
	m := contentIdentity(KindTag, t.ID, t.PulpCreated, t.PulpLastUpdated, t.PulpLabels)
	m["name"] = t.Name
	m["tagged_manifest"] = KindManifest.Href(t.TaggedManifestID)
	return m, nil
}

// GetOrCreateBlob returns the blob with b.Digest, storing b if there is none yet. It is safe
// under concurrent callers on both engines.
func GetOrCreateBlob(db *gorm.DB, b *Blob) (*Blob, error) {
	now := Now()
	if b.ID == "" {
		b.ID = NewID()
	}
	b.PulpCreated, b.PulpLastUpdated, b.TimestampOfInterest = now, now, &now
	if b.PulpLabels == nil {
		b.PulpLabels = Labels{}
	}
	// An existing blob is touched, as Pulp's sync touches the content it meets again: the
	// row lock this takes also makes a concurrent orphan cleanup wait and look again.
	if err := db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "digest"}},
		DoUpdates: clause.Assignments(map[string]any{"timestamp_of_interest": now})}).Create(b).Error; err != nil {
		return nil, err
	}
	var out Blob
	if err := db.Take(&out, "digest = ?", b.Digest).Error; err != nil {
		return nil, err
	}
	return &out, nil
}

// GetOrCreateManifest returns the manifest with mf.Digest, storing mf (with its blob and child
// links) if there is none yet.
func GetOrCreateManifest(db *gorm.DB, mf *Manifest, blobIDs []string, children []ManifestListManifest) (*Manifest, error) {
	var out Manifest
	err := db.Take(&out, "digest = ?", mf.Digest).Error
	if err == nil {
		return &out, touch(db, "manifests", out.ID)
	}
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, err
	}
	now := Now()
	if mf.ID == "" {
		mf.ID = NewID()
	}
	mf.PulpCreated, mf.PulpLastUpdated, mf.TimestampOfInterest = now, now, &now
	if mf.PulpLabels == nil {
		mf.PulpLabels = Labels{}
	}
	err = db.Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "digest"}}, DoNothing: true}).Create(mf)
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		for _, id := range blobIDs {
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&ManifestBlob{ManifestID: mf.ID, BlobID: id}).Error; err != nil {
				return err
			}
		}
		for _, c := range children {
			c.ManifestListID = mf.ID
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&c).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := db.Take(&out, "digest = ?", mf.Digest).Error; err != nil {
		return nil, err
	}
	return &out, nil
}

// GetOrCreateTag returns the tag name → manifestID, storing it if needed.
func GetOrCreateTag(db *gorm.DB, name, manifestID string) (*Tag, error) {
	now := Now()
	t := Tag{ID: NewID(), Name: name, TaggedManifestID: manifestID, PulpCreated: now, PulpLastUpdated: now,
		PulpLabels: Labels{}, TimestampOfInterest: &now}
	if err := db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "name"}, {Name: "tagged_manifest_id"}},
		DoUpdates: clause.Assignments(map[string]any{"timestamp_of_interest": now})}).Create(&t).Error; err != nil {
		return nil, err
	}
	var out Tag
	if err := db.Take(&out, "name = ? AND tagged_manifest_id = ?", name, manifestID).Error; err != nil {
		return nil, err
	}
	return &out, nil
}

// Href is b's pulp_href.
func (b *Blob) Href() string { return KindBlob.Href(b.ID) }

// Href is mf's pulp_href.
func (mf *Manifest) Href() string { return KindManifest.Href(mf.ID) }

// Href is t's pulp_href.
func (t *Tag) Href() string { return KindTag.Href(t.ID) }

// LinkListed adds the index listID's links to children that are not linked yet (an index
// recorded before some of its platforms were pulled gains them later).
func LinkListed(db *gorm.DB, listID string, children []ManifestListManifest) error {
	for _, c := range children {
		c.ManifestListID = listID
		if err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&c).Error; err != nil {
			return err
		}
	}
	return nil
}
