package models

import (
	"errors"
	"time"

	"gorm.io/gorm"
)

// Task states, as Pulp names them.
const (
	TaskWaiting   = "waiting"
	TaskSkipped   = "skipped"
	TaskRunning   = "running"
	TaskCompleted = "completed"
	TaskFailed    = "failed"
	TaskCanceled  = "canceled"
	TaskCanceling = "canceling"
)

// IncompleteStates are the states of a task that has not finished.
var IncompleteStates = []string{TaskWaiting, TaskRunning, TaskCanceling}

// DefaultDomainID names the single (default) domain in PRNs of reserved resources.
const DefaultDomainID = "018f0000-0000-7000-8000-000000000001"

// Task is one asynchronous operation: what Pulp shows at /pulp/api/v3/tasks/<id>/. Args holds
// the operation's input for the worker, sealed at rest under the database encryption key as
// Pulp's enc_args (an update of a remote carries its new password); WorkerID the app status
// of the worker running it.
type Task struct {
	ID                      string `gorm:"primaryKey;size:36"`
	PulpCreated             time.Time
	PulpLastUpdated         time.Time
	State                   string `gorm:"size:16;index;not null"`
	Name                    string `gorm:"index;not null"`
	LoggingCID              string `gorm:"column:logging_cid;size:64"`
	CreatedBy               *string
	UnblockedAt             *time.Time
	StartedAt               *time.Time
	FinishedAt              *time.Time
	Error                   JSON       `gorm:"type:text"`
	ProgressReports         JSON       `gorm:"type:text"`
	CreatedResources        StringList `gorm:"type:text"`
	ReservedResourcesRecord StringList `gorm:"type:text"`
	Result                  JSON       `gorm:"type:text"`
	Args                    JSON       `gorm:"type:text;serializer:encrypted"`
	WorkerID                *string    `gorm:"size:36;index"`
	// AppID is the app status of the API or content process running an immediate task (a
	// push's version) in a request: the task fails when that process is gone.
	AppID *string `gorm:"size:36;index"`
}

// TaskResource is one resource a task reserves; tasks that reserve the same resource run one
// after another, in creation order (exclusive reservations exclude everything, shared ones only
// exclusive ones).
type TaskResource struct {
	TaskID    string `gorm:"primaryKey;size:36"`
	Resource  string `gorm:"primaryKey;size:200;index"`
	Exclusive bool
}

// Href is t's pulp_href.
func (t *Task) Href() string { return KindTask.Href(t.ID) }

// Final reports whether t has finished.
func (t *Task) Final() bool {
	switch t.State {
	case TaskCompleted, TaskFailed, TaskCanceled, TaskSkipped:
		return true
	}
	return false
}

// Serialize renders t as Pulp's TaskResponse: every key always present.
func (t *Task) Serialize(_ *gorm.DB, _ string) (map[string]any, error) {
	created := []string(t.CreatedResources)
	if created == nil {
		created = []string{}
	}
	prns := make([]string, 0, len(created))
	for _, h := range created {
		if ref, ok := ParseRef(h); ok && ref.Version == nil {
			prns = append(prns, ref.Kind.PRNOf(ref.ID))
		}
	}
	reserved := []string(t.ReservedResourcesRecord)
	if reserved == nil {
		reserved = []string{}
	}
	progress := t.ProgressReports.Any()
	if progress == nil {
		progress = []any{}
	}
	return map[string]any{
		"pulp_href":                 t.Href(),
		"prn":                       KindTask.PRNOf(t.ID),
		"pulp_created":              FormatTime(t.PulpCreated),
		"pulp_last_updated":         FormatTime(t.PulpLastUpdated),
		"state":                     t.State,
		"name":                      t.Name,
		"logging_cid":               t.LoggingCID,
		"created_by":                strPtrAny(t.CreatedBy),
		"unblocked_at":              FormatTimePtr(t.UnblockedAt),
		"started_at":                FormatTimePtr(t.StartedAt),
		"finished_at":               FormatTimePtr(t.FinishedAt),
		"error":                     t.Error.Any(),
		"worker":                    nil,
		"parent_task":               nil,
		"child_tasks":               []string{},
		"task_group":                nil,
		"progress_reports":          progress,
		"created_resources":         created,
		"created_resource_prns":     prns,
		"reserved_resources_record": reserved,
		"result":                    t.Result.Any(),
		"pulp_api_version":          "v3",
	}, nil
}

// NewTask describes a task to dispatch.
type NewTask struct {
	Name       string
	LoggingCID string
	CreatedBy  *string
	// App is the app status id of the process running an immediate task itself ("" for
	// tasks a worker runs).
	App       string
	Exclusive []string // resources (PRNs) reserved exclusively
	Shared    []string // resources reserved shared
	Args      any
}

