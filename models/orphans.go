package models

import (
	"time"

	"gorm.io/gorm"
)

// DefaultOrphanProtectionMinutes is Pulp's ORPHAN_PROTECTION_TIME: how long, in minutes,
// content in no repository version is kept after its timestamp of interest.
const DefaultOrphanProtectionMinutes = 24 * 60

// MaxOrphanProtectionMinutes is the largest orphan_protection_time Pulp accepts (2^32-1).
const MaxOrphanProtectionMinutes = 4294967295

// OrphanScope says which orphans one cleanup may remove: the units whose timestamp of
// interest is before Expiration and, when ContentIDs is not nil, only those units.
type OrphanScope struct {
	Expiration time.Time
	ContentIDs []string
}

// OrphanExpiration is the expiration of a cleanup started at now with a protection time of
// minutes (capped so that the largest protection time Pulp accepts means "keep everything").
func OrphanExpiration(now time.Time, minutes int64) time.Time {
	const maxMinutes = int64(200 * 365 * 24 * 60)
	return now.Add(-time.Duration(min(minutes, maxMinutes)) * time.Minute)
}

// HeldFunc reports which of digests are being read at this moment (their bytes must stay).
type HeldFunc func(digests []string) (map[string]bool, error)

// OrphanResult is what DeleteOrphans removed: how many content units, and the digests of the
// blobs and manifests whose rows are gone (their bytes may go too, see UnreferencedDigests).
type OrphanResult struct {
	Deleted int64
	Digests []string
}

// orphanOf restricts q on table to units in no repository version whose timestamp of
// interest (their creation, for rows older than the column) is before the scope's expiration.
func orphanOf(q *gorm.DB, table string, scope OrphanScope) *gorm.DB {
	q = q.Where("NOT EXISTS (SELECT 1 FROM repository_contents rc WHERE rc.content_id = "+table+".id)").
		Where("COALESCE("+table+".timestamp_of_interest, "+table+".pulp_created) < ?", scope.Expiration)
	if scope.ContentIDs != nil {
		q = q.Where(table+".id IN ?", append(append([]string{}, scope.ContentIDs...), ""))
	}
	return q
}

// Orphaned restricts q on the content table to the units in no repository version whose
// timestamp of interest is before expiration (the content lists' orphaned_for filter).
func Orphaned(q *gorm.DB, table string, expiration time.Time) *gorm.DB {
	return orphanOf(q, table, OrphanScope{Expiration: expiration})
}

