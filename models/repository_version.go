package models

import (
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// RepositoryVersion is one immutable state of a repository, numbered from 0.
type RepositoryVersion struct {
	ID              string  `gorm:"primaryKey;size:36"`
	RepositoryID    string  `gorm:"size:36;not null;uniqueIndex:idx_repo_version"`
	Number          int64   `gorm:"not null;uniqueIndex:idx_repo_version"`
	BaseVersionID   *string `gorm:"size:36"`
	PulpCreated     time.Time
	PulpLastUpdated time.Time
}

// RepositoryContent says that a content unit belongs to a repository from version
// VersionAdded up to (not including) VersionRemoved, as Pulp records memberships.
type RepositoryContent struct {
	ID             string `gorm:"primaryKey;size:36"`
	RepositoryID   string `gorm:"size:36;not null;index:idx_rc_repo"`
	ContentID      string `gorm:"size:36;not null;index"`
	ContentType    string `gorm:"size:32;not null"`
	VersionAdded   int64  `gorm:"not null;index:idx_rc_repo"`
	VersionRemoved *int64 `gorm:"index"`
}

// ContentRef names one content unit.
type ContentRef struct {
	Type string // container.blob, container.manifest or container.tag
	ID   string
}

// PresentIn restricts a RepositoryContent query to the units present in version n.
func PresentIn(q *gorm.DB, repoID string, n int64) *gorm.DB {
	return q.Where("repository_contents.repository_id = ? AND repository_contents.version_added <= ? AND (repository_contents.version_removed IS NULL OR repository_contents.version_removed > ?)", repoID, n, n)
}

// GetVersion loads version n of repository repo.
func GetVersion(db *gorm.DB, repo *Repository, n int64) (*RepositoryVersion, error) {
	var v RepositoryVersion
	err := db.Take(&v, "repository_id = ? AND number = ?", repo.ID, n).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, &NotFoundError{Model: "RepositoryVersion", Ref: repo.VersionHref(n)}
	}
	return &v, err
}

