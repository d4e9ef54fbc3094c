package pullthrough

import (
	"context"
	"sync"
	"time"

	"github.com/pulpgo/pulpgo/models"
)

// tagState is what this process knows of a tag of a pulled image: the digest it points to
// and when the upstream last confirmed it.
type tagState struct {
	digest  string
	checked time.Time
}

// tagStates are the tags this process has seen, by repository and tag. Tags recorded by other
// processes are found in the database.
type tagStates struct {
	// keep is how long a state is worth more than the database's answer: the freshness window,
	// and the time its recording takes. Older states are dropped when the map is full.
	keep time.Duration
	mu   sync.RWMutex
	m    map[string]tagState
}

// tagLimit bounds the tag states kept in memory.
var tagLimit = 10000

func newTagStates(freshness time.Duration) *tagStates {
	return &tagStates{keep: max(freshness, time.Minute), m: map[string]tagState{}}
}

func tagKey(repoID, tag string) string { return repoID + "|" + tag }

func (t *tagStates) get(repoID, tag string) (tagState, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s, ok := t.m[tagKey(repoID, tag)]
	return s, ok
}

func (t *tagStates) set(repoID, tag string, s tagState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= tagLimit {
		horizon := time.Now().Add(-t.keep)
		for k, old := range t.m {
			if old.checked.Before(horizon) {
				delete(t.m, k)
			}
		}
		if len(t.m) >= tagLimit {
			clear(t.m)
		}
	}
	t.m[tagKey(repoID, tag)] = s
}

func (t *tagStates) names(repoID string) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []string
	prefix := repoID + "|"
	for k := range t.m {
		if len(k) > len(prefix) && k[:len(prefix)] == prefix {
			out = append(out, k[len(prefix):])
		}
	}
	return out
}

// recordedTag looks a tag up in the latest version of the repository.
func (c *Cache) recordedTag(ctx context.Context, repoID, tag string) (string, bool) {
	db := c.cfg.DB.WithContext(ctx)
	var repo models.Repository
	if err := db.Select("id", "latest_number").Take(&repo, "id = ?", repoID).Error; err != nil {
		return "", false
	}
	members := models.PresentIn(db.Model(&models.RepositoryContent{}).Select("content_id"), repo.ID, repo.LatestNumber)
	var digests []string
	err := db.Model(&models.Tag{}).Joins("JOIN manifests ON manifests.id = tags.tagged_manifest_id").
		Where("tags.name = ? AND tags.id IN (?)", tag, members).Limit(1).Pluck("manifests.digest", &digests).Error
	if err != nil || len(digests) == 0 {
		return "", false
	}
	return digests[0], true
}

// recordedTags lists the tags in the latest version of the repository.
func (c *Cache) recordedTags(ctx context.Context, repoID string) ([]string, error) {
	db := c.cfg.DB.WithContext(ctx)
	var repo models.Repository
	if err := db.Select("id", "latest_number").Take(&repo, "id = ?", repoID).Error; err != nil {
		return nil, err
	}
	members := models.PresentIn(db.Model(&models.RepositoryContent{}).Select("content_id"), repo.ID, repo.LatestNumber)
	var names []string
	err := db.Model(&models.Tag{}).Where("id IN (?)", members).Distinct().Pluck("name", &names).Error
	return names, err
}
