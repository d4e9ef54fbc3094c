package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/server"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// djangoServerError is the page Pulp answers for an unexpected error in the API: Django's
// default server_error view (pulpcore sets no handler500 and runs with DEBUG off).
const djangoServerError = "\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Server Error (500)</title>\n</head>\n" +
	"<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n"

// lockedBuffer is a log sink that handlers may write from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// faultyDispatcher is a task queue that fails with an error full of internals, or panics.
type faultyDispatcher struct{ panics bool }

// internals is what a failing dependency might say; none of it may reach a client.
const internals = "dial tcp 10.1.2.3:6379: connect: connection refused (redis://queue:hunter2@10.1.2.3)"

func (d faultyDispatcher) Dispatch(context.Context, models.NewTask) (*models.Task, error) {
	if d.panics {
		panic(internals)
	}
	return nil, errors.New(internals)
}

// TestInternalErrorHidden forces 500s (a closed database, a task queue that fails, one that
// panics) and checks that the client gets Pulp's 500 page with nothing of the error, and that
// the log has the error with the request's correlation id.
func TestInternalErrorHidden(t *testing.T) {
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		cases := []struct {
			name     string
			tasks    server.Dispatcher
			closeDB  bool
			method   string
			path     string
			body     string
			inLog    string
			logStack bool
		}{
			{name: "closed database", closeDB: true, method: "GET", path: "/pulp/api/v3/remotes/container/pull-through/",
				inLog: "database is closed"},
			{name: "task queue error", tasks: faultyDispatcher{}, method: "POST", path: "/pulp/api/v3/distributions/container/container/",
				body: `{"name": "d", "base_path": "d"}`, inLog: internals},
			{name: "task queue panic", tasks: faultyDispatcher{panics: true}, method: "POST", path: "/pulp/api/v3/distributions/container/container/",
				body: `{"name": "d", "base_path": "d"}`, inLog: internals, logStack: true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				db, err := models.Open(eng.DatabaseURL, t.TempDir())
				if err != nil {
					t.Fatalf("open database: %v", err)
				}
				sqlDB, err := db.DB()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = sqlDB.Close() })
				if err := models.Migrate(db); err != nil {
					t.Fatalf("migrate: %v", err)
				}
				var logs lockedBuffer
				h, err := server.New(server.Deps{DB: db, Tasks: tc.tasks, AdminPassword: adminPassword,
					Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
				if err != nil {
					t.Fatalf("server.New: %v", err)
				}
				ts := httptest.NewServer(h)
				t.Cleanup(ts.Close)
				if tc.closeDB {
					_ = sqlDB.Close()
				}

				const cid = "0123456789abcdef0123456789abcdef"
				req, _ := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(tc.body))
				req.SetBasicAuth("admin", adminPassword)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Correlation-ID", cid)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()

				if res.StatusCode != http.StatusInternalServerError {
					t.Fatalf("status %d, want 500; body: %s", res.StatusCode, body)
				}
				if string(body) != djangoServerError {
					t.Errorf("body %q, want Pulp's 500 page", body)
				}
				if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
					t.Errorf("Content-Type %q", ct)
				}
				if got := res.Header.Get("Correlation-ID"); got != cid {
					t.Errorf("Correlation-ID %q, want %q", got, cid)
				}
				log := logs.String()
				if !strings.Contains(log, `"cid":"`+cid+`"`) || !strings.Contains(log, tc.inLog) {
					t.Errorf("log lacks the correlation id or the error %q:\n%s", tc.inLog, log)
				}
				if tc.logStack && !strings.Contains(log, `"stack":"goroutine`) {
					t.Errorf("log lacks the panic's stack:\n%s", log)
				}
			})
		}
	})
}
