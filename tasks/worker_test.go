package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// deadline bounds every wait in these tests.
const deadline = 30 * time.Second

// rig is a database, Redis, a dispatcher and a worker on one engine.
type rig struct {
	t      *testing.T
	db     *gorm.DB
	redis  asynq.RedisConnOpt
	disp   *Dispatcher
	worker *Worker
	insp   *asynq.Inspector
	client *asynq.Client
}

func newRig(t *testing.T, e testenv.Engine, jobs map[string]Job) *rig {
	t.Helper()
	return newRigIdle(t, e, jobs, 0)
}

// newRigIdle is newRig with the worker's IdlePoll.
func newRigIdle(t *testing.T, e testenv.Engine, jobs map[string]Job, idle time.Duration) *rig {
	t.Helper()
	db := testenv.OpenDB(t, e)
	opt := engineRedis(t, e)
	disp := NewDispatcher(db, opt)
	t.Cleanup(func() { _ = disp.Close() })
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { _ = insp.Close() })
	client := asynq.NewClient(opt)
	t.Cleanup(func() { _ = client.Close() })
	w := NewWorker(WorkerConfig{DB: db, Redis: opt, Concurrency: 8, Name: "test@" + e.Name, Jobs: jobs,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), IdlePoll: idle,
		// Every test also checks that the reconciler, busy, changes nothing of how tasks run.
		ReconcileInterval: 20 * time.Millisecond, ReconcileGrace: 100 * time.Millisecond})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return &rig{t: t, db: db, redis: opt, disp: disp, worker: w, insp: insp, client: client}
}

// engineRedis returns the Redis of engine e: its own, or an in-process one stopped when t ends.
func engineRedis(t *testing.T, e testenv.Engine) asynq.RedisConnOpt {
	t.Helper()
	url := e.RedisURL
	if url == "" {
		emb, err := StartEmbedded()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(emb.Close)
		url = emb.URL()
	}
	opt, err := RedisOpt(url)
	if err != nil {
		t.Fatal(err)
	}
	return opt
}

// runRig runs fn once per engine, in parallel with other tests, with a fresh rig whose worker
// runs the recorder's job (recordJob) and extra.
func runRig(t *testing.T, extra map[string]Job, fn func(t *testing.T, r *rig, rec *recorder)) {
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		rec := newRecorder()
		jobs := map[string]Job{recordJob: rec.job}
		for name, j := range extra {
			jobs[name] = j
		}
		r := newRig(t, e, jobs)
		// Registered after the worker, so it runs before the worker stops: no job stays blocked.
		t.Cleanup(rec.openAll)
		fn(t, r, rec)
	})
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (r *rig) task(id string) *models.Task {
	r.t.Helper()
	task, err := models.GetTask(r.db, id)
	if err != nil {
		r.t.Fatal(err)
	}
	return task
}

// waitState waits until task id is in state.
func (r *rig) waitState(id, state string) *models.Task {
	r.t.Helper()
	var task *models.Task
	waitFor(r.t, "task "+id+" to be "+state, func() bool {
		task = r.task(id)
		if task.Final() && task.State != state {
			r.t.Fatalf("task %s ended %s (error %s), waited for %s", id, task.State, task.Error, state)
		}
		return task.State == state
	})
	return task
}

// waitMessage waits until the Asynq message id is in state (its handler was entered for
// active, returned for completed).
func (r *rig) waitMessage(id string, state asynq.TaskState) {
	r.t.Helper()
	waitFor(r.t, "message "+id+" to be "+state.String(), func() bool {
		info, err := r.insp.GetTaskInfo(Queue, id)
		return err == nil && info.State == state
	})
}

// dispatch dispatches a task named name reserving exclusive and shared resources, with args.
func (r *rig) dispatch(name string, exclusive, shared []string, args any) *models.Task {
	r.t.Helper()
	task, err := r.disp.Dispatch(context.Background(), models.NewTask{Name: name, Exclusive: exclusive, Shared: shared,
		Args: args, LoggingCID: "0123456789abcdef0123456789abcdef"})
	if err != nil {
		r.t.Fatal(err)
	}
	return task
}

