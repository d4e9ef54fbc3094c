package models

import (
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Repository is a container repository or a push repository (PulpType tells which): a named,
// versioned set of content. LatestNumber is the number of its latest version; version 0
// exists from creation. PullThrough marks the read-only repositories the cache creates.
type Repository struct {
	ID              string    `gorm:"primaryKey;size:36" json:"-"`
	PulpType        string    `gorm:"size:64;index;not null" json:"-"`
	PulpCreated     time.Time `json:"-"`
	PulpLastUpdated time.Time `json:"-"`

	Name               string  `gorm:"uniqueIndex;not null" json:"name"`
	Description        *string `json:"description"`
	RetainRepoVersions *int64  `json:"retain_repo_versions"`
	RetainCheckpoints  *int64  `json:"retain_checkpoints"`
	RemoteID           *string `gorm:"size:36;index" json:"remote_id"`
	PulpLabels         Labels  `gorm:"type:text" json:"pulp_labels"`

	LatestNumber int64 `gorm:"not null;default:0" json:"-"`
	// NextVersion is the number the next version gets: numbers are never reused, even after
	// the latest version is deleted (as Pulp's next_version).
	NextVersion int64 `gorm:"not null;default:0" json:"-"`
	PullThrough bool  `gorm:"not null;default:false" json:"-"`
}

// Kind returns the API kind of r.
func (r *Repository) Kind() Kind {
	if r.PulpType == KindPushRepository.PulpType {
		return KindPushRepository
	}
	return KindContainerRepository
}

// Href is r's pulp_href.
func (r *Repository) Href() string { return r.Kind().Href(r.ID) }

// VersionHref is the href of version n of r.
func (r *Repository) VersionHref(n int64) string { return fmt.Sprintf("%sversions/%d/", r.Href(), n) }

// Serialize renders r as Pulp's response object.
func (r *Repository) Serialize(db *gorm.DB, _ string) (map[string]any, error) {
	m := map[string]any{
		"pulp_href":                r.Href(),
		"prn":                      r.Kind().PRNOf(r.ID),
		"pulp_created":             FormatTime(r.PulpCreated),
		"pulp_last_updated":        FormatTime(r.PulpLastUpdated),
		"versions_href":            r.Href() + "versions/",
		"pulp_labels":              labelsAny(r.PulpLabels),
		"latest_version_href":      r.VersionHref(r.LatestNumber),
		"name":                     r.Name,
		"description":              strPtrAny(r.Description),
		"retain_repo_versions":     ptrAny(r.RetainRepoVersions),
		"retain_checkpoints":       ptrAny(r.RetainCheckpoints),
		"manifest_signing_service": nil,
	}
	if r.Kind() == KindContainerRepository {
		m["remote"] = nil
		if r.RemoteID != nil {
			var rem Remote
			if err := db.Select("id", "pulp_type").Take(&rem, "id = ?", *r.RemoteID).Error; err == nil {
				m["remote"] = rem.Href()
			}
		}
	}
	return m, nil
}

// CreateRepository stores r together with its empty version 0.
func CreateRepository(db *gorm.DB, r *Repository) error {
	now := Now()
	if r.ID == "" {
		r.ID = NewID()
	}
	r.PulpCreated, r.PulpLastUpdated = now, now
	if r.PulpLabels == nil {
		r.PulpLabels = Labels{}
	}
	return db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(r).Error; err != nil {
			return err
		}
		return tx.Create(&RepositoryVersion{ID: NewID(), RepositoryID: r.ID, Number: 0,
			PulpCreated: now, PulpLastUpdated: now}).Error
	})
}

// DeleteRepository removes r, its versions, its content memberships and its pending blobs. Content units stay
// (they are shared; orphan cleanup removes them). Distributions that served r lose it.
func DeleteRepository(tx *gorm.DB, id string) error {
	if err := tx.Where("repository_id = ?", id).Delete(&RepositoryContent{}).Error; err != nil {
		return err
	}
	if err := tx.Where("repository_id = ?", id).Delete(&PendingBlob{}).Error; err != nil {
		return err
	}
	if err := tx.Model(&Distribution{}).Where("repository_id = ?", id).Update("repository_id", nil).Error; err != nil {
		return err
	}
	if err := tx.Model(&Distribution{}).Where("repository_version_id IN (?)",
		tx.Model(&RepositoryVersion{}).Select("id").Where("repository_id = ?", id)).
		Update("repository_version_id", nil).Error; err != nil {
		return err
	}
	if err := tx.Where("repository_id = ?", id).Delete(&RepositoryVersion{}).Error; err != nil {
		return err
	}
	res := tx.Delete(&Repository{}, "id = ?", id)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return &NotFoundError{Model: "ContainerRepository", Ref: id}
	}
	return nil
}

// GetRepository loads a repository of kind k by id.
func GetRepository(db *gorm.DB, k Kind, id string) (*Repository, error) {
	var r Repository
	err := db.Take(&r, "id = ? AND pulp_type = ?", id, k.PulpType).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, &NotFoundError{Model: k.Model, Ref: id}
	}
	return &r, err
}
