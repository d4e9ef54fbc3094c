package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/models"
)

// servePush answers the writes of a repository (the caller may push to rt.name: ServeHTTP
// checked): blob uploads, manifest pushes and deletes.
func (r *Registry) servePush(w http.ResponseWriter, req *http.Request, rt route, c caller) {
	var err error
	switch {
	case rt.kind == routeUpload:
		err = r.serveUpload(w, req, rt, c)
	case rt.kind == routeManifest && req.Method == http.MethodPut:
		err = r.putManifest(w, req, rt)
	case rt.kind == routeManifest && req.Method == http.MethodDelete:
		err = r.deleteManifest(w, req, rt)
	case rt.kind == routeBlob && req.Method == http.MethodDelete:
		err = r.deleteBlob(w, req, rt)
	default:
		err = unsupported(w, rt)
	}
	if err != nil {
		r.writeError(w, req, err)
	}
}

// pushTarget returns the distribution and repository a push to name writes to, creating them
// (with the namespace) when create is set and nothing is distributed at name yet; a name the
// pull-through cache serves is read-only, and without create a missing one is NAME_UNKNOWN.
func (r *Registry) pushTarget(ctx context.Context, name string, create bool) (*models.PushTarget, error) {
	var t *models.PushTarget
	err := r.cfg.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		t, err = models.FindPushTarget(tx, name, create)
		return err
	})
	switch {
	case errors.Is(err, models.ErrReadOnly):
		return nil, oci.ErrReadOnly.WithDetail("name", name)
	case errors.Is(err, models.ErrNoPushTarget):
		return nil, oci.ErrNameUnknown.WithDetail("name", name)
	case err != nil && create:
		// Two first pushes to one name at once: one created it, the other finds it.
		if t2, err2 := r.pushTarget(ctx, name, false); err2 == nil {
			return t2, nil
		}
		return nil, fmt.Errorf("push target %s: %w", name, err)
	case err != nil:
		return nil, fmt.Errorf("push target %s: %w", name, err)
	}
	if t.Created {
		r.names.forget(name)
		r.log.Info("created a repository and distribution for a push", "repo", name)
	}
	return t, nil
}

// Names of the immediate tasks that record pushes and deletes, as Pulp names them.
const (
	taskAddAndRemove    = "pulpcore.app.tasks.repository.aadd_and_remove"
	taskRecursiveRemove = "pulp_container.app.tasks.recursive_remove_content"
)

// changeRepository runs fn on the latest state of repository target (distributed at path) in a
// transaction, as an
// immediate task named name reserving the repository (Pulp's immediate add_and_remove), so
// that it never makes a version at the same time as a task on the same repository.
func (r *Registry) changeRepository(ctx context.Context, name, path string, target *models.Repository, fn func(tx *gorm.DB, repo *models.Repository) (*models.RepositoryVersion, error)) error {
	repoID := target.ID
	nt := models.NewTask{Name: name, Exclusive: []string{target.Kind().PRNOf(repoID)}, App: r.appID()}
	// The cached resolution names the version served before the change: this process serves
	// the new one at once (others within the resolve TTL).
	defer r.names.forget(path)
	return models.RunImmediate(ctx, r.cfg.DB, nt, func(tx *gorm.DB) ([]string, error) {
		var repo models.Repository
		if err := tx.Take(&repo, "id = ?", repoID).Error; err != nil {
			return nil, fmt.Errorf("repository %s: %w", repoID, err)
		}
		v, err := fn(tx, &repo)
		if err != nil || v == nil {
			return nil, err
		}
		return []string{repo.VersionHref(v.Number)}, nil
	})
}