// CreateTask stores a waiting task and its reservations.
func CreateTask(db *gorm.DB, nt NewTask) (*Task, error) {
	now := Now()
	record := append([]string{}, nt.Exclusive...)
	for _, s := range nt.Shared {
		record = append(record, "shared:"+s)
	}
	record = append(record, "shared:prn:core.domain:"+DefaultDomainID)
	t := &Task{ID: NewID(), PulpCreated: now, PulpLastUpdated: now, State: TaskWaiting, Name: nt.Name,
		LoggingCID: nt.LoggingCID, CreatedBy: nt.CreatedBy, CreatedResources: StringList{},
		ReservedResourcesRecord: record, Args: MustJSON(nt.Args)}
	if nt.App != "" {
		t.AppID = &nt.App
	}
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(t).Error; err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, r := range nt.Exclusive {
			if !seen[r] {
				seen[r] = true
				if err := tx.Create(&TaskResource{TaskID: t.ID, Resource: r, Exclusive: true}).Error; err != nil {
					return err
				}
			}
		}
		for _, r := range nt.Shared {
			if !seen[r] {
				seen[r] = true
				if err := tx.Create(&TaskResource{TaskID: t.ID, Resource: r}).Error; err != nil {
					return err
				}
			}
		}
		return nil
	})
	return t, err
}

// GetTask loads a task by id.
func GetTask(db *gorm.DB, id string) (*Task, error) {
	var t Task
	err := db.Take(&t, "id = ?", id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, &NotFoundError{Model: "Task", Ref: id}
	}
	return &t, err
}

// WaitingTaskIDs returns the ids of up to limit tasks for workers (not immediate ones) that
// have been waiting since before created, oldest first: the tasks whose queue message the
// reconciler makes sure of.
func WaitingTaskIDs(db *gorm.DB, created time.Time, limit int) ([]string, error) {
	var ids []string
	err := db.Model(&Task{}).Where("state = ? AND app_id IS NULL AND pulp_created < ?", TaskWaiting, created).
		Order("pulp_created, id").Limit(limit).Pluck("id", &ids).Error
	return ids, err
}

// RunningTaskIDsOf returns the ids of the tasks that worker (an app status id) started before
// started and that are still running or canceling in the database.
func RunningTaskIDsOf(db *gorm.DB, worker string, started time.Time) ([]string, error) {
	var ids []string
	err := db.Model(&Task{}).Where("state IN ? AND worker_id = ? AND started_at < ?",
		[]string{TaskRunning, TaskCanceling}, worker, started).Pluck("id", &ids).Error
	return ids, err
}

// FailUntrackedTask fails task id if it is still running or canceling on worker, with reason:
// the worker has no job for it (the database lost the outcome it had recorded, e.g. a failover
// to a replica that had not received it). It reports whether it did.
func FailUntrackedTask(db *gorm.DB, id, worker, reason string) (bool, error) {
	now := Now()
	res := db.Model(&Task{}).Where("id = ? AND worker_id = ? AND state IN ?", id, worker, []string{TaskRunning, TaskCanceling}).
		Updates(map[string]any{"state": TaskFailed, "finished_at": now, "pulp_last_updated": now,
			"error": MustJSON(map[string]any{"reason": reason})})
	return res.RowsAffected > 0, res.Error
}

// Blocked reports whether an earlier unfinished task holds a reservation that conflicts with
// one of t's.
func Blocked(db *gorm.DB, t *Task) (bool, error) {
	var mine []TaskResource
	if err := db.Where("task_id = ?", t.ID).Find(&mine).Error; err != nil {
		return false, err
	}
	if len(mine) == 0 {
		return false, nil
	}
	var excl, shared []string
	for _, r := range mine {
		if r.Exclusive {
			excl = append(excl, r.Resource)
		} else {
			shared = append(shared, r.Resource)
		}
	}
	q := db.Table("task_resources").Joins("JOIN tasks ON tasks.id = task_resources.task_id").
		Where("tasks.id < ? AND tasks.state IN ?", t.ID, IncompleteStates)
	switch {
	case len(excl) > 0 && len(shared) > 0:
		q = q.Where("task_resources.resource IN ? OR (task_resources.resource IN ? AND task_resources.exclusive = ?)", excl, shared, true)
	case len(excl) > 0:
		q = q.Where("task_resources.resource IN ?", excl)
	default:
		q = q.Where("task_resources.resource IN ? AND task_resources.exclusive = ?", shared, true)
	}
	var n int64
	err := q.Count(&n).Error
	return n > 0, err
}

// StartTask moves a waiting task to running on workerID; ok is false if the task is no longer
// waiting (canceled meanwhile, or already taken).
func StartTask(db *gorm.DB, t *Task, workerID string) (bool, error) {
	now := Now()
	res := db.Model(&Task{}).Where("id = ? AND state = ?", t.ID, TaskWaiting).Updates(map[string]any{
		"state": TaskRunning, "started_at": now, "unblocked_at": now, "pulp_last_updated": now, "worker_id": workerID})
	if res.Error != nil || res.RowsAffected == 0 {
		return false, res.Error
	}
	t.State, t.StartedAt, t.UnblockedAt, t.WorkerID = TaskRunning, &now, &now, &workerID
	return true, nil
}