// CountOrphans counts the content units in scope that are in no repository version (Pulp's
// total of "Clean up orphan Content").
func CountOrphans(db *gorm.DB, scope OrphanScope) (int64, error) {
	var total int64
	for _, m := range []any{&Tag{}, &Manifest{}, &Blob{}} {
		var n int64
		stmt := &gorm.Statement{DB: db}
		if err := stmt.Parse(m); err != nil {
			return 0, err
		}
		if err := orphanOf(db.Model(m), stmt.Table, scope).Count(&n).Error; err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// DeleteOrphans removes, in one transaction, the content units in scope that are in no
// repository version and that no unit kept still needs: tags first, then manifests that no
// kept tag names and no kept index lists (indexes before the manifests they list), then blobs
// that no kept manifest uses as config or layer and no repository holds pending (PendingBlob).
// A unit whose digest held reports in use is kept. Link rows and the remote artifacts of the
// removed blobs go with them. Bytes are the caller's: OrphanResult.Digests names the stored
// objects that lost their row.
func DeleteOrphans(db *gorm.DB, scope OrphanScope, held HeldFunc) (OrphanResult, error) {
	var res OrphanResult
	err := db.Transaction(func(tx *gorm.DB) error {
		res = OrphanResult{}
		n, err := deleteOrphanTags(tx, scope)
		if err != nil {
			return err
		}
		res.Deleted += n
		for {
			// Removing an index may free the manifests it listed: another round finds them.
			q := orphanOf(tx.Model(&Manifest{}), "manifests", scope).
				Where("NOT EXISTS (SELECT 1 FROM tags t WHERE t.tagged_manifest_id = manifests.id)").
				Where("NOT EXISTS (SELECT 1 FROM manifest_list_manifests l WHERE l.manifest_id = manifests.id)")
			n, err := removeUnheld(q, held, &res, func(batch []string) error {
				if err := tx.Where("manifest_id IN ?", batch).Delete(&ManifestBlob{}).Error; err != nil {
					return err
				}
				if err := tx.Where("manifest_list_id IN ?", batch).Delete(&ManifestListManifest{}).Error; err != nil {
					return err
				}
				return tx.Where("id IN ?", batch).Delete(&Manifest{}).Error
			})
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
		}
		q := orphanOf(tx.Model(&Blob{}), "blobs", scope).
			Where("NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.blob_id = blobs.id)").
			Where("NOT EXISTS (SELECT 1 FROM manifests m WHERE m.config_blob_id = blobs.id)").
			Where("NOT EXISTS (SELECT 1 FROM pending_blobs pb WHERE pb.blob_id = blobs.id)")
		_, err = removeUnheld(q, held, &res, func(batch []string) error {
			if err := tx.Where("blob_id IN ?", batch).Delete(&RemoteArtifact{}).Error; err != nil {
				return err
			}
			return tx.Where("id IN ?", batch).Delete(&Blob{}).Error
		})
		return err
	})
	return res, err
}

// deleteOrphanTags removes the tags in scope that are in no repository version.
func deleteOrphanTags(tx *gorm.DB, scope OrphanScope) (int64, error) {
	var ids []string
	if err := orphanOf(tx.Model(&Tag{}), "tags", scope).Pluck("id", &ids).Error; err != nil {
		return 0, err
	}
	err := inChunks(ids, func(batch []string) error { return tx.Where("id IN ?", batch).Delete(&Tag{}).Error })
	return int64(len(ids)), err
}

// removeUnheld deletes, with drop (which removes a batch of ids and their link rows), the rows
// q selects whose digest held does not report in use, and adds them to res. It returns how
// many went.
func removeUnheld(q *gorm.DB, held HeldFunc, res *OrphanResult, drop func(batch []string) error) (int, error) {
	var rows []struct{ ID, Digest string }
	if err := q.Select("id", "digest").Find(&rows).Error; err != nil || len(rows) == 0 {
		return 0, err
	}
	all := make([]string, 0, len(rows))
	for _, r := range rows {
		all = append(all, r.Digest)
	}
	inUse := map[string]bool{}
	if held != nil {
		var err error
		if inUse, err = held(all); err != nil {
			return 0, err
		}
	}
	var ids, digests []string
	for _, r := range rows {
		if !inUse[r.Digest] {
			ids, digests = append(ids, r.ID), append(digests, r.Digest)
		}
	}
	if err := inChunks(ids, drop); err != nil {
		return 0, err
	}
	res.Deleted += int64(len(ids))
	res.Digests = append(res.Digests, digests...)
	return len(ids), nil
}

// UnreferencedDigests returns those of digests that no blob or manifest row names (a row made
// again since the cleanup's transaction keeps its bytes).
func UnreferencedDigests(db *gorm.DB, digests []string) ([]string, error) {
	named := map[string]bool{}
	err := inChunks(digests, func(batch []string) error {
		var found, more []string
		if err := db.Model(&Blob{}).Where("digest IN ?", batch).Pluck("digest", &found).Error; err != nil {
			return err
		}
		if err := db.Model(&Manifest{}).Where("digest IN ?", batch).Pluck("digest", &more).Error; err != nil {
			return err
		}
		for _, d := range append(found, more...) {
			named[d] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range digests {
		if !named[d] {
			out = append(out, d)
		}
	}
	return out, nil
}

// touch sets the timestamp of interest of row id of table to now.
func touch(db *gorm.DB, table, id string) error {
	return db.Table(table).Where("id = ?", id).Update("timestamp_of_interest", Now()).Error
}

// TouchDigest sets the timestamp of interest of the blob and the manifest with digest to now
// when it is older than a minute: content served counts as used, so an orphan cleanup keeps
// it for its protection time.
func TouchDigest(db *gorm.DB, digest string) error {
	now := Now()
	for _, table := range []string{"blobs", "manifests"} {
		err := db.Table(table).Where("digest = ?", digest).
			Where("COALESCE(timestamp_of_interest, pulp_created) < ?", now.Add(-time.Minute)).
			Update("timestamp_of_interest", now).Error
		if err != nil {
			return err
		}
	}
	return nil
}
