package server_test

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/tasks"
	"github.com/pulpgo/pulpgo/test/testenv"
)

var taskKeys = []string{"pulp_href", "prn", "pulp_created", "pulp_last_updated", "state", "name", "logging_cid",
	"created_by", "unblocked_at", "started_at", "finished_at", "error", "worker", "parent_task", "child_tasks",
	"task_group", "progress_reports", "created_resources", "created_resource_prns", "reserved_resources_record",
	"result", "pulp_api_version"}

func hrefsOf(rs []map[string]any) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, href(r))
	}
	return out
}

func TestTasksAPI(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		rem := e.create(ptRemotes, map[string]any{"name": "r", "url": "https://a.example"})
		update := e.patch(href(rem), map[string]any{"url": "https://b.example"}).taskHref(t)
		e.waitTaskOK(update)
		dist := e.createAsync(distributions, map[string]any{"name": "d", "base_path": "d"})
		creates := e.get(taskList + "?name=pulpcore.app.tasks.base.general_create").results(t)
		if len(creates) != 1 {
			t.Fatalf("%d create tasks", len(creates))
		}
		create := href(creates[0])

		t.Run("every key", func(t *testing.T) {
			task := e.get(update).expect(t, http.StatusOK).obj(t)
			for _, k := range taskKeys {
				if _, ok := task[k]; !ok {
					t.Errorf("task has no %q", k)
				}
			}
			if len(task) != len(taskKeys) {
				t.Errorf("task has %d keys, want %d: %v", len(task), len(taskKeys), task)
			}
			want := map[string]any{"pulp_href": update, "prn": "prn:core.task:" + idOf(update), "state": "completed",
				"created_by": "/pulp/api/v3/users/1/", "error": nil, "worker": nil, "parent_task": nil,
				"task_group": nil, "pulp_api_version": "v3"}
			for k, v := range want {
				if task[k] != v {
					t.Errorf("%s = %#v, want %#v", k, task[k], v)
				}
			}
			for _, k := range []string{"started_at", "finished_at", "unblocked_at"} {
				if _, ok := task[k].(string); !ok {
					t.Errorf("%s = %v", k, task[k])
				}
			}
		})

		cases := []struct {
			query string
			want  []string
		}{
			{"", []string{create, update}}, // newest first
			{"state=completed", []string{create, update}},
			{"state=waiting", []string{}},
			{"state__in=failed,completed", []string{create, update}},
			{"state__ne=completed", []string{}},
			{"name=pulpcore.app.tasks.base.ageneral_update", []string{update}},
			{"name__contains=general_create", []string{create}},
			{"name__in=pulpcore.app.tasks.base.ageneral_update,x", []string{update}},
			{"reserved_resources=" + href(rem), []string{update}},
			{"reserved_resources=" + url.QueryEscape(rem["prn"].(string)), []string{update}},
			{"exclusive_resources=" + href(rem), []string{update}},
			{"shared_resources=" + href(rem), []string{}},
			{"reserved_resources__in=" + href(rem) + "," + href(dist), []string{update}},
			{"created_resources=" + href(dist), []string{create}},
			{"ordering=pulp_created", []string{update, create}},
			{"pulp_href__in=" + update, []string{update}},
		}
		for _, c := range cases {
			t.Run("list "+c.query, func(t *testing.T) {
				got := hrefsOf(e.get(taskList+"?"+c.query).expect(t, http.StatusOK).results(t))
				if !reflect.DeepEqual(got, c.want) {
					t.Errorf("tasks %v, want %v", got, c.want)
				}
			})
		}

		t.Run("cancel a finished task", func(t *testing.T) {
			r := e.patch(update, map[string]any{"state": "canceled"}).expect(t, http.StatusConflict)
			m := r.obj(t)
			if m["pulp_href"] != update || m["state"] != "completed" {
				t.Errorf("409 body %s", r.Body)
			}
		})
		t.Run("cancel with a wrong state", func(t *testing.T) {
			for _, s := range []any{"running", "completed", 1} {
				e.patch(update, map[string]any{"state": s}).bodyIs(t, http.StatusBadRequest,
					`{"state": ["The only acceptable value for 'state' is 'canceled'."]}`)
			}
			e.patch(update, map[string]any{}).bodyIs(t, http.StatusBadRequest, `{"state": ["This field is required."]}`)
		})
		t.Run("POST is not allowed", func(t *testing.T) {
			e.post(update, map[string]any{}).bodyIs(t, http.StatusMethodNotAllowed, `{"detail": "Method \"POST\" not allowed."}`)
		})
		t.Run("delete a finished task", func(t *testing.T) {
			r := e.del(update).expect(t, http.StatusNoContent)
			if len(r.Body) != 0 {
				t.Errorf("204 body %q", r.Body)
			}
			e.get(update).bodyIs(t, http.StatusNotFound, `{"detail": "No Task matches the given query."}`)
			e.del(update).expect(t, http.StatusNotFound)
		})
	})
}