// FinishTask records the outcome of a running task: completed with its created resources and
// result, or failed with errObj ({"description": ...} or {"reason": ...}). A task being
// canceled ends canceled. A task that already ended (failed as lost meanwhile) keeps its state.
func FinishTask(db *gorm.DB, t *Task, created []string, result any, errObj map[string]any) error {
	now := Now()
	state := TaskCompleted
	updates := map[string]any{"finished_at": now, "pulp_last_updated": now}
	if errObj != nil {
		state = TaskFailed
		updates["error"] = MustJSON(errObj)
	} else {
		if created == nil {
			created = []string{}
		}
		updates["created_resources"] = StringList(created)
		if result != nil {
			updates["result"] = MustJSON(result)
		}
	}
	for {
		var cur Task
		if err := db.Select("state").Take(&cur, "id = ?", t.ID).Error; err != nil {
			return err
		}
		if cur.State != TaskRunning && cur.State != TaskCanceling {
			return nil
		}
		updates["state"] = state
		if cur.State == TaskCanceling {
			updates["state"] = TaskCanceled
		}
		// Only from the state just read: a cancel in between makes us read again.
		res := db.Model(&Task{}).Where("id = ? AND state = ?", t.ID, cur.State).Updates(updates)
		if res.Error != nil || res.RowsAffected > 0 {
			return res.Error
		}
	}
}

// CancelTask asks for t to be canceled: a waiting task is canceled at once, a running one
// becomes canceling. ok is false when t had already finished.
func CancelTask(db *gorm.DB, id string) (ok bool, err error) {
	now := Now()
	res := db.Model(&Task{}).Where("id = ? AND state = ?", id, TaskWaiting).
		Updates(map[string]any{"state": TaskCanceled, "finished_at": now, "pulp_last_updated": now})
	if res.Error != nil || res.RowsAffected > 0 {
		return res.Error == nil, res.Error
	}
	res = db.Model(&Task{}).Where("id = ? AND state = ?", id, TaskRunning).
		Updates(map[string]any{"state": TaskCanceling, "pulp_last_updated": now})
	if res.Error != nil || res.RowsAffected > 0 {
		return res.Error == nil, res.Error
	}
	t, err := GetTask(db, id)
	if err != nil {
		return false, err
	}
	return t.State == TaskCanceling, nil
}

// DeleteTask removes a finished task; ok is false for an unfinished one.
func DeleteTask(db *gorm.DB, id string) (ok bool, err error) {
	t, err := GetTask(db, id)
	if err != nil {
		return false, err
	}
	if !t.Final() {
		return false, nil
	}
	return true, db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("task_id = ?", id).Delete(&TaskResource{}).Error; err != nil {
			return err
		}
		return tx.Delete(&Task{}, "id = ?", id).Error
	})
}

// FailLostTasks marks failed the tasks left running or canceling by workers whose heartbeat is
// older than ttl, and returns how many it marked.
func FailLostTasks(db *gorm.DB, ttl time.Duration) (int64, error) {
	cutoff := Now().Add(-ttl)
	dead := db.Model(&AppStatus{}).Select("id").Where("app_type = ? AND last_heartbeat < ?", AppWorker, cutoff)
	now := Now()
	res := db.Model(&Task{}).Where("state IN ? AND worker_id IN (?)", []string{TaskRunning, TaskCanceling}, dead).
		Updates(map[string]any{"state": TaskFailed, "finished_at": now, "pulp_last_updated": now,
			"error": MustJSON(map[string]any{"reason": "Worker has gone missing: its heartbeat expired while the task was running."})})
	if res.Error != nil {
		return 0, res.Error
	}
	// Immediate tasks of API and content processes that are gone (they may still be waiting:
	// their reservation would block the repository for good).
	goneApps := db.Model(&AppStatus{}).Select("id").Where("app_type <> ? AND last_heartbeat < ?", AppWorker, cutoff)
	imm := db.Model(&Task{}).Where("state IN ? AND app_id IN (?)", []string{TaskWaiting, TaskRunning, TaskCanceling}, goneApps).
		Updates(map[string]any{"state": TaskFailed, "finished_at": now, "pulp_last_updated": now,
			"error": MustJSON(map[string]any{"reason": "The process running this immediate task has gone missing: its heartbeat expired."})})
	return res.RowsAffected + imm.RowsAffected, imm.Error
}

// FailTasksOfRestartedApp fails the unfinished tasks that app (an app status id) was running
// before its process restarted under the same name: nothing of them runs any more. Only tasks
// created before started (when this run began, e.g. ProcessStart) are the previous run's: the
// app's id is known from the start, so this run may already have made tasks of its own.
func FailTasksOfRestartedApp(db *gorm.DB, app string, started time.Time) (int64, error) {
	now := Now()
	res := db.Model(&Task{}).Where("state IN ? AND (app_id = ? OR worker_id = ?) AND pulp_created < ?",
		[]string{TaskWaiting, TaskRunning, TaskCanceling}, app, app, started).
		Updates(map[string]any{"state": TaskFailed, "finished_at": now, "pulp_last_updated": now,
			"error": MustJSON(map[string]any{"reason": "The process running this task restarted before it finished."})})
	return res.RowsAffected, res.Error
}
