package models

import (
	"time"

	"gorm.io/gorm"
)

// EvictionCandidate is an image a storage quota may evict: a manifest at the top of the
// latest version of a pull-through repository (no index of that version lists it), with
// when it was last pulled.
type EvictionCandidate struct {
	RepositoryID string
	ManifestID   string
	Digest       string
	// LastPulled is the last pull noted (LastPull), or, for an image not pulled since,
	// the manifest's timestamp of interest or creation.
	LastPulled time.Time
}

// candidateRow is what the candidates query scans: the times apart, since SQLite returns
// an expression over times as text.
type candidateRow struct {
	RepositoryID string
	ManifestID   string
	Digest       string
	PulledAt     *time.Time
	Interest     *time.Time
	Created      time.Time
}

// EvictionCandidates returns up to limit images of pull-through repositories, least
// recently pulled first (ties by digest); repoIDs, when not nil, limits them to those
// repositories, and the manifests in skip are left out. Ordinary repositories' content is
// never a candidate.
func EvictionCandidates(db *gorm.DB, repoIDs []string, skip []string, limit int) ([]EvictionCandidate, error) {
	if repoIDs != nil && len(repoIDs) == 0 {
		return nil, nil
	}
	present := "rc.version_added <= r.latest_number AND (rc.version_removed IS NULL OR rc.version_removed > r.latest_number)"
	q := db.Table("repositories r").
		Select("r.id AS repository_id, m.id AS manifest_id, m.digest AS digest, lp.at AS pulled_at, "+
			"m.timestamp_of_interest AS interest, m.pulp_created AS created").
		Joins("JOIN repository_contents rc ON rc.repository_id = r.id AND "+present).
		Joins("JOIN manifests m ON m.id = rc.content_id").
		Joins("LEFT JOIN last_pulls lp ON lp.digest = m.digest").
		Where("r.pull_through = ?", true).
		Where("NOT EXISTS (SELECT 1 FROM manifest_list_manifests l JOIN repository_contents rc2 ON rc2.content_id = l.manifest_list_id " +
			"AND rc2.repository_id = r.id AND rc2.version_removed IS NULL WHERE l.manifest_id = m.id)").
		Order("COALESCE(lp.at, m.timestamp_of_interest, m.pulp_created), m.digest").
		Limit(limit)
	if repoIDs != nil {
		q = q.Where("r.id IN ?", repoIDs)
	}
	if len(skip) > 0 {
		q = q.Where("m.id NOT IN ?", skip)
	}
	var rows []candidateRow
	if err := q.Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]EvictionCandidate, 0, len(rows))
	for _, r := range rows {
		c := EvictionCandidate{RepositoryID: r.RepositoryID, ManifestID: r.ManifestID, Digest: r.Digest, LastPulled: r.Created}
		switch {
		case r.PulledAt != nil:
			c.LastPulled = *r.PulledAt
		case r.Interest != nil:
			c.LastPulled = *r.Interest
		}
		out = append(out, c)
	}
	return out, nil
}

// ImageUnits returns the content ids of an image: the manifest manifestID, the tags of
// version n of repo that name it, and everything it needs (AddClosure: listed manifests,
// config and layer blobs). Removing them from a version (RecursiveRemove) removes the image,
// and what no other content needs goes with it.
func ImageUnits(db *gorm.DB, repo *Repository, n int64, manifestID string) ([]ContentRef, error) {
	tags, err := TagIDsOfManifest(db, repo, n, manifestID)
	if err != nil {
		return nil, err
	}
	return AddClosure(db, append(tags, manifestID))
}

// ImageBytes returns the bytes of the stored objects among units: the sizes of the blobs
// and manifests they name (tags have none). It is what evicting them frees at most.
func ImageBytes(db *gorm.DB, units []ContentRef) (int64, error) {
	var ids []string
	for _, u := range units {
		if u.Type != KindTag.PulpType {
			ids = append(ids, u.ID)
		}
	}
	var total int64
	err := inChunks(ids, func(part []string) error {
		for _, m := range []any{&Blob{}, &Manifest{}} {
			var n int64
			if err := db.Model(m).Where("id IN ?", part).Select("COALESCE(SUM(size), 0)").Scan(&n).Error; err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	return total, err
}

// ContentBytes is the size of every blob and manifest recorded: what a storage without a
// measure of its own is taken to hold.
func ContentBytes(db *gorm.DB) (int64, error) {
	var total int64
	for _, m := range []any{&Blob{}, &Manifest{}} {
		var n int64
		if err := db.Model(m).Select("COALESCE(SUM(size), 0)").Scan(&n).Error; err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}
