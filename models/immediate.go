package models

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// RunImmediate runs fn now, in the caller's goroutine, as Pulp runs an immediate task: a task
// row named nt.Name reserving nt's resources is created, fn waits until no earlier unfinished
// task holds a conflicting reservation (so a push and a sync of one repository never make
// versions at once), then runs in one transaction; the task ends completed with the resources
// fn created, or failed with fn's error, which RunImmediate returns. If ctx ends while it
// waits, the task ends canceled and ctx's error is returned.
func RunImmediate(ctx context.Context, db *gorm.DB, nt NewTask, fn func(tx *gorm.DB) (created []string, err error)) error {
	t, err := CreateTask(db, nt)
	if err != nil {
		return err
	}
	// The task's end is recorded even when the request that ran it has gone.
	end := func(state string, created []string, errObj map[string]any) {
		now := Now()
		updates := map[string]any{"state": state, "finished_at": now, "pulp_last_updated": now,
			"created_resources": StringList(created)}
		if errObj != nil {
			updates["error"] = MustJSON(errObj)
		}
		db.WithContext(context.WithoutCancel(ctx)).Model(&Task{}).Where("id = ?", t.ID).Updates(updates)
	}
	delay := time.Millisecond
	for {
		blocked, err := Blocked(db.WithContext(ctx), t)
		if err != nil {
			end(TaskFailed, nil, map[string]any{"description": err.Error()})
			return err
		}
		if !blocked {
			break
		}
		select {
		case <-ctx.Done():
			end(TaskCanceled, nil, nil)
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
	now := Now()
	if err := db.Model(&Task{}).Where("id = ?", t.ID).Updates(map[string]any{"state": TaskRunning,
		"started_at": now, "unblocked_at": now, "pulp_last_updated": now}).Error; err != nil {
		end(TaskFailed, nil, map[string]any{"description": err.Error()})
		return err
	}
	var created []string
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		created, err = fn(tx)
		return err
	})
	if err != nil {
		end(TaskFailed, nil, map[string]any{"description": err.Error()})
		return err
	}
	end(TaskCompleted, created, nil)
	return nil
}
