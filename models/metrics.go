package models

import "gorm.io/gorm"

// CountUnfinishedTasks returns the number of tasks in each unfinished state (waiting,
// running, canceling): the queue depth of the whole deployment, for the metrics.
func CountUnfinishedTasks(db *gorm.DB) (map[string]int64, error) {
	var rows []struct {
		State string
		N     int64
	}
	if err := db.Model(&Task{}).Select("state, count(*) AS n").Where("state IN ?", IncompleteStates).
		Group("state").Scan(&rows).Error; err != nil {
		return nil, err
	}
	counts := make(map[string]int64, len(IncompleteStates))
	for _, st := range IncompleteStates {
		counts[st] = 0
	}
	for _, r := range rows {
		counts[r.State] = r.N
	}
	return counts, nil
}

// StoredBlobBytes returns the sum of the sizes of the blobs and manifests recorded as
// content: the storage used, for the metrics.
func StoredBlobBytes(db *gorm.DB) (int64, error) {
	var blobs, manifests int64
	if err := db.Model(&Blob{}).Select("COALESCE(SUM(size), 0)").Scan(&blobs).Error; err != nil {
		return 0, err
	}
	if err := db.Model(&Manifest{}).Select("COALESCE(SUM(size), 0)").Scan(&manifests).Error; err != nil {
		return 0, err
	}
	return blobs + manifests, nil
}