// blocker is a job that records the tasks it runs and blocks until released.
type blocker struct {
	mu      sync.Mutex
	ran     []string
	release chan struct{}
	once    sync.Once
}

func newBlocker() *blocker { return &blocker{release: make(chan struct{})} }

func (b *blocker) job(ctx context.Context, _ *gorm.DB, t *models.Task) ([]string, any, error) {
	b.mu.Lock()
	b.ran = append(b.ran, t.ID)
	b.mu.Unlock()
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return nil, map[string]string{"ran": t.ID}, nil
}

func (b *blocker) open() { b.once.Do(func() { close(b.release) }) }

func (b *blocker) runs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string{}, b.ran...)
}

// waitState polls the task at href until it is in state.
func (e *env) waitState(href, state string) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(taskDeadline)
	for {
		task := e.get(href).expect(e.t, http.StatusOK).obj(e.t)
		if task["state"] == state {
			return task
		}
		if time.Now().After(deadline) || (finalStates[task["state"].(string)] && !finalStates[state]) {
			e.t.Fatalf("task %s is %v, waited for %s", href, task["state"], state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTaskCancelAPI(t *testing.T) {
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		b := newBlocker()
		e := newEnv(t, eng, map[string]tasks.Job{"test.block": b.job})
		t.Cleanup(b.open)
		dispatch := func() string {
			task, err := e.disp.Dispatch(context.Background(), models.NewTask{Name: "test.block", Exclusive: []string{"prn:test.thing:1"}})
			if err != nil {
				t.Fatal(err)
			}
			return task.Href()
		}
		first, second := dispatch(), dispatch()
		e.waitState(first, "running")
		if got := e.get(second).obj(t)["state"]; got != "waiting" {
			t.Fatalf("second task %v while the first runs", got)
		}
		m := e.patch(second, map[string]any{"state": "canceled"}).expect(t, http.StatusOK).obj(t)
		if m["state"] != "canceled" {
			t.Errorf("canceled waiting task: state %v", m["state"])
		}
		m = e.patch(first, map[string]any{"state": "canceled"}).expect(t, http.StatusOK).obj(t)
		if m["state"] != "canceling" {
			t.Errorf("canceled running task: state %v", m["state"])
		}
		if r := e.del(first).expect(t, http.StatusConflict); len(r.Body) != 0 {
			t.Errorf("409 on delete has a body: %s", r.Body)
		}
		b.open()
		if got := e.waitTask(first)["state"]; got != "canceled" {
			t.Errorf("first task ended %v, want canceled", got)
		}
		if got := e.waitTask(second); got["state"] != "canceled" || got["started_at"] != nil {
			t.Errorf("second task: %v", got)
		}
		e.patch(second, map[string]any{"state": "canceled"}).expect(t, http.StatusConflict)
		// A third task on the same resource still runs: the canceled ones hold nothing.
		third := dispatch()
		if got := e.waitTask(third)["state"]; got != "completed" {
			t.Errorf("third task ended %v", got)
		}
		if runs := b.runs(); len(runs) != 2 || runs[0] != idOf(first) || runs[1] != idOf(third) {
			t.Errorf("runs %v: want the first and the third task only", runs)
		}
	})
}
