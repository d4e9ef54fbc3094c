package models

import (
	"sort"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// LastPull records when a manifest or blob digest was last served to a client, by any
// content process. The processes note pulls in memory and write them here in batches
// (content/lastpull), never once per request; the eviction of a storage quota evicts the
// images least recently pulled first. A row outlives the content it names (a pull of the
// same digest later finds it again); eviction removes the rows of what it evicts.
type LastPull struct {
	Digest string    `gorm:"primaryKey;size:200"`
	At     time.Time `gorm:"not null;index"`
}

// RecordLastPulls stores the pull times of pulls (digest → time) in one statement per
// inChunk digests: an upsert that keeps the later of the stored and the new time, so a
// process flushing an older batch never moves a digest back.
func RecordLastPulls(db *gorm.DB, pulls map[string]time.Time) error {
	if len(pulls) == 0 {
		return nil
	}
	digests := make([]string, 0, len(pulls))
	for d := range pulls {
		digests = append(digests, d)
	}
	sort.Strings(digests)
	return inChunks(digests, func(part []string) error {
		rows := make([]LastPull, 0, len(part))
		for _, d := range part {
			rows = append(rows, LastPull{Digest: d, At: pulls[d].UTC()})
		}
		return db.Clauses(clause.OnConflict{
			Columns: []clause.Column{{Name: "digest"}},
			DoUpdates: clause.Set{{Column: clause.Column{Name: "at"},
				Value: gorm.Expr("CASE WHEN excluded.at > last_pulls.at THEN excluded.at ELSE last_pulls.at END")}},
		}).Create(&rows).Error
	})
}

// LastPulled returns the stored pull times of digests (absent: never pulled since recording
// began).
func LastPulled(db *gorm.DB, digests []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := inChunks(digests, func(part []string) error {
		var rows []LastPull
		if err := db.Where("digest IN ?", part).Find(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			out[r.Digest] = r.At
		}
		return nil
	})
	return out, err
}

// ForgetLastPulls removes the pull times of digests (content an eviction removed).
func ForgetLastPulls(db *gorm.DB, digests []string) error {
	return inChunks(digests, func(part []string) error {
		return db.Where("digest IN ?", part).Delete(&LastPull{}).Error
	})
}
