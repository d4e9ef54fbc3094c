package tasks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// redisServer is a redis-server of the test's own, on a fixed port, that the test can stop
// and start again empty (no persistence).
type redisServer struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	r := &redisServer{t: t, port: testenv.FreePort(t)}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

// start starts the server, empty, and waits until it answers.
func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.t.TempDir())
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	waitFor(r.t, "redis-server to answer", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port))
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
}

// stop kills the server (its data is lost).
func (r *redisServer) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// withOwnRedis returns engine e's database, a redis-server of the test's own, its
// connection options and a dispatcher on both.
func withOwnRedis(t *testing.T, e testenv.Engine) (*gorm.DB, *redisServer, asynq.RedisConnOpt, *Dispatcher) {
	t.Helper()
	db := testenv.OpenDB(t, e)
	rs := startRedis(t)
	opt, err := RedisOpt(rs.url())
	if err != nil {
		t.Fatal(err)
	}
	d := NewDispatcher(db, opt)
	t.Cleanup(func() { _ = d.Close() })
	return db, rs, opt, d
}

// engineDispatcher returns engine e's database and Redis and a dispatcher on both.
func engineDispatcher(t *testing.T, e testenv.Engine) (*gorm.DB, asynq.RedisConnOpt, *Dispatcher) {
	t.Helper()
	db := testenv.OpenDB(t, e)
	opt := engineRedis(t, e)
	d := NewDispatcher(db, opt)
	t.Cleanup(func() { _ = d.Close() })
	return db, opt, d
}

// startWorker starts a worker named name on db and opt that reconciles often, runs rec's job,
// and stops when t ends (after rec's gates are opened).
func startWorker(t *testing.T, db *gorm.DB, opt asynq.RedisConnOpt, name string, rec *recorder, cfg WorkerConfig) *Worker {
	t.Helper()
	cfg.DB, cfg.Redis, cfg.Name, cfg.Concurrency = db, opt, name, max(cfg.Concurrency, 4)
	cfg.Jobs = map[string]Job{recordJob: rec.job}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.ReconcileInterval == 0 {
		cfg.ReconcileInterval, cfg.ReconcileGrace = 20*time.Millisecond, 100*time.Millisecond
	}
	w := NewWorker(cfg)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	t.Cleanup(rec.openAll) // before Stop
	return w
}

// waitAll waits until every task in ids is in state and checks that each ran exactly once.
func waitAll(t *testing.T, db *gorm.DB, rec *recorder, state string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		waitFor(t, "task "+id+" to be "+state, func() bool {
			task, err := models.GetTask(db, id)
			if err != nil {
				t.Fatal(err)
			}
			if task.Final() && task.State != state {
				t.Fatalf("task %s ended %s (error %s), want %s", id, task.State, task.Error, state)
			}
			return task.State == state && rec.count(id) > 0
		})
	}
	for _, id := range ids {
		if n := rec.count(id); n != 1 {
			t.Errorf("task %s ran %d times, want 1", id, n)
		}
	}
}

func newTask(t *testing.T, db *gorm.DB, d *Dispatcher, gate string, exclusive ...string) *models.Task {
	t.Helper()
	nt := models.NewTask{Name: recordJob, Exclusive: exclusive, Args: gateArgs{gate}}
	var task *models.Task
	var err error
	if d != nil {
		task, err = d.Dispatch(context.Background(), nt)
	} else {
		task, err = models.CreateTask(db, nt) // a row without a queue message
	}
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// TestRedisRestartedEmpty: Redis (a real redis-server) is killed and started again empty while
// one task runs and others wait, some taken by the worker (waiting for the running one's
// reservation), the rest only queued. The running task finishes and records its outcome; every
// waiting one is enqueued again from its row and runs, each exactly once.
func TestRedisRestartedEmpty(t *testing.T) {
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		db, rs, opt, d := withOwnRedis(t, e)
		rec := newRecorder()
		startWorker(t, db, opt, "restart@"+e.Name, rec, WorkerConfig{Concurrency: 4})
		res := "prn:test.thing:1"
		running := newTask(t, db, d, "running", res)
		waitAll(t, db, rec, models.TaskRunning, running.ID)
		var waiting []string
		for range 12 {
			waiting = append(waiting, newTask(t, db, d, "go", res).ID)
		}
		rec.open("go")
		rs.stop()
		rs.start()
		rec.open("running")
		waitAll(t, db, rec, models.TaskCompleted, append([]string{running.ID}, waiting...)...)
	})
}