// duplicate enqueues another Asynq message (its own message id) for task row taskID.
func (r *rig) duplicate(taskID, msgID string) {
	r.t.Helper()
	body, _ := json.Marshal(payload{TaskID: taskID})
	if _, err := r.client.Enqueue(asynq.NewTask(asynqType, body), asynq.TaskID(msgID), asynq.MaxRetry(0),
		asynq.Queue(Queue), asynq.Retention(time.Minute)); err != nil {
		r.t.Fatal(err)
	}
}

// recorder is a job that logs when each task starts and ends, counts executions per task, and
// blocks each task until its gate (named by the task's args) is opened.
type recorder struct {
	mu     sync.Mutex
	events []string
	runs   map[string]int
	gates  map[string]chan struct{}
}

type gateArgs struct {
	Gate string `json:"gate"`
}

func newRecorder() *recorder {
	return &recorder{runs: map[string]int{}, gates: map[string]chan struct{}{}}
}

func (rec *recorder) gate(name string) chan struct{} {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	g, ok := rec.gates[name]
	if !ok {
		g = make(chan struct{})
		rec.gates[name] = g
	}
	return g
}

// open lets the tasks waiting at gate name finish (and those that reach it later).
func (rec *recorder) open(name string) {
	g := rec.gate(name)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	select {
	case <-g:
	default:
		close(g)
	}
}

func (rec *recorder) openAll() {
	rec.mu.Lock()
	names := make([]string, 0, len(rec.gates))
	for n := range rec.gates {
		names = append(names, n)
	}
	rec.mu.Unlock()
	for _, n := range names {
		rec.open(n)
	}
}

func (rec *recorder) log(e string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.events = append(rec.events, e)
}

func (rec *recorder) snapshot() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string{}, rec.events...)
}

func (rec *recorder) count(id string) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.runs[id]
}

func (rec *recorder) job(ctx context.Context, _ *gorm.DB, t *models.Task) ([]string, any, error) {
	var a gateArgs
	if err := json.Unmarshal(t.Args, &a); err != nil {
		return nil, nil, err
	}
	rec.mu.Lock()
	rec.runs[t.ID]++
	rec.mu.Unlock()
	rec.log("start " + a.Gate)
	select {
	case <-rec.gate(a.Gate):
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	rec.log("end " + a.Gate)
	return nil, map[string]string{"gate": a.Gate}, nil
}

const recordJob = "test.record"

func eqEvents(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("events %q, want %q", got, want)
	}
}

func TestTaskCompletes(t *testing.T) {
	jobs := map[string]Job{"test.ok": func(_ context.Context, _ *gorm.DB, task *models.Task) ([]string, any, error) {
		return []string{models.KindNamespace.Href(task.ID)}, map[string]any{"answer": 42}, nil
	}}
	runRig(t, jobs, func(t *testing.T, r *rig, _ *recorder) {
		user := "/pulp/api/v3/users/1/"
		task, err := r.disp.Dispatch(context.Background(), models.NewTask{Name: "test.ok", LoggingCID: "0123456789abcdef0123456789abcdef",
			CreatedBy: &user, Exclusive: []string{"prn:test.thing:1"}, Shared: []string{"prn:test.other:2"}})
		if err != nil {
			t.Fatal(err)
		}
		if task.State != models.TaskWaiting {
			t.Errorf("dispatched task is %s", task.State)
		}
		done := r.waitState(task.ID, models.TaskCompleted)
		if done.StartedAt == nil || done.FinishedAt == nil || done.UnblockedAt == nil || done.FinishedAt.Before(*done.StartedAt) {
			t.Errorf("times: started %v finished %v unblocked %v", done.StartedAt, done.FinishedAt, done.UnblockedAt)
		}
		if done.WorkerID == nil || *done.WorkerID != r.worker.status.ID {
			t.Errorf("worker %v, want %s", done.WorkerID, r.worker.status.ID)
		}
		if string(done.Result) != `{"answer":42}` || len(done.CreatedResources) != 1 || done.CreatedResources[0] != models.KindNamespace.Href(task.ID) {
			t.Errorf("result %s, created %v", done.Result, done.CreatedResources)
		}
		if done.Error != nil || done.LoggingCID != "0123456789abcdef0123456789abcdef" || done.CreatedBy == nil || *done.CreatedBy != user {
			t.Errorf("task %+v", done)
		}
		want := []string{"prn:test.thing:1", "shared:prn:test.other:2", "shared:prn:core.domain:" + models.DefaultDomainID}
		if strings.Join(done.ReservedResourcesRecord, " ") != strings.Join(want, " ") {
			t.Errorf("reserved_resources_record %v, want %v", done.ReservedResourcesRecord, want)
		}
		m, _ := done.Serialize(r.db, "")
		if m["state"] != "completed" || m["result"].(map[string]any)["answer"] != 42.0 {
			t.Errorf("serialized %v", m)
		}
		// The worker is registered and shown with its heartbeat.
		online, err := models.Online(r.db, models.AppWorker, WorkerTTL)
		if err != nil || len(online) != 1 || online[0].Name != r.worker.cfg.Name {
			t.Errorf("online workers %v (%v)", online, err)
		}
	})
}

