package models

import (
	"errors"

	"gorm.io/gorm"
)

// PushTarget is where a push to a repository name goes: the container distribution whose base
// path is the name and the repository it serves.
type PushTarget struct {
	Distribution *Distribution
	Repository   *Repository
	// Created says that this call created the distribution (and maybe the namespace and the
	// repository).
	Created bool
}

// ErrNoPushTarget is returned by FindPushTarget when nothing is distributed at the name.
var ErrNoPushTarget = errors.New("no distribution to push to")

// FindPushTarget returns the distribution and repository a push to path writes to. With
// create, a path without a distribution gets one, as pulp_container 2.29 does on a push: the
// namespace named after the first path segment, a container repository named path (an
// existing container or push repository of that name is reused), and a container distribution
// with name and base path path, guarded by the default content guard; a distribution without a
// repository gets one. Paths served by the pull-through cache (a pull-through distribution,
// its children, a name below one, a repository of the cache) and distributions of a pinned
// version fail with ErrReadOnly; without create, a missing distribution fails with
// ErrNoPushTarget. tx should be a transaction.
func FindPushTarget(tx *gorm.DB, path string, create bool) (*PushTarget, error) {
	var d Distribution
	err := tx.Take(&d, "base_path = ?", path).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		if !create {
			return nil, ErrNoPushTarget
		}
		return createPushTarget(tx, path)
	case err != nil:
		return nil, err
	}
	if d.Kind() == KindPullThroughDist || d.PullThroughID != nil || d.RepositoryVersionID != nil {
		return nil, ErrReadOnly
	}
	if d.RepositoryID == nil {
		if !create {
			return nil, ErrNoPushTarget
		}
		repo, err := pushRepository(tx, path)
		if err != nil {
			return nil, err
		}
		if err := tx.Model(&d).Updates(map[string]any{"repository_id": repo.ID, "pulp_last_updated": Now()}).Error; err != nil {
			return nil, err
		}
		d.RepositoryID = &repo.ID
		return &PushTarget{Distribution: &d, Repository: repo}, nil
	}
	var repo Repository
	if err := tx.Take(&repo, "id = ?", *d.RepositoryID).Error; err != nil {
		return nil, err
	}
	if repo.PullThrough {
		return nil, ErrReadOnly
	}
	return &PushTarget{Distribution: &d, Repository: &repo}, nil
}

// createPushTarget creates the namespace, repository and distribution of a first push to path.
func createPushTarget(tx *gorm.DB, path string) (*PushTarget, error) {
	if pt, err := PullThroughAbove(tx, path, ""); err != nil {
		return nil, err
	} else if pt != "" {
		return nil, ErrReadOnly
	}
	repo, err := pushRepository(tx, path)
	if err != nil {
		return nil, err
	}
	ns, err := EnsureNamespace(tx, path)
	if err != nil {
		return nil, err
	}
	guard, err := EnsureDefaultContentGuard(tx)
	if err != nil {
		return nil, err
	}
	now := Now()
	d := &Distribution{ID: NewID(), PulpType: KindContainerDistribution.PulpType, PulpCreated: now,
		PulpLastUpdated: now, Name: path, BasePath: path, RepositoryID: &repo.ID, PulpLabels: Labels{},
		NamespaceID: &ns, ContentGuardID: &guard}
	if err := tx.Create(d).Error; err != nil {
		return nil, err
	}
	return &PushTarget{Distribution: d, Repository: repo, Created: true}, nil
}

// pushRepository returns the repository named path for a push: an existing container or push
// repository of that name, or a new container repository. A repository of the pull-through
// cache is ErrReadOnly.
func pushRepository(tx *gorm.DB, path string) (*Repository, error) {
	var repo Repository
	err := tx.Take(&repo, "name = ?", path).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		repo = Repository{PulpType: KindContainerRepository.PulpType, Name: path}
		return &repo, CreateRepository(tx, &repo)
	case err != nil:
		return nil, err
	case repo.PullThrough:
		return nil, ErrReadOnly
	}
	return &repo, nil
}

// BlobIDInVersion returns the id of the blob digest in version n of repository repoID, ""
// when the version does not hold it.
func BlobIDInVersion(db *gorm.DB, repoID string, n int64, digest string) (string, error) {
	var ids []string
	err := db.Model(&Blob{}).Where("digest = ? AND id IN (?)", digest,
		PresentIn(db.Model(&RepositoryContent{}).Select("content_id"), repoID, n)).Limit(1).Pluck("id", &ids).Error
	if err != nil || len(ids) == 0 {
		return "", err
	}
	return ids[0], nil
}

// Referrers returns the manifests in version n of repository repoID whose subject is digest,
// of artifactType when it is not empty, by digest.
func Referrers(db *gorm.DB, repoID string, n int64, digest, artifactType string) ([]Manifest, error) {
	q := db.Where("subject_digest = ? AND id IN (?)", digest,
		PresentIn(db.Model(&RepositoryContent{}).Select("content_id"), repoID, n))
	if artifactType != "" {
		q = q.Where("artifact_type = ?", artifactType)
	}
	var ms []Manifest
	return ms, q.Order("digest").Find(&ms).Error
}
