package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/server"
	"github.com/pulpgo/pulpgo/tasks"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// adminPassword is the admin's password in every test server.
const adminPassword = "password"

// taskDeadline bounds every wait for a task to finish.
const taskDeadline = 30 * time.Second

// env is one running API: its database, a worker, and the API under httptest.
type env struct {
	t    *testing.T
	db   *gorm.DB
	url  string // base URL of the test server, without a trailing slash
	host string // host:port of the test server
	disp *tasks.Dispatcher
	// worker is the name of the worker, in /status/ and /workers/.
	worker string
	// handler is the API itself, for requests that bypass the network.
	handler http.Handler
}

// newEnv starts the API on engine e: the database (SQLite in a temporary directory when
// e.DatabaseURL is empty), Redis (in process when e.RedisURL is empty), a dispatcher, a worker
// running jobs in addition to the built-in ones, and the API under httptest. Everything stops
// when t ends.
func newEnv(t *testing.T, e testenv.Engine, jobs map[string]tasks.Job) *env {
	t.Helper()
	return newEnvPassword(t, e, jobs, adminPassword)
}

// newEnvPassword is newEnv with password as the configured admin password.
func newEnvPassword(t *testing.T, e testenv.Engine, jobs map[string]tasks.Job, password string) *env {
	t.Helper()
	db, disp, h := startAPI(t, e, jobs, password)
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	u, _ := url.Parse(ts.URL)
	return &env{t: t, db: db, url: ts.URL, host: u.Host, disp: disp, worker: "test-worker@" + e.Name, handler: h}
}

// startAPI starts what newEnv describes but the HTTP server, for any test or fuzz target tb,
// and returns the database, the dispatcher and the API's handler.
func startAPI(tb testing.TB, e testenv.Engine, jobs map[string]tasks.Job, password string) (*gorm.DB, *tasks.Dispatcher, http.Handler) {
	tb.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db := testenv.OpenDB(tb, e)
	redisURL := e.RedisURL
	if redisURL == "" {
		emb, err := tasks.StartEmbedded()
		if err != nil {
			tb.Fatalf("embedded redis: %v", err)
		}
		tb.Cleanup(emb.Close)
		redisURL = emb.URL()
	}
	opt, err := tasks.RedisOpt(redisURL)
	if err != nil {
		tb.Fatal(err)
	}
	disp := tasks.NewDispatcher(db, opt)
	tb.Cleanup(func() { _ = disp.Close() })
	w := tasks.NewWorker(tasks.WorkerConfig{DB: db, Redis: opt, Logger: quiet, Concurrency: 8,
		Name: "test-worker@" + e.Name, Versions: server.VersionMap(), Jobs: jobs})
	if err := w.Start(); err != nil {
		tb.Fatalf("start worker: %v", err)
	}
	tb.Cleanup(w.Stop)
	rdb := opt.MakeRedisClient().(redis.UniversalClient)
	tb.Cleanup(func() { _ = rdb.Close() })
	h, err := server.New(server.Deps{DB: db, Tasks: disp, AdminPassword: password, Logger: quiet,
		RedisPing: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }, StorageDir: tb.TempDir()})
	if err != nil {
		tb.Fatalf("server.New: %v", err)
	}
	return db, disp, h
}

// runAPI runs fn once per engine with a fresh API, in parallel with other tests.
func runAPI(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		fn(t, newEnv(t, eng, nil))
	})
}

// resp is a response with its body read.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

// reqOpt changes a request before it is sent.
type reqOpt func(*http.Request)

// noAuth sends no credentials.
func noAuth(r *http.Request) { r.Header.Del("Authorization") }

// withAuth sends user:pass as HTTP Basic credentials.
func withAuth(user, pass string) reqOpt { return func(r *http.Request) { r.SetBasicAuth(user, pass) } }

// withHeader sets a request header.
func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

// withHost sends a different Host header.
func withHost(h string) reqOpt { return func(r *http.Request) { r.Host = h } }

// rawJSON is a request body sent byte for byte as application/json.
type rawJSON string

// do sends a request to path (an href, a path with a query, or an absolute URL whose path
// and query are used) as admin. body is nil (no body), a rawJSON, url.Values (form-encoded)
// or any value to encode as JSON.
func (e *env) do(method, path string, body any, opts ...reqOpt) *resp {
	e.t.Helper()
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		u, err := url.Parse(path)
		if err != nil {
			e.t.Fatalf("bad URL %q: %v", path, err)
		}
		path = u.RequestURI()
	}
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case rawJSON:
		rd, ct = strings.NewReader(string(b)), "application/json"
	case url.Values:
		rd, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			e.t.Fatalf("encode body: %v", err)
		}
		rd, ct = bytes.NewReader(buf), "application/json"
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth("admin", adminPassword)
	for _, o := range opts {
		o(req)
	}
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer hr.Body.Close()
	data, err := io.ReadAll(hr.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return &resp{Status: hr.StatusCode, Header: hr.Header, Body: data}
}