func TestSameResourceRunsInOrder(t *testing.T) {
	runRig(t, nil, func(t *testing.T, r *rig, rec *recorder) {
		res := []string{"prn:test.thing:1"}
		a := r.dispatch(recordJob, res, nil, gateArgs{"a"})
		b := r.dispatch(recordJob, res, nil, gateArgs{"b"})
		c := r.dispatch(recordJob, nil, res, gateArgs{"c"}) // shared: still waits for the exclusive ones
		rec.open("b")
		rec.open("c")
		r.waitState(a.ID, models.TaskRunning)
		// b and c are taken by the worker and wait for a's reservation.
		r.waitMessage(b.ID, asynq.TaskStateActive)
		r.waitMessage(c.ID, asynq.TaskStateActive)
		// A task on another resource runs meanwhile: the worker is not stuck.
		probe := r.dispatch(recordJob, []string{"prn:test.thing:2"}, nil, gateArgs{"probe"})
		rec.open("probe")
		r.waitState(probe.ID, models.TaskCompleted)
		for _, id := range []string{b.ID, c.ID} {
			if s := r.task(id).State; s != models.TaskWaiting {
				t.Fatalf("task %s is %s while a holds the resource", id, s)
			}
		}
		eqEvents(t, rec.snapshot(), "start a", "start probe", "end probe")

		rec.open("a")
		for _, id := range []string{a.ID, b.ID, c.ID} {
			r.waitState(id, models.TaskCompleted)
		}
		eqEvents(t, rec.snapshot(), "start a", "start probe", "end probe", "end a", "start b", "end b", "start c", "end c")
		ta, tb, tc := r.task(a.ID), r.task(b.ID), r.task(c.ID)
		if tb.StartedAt.Before(*ta.FinishedAt) || tc.StartedAt.Before(*tb.FinishedAt) {
			t.Errorf("overlap: a ended %v, b ran %v-%v, c started %v", ta.FinishedAt, tb.StartedAt, tb.FinishedAt, tc.StartedAt)
		}
	})
}

func TestSharedReservationsRunTogether(t *testing.T) {
	runRig(t, nil, func(t *testing.T, r *rig, rec *recorder) {
		res := []string{"prn:test.thing:1"}
		s1 := r.dispatch(recordJob, nil, res, gateArgs{"s1"})
		s2 := r.dispatch(recordJob, nil, res, gateArgs{"s2"})
		x := r.dispatch(recordJob, res, nil, gateArgs{"x"})
		rec.open("x")
		r.waitState(s1.ID, models.TaskRunning)
		r.waitState(s2.ID, models.TaskRunning)
		r.waitMessage(x.ID, asynq.TaskStateActive)
		if s := r.task(x.ID).State; s != models.TaskWaiting {
			t.Fatalf("exclusive task is %s while shared ones run", s)
		}
		rec.open("s1")
		r.waitState(s1.ID, models.TaskCompleted)
		if s := r.task(x.ID).State; s != models.TaskWaiting {
			t.Fatalf("exclusive task is %s while a shared one runs", s)
		}
		rec.open("s2")
		r.waitState(x.ID, models.TaskCompleted)
		ev := rec.snapshot()
		if len(ev) != 6 || ev[4] != "start x" || ev[5] != "end x" {
			t.Errorf("events %q: want x last", ev)
		}
	})
}