// TestDispatchWhileRedisDown: with Redis down, Dispatch stores the task and returns it
// waiting; it runs once Redis is back (empty).
func TestDispatchWhileRedisDown(t *testing.T) {
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		db, rs, opt, d := withOwnRedis(t, e)
		rec := newRecorder()
		rec.open("go")
		startWorker(t, db, opt, "down@"+e.Name, rec, WorkerConfig{})
		rs.stop()
		task := newTask(t, db, d, "go")
		if task.State != models.TaskWaiting {
			t.Fatalf("task dispatched with Redis down is %s", task.State)
		}
		if got, err := models.GetTask(db, task.ID); err != nil || got.State != models.TaskWaiting {
			t.Fatalf("stored task: %+v %v", got, err)
		}
		rs.start()
		waitAll(t, db, rec, models.TaskCompleted, task.ID)
	})
}

// TestMissingOrSpentMessage: a task row without a queue message (the dispatcher died before
// enqueueing) runs; so does one whose message a worker consumed without starting it (the
// database was down: here the row was canceled meanwhile and made waiting again), or whose
// message was archived.
func TestMissingOrSpentMessage(t *testing.T) {
	runRig(t, nil, func(t *testing.T, r *rig, rec *recorder) {
		rec.open("go")
		missing := newTask(t, r.db, nil, "go")

		setState := func(id, state string) {
			if err := r.db.Model(&models.Task{}).Where("id = ?", id).Update("state", state).Error; err != nil {
				t.Fatal(err)
			}
		}
		// Rows made canceled in the transaction that inserts them: the reconciler (every 20 ms)
		// never sees them waiting before the test gives them their messages.
		canceled := func() *models.Task {
			var task *models.Task
			if err := r.db.Transaction(func(tx *gorm.DB) error {
				var err error
				if task, err = models.CreateTask(tx, models.NewTask{Name: recordJob, Args: gateArgs{"go"}}); err != nil {
					return err
				}
				return tx.Model(&models.Task{}).Where("id = ?", task.ID).Update("state", models.TaskCanceled).Error
			}); err != nil {
				t.Fatal(err)
			}
			return task
		}
		spent := canceled()
		if err := enqueue(context.Background(), r.client, spent.ID); err != nil {
			t.Fatal(err)
		}
		r.waitMessage(spent.ID, asynq.TaskStateCompleted)

		archived := canceled()
		body := fmt.Appendf(nil, `{"task_id":%q}`, archived.ID)
		if _, err := r.client.Enqueue(asynq.NewTask(asynqType, body), asynq.TaskID(archived.ID), asynq.Queue(Queue),
			asynq.ProcessIn(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := r.insp.ArchiveTask(Queue, archived.ID); err != nil {
			t.Fatal(err)
		}
		if rec.count(spent.ID) != 0 || rec.count(archived.ID) != 0 {
			t.Fatal("a canceled task ran")
		}
		setState(spent.ID, models.TaskWaiting)
		setState(archived.ID, models.TaskWaiting)
		waitAll(t, r.db, rec, models.TaskCompleted, missing.ID, spent.ID, archived.ID)
	})
}

// TestWorkersReconcileTogether: two workers reconcile the same rows without messages, as
// often as they can, while duplicates of some messages are queued: each task runs once.
func TestWorkersReconcileTogether(t *testing.T) {
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		db := testenv.OpenDB(t, e)
		opt := engineRedis(t, e)
		client := asynq.NewClient(opt)
		t.Cleanup(func() { _ = client.Close() })
		rec := newRecorder()
		var ids []string
		for i := range 60 {
			// A third share a resource (they run in turn), the rest reserve their own.
			res := fmt.Sprintf("prn:test.thing:%d", i)
			if i%3 == 0 {
				res = "prn:test.thing:shared"
			}
			task := newTask(t, db, nil, "go", res)
			ids = append(ids, task.ID)
			if i%4 == 0 {
				body := fmt.Appendf(nil, `{"task_id":%q}`, task.ID)
				if _, err := client.Enqueue(asynq.NewTask(asynqType, body), asynq.TaskID("dup-"+task.ID), asynq.Queue(Queue),
					asynq.MaxRetry(0)); err != nil {
					t.Fatal(err)
				}
			}
		}
		rec.open("go")
		cfg := WorkerConfig{ReconcileInterval: time.Millisecond, ReconcileGrace: time.Nanosecond}
		startWorker(t, db, opt, "one@"+e.Name, rec, cfg)
		startWorker(t, db, opt, "two@"+e.Name, rec, cfg)
		waitAll(t, db, rec, models.TaskCompleted, ids...)
	})
}

