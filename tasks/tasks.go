package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

// Pulp's names of the tasks this server runs.
const (
	NameGeneralCreate      = "pulpcore.app.tasks.base.general_create"
	NameGeneralUpdate      = "pulpcore.app.tasks.base.ageneral_update"
	NameGeneralDelete      = "pulpcore.app.tasks.base.ageneral_delete"
	NameGeneralMultiDelete = "pulpcore.app.tasks.base.general_multi_delete"
	NameDeleteVersion      = "pulpcore.app.tasks.repository.delete_version"
)

// asynqType is the one Asynq task type: its payload names the task row to run.
const asynqType = "pulpgo:task"

// Queue is the Asynq queue tasks go to.
const Queue = "pulpgo"

type payload struct {
	TaskID string `json:"task_id"`
}

// Dispatcher writes task rows and enqueues them for a worker.
type Dispatcher struct {
	db     *gorm.DB
	redis  redis.UniversalClient
	client *asynq.Client
}

// NewDispatcher returns a Dispatcher that stores tasks in db and enqueues them on conn.
func NewDispatcher(db *gorm.DB, conn asynq.RedisConnOpt) *Dispatcher {
	rc := conn.MakeRedisClient().(redis.UniversalClient)
	rc.AddHook(models.RedisGuard{}) // a Redis that is down makes Dispatch fail 503, not 500
	return &Dispatcher{db: db, redis: rc, client: asynq.NewClientFromRedisClient(rc)}
}

// Close releases the Redis connection (the Asynq client shares it and has none of its own).
func (d *Dispatcher) Close() error { return d.redis.Close() }

// Dispatch stores nt as a waiting task and enqueues it. The task row is what counts: when
// Redis cannot take the message (it is down), the task stays waiting and is returned all the
// same, and a worker's reconciler enqueues it once Redis is back. The Asynq message is never
// retried: a task runs at most once, and a task whose worker dies is marked failed instead.
func (d *Dispatcher) Dispatch(ctx context.Context, nt models.NewTask) (*models.Task, error) {
	t, err := models.CreateTask(d.db.WithContext(ctx), nt)
	if err != nil {
		return nil, fmt.Errorf("create task %s: %w", nt.Name, err)
	}
	switch err := enqueue(ctx, d.client, t.ID); {
	case errors.Is(err, asynq.ErrTaskIDConflict):
		// A reconciler enqueued it first.
	case err != nil:
		slog.Default().Warn("could not enqueue the task; it stays waiting and is enqueued when Redis is back",
			"task", t.ID, "name", t.Name, "err", err)
		return t, nil
	}
	// Idle workers wait for this rather than polling; a lost wake-up only costs the idle poll.
	_ = d.redis.Publish(ctx, wakeChannel, t.ID).Err()
	return t, nil
}

// ObjectArgs are the arguments of the generic create, update and delete tasks.
type ObjectArgs struct {
	// Kind is the model name of the object's kind ("ContainerDistribution").
	Kind string `json:"kind"`
	// ID is the object's id (update, delete).
	ID string `json:"id,omitempty"`
	// Values are the validated fields, keyed by the model's json tags (create, update).
	Values json.RawMessage `json:"values,omitempty"`
}

// VersionArgs are the arguments of delete_version.
type VersionArgs struct {
	RepositoryID string `json:"repository_id"`
	Number       int64  `json:"number"`
}