func TestDifferentResourcesRunConcurrently(t *testing.T) {
	runRig(t, nil, func(t *testing.T, r *rig, rec *recorder) {
		a := r.dispatch(recordJob, []string{"prn:test.thing:1"}, nil, gateArgs{"a"})
		b := r.dispatch(recordJob, []string{"prn:test.thing:2"}, nil, gateArgs{"b"})
		c := r.dispatch(recordJob, nil, nil, gateArgs{"c"}) // reserves nothing
		r.waitState(a.ID, models.TaskRunning)
		r.waitState(b.ID, models.TaskRunning)
		r.waitState(c.ID, models.TaskRunning)
		// A task is running in the database a moment before its job logs its start.
		ev := rec.snapshot()
		for deadline := time.Now().Add(10 * time.Second); len(ev) < 3 && time.Now().Before(deadline); ev = rec.snapshot() {
			time.Sleep(5 * time.Millisecond)
		}
		if len(ev) != 3 {
			t.Fatalf("events %q: want three starts", ev)
		}
		rec.open("b")
		r.waitState(b.ID, models.TaskCompleted)
		if s := r.task(a.ID).State; s != models.TaskRunning {
			t.Errorf("a is %s", s)
		}
		rec.open("a")
		rec.open("c")
		r.waitState(a.ID, models.TaskCompleted)
		r.waitState(c.ID, models.TaskCompleted)
	})
}

func TestFailingJobs(t *testing.T) {
	jobs := map[string]Job{
		"test.error": func(context.Context, *gorm.DB, *models.Task) ([]string, any, error) {
			return []string{"/pulp/api/v3/tasks/x/"}, "ignored", errors.New("Cannot connect to host 127.0.0.1:1")
		},
		"test.panic": func(context.Context, *gorm.DB, *models.Task) ([]string, any, error) {
			panic("boom")
		},
		"test.nilpanic": func(_ context.Context, _ *gorm.DB, t *models.Task) ([]string, any, error) {
			var m map[string]int
			m["x"]++ // nil map write panics
			return nil, nil, nil
		},
	}
	runRig(t, jobs, func(t *testing.T, r *rig, _ *recorder) {
		cases := []struct{ name, description string }{
			{"test.error", "Cannot connect to host 127.0.0.1:1"},
			{"test.panic", "task panicked: boom"},
			{"test.nilpanic", "task panicked: assignment to entry in nil map"},
			{"test.unknown", "no job named test.unknown on this worker"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				task := r.dispatch(c.name, []string{"prn:test.thing:1"}, nil, nil)
				done := r.waitState(task.ID, models.TaskFailed)
				var e map[string]any
				if err := json.Unmarshal(done.Error, &e); err != nil {
					t.Fatalf("error %s: %v", done.Error, err)
				}
				if e["description"] != c.description {
					t.Errorf("error.description %q, want %q", e["description"], c.description)
				}
				if _, ok := e["traceback"]; !ok {
					t.Errorf("error has no traceback: %v", e)
				}
				if done.FinishedAt == nil || len(done.CreatedResources) != 0 || done.Result != nil {
					t.Errorf("failed task: finished %v created %v result %s", done.FinishedAt, done.CreatedResources, done.Result)
				}
			})
		}
		// A failed task releases its reservation.
		ok := r.dispatch("test.error", []string{"prn:test.thing:1"}, nil, nil)
		r.waitState(ok.ID, models.TaskFailed)
	})
}

