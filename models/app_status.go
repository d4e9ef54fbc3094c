package models

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// App types that report heartbeats.
const (
	AppWorker  = "worker"
	AppAPI     = "api"
	AppContent = "content"
)

// AppStatus is a running process (worker, API or content app) and its last heartbeat.
type AppStatus struct {
	ID              string `gorm:"primaryKey;size:36"`
	PulpCreated     time.Time
	PulpLastUpdated time.Time
	Name            string `gorm:"uniqueIndex:idx_app_name_type;not null"`
	AppType         string `gorm:"size:16;uniqueIndex:idx_app_name_type;not null"`
	LastHeartbeat   time.Time
	Versions        JSON `gorm:"type:text"`
}

// Href is a's pulp_href (workers only have one in Pulp's API).
func (a *AppStatus) Href() string { return KindWorker.Href(a.ID) }

// Heartbeat records that the app named a.Name is alive now, creating its row if needed.
func Heartbeat(db *gorm.DB, a *AppStatus) error {
	now := Now()
	if a.ID == "" {
		a.ID = NewID()
		a.PulpCreated = now
	}
	a.LastHeartbeat, a.PulpLastUpdated = now, now
	err := db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "name"}, {Name: "app_type"}},
		DoUpdates: clause.AssignmentColumns([]string{"last_heartbeat", "pulp_last_updated", "versions"})}).Create(a).Error
	if err != nil {
		return err
	}
	var row AppStatus
	if err := db.Select("id", "pulp_created").Take(&row, "name = ? AND app_type = ?", a.Name, a.AppType).Error; err != nil {
		return err
	}
	a.ID, a.PulpCreated = row.ID, row.PulpCreated
	return nil
}

// processName is the name SetProcessName set ("": the default).
var processName atomic.Value

// SetProcessName names this process's apps (--app-name): a process restarted under the same
// name by its supervisor finds its previous run's unfinished tasks and fails them at once,
// instead of after WorkerTTL. "" restores the default.
func SetProcessName(name string) { processName.Store(name) }

// ProcessStart is when this process started (its models package was initialised): tasks
// created before it under this process's app names are a previous run's.
var ProcessStart = Now()

// ProcessName names this process's apps in /status/ and /workers/: the name SetProcessName
// set, or <pid>@<hostname>.
func ProcessName() string {
	if name, _ := processName.Load().(string); name != "" {
		return name
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%d@%s", os.Getpid(), host)
}

// AppID returns the id of this process's app of appType ("" when it has not reported a
// heartbeat: tests that run an app without one).
func AppID(db *gorm.DB, appType string) string {
	var ids []string
	db.Model(&AppStatus{}).Where("name = ? AND app_type = ?", ProcessName(), appType).Limit(1).Pluck("id", &ids)
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

// Online returns the apps of appType whose heartbeat is younger than ttl.
func Online(db *gorm.DB, appType string, ttl time.Duration) ([]AppStatus, error) {
	var out []AppStatus
	err := db.Where("app_type = ? AND last_heartbeat >= ?", appType, Now().Add(-ttl)).Order("name").Find(&out).Error
	return out, err
}

// Serialize renders a as Pulp's WorkerResponse.
func (a *AppStatus) Serialize(db *gorm.DB, _ string) (map[string]any, error) {
	var current any
	var t Task
	if err := db.Select("id").Where("worker_id = ? AND state IN ?", a.ID, []string{TaskRunning, TaskCanceling}).
		Limit(1).Find(&t).Error; err == nil && t.ID != "" {
		current = t.Href()
	}
	return map[string]any{
		"pulp_href":         a.Href(),
		"prn":               KindWorker.PRNOf(a.ID),
		"pulp_created":      FormatTime(a.PulpCreated),
		"pulp_last_updated": FormatTime(a.PulpLastUpdated),
		"name":              a.Name,
		"last_heartbeat":    FormatTime(a.LastHeartbeat),
		"versions":          a.Versions.Any(),
		"current_task":      current,
	}, nil
}
