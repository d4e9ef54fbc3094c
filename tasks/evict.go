package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
)

// NameEvict is the name of the task that evicts the least recently pulled images of
// pull-through repositories while the storage is above its quota's high watermark.
const NameEvict = "pulpgo.app.tasks.evict"

// evictResource is reserved exclusively by every evict task: never two at once.
const evictResource = "pdrn:" + models.DefaultDomainID + ":evict"

// orphansResource is the reservation of orphan cleanups (server/orphans.go), which an evict
// task's own cleanup shares.
const orphansResource = "pdrn:" + models.DefaultDomainID + ":orphans"

// Quota is a storage quota: above High × Bytes stored, images are evicted until Low × Bytes.
type Quota struct {
	// Bytes is the quota; zero means none.
	Bytes int64
	// High and Low are the watermarks, fractions of Bytes (High above Low).
	High, Low float64
}

// HighBytes is the stored size above which eviction starts.
func (q Quota) HighBytes() int64 { return int64(float64(q.Bytes) * q.High) }

// LowBytes is the stored size eviction brings the storage down to.
func (q Quota) LowBytes() int64 { return int64(float64(q.Bytes) * q.Low) }

// EvictArgs are the arguments of an evict task: the pull-through repositories it reserved,
// and may remove images from.
type EvictArgs struct {
	RepositoryIDs []string `json:"repository_ids"`
}

// EvictResult is the result of an evict task, shown in the task.
type EvictResult struct {
	UsedBefore  int64 `json:"used_before"`
	UsedAfter   int64 `json:"used_after"`
	QuotaBytes  int64 `json:"quota"`
	Images      int64 `json:"images_evicted"`
	BytesFreed  int64 `json:"bytes_freed"`
	ContentGone int64 `json:"content_removed"`
}

// Filling says which blobs are being filled at this moment (their bytes are arriving; the
// content app's content.Filling).
type Filling interface {
	Filling(ctx context.Context, digests []string) (map[string]bool, error)
}

// EvictionStats are the counters of a process's evictions, for the metrics.
type EvictionStats struct {
	// ImagesEvicted and BytesFreed count since the process started.
	ImagesEvicted int64
	BytesFreed    int64
	// Runs counts evict tasks run; LastRun is when the last one finished (zero: none yet).
	Runs    int64
	LastRun time.Time
	// UsedBytes is the storage's size at the last measure, QuotaBytes the quota.
	UsedBytes  int64
	QuotaBytes int64
}

// Eviction keeps one process's quota, its measure of the storage and its counters: the
// evict job and its schedule share it.
type Eviction struct {
	quota   Quota
	store   storage.Driver
	holds   Holds
	filling Filling
	log     *slog.Logger

	mu    sync.Mutex
	stats EvictionStats
}

// NewEviction returns the eviction of quota over store; holds and filling (either may be
// nil) name the blobs that must stay because they are being read or filled.
func NewEviction(quota Quota, store storage.Driver, holds Holds, filling Filling, logger *slog.Logger) *Eviction {
	if logger == nil {
		logger = slog.Default()
	}
	return &Eviction{quota: quota, store: store, holds: holds, filling: filling, log: logger,
		stats: EvictionStats{QuotaBytes: quota.Bytes}}
}

// Stats returns a copy of the counters.
func (e *Eviction) Stats() EvictionStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// Usage measures the storage: the driver's own measure (storage.Usager), or else the sizes
// of the blobs and manifests recorded in db.
func (e *Eviction) Usage(ctx context.Context, db *gorm.DB) (int64, error) {
	var used int64
	var err error
	if u, ok := e.store.(storage.Usager); ok {
		used, err = u.Usage(ctx)
	} else {
		used, err = models.ContentBytes(db)
	}
	if err != nil {
		return 0, err
	}
	e.mu.Lock()
	e.stats.UsedBytes = used
	e.mu.Unlock()
	return used, nil
}

