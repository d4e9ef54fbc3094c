package tasks

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

// DefaultEvictInterval is how often a worker measures the storage against its quota.
const DefaultEvictInterval = time.Minute

// evictRepositories bounds the repositories one evict task reserves.
const evictRepositories = 100

// TaskDispatcher dispatches tasks (Dispatcher).
type TaskDispatcher interface {
	Dispatch(ctx context.Context, nt models.NewTask) (*models.Task, error)
}

// Schedule measures the storage every interval (DefaultEvictInterval when zero) until ctx
// ends and, above the quota's high watermark with no evict task unfinished, dispatches one
// that reserves the pull-through repositories of the least recently pulled images (enough
// of them to store twice what is over the low watermark). Every worker runs
// it; the evict reservation keeps two tasks from running at once, and a task that finds the
// storage under the high watermark does nothing.
func (e *Eviction) Schedule(ctx context.Context, db *gorm.DB, d TaskDispatcher, interval time.Duration) {
	if e.quota.Bytes <= 0 {
		return
	}
	if interval <= 0 {
		interval = DefaultEvictInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := e.Check(ctx, db, d); err != nil && ctx.Err() == nil {
			e.log.Warn("checking the storage quota", "err", err)
		}
	}
}

// Check measures the storage once and dispatches an evict task when it is above the high
// watermark and none is unfinished; it returns the task dispatched, or nil.
func (e *Eviction) Check(ctx context.Context, db *gorm.DB, d TaskDispatcher) (*models.Task, error) {
	db = db.WithContext(ctx)
	used, err := e.Usage(ctx, db)
	if err != nil || used <= e.quota.HighBytes() {
		return nil, err
	}
	var running int64
	if err := db.Model(&models.Task{}).Where("name = ? AND state IN ?", NameEvict, models.IncompleteStates).
		Count(&running).Error; err != nil || running > 0 {
		return nil, err
	}
	cands, err := models.EvictionCandidates(db, nil, nil, evictBatch*4)
	if err != nil || len(cands) == 0 {
		return nil, err
	}
	var repos []string
	seen := map[string]bool{}
	var estimate int64
	for _, c := range cands {
		if !seen[c.RepositoryID] {
			if len(repos) == evictRepositories {
				break
			}
			seen[c.RepositoryID] = true
			repos = append(repos, c.RepositoryID)
		}
		_, n, err := imageOf(db, c)
		if err != nil {
			return nil, err
		}
		// Twice what is over the low watermark: shared and busy blobs free less than their size.
		if estimate += n; estimate >= 2*(used-e.quota.LowBytes()) {
			break
		}
	}
	exclusive := []string{evictResource, orphansResource}
	for _, id := range repos {
		exclusive = append(exclusive, models.KindContainerRepository.PRNOf(id))
	}
	e.log.Info("storage above its quota's high watermark: evicting", "used", used, "quota", e.quota.Bytes,
		"repositories", len(repos))
	return d.Dispatch(ctx, models.NewTask{Name: NameEvict, Exclusive: exclusive, Args: EvictArgs{RepositoryIDs: repos}})
}
