package tasks

import (
	"context"
	"encoding/json"
	"fmt"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

func objectArgs(t *models.Task) (ObjectArgs, models.Kind, error) {
	var a ObjectArgs
	if err := json.Unmarshal(t.Args, &a); err != nil {
		return a, models.Kind{}, fmt.Errorf("decode arguments of task %s: %w", t.ID, err)
	}
	k, ok := models.KindByName(a.Kind)
	if !ok {
		return a, k, fmt.Errorf("task %s: unknown object kind %q", t.ID, a.Kind)
	}
	return a, k, nil
}

// generalCreate creates an object (distributions are created this way, as in Pulp).
func generalCreate(_ context.Context, db *gorm.DB, t *models.Task) ([]string, any, error) {
	a, k, err := objectArgs(t)
	if err != nil {
		return nil, nil, err
	}
	var obj models.Object
	if err := db.Transaction(func(tx *gorm.DB) error {
		obj, err = models.Create(tx, k, a.Values)
		return err
	}); err != nil {
		return nil, nil, err
	}
	result, err := obj.Serialize(db, "")
	return []string{obj.Href()}, result, err
}

// generalUpdate applies validated changes to an object.
func generalUpdate(_ context.Context, db *gorm.DB, t *models.Task) ([]string, any, error) {
	a, k, err := objectArgs(t)
	if err != nil {
		return nil, nil, err
	}
	var obj models.Object
	if err := db.Transaction(func(tx *gorm.DB) error {
		obj, err = models.Update(tx, k, a.ID, a.Values)
		return err
	}); err != nil {
		return nil, nil, err
	}
	result, err := obj.Serialize(db, "")
	return nil, result, err
}

// generalDelete deletes an object with Pulp's cascades.
func generalDelete(_ context.Context, db *gorm.DB, t *models.Task) ([]string, any, error) {
	a, k, err := objectArgs(t)
	if err != nil {
		return nil, nil, err
	}
	return nil, nil, db.Transaction(func(tx *gorm.DB) error { return models.Delete(tx, k, a.ID) })
}

// deleteVersion deletes one repository version.
func deleteVersion(_ context.Context, db *gorm.DB, t *models.Task) ([]string, any, error) {
	var a VersionArgs
	if err := json.Unmarshal(t.Args, &a); err != nil {
		return nil, nil, fmt.Errorf("decode arguments of task %s: %w", t.ID, err)
	}
	return nil, nil, db.Transaction(func(tx *gorm.DB) error {
		var repo models.Repository
		if err := tx.Take(&repo, "id = ?", a.RepositoryID).Error; err != nil {
			return fmt.Errorf("repository %s: %w", a.RepositoryID, err)
		}
		return models.DeleteVersion(tx, &repo, a.Number)
	})
}