// TestRestartedWorkerKeepsName: the tasks a worker (killed) left running fail as soon as a
// worker with its name starts, so the task waiting behind one on the same repository runs;
// a worker of another name leaves them to the heartbeat expiry.
func TestRestartedWorkerKeepsName(t *testing.T) {
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		db, opt, d := engineDispatcher(t, e)
		// The killed worker: its heartbeat is fresh, its task running.
		dead := &models.AppStatus{Name: "pulpgo-worker-0", AppType: models.AppWorker, Versions: models.MustJSON(map[string]string{})}
		if err := models.Heartbeat(db, dead); err != nil {
			t.Fatal(err)
		}
		res := models.KindContainerRepository.PRNOf("0190a000-0000-7000-8000-000000000001")
		left := newTask(t, db, nil, "left", res)
		if ok, err := models.StartTask(db, left, dead.ID); !ok || err != nil {
			t.Fatalf("start: %v %v", ok, err)
		}
		rec := newRecorder()
		rec.open("sync")
		startWorker(t, db, opt, "other-name", rec, WorkerConfig{})
		next := newTask(t, db, d, "sync", res)
		if task, _ := models.GetTask(db, left.ID); task.State != models.TaskRunning {
			t.Fatalf("a worker of another name changed the dead worker's task to %s", task.State)
		}
		startWorker(t, db, opt, dead.Name, rec, WorkerConfig{})
		task, err := models.GetTask(db, left.ID)
		if err != nil || task.State != models.TaskFailed {
			t.Fatalf("the restarted worker's task: %+v %v", task, err)
		}
		waitAll(t, db, rec, models.TaskCompleted, next.ID)
	})
}

// proxy forwards TCP connections to target until cut, which closes them all and refuses new
// ones until restored: a database outage for the processes that connect through it.
type proxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), target: target}
	p.restore()
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) restore() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// TestDatabaseOutage: PostgreSQL is unreachable for two workers for longer than their TTL.
// A job that ends meanwhile records its outcome once the database is back; neither worker
// fails the other's running task as lost once it can heartbeat again; both take new tasks.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	e := testenv.Postgres(t)
	direct := testenv.OpenDB(t, e)
	u, err := url.Parse(e.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, u.Host)
	u.Host = p.addr
	viaProxy := testenv.OpenDB(t, testenv.Engine{Name: "proxied", DatabaseURL: u.String()})
	opt, err := RedisOpt(e.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDispatcher(direct, opt)
	t.Cleanup(func() { _ = d.Close() })
	rec := newRecorder()
	// Worker two heartbeats less often than one: after the outage, one can heartbeat again
	// a while before two does, and must not fail two's tasks meanwhile.
	const ttl = time.Second
	two := startWorker(t, viaProxy, opt, "two", rec, WorkerConfig{HeartbeatInterval: 300 * time.Millisecond, WorkerTTL: ttl})
	long := newTask(t, direct, d, "long", "prn:test.thing:1")
	ends := newTask(t, direct, d, "ends", "prn:test.thing:2")
	waitAll(t, direct, rec, models.TaskRunning, long.ID, ends.ID)
	one := startWorker(t, viaProxy, opt, "one", rec, WorkerConfig{HeartbeatInterval: 50 * time.Millisecond, WorkerTTL: ttl})

	p.cut()
	// Longer than the TTL, as both workers see by their failed heartbeats.
	outage := time.Now()
	for time.Since(outage) < 3*ttl {
		time.Sleep(100 * time.Millisecond)
	}
	rec.open("ends")
	waitFor(t, "the job to end", func() bool {
		for _, ev := range rec.snapshot() {
			if ev == "end ends" {
				return true
			}
		}
		return false
	})
	checks1, checks2 := one.lostChecks.Load(), two.lostChecks.Load()
	p.restore()

	waitAll(t, direct, rec, models.TaskCompleted, ends.ID)
	// Both workers look for lost tasks again (after a TTL of working heartbeats)...
	waitFor(t, "both workers to look for lost tasks", func() bool {
		return one.lostChecks.Load() > checks1+2 && two.lostChecks.Load() > checks2+2
	})
	// ...and neither failed the running one.
	if task, _ := models.GetTask(direct, long.ID); task.State != models.TaskRunning {
		t.Fatalf("the running task of a live worker is %s (error %s) after the outage", task.State, task.Error)
	}
	rec.open("long")
	rec.open("after")
	after := newTask(t, direct, d, "after", "prn:test.thing:1")
	waitAll(t, direct, rec, models.TaskCompleted, long.ID, after.ID)
}