// get, post, patch, put and del are do with one method.
func (e *env) get(path string, opts ...reqOpt) *resp {
	e.t.Helper()
	return e.do("GET", path, nil, opts...)
}
func (e *env) post(path string, body any, opts ...reqOpt) *resp {
	e.t.Helper()
	return e.do("POST", path, body, opts...)
}
func (e *env) patch(path string, body any, opts ...reqOpt) *resp {
	e.t.Helper()
	return e.do("PATCH", path, body, opts...)
}
func (e *env) put(path string, body any, opts ...reqOpt) *resp {
	e.t.Helper()
	return e.do("PUT", path, body, opts...)
}
func (e *env) del(path string, opts ...reqOpt) *resp {
	e.t.Helper()
	return e.do("DELETE", path, nil, opts...)
}

// expect fails the test unless r has status code.
func (r *resp) expect(t *testing.T, code int) *resp {
	t.Helper()
	if r.Status != code {
		t.Fatalf("status %d, want %d; body: %s", r.Status, code, r.Body)
	}
	return r
}

// obj decodes the body as a JSON object.
func (r *resp) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// results decodes a paginated list body and returns its results.
func (r *resp) results(t *testing.T) []map[string]any {
	t.Helper()
	var page struct {
		Count   *int             `json:"count"`
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(r.Body, &page); err != nil || page.Count == nil || page.Results == nil {
		t.Fatalf("body is not a page (%v): %s", err, r.Body)
	}
	if *page.Count < len(page.Results) {
		t.Fatalf("count %d < %d results: %s", *page.Count, len(page.Results), r.Body)
	}
	return page.Results
}

// names returns the "name" of every result of a list response.
func (r *resp) names(t *testing.T) []string {
	t.Helper()
	out := []string{}
	for _, m := range r.results(t) {
		out = append(out, fmt.Sprint(m["name"]))
	}
	return out
}

// bodyIs fails the test unless the body is the JSON value want.
func (r *resp) bodyIs(t *testing.T, code int, want string) {
	t.Helper()
	r.expect(t, code)
	jsonEq(t, r.Body, want)
}

// jsonEq fails the test unless got and want encode equal JSON values.
func jsonEq(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation %q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("body\n  got  %s\n  want %s", got, want)
	}
}

// taskHref checks that r is Pulp's 202 (exactly {"task": "/pulp/api/v3/tasks/<uuid>/"}) and
// returns the task's href.
func (r *resp) taskHref(t *testing.T) string {
	t.Helper()
	r.expect(t, http.StatusAccepted)
	m := r.obj(t)
	href, _ := m["task"].(string)
	if len(m) != 1 || !strings.HasPrefix(href, "/pulp/api/v3/tasks/") {
		t.Fatalf("202 body %s: want exactly {\"task\": <task href>}", r.Body)
	}
	if ref, ok := models.ParseRef(href); !ok || ref.Kind != models.KindTask {
		t.Fatalf("task href %q does not resolve to a task", href)
	}
	return href
}

// finalStates are the states in which a task has finished.
var finalStates = map[string]bool{"completed": true, "failed": true, "canceled": true, "skipped": true}

// waitTask polls the task at href, as a client does, until it has finished, and returns it.
func (e *env) waitTask(href string) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(taskDeadline)
	for {
		task := e.get(href).expect(e.t, http.StatusOK).obj(e.t)
		if finalStates[fmt.Sprint(task["state"])] {
			return task
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("task %s still %v after %v", href, task["state"], taskDeadline)
		}
		time.Sleep(5 * time.Millisecond) // polling interval of a client
	}
}

// waitTaskOK waits for the task at href and fails the test unless it completed.
func (e *env) waitTaskOK(href string) map[string]any {
	e.t.Helper()
	task := e.waitTask(href)
	if task["state"] != "completed" {
		e.t.Fatalf("task %s ended %v: error %v", href, task["state"], task["error"])
	}
	return task
}

// create POSTs body to a collection, expects 201 and returns the object.
func (e *env) create(collection string, body any) map[string]any {
	e.t.Helper()
	return e.post(collection, body).expect(e.t, http.StatusCreated).obj(e.t)
}

// createAsync POSTs body to a collection, waits for the create task and returns the object.
func (e *env) createAsync(collection string, body any) map[string]any {
	e.t.Helper()
	task := e.waitTaskOK(e.post(collection, body).taskHref(e.t))
	created, _ := task["created_resources"].([]any)
	if len(created) == 0 {
		e.t.Fatalf("create task has no created_resources: %v", task)
	}
	return e.get(created[0].(string)).expect(e.t, http.StatusOK).obj(e.t)
}

// Collection paths used by the tests.
const (
	api            = "/pulp/api/v3/"
	ptRemotes      = api + "remotes/container/pull-through/"
	remotes        = api + "remotes/container/container/"
	repositories   = api + "repositories/container/container/"
	distributions  = api + "distributions/container/container/"
	ptDistribution = api + "distributions/container/pull-through/"
	namespaces     = api + "pulp_container/namespaces/"
	taskList       = api + "tasks/"
)

// mustJSON encodes v.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// href returns the pulp_href of an object.
func href(m map[string]any) string { return m["pulp_href"].(string) }
