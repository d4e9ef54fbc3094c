package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

// Pulp's names of the tasks that change a repository's content.
const (
	NameRecursiveAdd    = "pulp_container.app.tasks.recursive_add.recursive_add_content"
	NameRecursiveRemove = "pulp_container.app.tasks.recursive_remove.recursive_remove_content"
	NameTagImage        = "pulp_container.app.tasks.tag.tag_image"
	NameUntagImage      = "pulp_container.app.tasks.untag.untag_image"
)

// RemoveAllUnits, alone in ContentArgs.ContentUnits of a remove, removes every unit.
const RemoveAllUnits = "*"

// ContentArgs are the arguments of recursive_add_content and recursive_remove_content: the
// repository and the ids of the units named (already resolved and checked by the API).
type ContentArgs struct {
	RepositoryID string   `json:"repository_pk"`
	ContentUnits []string `json:"content_units"`
}

// TagArgs are the arguments of tag_image (ManifestID and Tag) and untag_image (Tag).
type TagArgs struct {
	RepositoryID string `json:"repository_pk"`
	ManifestID   string `json:"manifest_pk,omitempty"`
	Tag          string `json:"tag"`
}

// contentJobs are the jobs of this file, by task name.
func contentJobs() map[string]Job {
	return map[string]Job{
		NameRecursiveAdd:    recursiveAdd,
		NameRecursiveRemove: recursiveRemove,
		NameTagImage:        tagImage,
		NameUntagImage:      untagImage,
	}
}

// inRepository decodes t's arguments into args, then runs change on the repository they name
// (read-only repositories refused) in one transaction. It returns the hrefs of the new version
// and of what else change created.
func inRepository(db *gorm.DB, t *models.Task, args any, repoID func() string,
	change func(tx *gorm.DB, repo *models.Repository) (created []string, v *models.RepositoryVersion, err error)) ([]string, error) {
	if err := json.Unmarshal(t.Args, args); err != nil {
		return nil, fmt.Errorf("decode arguments of task %s: %w", t.ID, err)
	}
	var out []string
	err := db.Transaction(func(tx *gorm.DB) error {
		var repo models.Repository
		if err := tx.Take(&repo, "id = ?", repoID()).Error; err != nil {
			return fmt.Errorf("repository %s: %w", repoID(), err)
		}
		if err := repo.WritableCheck(); err != nil {
			return err
		}
		created, v, err := change(tx, &repo)
		if err != nil {
			return err
		}
		out = created
		if v != nil {
			out = append(out, repo.VersionHref(v.Number))
		}
		return nil
	})
	return out, err
}

// recursiveAdd adds units with everything they need to a new version (add, copy_tags,
// copy_manifests).
func recursiveAdd(_ context.Context, db *gorm.DB, t *models.Task) ([]string, any, error) {
	var a ContentArgs
	created, err := inRepository(db, t, &a, func() string { return a.RepositoryID },
		func(tx *gorm.DB, repo *models.Repository) ([]string, *models.RepositoryVersion, error) {
			v, err := models.RecursiveAdd(tx, repo, a.ContentUnits)
			if errors.Is(err, models.ErrDuplicateTags) {
				return nil, nil, fmt.Errorf("[PLP0022] Found duplicate contents in repository version(see the logs (cid=%s) for details): %w", t.LoggingCID, err)
			}
			return nil, v, err
		})
	return created, nil, err
}

// recursiveRemove removes units and what only they needed from a new version (remove,
// remove_image); ["*"] removes everything.
func recursiveRemove(_ context.Context, db *gorm.DB, t *models.Task) ([]string, any, error) {
	var a ContentArgs
	created, err := inRepository(db, t, &a, func() string { return a.RepositoryID },
		func(tx *gorm.DB, repo *models.Repository) ([]string, *models.RepositoryVersion, error) {
			if len(a.ContentUnits) == 1 && a.ContentUnits[0] == RemoveAllUnits {
				v, err := models.RemoveAll(tx, repo)
				return nil, v, err
			}
			v, err := models.RecursiveRemove(tx, repo, a.ContentUnits)
			return nil, v, err
		})
	return created, nil, err
}

// tagImage tags a manifest of the latest version; a tag created for it is a created resource,
// as in Pulp.
func tagImage(_ context.Context, db *gorm.DB, t *models.Task) ([]string, any, error) {
	var a TagArgs
	created, err := inRepository(db, t, &a, func() string { return a.RepositoryID },
		func(tx *gorm.DB, repo *models.Repository) ([]string, *models.RepositoryVersion, error) {
			tag, isNew, v, err := models.TagImage(tx, repo, a.Tag, a.ManifestID)
			if err != nil {
				return nil, nil, err
			}
			var created []string
			if isNew {
				created = append(created, tag.Href())
			}
			return created, v, nil
		})
	return created, nil, err
}

// untagImage removes a tag from a new version.
func untagImage(_ context.Context, db *gorm.DB, t *models.Task) ([]string, any, error) {
	var a TagArgs
	created, err := inRepository(db, t, &a, func() string { return a.RepositoryID },
		func(tx *gorm.DB, repo *models.Repository) ([]string, *models.RepositoryVersion, error) {
			v, err := models.Untag(tx, repo, a.Tag)
			return nil, v, err
		})
	return created, nil, err
}