// TestJobOutlivesAsynqContext: Asynq cancels a handler's context when it cannot extend the
// message's lease (Redis down for longer than 30 s); the job runs on and its outcome is
// recorded.
func TestJobOutlivesAsynqContext(t *testing.T) {
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		db, _, opt, _ := withOwnRedis(t, e)
		rec := newRecorder()
		// The reconciler never sends this task to the worker: only the handler below runs it.
		w := startWorker(t, db, opt, "lease@"+e.Name, rec, WorkerConfig{ReconcileInterval: time.Hour, ReconcileGrace: time.Hour})
		task := newTask(t, db, nil, "job")
		ctx, cancel := context.WithCancel(context.Background())
		returned := make(chan struct{})
		go func() {
			defer close(returned)
			_ = w.handle(ctx, asynq.NewTask(asynqType, fmt.Appendf(nil, `{"task_id":%q}`, task.ID)))
		}()
		waitAll(t, db, rec, models.TaskRunning, task.ID)
		cancel()
		// A job on the handler's context would end at once; give it ample time to.
		time.Sleep(200 * time.Millisecond)
		rec.open("job")
		waitAll(t, db, rec, models.TaskCompleted, task.ID)
		<-returned
	})
}

// TestStopFailsRunningJobs: a job still running when its worker stops (after the shutdown
// timeout) is canceled and its task fails with the reason recorded, rather than staying
// running until the worker's TTL expires.
func TestStopFailsRunningJobs(t *testing.T) {
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		db, opt, d := engineDispatcher(t, e)
		rec := newRecorder()
		w := NewWorker(WorkerConfig{DB: db, Redis: opt, Name: "stopped@" + e.Name, Jobs: map[string]Job{recordJob: rec.job},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ShutdownTimeout: 100 * time.Millisecond})
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		task := newTask(t, db, d, "never")
		waitAll(t, db, rec, models.TaskRunning, task.ID)
		w.Stop()
		got, err := models.GetTask(db, task.ID)
		if err != nil || got.State != models.TaskFailed || !strings.Contains(string(got.Error), errWorkerStopped.Error()) {
			t.Fatalf("task after Stop: %+v %v", got, err)
		}
	})
}

// TestStartAnswerLost: when the statement that makes a task running commits but its answer is
// lost (a connection reset after the commit), the worker reads the row again, finds the task
// its own, and runs the job: the task does not stay running with nothing behind it.
func TestStartAnswerLost(t *testing.T) {
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		db, _, opt, _ := withOwnRedis(t, e)
		var lost atomic.Bool
		if err := db.Callback().Update().After("gorm:commit_or_rollback_transaction").Register("test:lose_answer", func(tx *gorm.DB) {
			m, _ := tx.Statement.Dest.(map[string]any)
			if tx.Statement.Table == "tasks" && tx.Error == nil && m["state"] == models.TaskRunning && tx.RowsAffected == 1 && !lost.Swap(true) {
				tx.AddError(errors.New("connection reset after the commit"))
			}
		}); err != nil {
			t.Fatal(err)
		}
		rec := newRecorder()
		w := startWorker(t, db, opt, "lost@"+e.Name, rec, WorkerConfig{ReconcileInterval: time.Hour, ReconcileGrace: time.Hour})
		task := newTask(t, db, nil, "job")
		returned := make(chan struct{})
		go func() {
			defer close(returned)
			_ = w.handle(context.Background(), asynq.NewTask(asynqType, fmt.Appendf(nil, `{"task_id":%q}`, task.ID)))
		}()
		rec.open("job")
		waitAll(t, db, rec, models.TaskCompleted, task.ID)
		<-returned
		if !lost.Load() {
			t.Fatal("the start's answer was never lost: the test did not test anything")
		}
	})
}

// TestUntrackedRunningTaskFails: a row the database says this worker runs, which no handler of
// it runs (its recorded outcome lost in a failover), is failed by the worker's sweep once it
// has run for longer than a start can take; a task a handler runs is left alone however long.
func TestUntrackedRunningTaskFails(t *testing.T) {
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		db, _, opt, d := withOwnRedis(t, e)
		rec := newRecorder()
		w := startWorker(t, db, opt, "sweep@"+e.Name, rec, WorkerConfig{})
		live := newTask(t, db, d, "live")
		waitAll(t, db, rec, models.TaskRunning, live.ID)
		lost := newTask(t, db, nil, "lost")
		long := models.Now().Add(-2 * untrackedGrace)
		if err := db.Model(&models.Task{}).Where("id = ?", lost.ID).Updates(map[string]any{"state": models.TaskRunning,
			"worker_id": w.status.ID, "started_at": long}).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Model(&models.Task{}).Where("id = ?", live.ID).Update("started_at", long).Error; err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the untracked task to fail", func() bool {
			task, err := models.GetTask(db, lost.ID)
			return err == nil && task.State == models.TaskFailed
		})
		if task, _ := models.GetTask(db, live.ID); task.State != models.TaskRunning {
			t.Fatalf("the task a handler runs is %s, want running", task.State)
		}
		rec.open("live")
		waitAll(t, db, rec, models.TaskCompleted, live.ID)
	})
}
