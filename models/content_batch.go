package models

import (
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// GetOrCreateBlobs is GetOrCreateBlob for many blobs at once, in a statement per inChunk
// blobs: missing ones are created, existing ones touched. It returns the ids by digest.
func GetOrCreateBlobs(db *gorm.DB, blobs []Blob) (map[string]string, error) {
	now := Now()
	rows := make([]Blob, 0, len(blobs))
	seen := make(map[string]bool, len(blobs))
	digests := make([]string, 0, len(blobs))
	for _, b := range blobs {
		if seen[b.Digest] {
			continue
		}
		seen[b.Digest] = true
		if b.ID == "" {
			b.ID = NewID()
		}
		b.PulpCreated, b.PulpLastUpdated, b.TimestampOfInterest = now, now, &now
		if b.PulpLabels == nil {
			b.PulpLabels = Labels{}
		}
		rows = append(rows, b)
		digests = append(digests, b.Digest)
	}
	if len(rows) == 0 {
		return map[string]string{}, nil
	}
	// As GetOrCreateBlob, an existing blob is touched (and its row locked against a
	// concurrent orphan cleanup).
	if err := db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "digest"}},
		DoUpdates: clause.Assignments(map[string]any{"timestamp_of_interest": now})}).
		CreateInBatches(rows, inChunk).Error; err != nil {
		return nil, err
	}
	return BlobIDsByDigest(db, digests)
}

// ManifestIDsByDigest returns the ids of the stored manifests with the given digests.
func ManifestIDsByDigest(db *gorm.DB, digests []string) (map[string]string, error) {
	return idsByDigest(db, &Manifest{}, digests)
}

// idsByDigest returns the ids of the rows of model (blobs or manifests) with the given
// digests, by digest.
func idsByDigest(db *gorm.DB, model any, digests []string) (map[string]string, error) {
	out := make(map[string]string, len(digests))
	err := inChunks(digests, func(part []string) error {
		var rows []struct{ ID, Digest string }
		if err := db.Model(model).Select("id, digest").Where("digest IN ?", part).Scan(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			out[r.Digest] = r.ID
		}
		return nil
	})
	return out, err
}

// TouchManifests sets the timestamp of interest of the manifests ids to now, as recording
// content it already holds does.
func TouchManifests(db *gorm.DB, ids []string) error {
	now := Now()
	return inChunks(ids, func(part []string) error {
		return db.Model(&Manifest{}).Where("id IN ?", part).Update("timestamp_of_interest", now).Error
	})
}

// NewImageManifest is an image manifest to store with the ids of its layer blobs.
type NewImageManifest struct {
	Row     Manifest
	BlobIDs []string
}

// CreateImageManifests stores image manifests (not indexes) with their blob links, in a few
// statements; a manifest stored meanwhile by someone else is kept as it is. It returns the
// ids of all of them by digest.
func CreateImageManifests(db *gorm.DB, ms []NewImageManifest) (map[string]string, error) {
	if len(ms) == 0 {
		return map[string]string{}, nil
	}
	now := Now()
	rows := make([]Manifest, 0, len(ms))
	digests := make([]string, 0, len(ms))
	for _, m := range ms {
		row := m.Row
		if row.ID == "" {
			row.ID = NewID()
		}
		row.PulpCreated, row.PulpLastUpdated, row.TimestampOfInterest = now, now, &now
		if row.PulpLabels == nil {
			row.PulpLabels = Labels{}
		}
		rows = append(rows, row)
		digests = append(digests, row.Digest)
	}
	// Fewer rows per statement than for blobs: a manifest row has three times the columns.
	if err := db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "digest"}}, DoNothing: true}).
		CreateInBatches(rows, inChunk/4).Error; err != nil {
		return nil, err
	}
	ids, err := ManifestIDsByDigest(db, digests)
	if err != nil {
		return nil, err
	}
	var links []ManifestBlob
	for i, m := range ms {
		if ids[rows[i].Digest] != rows[i].ID {
			continue // stored by someone else, with its links
		}
		for _, b := range m.BlobIDs {
			links = append(links, ManifestBlob{ManifestID: rows[i].ID, BlobID: b})
		}
	}
	if len(links) > 0 {
		if err := db.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(links, inChunk).Error; err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// TagKey names a tag content unit: its name and the id of the manifest it tags.
type TagKey struct{ Name, ManifestID string }

// GetOrCreateTags is GetOrCreateTag for many tags at once, in a few statements. It returns
// the tags' ids by key.
func GetOrCreateTags(db *gorm.DB, keys []TagKey) (map[TagKey]string, error) {
	now := Now()
	rows := make([]Tag, 0, len(keys))
	seen := make(map[TagKey]bool, len(keys))
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		rows = append(rows, Tag{ID: NewID(), Name: k.Name, TaggedManifestID: k.ManifestID, PulpCreated: now,
			PulpLastUpdated: now, PulpLabels: Labels{}, TimestampOfInterest: &now})
	}
	out := make(map[TagKey]string, len(rows))
	if len(rows) == 0 {
		return out, nil
	}
	if err := db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "name"}, {Name: "tagged_manifest_id"}},
		DoUpdates: clause.Assignments(map[string]any{"timestamp_of_interest": now})}).
		CreateInBatches(rows, inChunk).Error; err != nil {
		return nil, err
	}
	manifests := make([]string, 0, len(rows))
	for _, r := range rows {
		manifests = append(manifests, r.TaggedManifestID)
	}
	err := inChunks(manifests, func(part []string) error {
		var found []Tag
		if err := db.Select("id, name, tagged_manifest_id").Where("tagged_manifest_id IN ?", part).Find(&found).Error; err != nil {
			return err
		}
		for _, t := range found {
			if k := (TagKey{t.Name, t.TaggedManifestID}); seen[k] {
				out[k] = t.ID
			}
		}
		return nil
	})
	return out, err
}
