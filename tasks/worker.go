package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

// Heartbeat settings: workers report every HeartbeatInterval and count as gone after WorkerTTL,
// as Pulp's WORKER_TTL.
const (
	HeartbeatInterval = 5 * time.Second
	WorkerTTL         = 30 * time.Second
)

// Job runs one task: it returns the hrefs it created and its result (rendered in the task).
type Job func(ctx context.Context, db *gorm.DB, t *models.Task) (created []string, result any, err error)

// WorkerConfig configures a Worker.
type WorkerConfig struct {
	DB          *gorm.DB
	Redis       asynq.RedisConnOpt
	Logger      *slog.Logger
	Concurrency int
	// Name identifies the worker in /workers/ and /status/ (default <pid>@<hostname>).
	Name string
	// Versions are reported with the heartbeat.
	Versions map[string]string
	// Jobs adds or overrides jobs by task name (the content app's recording jobs, tests).
	Jobs map[string]Job
	// IdlePoll is how long an idle worker waits for a wake-up before it looks at the queue
	// again (default DefaultIdlePoll).
	IdlePoll time.Duration
	// ObserveTask, when set, is told of each task this worker ran once it ends: its name, its
	// final state (completed or failed), how long it waited from dispatch to start and how long
	// it ran (the process's metrics).
	ObserveTask func(name, state string, wait, run time.Duration)
}

// Worker takes tasks from Asynq and runs them.
type Worker struct {
	cfg    WorkerConfig
	srv    *asynq.Server
	redis  redis.UniversalClient
	wake   chan struct{}
	idle   chan struct{} // closed by Stop: a waiting dequeue returns at once
	status models.AppStatus
	jobs   map[string]Job
	cancel context.CancelFunc
	done   chan struct{}
}

// NewWorker returns a Worker; Start runs it.
func NewWorker(cfg WorkerConfig) *Worker {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Name == "" {
		cfg.Name = models.ProcessName()
	}
	w := &Worker{cfg: cfg, jobs: map[string]Job{
		NameGeneralCreate:      generalCreate,
		NameGeneralUpdate:      generalUpdate,
		NameGeneralDelete:      generalDelete,
		NameGeneralMultiDelete: generalDelete,
		NameDeleteVersion:      deleteVersion,
	}}
	for name, j := range contentJobs() {
		w.jobs[name] = j
	}
	for name, j := range cfg.Jobs {
		w.jobs[name] = j
	}
	w.status = models.AppStatus{Name: cfg.Name, AppType: models.AppWorker, Versions: models.MustJSON(cfg.Versions)}
	if cfg.IdlePoll <= 0 {
		cfg.IdlePoll = DefaultIdlePoll
	}
	w.redis = cfg.Redis.MakeRedisClient().(redis.UniversalClient)
	w.wake, w.idle = make(chan struct{}, 1), make(chan struct{})
	w.redis.AddHook(&longPoll{wake: w.wake, idle: cfg.IdlePoll, done: w.idle})
	w.srv = asynq.NewServerFromRedisClient(w.redis, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   map[string]int{Queue: 1},
		TaskCheckInterval:        5 * time.Millisecond,
		DelayedTaskCheckInterval: time.Second,
		LogLevel:                 asynq.ErrorLevel,
		ShutdownTimeout:          10 * time.Second,
	})
	return w
}