func TestTaskRunsOnce(t *testing.T) {
	runRig(t, nil, func(t *testing.T, r *rig, rec *recorder) {
		res := []string{"prn:test.thing:1"}
		// A duplicate message while the task runs.
		a := r.dispatch(recordJob, res, nil, gateArgs{"a"})
		r.waitState(a.ID, models.TaskRunning)
		r.duplicate(a.ID, "dup-running")
		r.waitMessage("dup-running", asynq.TaskStateCompleted)

		// A duplicate message while the task waits for a's reservation: two handlers wait
		// for the same row, and only one may start it.
		b := r.dispatch(recordJob, res, nil, gateArgs{"b"})
		r.duplicate(b.ID, "dup-waiting")
		r.waitMessage(b.ID, asynq.TaskStateActive)
		r.waitMessage("dup-waiting", asynq.TaskStateActive)
		rec.open("b")
		rec.open("a")
		r.waitState(a.ID, models.TaskCompleted)
		r.waitState(b.ID, models.TaskCompleted)
		r.waitMessage("dup-waiting", asynq.TaskStateCompleted)
		r.waitMessage(b.ID, asynq.TaskStateCompleted)

		// A duplicate message after the task finished.
		r.duplicate(b.ID, "dup-finished")
		r.waitMessage("dup-finished", asynq.TaskStateCompleted)

		// The same message id cannot be enqueued twice.
		body, _ := json.Marshal(payload{TaskID: a.ID})
		_, err := r.client.Enqueue(asynq.NewTask(asynqType, body), asynq.TaskID(a.ID), asynq.Queue(Queue))
		if !errors.Is(err, asynq.ErrTaskIDConflict) {
			t.Errorf("enqueue with a used task id: %v, want ErrTaskIDConflict", err)
		}

		if rec.count(a.ID) != 1 || rec.count(b.ID) != 1 {
			t.Errorf("executions: a %d, b %d; want 1 each", rec.count(a.ID), rec.count(b.ID))
		}
		eqEvents(t, rec.snapshot(), "start a", "end a", "start b", "end b")
		if s := r.task(b.ID).State; s != models.TaskCompleted {
			t.Errorf("b is %s", s)
		}
	})
}

func TestCancelWaitingTask(t *testing.T) {
	runRig(t, nil, func(t *testing.T, r *rig, rec *recorder) {
		res := []string{"prn:test.thing:1"}
		a := r.dispatch(recordJob, res, nil, gateArgs{"a"})
		b := r.dispatch(recordJob, res, nil, gateArgs{"b"})
		rec.open("b")
		r.waitState(a.ID, models.TaskRunning)
		r.waitMessage(b.ID, asynq.TaskStateActive)
		ok, err := models.CancelTask(r.db, b.ID)
		if err != nil || !ok {
			t.Fatalf("cancel waiting task: %v %v", ok, err)
		}
		if s := r.task(b.ID).State; s != models.TaskCanceled {
			t.Fatalf("canceled waiting task is %s", s)
		}
		// Canceling again, or a finished task, reports false.
		if ok, err := models.CancelTask(r.db, b.ID); ok || err != nil {
			t.Errorf("second cancel: %v %v", ok, err)
		}
		rec.open("a")
		r.waitState(a.ID, models.TaskCompleted)
		r.waitMessage(b.ID, asynq.TaskStateCompleted)
		tb := r.task(b.ID)
		if tb.State != models.TaskCanceled || tb.StartedAt != nil || tb.FinishedAt == nil || rec.count(b.ID) != 0 {
			t.Errorf("b: state %s started %v finished %v runs %d", tb.State, tb.StartedAt, tb.FinishedAt, rec.count(b.ID))
		}
		eqEvents(t, rec.snapshot(), "start a", "end a")

		t.Run("running task ends canceled", func(t *testing.T) {
			c := r.dispatch(recordJob, res, nil, gateArgs{"c"})
			r.waitState(c.ID, models.TaskRunning)
			if ok, err := models.CancelTask(r.db, c.ID); !ok || err != nil {
				t.Fatalf("cancel running: %v %v", ok, err)
			}
			if s := r.task(c.ID).State; s != models.TaskCanceling {
				t.Errorf("running task after cancel is %s", s)
			}
			rec.open("c")
			r.waitState(c.ID, models.TaskCanceled)
		})
	})
}

