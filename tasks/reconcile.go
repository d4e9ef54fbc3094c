package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

// Reconciler settings: the database is the source of truth of the tasks to run, and Redis only
// carries them to a worker. Every DefaultReconcileInterval a worker makes sure that each task
// waiting for longer than DefaultReconcileGrace has a live queue message, at most
// ReconcileBatch of them (the oldest) per pass.
const (
	DefaultReconcileInterval = 2 * time.Second
	DefaultReconcileGrace    = 2 * time.Second
	ReconcileBatch           = 500
)

// enqueueTimeout bounds one enqueue: an unreachable Redis fails it rather than holding a
// request (the task row is kept and the reconciler enqueues it later).
const enqueueTimeout = 3 * time.Second

// enqueue puts the queue message of task row id on the queue, under the message id id, so
// that a task has at most one live message. A message already there (ErrTaskIDConflict) is
// returned as such.
func enqueue(ctx context.Context, client *asynq.Client, id string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), enqueueTimeout)
	defer cancel()
	body, _ := json.Marshal(payload{TaskID: id})
	_, err := client.EnqueueContext(ctx, asynq.NewTask(asynqType, body),
		asynq.TaskID(id), asynq.MaxRetry(0), asynq.Queue(Queue), asynq.Timeout(24*time.Hour), asynq.Retention(time.Minute))
	return err
}

// reconciler re-enqueues waiting tasks whose queue message is missing (Redis restarted empty,
// the dispatching process died or found Redis down between writing the row and enqueueing) or
// spent (a worker took it but could not read or start the row: the database was down).
// Several workers may reconcile at once: a task has one message id, and a worker starts a
// task only by moving its row from waiting to running.
type reconciler struct {
	db     *gorm.DB
	client *asynq.Client
	insp   *asynq.Inspector
	grace  time.Duration
}

// pass looks at the oldest waiting tasks once and returns how many it enqueued.
func (r *reconciler) pass(ctx context.Context) (int, error) {
	ids, err := models.WaitingTaskIDs(r.db.WithContext(ctx), models.Now().Add(-r.grace), ReconcileBatch)
	if err != nil {
		return 0, fmt.Errorf("list waiting tasks: %w", err)
	}
	n := 0
	for _, id := range ids {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		done, err := r.ensure(ctx, id)
		if err != nil {
			return n, err
		}
		if done {
			n++
		}
	}
	return n, nil
}

// ensure makes sure waiting task id has a live message, and reports whether it enqueued one.
func (r *reconciler) ensure(ctx context.Context, id string) (bool, error) {
	err := enqueue(ctx, r.client, id)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, asynq.ErrTaskIDConflict) {
		return false, fmt.Errorf("enqueue task %s: %w", id, err)
	}
	info, err := r.insp.GetTaskInfo(Queue, id)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		// Gone since the conflict (its retention ended): enqueue at the next pass.
		return false, nil
	case err != nil:
		return false, fmt.Errorf("look up the message of task %s: %w", id, err)
	}
	switch info.State {
	case asynq.TaskStateCompleted, asynq.TaskStateArchived:
		// Spent while the row still waits: a handler that returned early, or one whose lease
		// expired. Replace it. Another worker may be doing the same: its delete or enqueue then
		// fails, or one of the two messages is deleted; either way one stays.
	default:
		// Pending, active (a handler waits for the task's reservations), scheduled or retry.
		return false, nil
	}
	if err := r.insp.DeleteTask(Queue, id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
		return false, nil // taken by another worker's replacement meanwhile
	}
	err = enqueue(ctx, r.client, id)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("enqueue task %s: %w", id, err)
	}
	return true, nil
}
