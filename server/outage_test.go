package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulpgo/pulpgo/test/testenv"
)

// outageDeadline is how long a request may take while a dependency is down before the test
// calls it hung: generous, not a measure of speed.
const outageDeadline = 30 * time.Second

// outageEnv is an API on PostgreSQL and Redis, each reached through a proxy the test cuts and
// restores.
type outageEnv struct {
	*env
	db, redis *testenv.Proxy
	// redisURL is Redis's own URL, not through the proxy.
	redisURL string
}

func newOutageEnv(t *testing.T) *outageEnv {
	t.Helper()
	db, dbURL := testenv.ProxyURL(t, testenv.PostgresURL(t))
	direct := testenv.RedisURL(t)
	rdb, redisURL := testenv.ProxyURL(t, direct)
	e := newEnv(t, testenv.Engine{Name: "postgres", DatabaseURL: dbURL, RedisURL: redisURL}, nil)
	return &outageEnv{env: e, db: db, redis: rdb, redisURL: direct}
}

// timed sends a request and fails the test if it has no answer within outageDeadline.
func (e *outageEnv) timed(method, path string, body any, opts ...reqOpt) *resp {
	e.t.Helper()
	start := time.Now()
	r := e.do(method, path, body, opts...)
	if d := time.Since(start); d > outageDeadline {
		e.t.Fatalf("%s %s hung: answered after %s", method, path, d)
	} else {
		e.t.Logf("%s %s: %d in %s", method, path, r.Status, d.Round(time.Millisecond))
	}
	return r
}

// expectUnavailable fails the test unless r is DRF's ServiceUnavailable with a Retry-After.
func expectUnavailable(t *testing.T, what string, r *resp) {
	t.Helper()
	if r.Status != http.StatusServiceUnavailable {
		t.Errorf("%s: status %d, want 503; body %s", what, r.Status, r.Body)
		return
	}
	if got := r.obj(t)["detail"]; got != "Service temporarily unavailable, try again later." {
		t.Errorf("%s: detail %v, want DRF's ServiceUnavailable", what, got)
	}
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("%s: no Retry-After", what)
	}
}

// connected returns status's database_connection and redis_connection "connected" values.
func connected(t *testing.T, r *resp) (db, redis any) {
	t.Helper()
	st := r.expect(t, http.StatusOK).obj(t)
	return st["database_connection"].(map[string]any)["connected"], st["redis_connection"].(map[string]any)["connected"]
}

// waitRecovered polls path until it answers code, failing the test after outageDeadline.
func (e *outageEnv) waitRecovered(path string, code int, opts ...reqOpt) {
	e.t.Helper()
	start := time.Now()
	for {
		r := e.get(path, opts...)
		if r.Status == code {
			e.t.Logf("GET %s recovered %s after the service came back", path, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > outageDeadline {
			e.t.Fatalf("GET %s still %d %s after the service came back: %s", path, r.Status, outageDeadline, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAPIDatabaseOutage: while PostgreSQL is gone, reads, writes and the authentication of a
// user (which reads the users table) answer 503 with DRF's ServiceUnavailable body and a
// Retry-After, never 500 or 401, and status answers 200 with database_connection.connected
// false; once it is back, the same API answers 2xx again without a restart.
func TestAPIDatabaseOutage(t *testing.T) {
	t.Parallel()
	e := newOutageEnv(t)
	e.create(api+"users/", map[string]any{"username": "alice", "password": "alice-Secret-1"})
	e.get(repositories).expect(t, http.StatusOK)

	e.db.Cut()
	expectUnavailable(t, "list repositories", e.timed("GET", repositories, nil))
	expectUnavailable(t, "create a repository", e.timed("POST", repositories, map[string]any{"name": "during"}))
	expectUnavailable(t, "create a distribution (a task)", e.timed("POST", distributions, map[string]any{"name": "d", "base_path": "d"}))
	// alice has not logged in yet: her credentials must be checked against the database.
	expectUnavailable(t, "a user's login", e.timed("GET", repositories, nil, withAuth("alice", "alice-Secret-1")))
	if db, redis := connected(t, e.timed("GET", api+"status/", nil)); db != false || redis != true {
		t.Errorf("status during the database outage: database connected %v, redis %v; want false, true", db, redis)
	}
	e.timed("GET", api+"livez/", nil).expect(t, http.StatusOK)

	e.db.Restore()
	e.waitRecovered(repositories, http.StatusOK)
	e.get(repositories, withAuth("alice", "alice-Secret-1")).expect(t, http.StatusOK)
	e.create(repositories, map[string]any{"name": "after"})
	if db, _ := connected(t, e.get(api+"status/")); db != true {
		t.Errorf("status after the database came back: database connected %v", db)
	}
}

// TestAPIRedisOutage: while Redis is gone, what needs only the database is served, status
// answers 200 with redis_connection.connected false, and an operation that dispatches a task
// answers at once, never 500 (503 when the task cannot be queued; 202 if the task is kept in
// the database to be queued later); once Redis is back, empty, tasks run again.
func TestAPIRedisOutage(t *testing.T) {
	t.Parallel()
	e := newOutageEnv(t)

	e.redis.Cut()
	e.timed("GET", repositories, nil).expect(t, http.StatusOK)
	e.timed("POST", repositories, map[string]any{"name": "during"}).expect(t, http.StatusCreated)
	if db, redis := connected(t, e.timed("GET", api+"status/", nil)); db != true || redis != false {
		t.Errorf("status during the Redis outage: database connected %v, redis %v; want true, false", db, redis)
	}
	r := e.timed("POST", distributions, map[string]any{"name": "d1", "base_path": "d1"})
	switch r.Status {
	case http.StatusServiceUnavailable:
		expectUnavailable(t, "create a distribution (a task)", r)
	case http.StatusAccepted:
	default:
		t.Errorf("create a distribution during the Redis outage: %d %s, want 503 or 202", r.Status, r.Body)
	}

	// Redis comes back empty, as a restarted server without persistence does.
	opts, err := redis.ParseURL(e.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	direct := redis.NewClient(opts)
	defer direct.Close()
	if err := direct.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	e.redis.Restore()
	start := time.Now()
	for {
		r := e.post(distributions, map[string]any{"name": "d2", "base_path": "d2"})
		if r.Status == http.StatusAccepted {
			e.waitTaskOK(r.taskHref(t))
			t.Logf("a task ran %s after Redis came back", time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Since(start) > outageDeadline {
			t.Fatalf("dispatch still %d %s after Redis came back: %s", r.Status, outageDeadline, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, redis := connected(t, e.get(api+"status/")); redis != true {
		t.Errorf("status after Redis came back: redis connected %v", redis)
	}
}