func TestFailLostTasks(t *testing.T) {
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		db, err := models.Open(e.DatabaseURL, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if sqlDB, err := db.DB(); err == nil {
				_ = sqlDB.Close()
			}
		})
		if err := models.Migrate(db); err != nil {
			t.Fatal(err)
		}
		worker := func(name string) *models.AppStatus {
			a := &models.AppStatus{Name: name, AppType: models.AppWorker, Versions: models.MustJSON(map[string]string{})}
			if err := models.Heartbeat(db, a); err != nil {
				t.Fatal(err)
			}
			return a
		}
		running := func(w *models.AppStatus, state string) *models.Task {
			task, err := models.CreateTask(db, models.NewTask{Name: "test.lost", Exclusive: []string{"prn:test.thing:" + w.Name}})
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := models.StartTask(db, task, w.ID); !ok || err != nil {
				t.Fatalf("start: %v %v", ok, err)
			}
			if state != models.TaskRunning {
				if err := db.Model(&models.Task{}).Where("id = ?", task.ID).Update("state", state).Error; err != nil {
					t.Fatal(err)
				}
			}
			return task
		}
		dead, alive := worker("dead@host"), worker("alive@host")
		lost := running(dead, models.TaskRunning)
		lostCanceling := running(dead, models.TaskCanceling)
		kept := running(alive, models.TaskRunning)
		waiting, err := models.CreateTask(db, models.NewTask{Name: "test.waiting"})
		if err != nil {
			t.Fatal(err)
		}

		if n, err := models.FailLostTasks(db, WorkerTTL); n != 0 || err != nil {
			t.Fatalf("with fresh heartbeats: failed %d (%v)", n, err)
		}
		old := models.Now().Add(-WorkerTTL - time.Minute)
		if err := db.Model(&models.AppStatus{}).Where("id = ?", dead.ID).Update("last_heartbeat", old).Error; err != nil {
			t.Fatal(err)
		}
		n, err := models.FailLostTasks(db, WorkerTTL)
		if n != 2 || err != nil {
			t.Fatalf("failed %d (%v), want 2", n, err)
		}
		for _, id := range []string{lost.ID, lostCanceling.ID} {
			task, err := models.GetTask(db, id)
			if err != nil {
				t.Fatal(err)
			}
			var e map[string]any
			_ = json.Unmarshal(task.Error, &e)
			if task.State != models.TaskFailed || task.FinishedAt == nil || fmt.Sprint(e["reason"]) == "" || e["reason"] == nil {
				t.Errorf("lost task: state %s finished %v error %s", task.State, task.FinishedAt, task.Error)
			}
		}
		for id, state := range map[string]string{kept.ID: models.TaskRunning, waiting.ID: models.TaskWaiting} {
			if task, _ := models.GetTask(db, id); task.State != state {
				t.Errorf("task %s is %s, want %s", id, task.State, state)
			}
		}
		if n, err := models.FailLostTasks(db, WorkerTTL); n != 0 || err != nil {
			t.Errorf("second pass failed %d (%v)", n, err)
		}
		// A lost task stays failed even if its job returns later.
		if err := models.FinishTask(db, lost, nil, "late", nil); err != nil {
			t.Fatal(err)
		}
		if task, _ := models.GetTask(db, lost.ID); task.State != models.TaskFailed {
			t.Errorf("lost task became %s when its job returned", task.State)
		}
	})
}

