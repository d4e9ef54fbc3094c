package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
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
	// ReconcileInterval is how often the worker makes sure the waiting tasks have a queue
	// message (default DefaultReconcileInterval), ReconcileGrace how long a task may wait for
	// its message before that (default DefaultReconcileGrace).
	ReconcileInterval time.Duration
	ReconcileGrace    time.Duration
	// ShutdownTimeout is how long Stop lets running jobs finish before it cancels them
	// (default 10 s).
	ShutdownTimeout time.Duration
	// HeartbeatInterval and WorkerTTL override the package's (tests).
	HeartbeatInterval time.Duration
	WorkerTTL         time.Duration
}

// heartbeatRetry is how soon a failed heartbeat is tried again: a worker reports at once
// when its database is back.
const heartbeatRetry = time.Second

// stopJobsTimeout bounds how long Stop waits for the jobs it canceled.
const stopJobsTimeout = 10 * time.Second

// errWorkerStopped ends the jobs still running when the worker stops.
var errWorkerStopped = errors.New("the worker stopped before the task finished")

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
	loops  sync.WaitGroup // heartbeats, reconciler
	// jobs is the context of the running jobs: detached from Asynq's (which ends when Asynq
	// gives up the message), it ends only when the worker stops.
	jobsCtx  context.Context
	stopJobs context.CancelCauseFunc
	running  sync.WaitGroup // handlers
	// lostChecks counts the passes that looked for the tasks of lost workers (tests).
	lostChecks atomic.Int64
	// tracked are the tasks this worker's handlers are starting or running.
	trackedMu sync.Mutex
	tracked   map[string]bool
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
	if cfg.ReconcileInterval <= 0 {
		cfg.ReconcileInterval = DefaultReconcileInterval
	}
	if cfg.ReconcileGrace <= 0 {
		cfg.ReconcileGrace = DefaultReconcileGrace
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = HeartbeatInterval
	}
	if cfg.WorkerTTL <= 0 {
		cfg.WorkerTTL = WorkerTTL
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	w.cfg = cfg
	w.jobsCtx, w.stopJobs = context.WithCancelCause(context.Background())
	w.redis = cfg.Redis.MakeRedisClient().(redis.UniversalClient)
	w.wake, w.idle = make(chan struct{}, 1), make(chan struct{})
	w.redis.AddHook(&longPoll{wake: w.wake, idle: cfg.IdlePoll, done: w.idle})
	w.srv = asynq.NewServerFromRedisClient(w.redis, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   map[string]int{Queue: 1},
		TaskCheckInterval:        5 * time.Millisecond,
		DelayedTaskCheckInterval: time.Second,
		LogLevel:                 asynq.ErrorLevel,
		ShutdownTimeout:          cfg.ShutdownTimeout,
	})
	return w
}

