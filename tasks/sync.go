package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
)

// NameSync is Pulp's name of the repository sync task.
const NameSync = "pulp_container.app.tasks.synchronize.synchronize"

// SyncArgs are the arguments of synchronize.
type SyncArgs struct {
	RepositoryID string `json:"repository_id"`
	RemoteID     string `json:"remote_id"`
	Mirror       bool   `json:"mirror"`
	SignedOnly   bool   `json:"signed_only"`
}

// Syncer is the upstream side of a sync (content/reposync implements it): it walks the
// remote's upstream repository, stores what it finds, and reports it.
type Syncer interface {
	Sync(ctx context.Context, req models.SyncRequest, progress *models.Progress) (*models.SyncResult, error)
}

// Progress report names and codes of the version a sync makes, as pulpcore names them.
const (
	msgAssociating   = "Associating Content"
	codeAssociating  = "associating.content"
	msgUnassociating = "Un-Associating Content"
	codeUnassocating = "unassociating.content"
)

// SyncJob returns the synchronize job: syncer fetches what the remote's upstream holds into
// store, then one transaction records it as manifest, blob and tag content of a new version
// of the repository (none when nothing changed), with the remote artifacts of the blobs it
// did not download. A failed sync changes no version.
// It logs what each sync took to logger (nil: slog.Default()).
func SyncJob(store storage.Driver, syncer Syncer, logger *slog.Logger) Job {
	if logger == nil {
		logger = slog.Default()
	}
	return func(ctx context.Context, db *gorm.DB, t *models.Task) ([]string, any, error) {
		var a SyncArgs
		if err := json.Unmarshal(t.Args, &a); err != nil {
			return nil, nil, fmt.Errorf("decode arguments of task %s: %w", t.ID, err)
		}
		var repo models.Repository
		if err := db.Take(&repo, "id = ?", a.RepositoryID).Error; err != nil {
			return nil, nil, fmt.Errorf("repository %s: %w", a.RepositoryID, err)
		}
		var remote models.Remote
		if err := db.Take(&remote, "id = ?", a.RemoteID).Error; err != nil {
			return nil, nil, fmt.Errorf("remote %s: %w", a.RemoteID, err)
		}
		held, err := models.TagDigestsInVersion(db, &repo, repo.LatestNumber)
		if err != nil {
			return nil, nil, err
		}
		progress := models.NewProgress(db, t.ID)
		began := time.Now()
		walkCtx, stop := whileNotCanceled(ctx, db, t.ID)
		found, err := syncer.Sync(walkCtx, models.SyncRequest{Remote: &remote, Held: held}, progress)
		stop()
		if err != nil {
			progress.Fail()
			return nil, nil, fmt.Errorf("sync of repository %s from remote %s failed: %w", repo.Name, remote.Name, err)
		}
		walked := time.Now()
		var created []string
		var result any
		var ch models.SyncChange
		err = db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Take(&repo, "id = ?", a.RepositoryID).Error; err != nil {
				return fmt.Errorf("repository %s: %w", a.RepositoryID, err)
			}
			add, err := recordSynced(ctx, tx, store, found)
			if err != nil {
				return err
			}
			v, change, err := models.SyncVersion(tx, &repo, add, a.Mirror)
			ch = change
			if err != nil {
				return err
			}
			if v != nil {
				created = append(created, repo.VersionHref(v.Number))
				if result, err = models.SerializeVersion(tx, &repo, v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			progress.Fail()
			return nil, nil, fmt.Errorf("record the sync of repository %s from remote %s: %w", repo.Name, remote.Name, err)
		}
		// Written once the version is committed: on SQLite the task row cannot be written
		// while the transaction holds the database.
		progress.Bar(msgAssociating, codeAssociating, nil).FinishAt(ch.Added)
		if a.Mirror {
			progress.Bar(msgUnassociating, codeUnassocating, nil).FinishAt(ch.Removed)
		}
		logger.Info("repository synced", "task", t.ID, "repository", repo.Name, "remote", remote.Name,
			"tags", len(found.Tags), "added", ch.Added, "removed", ch.Removed, "deferred", len(found.Deferred),
			"walk", walked.Sub(began).Round(time.Millisecond), "record", time.Since(walked).Round(time.Millisecond))
		return created, result, nil
	}
}

// recordSynced turns what a sync found into content (stored manifests become manifest and
// blob content as pulled ones do; tags their tag content) and records the remote artifacts
// of deferred blobs. It returns the content of the synced state, each unit once.
func recordSynced(ctx context.Context, tx *gorm.DB, store storage.Driver, found *models.SyncResult) ([]models.ContentRef, error) {
	r := newRecording(ctx, tx, store)
	digests := make([]string, 0, len(found.Tags)+len(found.Digests))
	for _, tg := range found.Tags {
		digests = append(digests, tg.Digest)
	}
	digests = append(digests, found.Digests...)
	if err := r.prefetch(digests); err != nil {
		return nil, err
	}
	keys := make([]models.TagKey, 0, len(found.Tags))
	for _, tg := range found.Tags {
		id, err := r.manifest(tg.Digest)
		if err != nil {
			return nil, err
		}
		keys = append(keys, models.TagKey{Name: tg.Name, ManifestID: id})
	}
	for _, d := range found.Digests {
		if _, err := r.manifest(d); err != nil {
			return nil, err
		}
	}
	tags, err := models.GetOrCreateTags(tx, keys)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		id, ok := tags[k]
		if !ok {
			return nil, fmt.Errorf("tag %s of manifest %s was not recorded", k.Name, k.ManifestID)
		}
		r.addRef(models.ContentRef{Type: models.KindTag.PulpType, ID: id})
	}
	if len(found.Deferred) > 0 {
		digests := make([]string, len(found.Deferred))
		for i, ra := range found.Deferred {
			digests[i] = ra.Digest
		}
		ids, err := models.BlobIDsByDigest(tx, digests)
		if err != nil {
			return nil, err
		}
		ras := make([]models.RemoteArtifact, 0, len(found.Deferred))
		for _, ra := range found.Deferred {
			if id, ok := ids[ra.Digest]; ok {
				ra.BlobID = id
				ras = append(ras, ra)
			}
		}
		if err := models.RecordRemoteArtifacts(tx, ras); err != nil {
			return nil, err
		}
	}
	return r.add, nil
}

// cancelPoll is how often a running sync looks whether its task is being canceled.
const cancelPoll = 250 * time.Millisecond

// whileNotCanceled returns a context that ends with ctx or once task id is being canceled
// (PATCH {"state": "canceled"} on a running task), so that a long sync stops downloading; stop
// releases it.
func whileNotCanceled(ctx context.Context, db *gorm.DB, id string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(cancelPoll)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				var cur models.Task
				if err := db.Select("state").Take(&cur, "id = ?", id).Error; err == nil && cur.State == models.TaskCanceling {
					cancel(errCanceled)
					return
				}
			}
		}
	}()
	return ctx, func() { close(done); cancel(nil) }
}

// errCanceled is why a sync whose task was canceled stopped.
var errCanceled = errors.New("the task was canceled")