func TestFailLostTasksOfRunningWorker(t *testing.T) {
	runRig(t, nil, func(t *testing.T, r *rig, rec *recorder) {
		a := r.dispatch(recordJob, nil, nil, gateArgs{"a"})
		r.waitState(a.ID, models.TaskRunning)
		// The worker's own heartbeat may land between the two statements; try again then.
		waitFor(t, "the task to be failed as lost", func() bool {
			old := models.Now().Add(-WorkerTTL - time.Minute)
			if err := r.db.Model(&models.AppStatus{}).Where("id = ?", r.worker.status.ID).Update("last_heartbeat", old).Error; err != nil {
				t.Fatal(err)
			}
			n, err := models.FailLostTasks(r.db, WorkerTTL)
			if err != nil {
				t.Fatal(err)
			}
			return n == 1
		})
		if s := r.task(a.ID).State; s != models.TaskFailed {
			t.Fatalf("lost task is %s", s)
		}
		rec.open("a")
		r.waitMessage(a.ID, asynq.TaskStateCompleted)
		if task := r.task(a.ID); task.State != models.TaskFailed || task.Result != nil {
			t.Errorf("after the job returned: state %s result %s", task.State, task.Result)
		}
	})
}

// TestFailLostImmediateTasks: the immediate task of a push whose content process is gone
// (heartbeat expired) fails, even while still waiting, so its reservation no longer blocks the
// repository; a process restarted under the same name fails what its previous run left.
func TestFailLostImmediateTasks(t *testing.T) {
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		db := testenv.OpenDB(t, e)
		app := func(name string) *models.AppStatus {
			a := &models.AppStatus{Name: name, AppType: models.AppContent, Versions: models.MustJSON(map[string]string{})}
			if err := models.Heartbeat(db, a); err != nil {
				t.Fatal(err)
			}
			return a
		}
		gone, alive, restarted := app("gone@host"), app("alive@host"), app("restarted@host")
		immediate := func(a *models.AppStatus) *models.Task {
			task, err := models.CreateTask(db, models.NewTask{Name: "test.push", App: a.ID,
				Exclusive: []string{"prn:container.containerrepository:" + a.Name}})
			if err != nil {
				t.Fatal(err)
			}
			return task
		}
		lost, kept, left := immediate(gone), immediate(alive), immediate(restarted)
		// left is the previous run's (made before this process started); mine is this run's,
		// made under the same app before the restart is noticed: it must be kept.
		if err := db.Model(&models.Task{}).Where("id = ?", left.ID).Update("pulp_created", models.ProcessStart.Add(-time.Minute)).Error; err != nil {
			t.Fatal(err)
		}
		mine := immediate(restarted)
		// A task waiting behind the lost one on the same repository.
		behind, err := models.CreateTask(db, models.NewTask{Name: "test.sync", Exclusive: []string{"prn:container.containerrepository:gone@host"}})
		if err != nil {
			t.Fatal(err)
		}
		if blocked, err := models.Blocked(db, behind); !blocked || err != nil {
			t.Fatalf("the task behind the push is not blocked: %v %v", blocked, err)
		}
		old := models.Now().Add(-WorkerTTL - time.Minute)
		if err := db.Model(&models.AppStatus{}).Where("id = ?", gone.ID).Update("last_heartbeat", old).Error; err != nil {
			t.Fatal(err)
		}
		if n, err := models.FailLostTasks(db, WorkerTTL); n != 1 || err != nil {
			t.Fatalf("failed %d (%v), want 1", n, err)
		}
		if n, err := models.FailTasksOfRestartedApp(db, restarted.ID, models.ProcessStart); n != 1 || err != nil {
			t.Fatalf("restarted app: failed %d (%v), want 1", n, err)
		}
		for id, state := range map[string]string{lost.ID: models.TaskFailed, left.ID: models.TaskFailed, kept.ID: models.TaskWaiting, mine.ID: models.TaskWaiting} {
			if task, _ := models.GetTask(db, id); task.State != state {
				t.Errorf("task %s is %s, want %s", id, task.State, state)
			}
		}
		if blocked, err := models.Blocked(db, behind); blocked || err != nil {
			t.Errorf("the task behind the lost push is still blocked: %v %v", blocked, err)
		}
	})
}