// Start registers the worker, starts heartbeats and begins taking tasks.
func (w *Worker) Start() error {
	started := models.Now() // no task of this run has started before
	if err := models.Heartbeat(w.cfg.DB, &w.status); err != nil {
		return fmt.Errorf("register worker %s: %w", w.cfg.Name, err)
	}
	// A worker that had this name before (a container restarted with the same pid and
	// hostname) left its running tasks unfinished; nothing runs them any more.
	if n, err := models.FailTasksOfRestartedApp(w.cfg.DB, w.status.ID, started); err != nil || n > 0 {
		w.cfg.Logger.Warn("failed the tasks of this worker's previous run", "worker", w.cfg.Name, "count", n, "err", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.loops.Add(2)
	go w.heartbeats(ctx)
	go w.reconcile(ctx)
	wakeUps(ctx, w.redis, w.wake)
	mux := asynq.NewServeMux()
	mux.HandleFunc(asynqType, w.handle)
	if err := w.srv.Start(mux); err != nil {
		cancel()
		return fmt.Errorf("start worker %s: %w", w.cfg.Name, err)
	}
	return nil
}

// Stop stops taking tasks and waits for running ones (up to the shutdown timeout); the jobs
// still running then are canceled and fail, with their outcome recorded.
func (w *Worker) Stop() {
	close(w.idle)
	w.srv.Shutdown()
	w.stopJobs(errWorkerStopped)
	// The canceled jobs record their outcome; one that ignores its context is left behind.
	ended := make(chan struct{})
	go func() { w.running.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(stopJobsTimeout):
		w.cfg.Logger.Warn("jobs still running after the worker stopped", "worker", w.cfg.Name)
	}
	if w.cancel != nil {
		w.cancel()
		w.loops.Wait()
	}
	_ = w.redis.Close()
}

// heartbeats reports the worker alive every HeartbeatInterval (every heartbeatRetry while
// that fails) and fails the tasks of workers that stopped reporting. After its own
// heartbeats failed, a worker waits for a WorkerTTL of working ones before it judges others
// lost: when the database was down, every worker's heartbeat is old, and the live ones need
// a moment to report again.
func (w *Worker) heartbeats(ctx context.Context) {
	defer w.loops.Done()
	var failedAt time.Time // of the last failed heartbeat; zero: none
	every, ttl := w.cfg.HeartbeatInterval, w.cfg.WorkerTTL
	retry := min(heartbeatRetry, every)
	timer := time.NewTimer(every)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		hctx, cancel := context.WithTimeout(ctx, max(every, heartbeatRetry))
		err := models.Heartbeat(w.cfg.DB.WithContext(hctx), &w.status)
		cancel()
		if err != nil {
			if failedAt.IsZero() || time.Since(failedAt) > retry*3 {
				w.cfg.Logger.Warn("worker heartbeat failed", "worker", w.cfg.Name, "err", err)
			}
			failedAt = time.Now()
			timer.Reset(retry)
			continue
		}
		timer.Reset(every)
		if !failedAt.IsZero() && time.Since(failedAt) < ttl {
			continue
		}
		n, err := models.FailLostTasks(w.cfg.DB.WithContext(ctx), ttl)
		w.lostChecks.Add(1)
		if err != nil {
			w.cfg.Logger.Warn("failing lost tasks", "err", err)
		} else if n > 0 {
			w.cfg.Logger.Warn("failed tasks of lost workers", "count", n)
		}
	}
}

// reconcile runs the reconciler every ReconcileInterval until ctx ends, and logs how many
// tasks it enqueued and when it starts or stops failing.
func (w *Worker) reconcile(ctx context.Context) {
	defer w.loops.Done()
	client := asynq.NewClientFromRedisClient(w.redis)
	r := &reconciler{db: w.cfg.DB, client: client, insp: asynq.NewInspectorFromRedisClient(w.redis), grace: w.cfg.ReconcileGrace}
	tick := time.NewTicker(w.cfg.ReconcileInterval)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		w.sweepUntracked(ctx)
		n, err := r.pass(ctx)
		if err != nil && ctx.Err() == nil && !failing {
			w.cfg.Logger.Warn("reconciling waiting tasks with the queue failed; trying again", "worker", w.cfg.Name, "err", err)
		} else if err == nil && failing {
			w.cfg.Logger.Info("reconciling waiting tasks with the queue works again", "worker", w.cfg.Name)
		}
		failing = err != nil
		if n > 0 {
			w.cfg.Logger.Info("enqueued waiting tasks that had no queue message", "worker", w.cfg.Name, "count", n)
			_ = w.redis.Publish(ctx, wakeChannel, "reconciled").Err()
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
	w.track(t.ID, true)
	defer w.track(t.ID, false)
	if !w.start(ctx, t) {
		return nil
	}
	// The task is this worker's now, and runs to its end even if Asynq gives up its message:
	// when the message's lease cannot be extended (Redis down for longer than Asynq's 30 s
	// lease), Asynq cancels ctx and leaves the handler running.
	w.running.Add(1)
	defer w.running.Done()
	jctx, cancel := w.jobContext(ctx)
	defer cancel()
	created, result, runErr := w.run(jctx, w.cfg.DB.WithContext(jctx), t)
	if runErr != nil && errors.Is(context.Cause(w.jobsCtx), errWorkerStopped) {
		runErr = fmt.Errorf("%w: %w", errWorkerStopped, runErr)
	}
	var errObj map[string]any
	if runErr != nil {
		errObj = map[string]any{"description": runErr.Error(), "traceback": ""}
		var pe *models.PulpError
		if errors.As(runErr, &pe) {
			errObj["error_code"] = pe.Code
		}
		w.cfg.Logger.Info("task failed", "task", t.ID, "name", t.Name, "err", runErr)
	}
	w.finish(t, created, result, errObj)
	if w.cfg.ObserveTask != nil && t.StartedAt != nil {
		state := models.TaskCompleted
		if runErr != nil {
			state = models.TaskFailed
		}
		w.cfg.ObserveTask(t.Name, state, t.StartedAt.Sub(t.PulpCreated), time.Since(*t.StartedAt))
	}
	return nil
}

// jobContext returns the context of a job started in a handler given ctx: its values and
// deadline, but canceled only when the worker stops.
func (w *Worker) jobContext(ctx context.Context) (context.Context, context.CancelFunc) {
	jctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(w.jobsCtx, cancel)
	if d, ok := ctx.Deadline(); ok {
		var cancelDeadline context.CancelFunc
		jctx, cancelDeadline = context.WithDeadline(jctx, d)
		return jctx, func() { cancelDeadline(); stop(); cancel() }
	}
	return jctx, func() { stop(); cancel() }
}

// finishTimeout bounds one attempt at recording a task's outcome.
const finishTimeout = 10 * time.Second

// finish records the outcome of task t, trying again while the database is unavailable (a
// task whose outcome is lost would stay running for good on a live worker) until the worker
// stops.
func (w *Worker) finish(t *models.Task, created []string, result any, errObj map[string]any) {
	delay := 100 * time.Millisecond
	for logged := false; ; {
		ctx, cancel := context.WithTimeout(context.Background(), finishTimeout)
		err := models.FinishTask(w.cfg.DB.WithContext(ctx), t, created, result, errObj)
		cancel()
		if err == nil {
			if logged {
				w.cfg.Logger.Info("recorded the task's outcome", "task", t.ID)
			}
			return
		}
		if !models.IsUnavailable(err) && !errors.Is(err, context.DeadlineExceeded) || w.jobsCtx.Err() != nil {
			w.cfg.Logger.Error("recording task outcome", "task", t.ID, "err", err)
			return
		}
		if !logged {
			w.cfg.Logger.Warn("recording task outcome failed; trying again", "task", t.ID, "err", err)
			logged = true
		}
		select {
		case <-w.jobsCtx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
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

// track notes that a handler of this worker starts (on) or has ended (off) task id.
func (w *Worker) track(id string, on bool) {
	w.trackedMu.Lock()
	defer w.trackedMu.Unlock()
	if w.tracked == nil {
		w.tracked = map[string]bool{}
	}
	if on {
		w.tracked[id] = true
	} else {
		delete(w.tracked, id)
	}
}

// untrackedGrace is how long a task must have been running before a worker that has no
// handler for it fails it: longer than any start takes.
const untrackedGrace = time.Minute

// sweepUntracked fails the tasks the database says this worker runs but no handler of it
// does: a row whose outcome the database lost (an acknowledged commit lost in a failover to
// a replica behind the primary) would otherwise stay running for ever, since this worker's
// heartbeats keep it from being judged lost.
func (w *Worker) sweepUntracked(ctx context.Context) {
	ids, err := models.RunningTaskIDsOf(w.cfg.DB.WithContext(ctx), w.status.ID, models.Now().Add(-untrackedGrace))
	if err != nil {
		return // the reconciler's pass reports the database
	}
	for _, id := range ids {
		w.trackedMu.Lock()
		mine := w.tracked[id]
		w.trackedMu.Unlock()
		if mine {
			continue
		}
		ok, err := models.FailUntrackedTask(w.cfg.DB.WithContext(ctx), id, w.status.ID,
			"The worker running this task has no record of it: its outcome was lost.")
		if ok && err == nil {
			w.cfg.Logger.Warn("failed a task the database says this worker runs, which it does not", "task", id, "worker", w.cfg.Name)
		}
	}
}

// startTimeout bounds the statement that makes a task this worker's.
const startTimeout = 30 * time.Second

// start moves t from waiting to running on this worker and reports whether it did. It runs
// on a context of its own (Asynq cancels the handler's when it loses the message's lease),
// and when the statement fails it reads the row again: an update that committed before its
// answer was lost makes the task this worker's, and the job must then run, or the row would
// stay running with nothing behind it while this worker's heartbeats keep it from being
// judged lost.
func (w *Worker) start(ctx context.Context, t *models.Task) bool {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
	defer cancel()
	db := w.cfg.DB.WithContext(sctx)
	ok, err := models.StartTask(db, t, w.status.ID)
	if err == nil {
		return ok
	}
	cur, gerr := models.GetTask(db, t.ID)
	if gerr != nil || cur.State != models.TaskRunning || cur.WorkerID == nil || *cur.WorkerID != w.status.ID {
		w.cfg.Logger.Warn("task not started", "task", t.ID, "err", err)
		return false
	}
	*t = *cur
	return true
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