// held reports which of digests are read or filled at this moment.
func (e *Eviction) held(ctx context.Context) models.HeldFunc {
	var sources []func(context.Context, []string) (map[string]bool, error)
	if e.holds != nil {
		sources = append(sources, e.holds.Held)
	}
	if e.filling != nil {
		sources = append(sources, e.filling.Filling)
	}
	return func(digests []string) (map[string]bool, error) {
		out := map[string]bool{}
		for _, src := range sources {
			got, err := src(ctx, digests)
			if err != nil {
				return nil, err
			}
			for d := range got {
				out[d] = true
			}
		}
		return out, nil
	}
}

// evictBatch is how many candidates one round of eviction looks at.
const evictBatch = 50

// Job returns the evict job. It measures the storage; above the high watermark it takes the
// images of the reserved pull-through repositories least recently pulled first, removes
// each (its tags, manifests and what only they need) in a new version of its repository,
// then runs an orphan cleanup of exactly those units with no protection time, so that their
// bytes go now; it stops under the low watermark or when nothing is left to evict. Content
// still in any repository version, pending pushed blobs, and blobs read or filled at this
// moment stay (models.DeleteOrphans checks in its transaction). Its progress reports are
// "Evicting images" and "Freeing storage" (bytes).
func (e *Eviction) Job() Job {
	return func(ctx context.Context, db *gorm.DB, t *models.Task) ([]string, any, error) {
		var a EvictArgs
		if err := json.Unmarshal(t.Args, &a); err != nil {
			return nil, nil, fmt.Errorf("decode arguments of task %s: %w", t.ID, err)
		}
		progress := models.NewProgress(db, t.ID)
		created, res, err := e.run(ctx, db, a, progress)
		e.mu.Lock()
		e.stats.Runs++
		e.stats.LastRun = time.Now()
		e.stats.ImagesEvicted += res.Images
		e.stats.BytesFreed += res.BytesFreed
		e.mu.Unlock()
		if err != nil {
			progress.Fail()
			return created, res, err
		}
		e.log.Info("evicted images", "task", t.ID, "images", res.Images, "bytes_freed", res.BytesFreed,
			"used", res.UsedAfter, "quota", res.QuotaBytes)
		return created, res, nil
	}
}

func (e *Eviction) run(ctx context.Context, db *gorm.DB, a EvictArgs, progress *models.Progress) ([]string, EvictResult, error) {
	res := EvictResult{QuotaBytes: e.quota.Bytes}
	used, err := e.Usage(ctx, db)
	if err != nil {
		return nil, res, err
	}
	res.UsedBefore, res.UsedAfter = used, used
	need := max(used-e.quota.LowBytes(), 0)
	if e.quota.Bytes <= 0 || used <= e.quota.HighBytes() {
		need = 0
	}
	images := progress.Bar("Evicting images", "evict.images", nil)
	bytes := progress.Bar("Freeing storage (bytes)", "evict.bytes", &need)
	var created []string
	var tried []string
	for used > e.quota.LowBytes() && need > 0 {
		cands, err := models.EvictionCandidates(db, a.RepositoryIDs, tried, evictBatch)
		if err != nil {
			return created, res, err
		}
		if len(cands) == 0 {
			break
		}
		// Take the least recently pulled images until their bytes would cover what is over
		// the low watermark (shared blobs free less: the next round takes more).
		var round []models.EvictionCandidate
		var units [][]models.ContentRef
		var estimate int64
		for _, c := range cands {
			tried = append(tried, c.ManifestID)
			u, n, err := imageOf(db, c)
			if err != nil {
				return created, res, err
			}
			round, units, estimate = append(round, c), append(units, u), estimate+n
			if used-estimate <= e.quota.LowBytes() {
				break
			}
		}
		hrefs, err := removeImages(db, round, units)
		created = append(created, hrefs...)
		if err != nil {
			return created, res, err
		}
		res.Images += int64(len(round))
		images.Add(int64(len(round)))
		var ids []string
		for _, u := range units {
			for _, c := range u {
				ids = append(ids, c.ID)
			}
		}
		cleaned, err := models.DeleteOrphans(db, models.OrphanScope{Expiration: models.Now(), ContentIDs: ids}, e.held(ctx))
		if err != nil {
			return created, res, err
		}
		res.ContentGone += cleaned.Deleted
		unnamed, err := models.UnreferencedDigests(db, cleaned.Digests)
		if err != nil {
			return created, res, err
		}
		freed, err := deleteStored(ctx, e.store, unnamed, e.held(ctx), func(int64) {})
		used -= freed
		res.BytesFreed += freed
		res.UsedAfter = used
		bytes.Add(freed)
		if err != nil {
			return created, res, err
		}
		if err := models.ForgetLastPulls(db, unnamed); err != nil {
			return created, res, err
		}
	}
	images.Finish()
	bytes.Finish()
	if res.Images > 0 {
		// Measured again: what the rounds subtracted misses what others wrote meanwhile.
		if after, err := e.Usage(ctx, db); err == nil {
			res.UsedAfter = after
		}
	}
	return created, res, nil
}

