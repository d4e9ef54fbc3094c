package models

import (
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// PendingBlob records that a blob was pushed to a repository (uploaded or mounted) that no
// version of it holds yet: pulp_container's pending_blobs. The registry serves a repository's
// pending blobs as it serves its content, so that a client can read back what it uploaded
// before it pushes the manifest naming it; an orphan cleanup keeps them. A row goes when a new
// version adds the blob (NewVersion), when a blob DELETE removes it, or when it is older than
// the upload timeout (SweepPendingBlobs).
type PendingBlob struct {
	RepositoryID string `gorm:"primaryKey;size:36"`
	BlobID       string `gorm:"primaryKey;size:36;index"`
	// PulpCreated is when the blob was last pushed to the repository.
	PulpCreated time.Time `gorm:"index"`
}

// AddPendingBlob records blobID as pending in repository repoID, or renews its row.
func AddPendingBlob(db *gorm.DB, repoID, blobID string) error {
	now := Now()
	return db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "repository_id"}, {Name: "blob_id"}},
		DoUpdates: clause.Assignments(map[string]any{"pulp_created": now})}).
		Create(&PendingBlob{RepositoryID: repoID, BlobID: blobID, PulpCreated: now}).Error
}

// PendingBlobID returns the id of the blob digest if it is pending in repository repoID, ""
// otherwise.
func PendingBlobID(db *gorm.DB, repoID, digest string) (string, error) {
	var ids []string
	err := db.Model(&PendingBlob{}).Joins("JOIN blobs ON blobs.id = pending_blobs.blob_id").
		Where("pending_blobs.repository_id = ? AND blobs.digest = ?", repoID, digest).
		Limit(1).Pluck("blobs.id", &ids).Error
	if err != nil || len(ids) == 0 {
		return "", err
	}
	return ids[0], nil
}

// RemovePendingBlob drops blobID from the pending blobs of repository repoID; removed says
// whether it was pending.
func RemovePendingBlob(db *gorm.DB, repoID, blobID string) (removed bool, err error) {
	res := db.Delete(&PendingBlob{}, "repository_id = ? AND blob_id = ?", repoID, blobID)
	return res.RowsAffected > 0, res.Error
}

// SweepPendingBlobs drops the pending rows pushed before before; it returns how many went.
func SweepPendingBlobs(db *gorm.DB, before time.Time) (int64, error) {
	res := db.Delete(&PendingBlob{}, "pulp_created < ?", before)
	return res.RowsAffected, res.Error
}

// clearPendingBlobs drops, from the pending blobs of repository repoID, those of contentIDs
// (a new version added them): as Pulp's remove_pending_content.
func clearPendingBlobs(tx *gorm.DB, repoID string, contentIDs []string) error {
	var n int64
	if err := tx.Model(&PendingBlob{}).Where("repository_id = ?", repoID).Limit(1).Count(&n).Error; err != nil || n == 0 {
		return err
	}
	return inChunks(contentIDs, func(part []string) error {
		return tx.Where("repository_id = ? AND blob_id IN ?", repoID, part).Delete(&PendingBlob{}).Error
	})
}

// RepositoryHoldsBlob reports whether repository repoID has the blob digest: in its latest
// version, or pending (pushed to it and not yet named by a version). A pushed manifest may name
// only such blobs, so that a push cannot take in another repository's content by digest.
func RepositoryHoldsBlob(db *gorm.DB, repoID, digest string) (bool, error) {
	var repo Repository
	if err := db.Select("id", "latest_number").Take(&repo, "id = ?", repoID).Error; err != nil {
		return false, err
	}
	id, err := BlobIDInVersion(db, repoID, repo.LatestNumber, digest)
	if err != nil || id != "" {
		return id != "", err
	}
	id, err = PendingBlobID(db, repoID, digest)
	return id != "", err
}

// RepositoryHoldsManifest reports whether the latest version of repository repoID holds the
// manifest digest (an index pushed to it may list only such manifests).
func RepositoryHoldsManifest(db *gorm.DB, repoID, digest string) (bool, error) {
	var repo Repository
	if err := db.Take(&repo, "id = ?", repoID).Error; err != nil {
		return false, err
	}
	_, err := ManifestInVersion(db, &repo, repo.LatestNumber, digest)
	if IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}