// Start registers the worker, starts heartbeats and begins taking tasks.
func (w *Worker) Start() error {
	if err := models.Heartbeat(w.cfg.DB, &w.status); err != nil {
		return fmt.Errorf("register worker %s: %w", w.cfg.Name, err)
	}
	// A worker that had this name before (a container restarted with the same pid and
	// hostname) left its running tasks unfinished; nothing runs them any more.
	if n, err := models.FailTasksOfRestartedApp(w.cfg.DB, w.status.ID); err != nil || n > 0 {
		w.cfg.Logger.Warn("failed the tasks of this worker's previous run", "worker", w.cfg.Name, "count", n, "err", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go w.heartbeats(ctx)
	wakeUps(ctx, w.redis, w.wake)
	mux := asynq.NewServeMux()
	mux.HandleFunc(asynqType, w.handle)
	if err := w.srv.Start(mux); err != nil {
		cancel()
		return fmt.Errorf("start worker %s: %w", w.cfg.Name, err)
	}
	return nil
}

// Stop stops taking tasks and waits for running ones (up to the shutdown timeout).
func (w *Worker) Stop() {
	close(w.idle)
	w.srv.Shutdown()
	if w.cancel != nil {
		w.cancel()
		<-w.done
	}
	_ = w.redis.Close()
}

func (w *Worker) heartbeats(ctx context.Context) {
	defer close(w.done)
	tick := time.NewTicker(HeartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := models.Heartbeat(w.cfg.DB, &w.status); err != nil {
				w.cfg.Logger.Warn("worker heartbeat failed", "worker", w.cfg.Name, "err", err)
			}
			if n, err := models.FailLostTasks(w.cfg.DB, WorkerTTL); err != nil {
				w.cfg.Logger.Warn("failing lost tasks", "err", err)
			} else if n > 0 {
				w.cfg.Logger.Warn("failed tasks of lost workers", "count", n)
			}
		}
	}
}

// handle runs one task row. It always returns nil to Asynq: the outcome is in the row, and
// Asynq must never run a task twice.
func (w *Worker) handle(ctx context.Context, at *asynq.Task) error {
	var p payload
	if err := json.Unmarshal(at.Payload(), &p); err != nil {
		w.cfg.Logger.Error("bad task payload", "err", err)
		return nil
	}
	db := w.cfg.DB.WithContext(ctx)
	t, err := models.GetTask(db, p.TaskID)
	if err != nil {
		w.cfg.Logger.Warn("task row not found", "task", p.TaskID, "err", err)
		return nil
	}
	if t.State != models.TaskWaiting {
		return nil
	}
	if err := waitUnblocked(ctx, db, t); err != nil {
		w.cfg.Logger.Warn("task not started", "task", t.ID, "err", err)
		return nil
	}
	ok, err := models.StartTask(db, t, w.status.ID)
	if err != nil || !ok {
		return nil
	}
	created, result, runErr := w.run(ctx, db, t)
	var errObj map[string]any
	if runErr != nil {
		errObj = map[string]any{"description": runErr.Error(), "traceback": ""}
		var pe *models.PulpError
		if errors.As(runErr, &pe) {
			errObj["error_code"] = pe.Code
		}
		w.cfg.Logger.Info("task failed", "task", t.ID, "name", t.Name, "err", runErr)
	}
	if err := models.FinishTask(w.cfg.DB, t, created, result, errObj); err != nil {
		w.cfg.Logger.Error("recording task outcome", "task", t.ID, "err", err)
	}
	if w.cfg.ObserveTask != nil && t.StartedAt != nil {
		state := models.TaskCompleted
		if runErr != nil {
			state = models.TaskFailed
		}
		w.cfg.ObserveTask(t.Name, state, t.StartedAt.Sub(t.PulpCreated), time.Since(*t.StartedAt))
	}
	return nil
}

func (w *Worker) run(ctx context.Context, db *gorm.DB, t *models.Task) (created []string, result any, err error) {
	job, ok := w.jobs[t.Name]
	if !ok {
		return nil, nil, fmt.Errorf("no job named %s on this worker", t.Name)
	}
	defer func() {
		if r := recover(); r != nil {
			w.cfg.Logger.Error("task panicked", "task", t.ID, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("task panicked: %v", r)
		}
	}()
	return job(ctx, db, t)
}

// waitUnblocked waits until no earlier unfinished task holds a conflicting reservation.
func waitUnblocked(ctx context.Context, db *gorm.DB, t *models.Task) error {
	delay := time.Millisecond
	for {
		blocked, err := models.Blocked(db, t)
		if err != nil {
			return err
		}
		if !blocked {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		if delay < 20*time.Millisecond {
			delay *= 2
		}
	}
}
