package models

import "gorm.io/gorm"

// SyncRequest is what a repository sync asks of the upstream walk: the remote to sync from,
// and where the tags of the repository's latest version point (tag name → manifest digest),
// so that an unchanged tag costs a HEAD and nothing more.
type SyncRequest struct {
	Remote *Remote
	Held   map[string]string
}

// SyncResult is what the upstream walk of a sync found, every manifest of it verified and
// stored, and every blob of it stored or deferred.
type SyncResult struct {
	// Tags are the upstream tags kept by the remote's filters, with the digest each names.
	Tags []SyncedTag
	// Digests are the manifests synced by digest (includes entries "sha256:...").
	Digests []string
	// Deferred are the layer blobs an on_demand or streamed sync did not download: where to
	// fetch them (RemoteID, UpstreamName, Digest, Size; BlobID is set when they are recorded).
	Deferred []RemoteArtifact
}

// SyncedTag is one upstream tag and the digest of the manifest it names.
type SyncedTag struct {
	Name   string
	Digest string
}

// TagDigestsInVersion returns the tags of version n of repo as name → manifest digest.
func TagDigestsInVersion(db *gorm.DB, repo *Repository, n int64) (map[string]string, error) {
	var rows []struct{ Name, Digest string }
	err := db.Model(&Tag{}).Select("tags.name, manifests.digest").
		Joins("JOIN manifests ON manifests.id = tags.tagged_manifest_id").
		Where("tags.id IN (?)", presentIDs(db, repo.ID, n)).Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.Name] = r.Digest
	}
	return out, nil
}

// SyncChange counts what a sync's version added and removed.
type SyncChange struct {
	Added, Removed int64
}

// SyncVersion makes the new version of a sync of repo (inside tx, the repository reserved):
// add is everything the upstream holds after filtering. With mirror, every unit of the latest
// version not in add is removed; without, the sync is additive and a synced tag only replaces
// the tag of the same name. It returns nil when nothing changes.
func SyncVersion(tx *gorm.DB, repo *Repository, add []ContentRef, mirror bool) (*RepositoryVersion, SyncChange, error) {
	present, err := presentContent(tx, repo, repo.LatestNumber)
	if err != nil {
		return nil, SyncChange{}, err
	}
	var ch SyncChange
	keep := make(map[string]bool, len(add))
	var tags []string
	for _, c := range add {
		keep[c.ID] = true
		if _, ok := present[c.ID]; !ok {
			ch.Added++
		}
		if c.Type == KindTag.PulpType {
			tags = append(tags, c.ID)
		}
	}
	var remove []ContentRef
	if mirror {
		for id, typ := range present {
			if !keep[id] {
				remove = append(remove, ContentRef{Type: typ, ID: id})
			}
		}
	} else if remove, err = replacedTags(tx, repo, tags); err != nil {
		return nil, SyncChange{}, err
	}
	ch.Removed = int64(len(remove))
	v, err := NewVersion(tx, repo, add, remove)
	return v, ch, err
}

// BlobIDsByDigest returns the ids of the blobs with the given digests, by digest.
func BlobIDsByDigest(db *gorm.DB, digests []string) (map[string]string, error) {
	return idsByDigest(db, &Blob{}, digests)
}