// NewVersion adds and removes content in a new version of repo, inside tx (the caller's
// transaction, which should hold the repository's lock); the blobs it adds are no longer
// pending in repo (PendingBlob). It returns nil when nothing changes:
// Pulp discards such versions. Versions beyond retain_repo_versions are squashed away.
func NewVersion(tx *gorm.DB, repo *Repository, add, remove []ContentRef) (*RepositoryVersion, error) {
	cur := repo.LatestNumber
	next := max(cur+1, repo.NextVersion)
	changed := false
	removeIDs := make([]string, 0, len(remove))
	for _, c := range remove {
		removeIDs = append(removeIDs, c.ID)
	}
	err := inChunks(removeIDs, func(part []string) error {
		res := PresentIn(tx.Model(&RepositoryContent{}), repo.ID, cur).
			Where("content_id IN ?", part).Update("version_removed", next)
		changed = changed || res.RowsAffected > 0
		return res.Error
	})
	if err != nil {
		return nil, err
	}
	// What add holds that the version keeps (present and not removed just above) is not added
	// again; each unit is added once however often add names it.
	addIDs := make([]string, 0, len(add))
	for _, c := range add {
		addIDs = append(addIDs, c.ID)
	}
	kept := make(map[string]bool, len(add))
	err = inChunks(addIDs, func(part []string) error {
		var ids []string
		if err := PresentIn(tx.Model(&RepositoryContent{}), repo.ID, cur).
			Where("content_id IN ? AND (version_removed IS NULL)", part).Pluck("content_id", &ids).Error; err != nil {
			return err
		}
		for _, id := range ids {
			kept[id] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rows := make([]RepositoryContent, 0, len(add))
	for _, c := range add {
		if kept[c.ID] {
			continue
		}
		kept[c.ID] = true
		rows = append(rows, RepositoryContent{ID: NewID(), RepositoryID: repo.ID, ContentID: c.ID,
			ContentType: c.Type, VersionAdded: next})
	}
	if len(rows) > 0 {
		if err := tx.CreateInBatches(rows, inChunk).Error; err != nil {
			return nil, err
		}
		added := make([]string, 0, len(rows))
		for _, r := range rows {
			added = append(added, r.ContentID)
		}
		if err := clearPendingBlobs(tx, repo.ID, added); err != nil {
			return nil, err
		}
		changed = true
	}
	if !changed {
		return nil, nil
	}
	now := Now()
	base := ""
	if prev, err := GetVersion(tx, repo, cur); err == nil {
		base = prev.ID
	}
	v := &RepositoryVersion{ID: NewID(), RepositoryID: repo.ID, Number: next, PulpCreated: now, PulpLastUpdated: now}
	if base != "" {
		v.BaseVersionID = &base
	}
	if err := tx.Create(v).Error; err != nil {
		return nil, err
	}
	repo.LatestNumber, repo.NextVersion = next, next+1
	repo.PulpLastUpdated = now
	if err := tx.Model(repo).Updates(map[string]any{"latest_number": next, "next_version": next + 1, "pulp_last_updated": now}).Error; err != nil {
		return nil, err
	}
	if repo.RetainRepoVersions != nil {
		var old []RepositoryVersion
		if err := tx.Where("repository_id = ? AND number <= ?", repo.ID, next-*repo.RetainRepoVersions).
			Order("number").Find(&old).Error; err != nil {
			return nil, err
		}
		for _, o := range old {
			if err := DeleteVersion(tx, repo, o.Number); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

// ErrVersionInUse is returned when a distribution pins the version being deleted.
var ErrVersionInUse = errors.New("The repository version cannot be deleted because it (or its publications) are currently being used to distribute content. Please update the necessary distributions first.")

// DeleteVersion removes version n of repo, folding its changes into the next version so
// that every remaining version keeps its content.
func DeleteVersion(tx *gorm.DB, repo *Repository, n int64) error {
	v, err := GetVersion(tx, repo, n)
	if err != nil {
		return err
	}
	var pinned int64
	if err := tx.Model(&Distribution{}).Where("repository_version_id = ?", v.ID).Count(&pinned).Error; err != nil {
		return err
	}
	if pinned > 0 {
		return NewValidationError("non_field_errors", ErrVersionInUse.Error())
	}
	var count int64
	if err := tx.Model(&RepositoryVersion{}).Where("repository_id = ?", repo.ID).Count(&count).Error; err != nil {
		return err
	}
	if count <= 1 {
		return ErrOnlyVersion
	}
	var nextV RepositoryVersion
	err = tx.Where("repository_id = ? AND number > ?", repo.ID, n).Order("number").Take(&nextV).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		// Deleting the latest version: its changes are undone.
		var prev RepositoryVersion
		if err := tx.Where("repository_id = ? AND number < ?", repo.ID, n).Order("number DESC").Take(&prev).Error; err != nil {
			return err
		}
		if err := tx.Where("repository_id = ? AND version_added = ?", repo.ID, n).Delete(&RepositoryContent{}).Error; err != nil {
			return err
		}
		if err := tx.Model(&RepositoryContent{}).Where("repository_id = ? AND version_removed = ?", repo.ID, n).
			Update("version_removed", nil).Error; err != nil {
			return err
		}
		if err := tx.Model(repo).Update("latest_number", prev.Number).Error; err != nil {
			return err
		}
		repo.LatestNumber = prev.Number
	case err != nil:
		return err
	default:
		m := nextV.Number
		// Added in n and removed by the next version: never visible in what remains.
		if err := tx.Where("repository_id = ? AND version_added = ? AND version_removed = ?", repo.ID, n, m).
			Delete(&RepositoryContent{}).Error; err != nil {
			return err
		}
		if err := tx.Model(&RepositoryContent{}).Where("repository_id = ? AND version_added = ?", repo.ID, n).
			Update("version_added", m).Error; err != nil {
			return err
		}
		if err := tx.Model(&RepositoryVersion{}).Where("id = ?", nextV.ID).Update("base_version_id", v.BaseVersionID).Error; err != nil {
			return err
		}
	}
	return tx.Delete(&RepositoryVersion{}, "id = ?", v.ID).Error
}

var contentEndpoints = map[string]string{
	KindBlob.PulpType:     KindBlob.ListHref(),
	KindManifest.PulpType: KindManifest.ListHref(),
	KindTag.PulpType:      KindTag.ListHref(),
}

// SerializeVersion renders version v of repo as Pulp's RepositoryVersionResponse.
func SerializeVersion(db *gorm.DB, repo *Repository, v *RepositoryVersion) (map[string]any, error) {
	href := repo.VersionHref(v.Number)
	type row struct {
		ContentType string
		N           int64
	}
	summary := func(param string, q *gorm.DB) (map[string]any, error) {
		var rows []row
		if err := q.Select("content_type, count(*) as n").Group("content_type").Scan(&rows).Error; err != nil {
			return nil, err
		}
		out := map[string]any{}
		for _, r := range rows {
			out[r.ContentType] = map[string]any{"count": r.N, "href": fmt.Sprintf("%s?%s=%s", contentEndpoints[r.ContentType], param, href)}
		}
		return out, nil
	}
	rc := func() *gorm.DB { return db.Model(&RepositoryContent{}).Where("repository_id = ?", repo.ID) }
	added, err := summary("repository_version_added", rc().Where("version_added = ?", v.Number))
	if err != nil {
		return nil, err
	}
	removed, err := summary("repository_version_removed", rc().Where("version_removed = ?", v.Number))
	if err != nil {
		return nil, err
	}
	present, err := summary("repository_version", PresentIn(db.Model(&RepositoryContent{}), repo.ID, v.Number))
	if err != nil {
		return nil, err
	}
	var base any
	if v.BaseVersionID != nil {
		var bv RepositoryVersion
		if err := db.Take(&bv, "id = ?", *v.BaseVersionID).Error; err == nil {
			base = repo.VersionHref(bv.Number)
		}
	}
	prn := KindRepositoryVersion.PRNOf(v.ID)
	return map[string]any{
		"pulp_href":         href,
		"prn":               prn,
		"pulp_created":      FormatTime(v.PulpCreated),
		"pulp_last_updated": FormatTime(v.PulpLastUpdated),
		"number":            v.Number,
		"repository":        repo.Href(),
		"base_version":      base,
		"content_summary":   map[string]any{"added": added, "removed": removed, "present": present},
		"vuln_report":       "/pulp/api/v3/vuln_report/?repo_versions=" + prn,
	}, nil
}
