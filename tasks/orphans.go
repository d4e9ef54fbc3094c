package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
)

// NameOrphanCleanup is Pulp's name of the orphan cleanup task.
const NameOrphanCleanup = "pulpcore.app.tasks.orphan.orphan_cleanup"

// OrphanArgs are the arguments of orphan_cleanup, as Pulp names them: the content ids to
// limit the cleanup to (null: every unit) and the protection time in minutes.
type OrphanArgs struct {
	ContentIDs           []string `json:"content_pks"`
	OrphanProtectionTime int64    `json:"orphan_protection_time"`
}

// Holds says which stored blobs are being read at this moment (content/inuse.Tracker).
type Holds interface {
	Held(ctx context.Context, digests []string) (map[string]bool, error)
}

// OrphanCleanupJob returns the orphan_cleanup job: it removes the content in no repository
// version whose timestamp of interest is older than the protection time (and that no kept
// unit needs), then the stored bytes of the blobs and manifests removed. A blob that holds
// reports in use keeps its row and bytes; one whose reading began between the two steps keeps
// its bytes (without a row: the next pull through the cache records it again). Its progress
// reports are Pulp's "Clean up orphan Content" and "Clean up orphan Artifacts".
func OrphanCleanupJob(store storage.Driver, holds Holds) Job {
	return func(ctx context.Context, db *gorm.DB, t *models.Task) ([]string, any, error) {
		var a OrphanArgs
		if err := json.Unmarshal(t.Args, &a); err != nil {
			return nil, nil, fmt.Errorf("decode arguments of task %s: %w", t.ID, err)
		}
		scope := models.OrphanScope{Expiration: models.OrphanExpiration(models.Now(), a.OrphanProtectionTime), ContentIDs: a.ContentIDs}
		held := func(digests []string) (map[string]bool, error) {
			if holds == nil {
				return map[string]bool{}, nil
			}
			return holds.Held(ctx, digests)
		}
		progress := models.NewProgress(db, t.ID)
		fail := func(err error) ([]string, any, error) {
			progress.Fail()
			return nil, nil, err
		}
		total, err := models.CountOrphans(db, scope)
		if err != nil {
			return fail(err)
		}
		content := progress.Bar("Clean up orphan Content", "clean-up.content", &total)
		res, err := models.DeleteOrphans(db, scope, held)
		if err != nil {
			return fail(err)
		}
		content.FinishAt(res.Deleted)

		digests, err := models.UnreferencedDigests(db, res.Digests)
		if err != nil {
			return fail(err)
		}
		n := int64(len(digests))
		artifacts := progress.Bar("Clean up orphan Artifacts", "clean-up.artifacts", &n)
		if _, err := deleteStored(ctx, store, digests, held, artifacts.Add); err != nil {
			return fail(err)
		}
		// The pull times of content that no longer exists (a later pull writes them anew).
		if err := models.ForgetLastPulls(db, digests); err != nil {
			return fail(err)
		}
		artifacts.Finish()
		return nil, nil, nil
	}
}

// deleteStored deletes the stored bytes of those of digests (which no row names any more,
// models.UnreferencedDigests) that held does not report in use, calling done(1) for each;
// it returns the bytes it freed.
func deleteStored(ctx context.Context, store storage.Driver, digests []string, held models.HeldFunc, done func(int64)) (int64, error) {
	inUse, err := held(digests)
	if err != nil {
		return 0, err
	}
	var freed int64
	for _, d := range digests {
		if inUse[d] {
			continue
		}
		p, err := storage.BlobPath(d)
		if err != nil {
			continue
		}
		var nf *storage.PathNotFoundError
		info, err := store.Stat(ctx, p)
		if err != nil && !errors.As(err, &nf) {
			return freed, fmt.Errorf("stat stored %s: %w", d, err)
		}
		if err := store.Delete(ctx, p); err != nil && !errors.As(err, &nf) {
			return freed, fmt.Errorf("delete stored %s: %w", d, err)
		}
		freed += info.Size
		done(1)
	}
	return freed, nil
}
