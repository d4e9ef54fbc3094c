package models

import (
	"errors"
	"time"

	"gorm.io/gorm"
)

// Upload is a blob upload in progress (an upload session of the distribution spec): the
// repository name it was started for, how many bytes were received (they sit in a staging file
// named after the upload's id in the shared storage), and the sha256 state of those bytes so
// that another content process can resume it without reading them again. Rows live until the
// upload is finished, cancelled, or swept as abandoned.
type Upload struct {
	ID   string `gorm:"primaryKey;size:36"`
	Name string `gorm:"size:255;not null;index"`
	// Received is the number of bytes of the blob received so far (the next chunk's start).
	Received int64 `gorm:"not null;default:0"`
	// HashState is the marshalled sha256 state after Received bytes; empty means the staging
	// file must be hashed again.
	HashState       []byte
	PulpCreated     time.Time
	PulpLastUpdated time.Time `gorm:"index"`
}

// CreateUpload starts an upload for repository name.
func CreateUpload(db *gorm.DB, name string) (*Upload, error) {
	now := Now()
	u := &Upload{ID: NewID(), Name: name, PulpCreated: now, PulpLastUpdated: now}
	return u, db.Create(u).Error
}

// GetUpload loads the upload id of repository name; an upload of another name is not found.
func GetUpload(db *gorm.DB, id, name string) (*Upload, error) {
	var u Upload
	err := db.Take(&u, "id = ? AND name = ?", id, name).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, &NotFoundError{Model: "Upload", Ref: id}
	}
	return &u, err
}

// AdvanceUpload records that u now holds received bytes with sha256 state, provided it still
// held from bytes (another request may have moved it meanwhile); ok says whether it did.
func AdvanceUpload(db *gorm.DB, u *Upload, from, received int64, state []byte) (ok bool, err error) {
	now := Now()
	res := db.Model(&Upload{}).Where("id = ? AND received = ?", u.ID, from).
		Updates(map[string]any{"received": received, "hash_state": state, "pulp_last_updated": now})
	if res.Error != nil || res.RowsAffected == 0 {
		return false, res.Error
	}
	u.Received, u.HashState, u.PulpLastUpdated = received, state, now
	return true, nil
}

// DeleteUpload removes the upload id; deleted says whether it existed.
func DeleteUpload(db *gorm.DB, id string) (deleted bool, err error) {
	res := db.Delete(&Upload{}, "id = ?", id)
	return res.RowsAffected > 0, res.Error
}

// StaleUploads returns the ids of the uploads not written to since before.
func StaleUploads(db *gorm.DB, before time.Time) ([]string, error) {
	var ids []string
	err := db.Model(&Upload{}).Where("pulp_last_updated < ?", before).Pluck("id", &ids).Error
	return ids, err
}