// imageOf returns the content units of candidate c in its repository's latest version and
// the bytes they store (what evicting it frees at most).
func imageOf(db *gorm.DB, c models.EvictionCandidate) ([]models.ContentRef, int64, error) {
	var repo models.Repository
	if err := db.Take(&repo, "id = ?", c.RepositoryID).Error; err != nil {
		return nil, 0, fmt.Errorf("repository %s: %w", c.RepositoryID, err)
	}
	units, err := models.ImageUnits(db, &repo, repo.LatestNumber, c.ManifestID)
	if err != nil {
		return nil, 0, err
	}
	n, err := models.ImageBytes(db, units)
	return units, n, err
}

// removeImages removes each image of round (its units) from its repository, one new version
// per repository that is then its only one, and returns the hrefs of the versions made (the
// content rows go in the orphan cleanup that follows).
func removeImages(db *gorm.DB, round []models.EvictionCandidate, units [][]models.ContentRef) ([]string, error) {
	var hrefs []string
	byRepo := map[string][]string{}
	var order []string
	for i, c := range round {
		if _, ok := byRepo[c.RepositoryID]; !ok {
			order = append(order, c.RepositoryID)
		}
		for _, u := range units[i] {
			byRepo[c.RepositoryID] = append(byRepo[c.RepositoryID], u.ID)
		}
	}
	for _, id := range order {
		err := db.Transaction(func(tx *gorm.DB) error {
			var repo models.Repository
			if err := tx.Take(&repo, "id = ?", id).Error; err != nil {
				return fmt.Errorf("repository %s: %w", id, err)
			}
			if !repo.PullThrough {
				return fmt.Errorf("repository %s is not a pull-through repository", repo.Name)
			}
			v, err := models.RecursiveRemove(tx, &repo, byRepo[id])
			if err != nil {
				return fmt.Errorf("remove evicted images from %s: %w", repo.Name, err)
			}
			if v == nil {
				return nil
			}
			hrefs = append(hrefs, repo.VersionHref(v.Number))
			// The evicted units must be in no version to be freed: the cache keeps one version
			// (retain_repo_versions 1), and older ones left by another setting go too.
			var older []int64
			if err := tx.Model(&models.RepositoryVersion{}).Where("repository_id = ? AND number < ?", repo.ID, v.Number).
				Order("number").Pluck("number", &older).Error; err != nil {
				return err
			}
			for _, n := range older {
				if err := models.DeleteVersion(tx, &repo, n); err != nil {
					return fmt.Errorf("delete version %d of %s: %w", n, repo.Name, err)
				}
			}
			return nil
		})
		if err != nil {
			return hrefs, err
		}
	}
	return hrefs, nil
}
