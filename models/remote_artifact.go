package models

import (
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// RemoteArtifact records where the bytes of a blob that a sync did not download can be
// fetched, as Pulp's RemoteArtifact does: the remote whose on_demand or streamed sync met the
// blob, and the upstream repository name it was listed under. The content app fetches the
// blob through that remote at the first pull (and keeps it unless the remote's policy is
// streamed). A blob has at most one per remote.
type RemoteArtifact struct {
	ID           string `gorm:"primaryKey;size:36"`
	PulpCreated  time.Time
	BlobID       string `gorm:"uniqueIndex:idx_remote_artifact_blob_remote;size:36;not null"`
	RemoteID     string `gorm:"uniqueIndex:idx_remote_artifact_blob_remote;size:36;not null;index"`
	Digest       string `gorm:"size:200;not null;index"`
	Size         int64
	UpstreamName string `gorm:"not null"`
}

// RecordRemoteArtifacts stores ras, keeping the rows that already exist for a (blob, remote)
// pair as they are.
func RecordRemoteArtifacts(db *gorm.DB, ras []RemoteArtifact) error {
	if len(ras) == 0 {
		return nil
	}
	now := time.Now()
	for i := range ras {
		if ras[i].ID == "" {
			ras[i].ID = NewID()
		}
		if ras[i].PulpCreated.IsZero() {
			ras[i].PulpCreated = now
		}
	}
	return db.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(ras, 500).Error
}

// RemoteArtifactsFor returns the remote artifacts of the blob with the given digest, oldest
// first.
func RemoteArtifactsFor(db *gorm.DB, digest string) ([]RemoteArtifact, error) {
	var out []RemoteArtifact
	err := db.Where("digest = ?", digest).Order("pulp_created, id").Find(&out).Error
	return out, err
}
