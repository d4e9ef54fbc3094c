package testenv_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/pulpgo/pulpgo/test/testenv"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// dbName returns the database named in a postgres:// URL.
func dbName(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	conn, err := pgx.Connect(ctx(t), os.Getenv(testenv.DatabaseURLEnv))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx(t))
	var n int
	if err := conn.QueryRow(ctx(t), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestPostgresURL(t *testing.T) {
	var name string
	t.Run("create", func(t *testing.T) {
		dsn := testenv.PostgresURL(t)
		name = dbName(t, dsn)
		if !strings.HasPrefix(name, "pulpgo_") {
			t.Fatalf("database %q: want prefix pulpgo_", name)
		}
		conn, err := pgx.Connect(ctx(t), dsn)
		if err != nil {
			t.Fatal(err)
		}
		var current string
		if err := conn.QueryRow(ctx(t), "SELECT current_database()").Scan(&current); err != nil {
			t.Fatal(err)
		}
		if current != name {
			t.Errorf("connected to %q, want %q", current, name)
		}
		if _, err := conn.Exec(ctx(t), "CREATE TABLE t (id int)"); err != nil {
			t.Fatal(err)
		}
		// Left open on purpose: the cleanup drops the database WITH (FORCE).
		t.Cleanup(func() { conn.Close(context.Background()) })

		other := testenv.PostgresURL(t)
		if dbName(t, other) == name {
			t.Errorf("two calls gave the same database %q", name)
		}
	})
	if name == "" {
		t.Fatal("no database was created")
	}
	if databaseExists(t, name) {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestRedisURL(t *testing.T) {
	var first string
	t.Run("create", func(t *testing.T) {
		first = testenv.RedisURL(t)
		second := testenv.RedisURL(t)
		if first == second {
			t.Fatalf("two calls gave the same database %s", first)
		}
		for _, u := range []string{first, second} {
			opts, err := redis.ParseURL(u)
			if err != nil {
				t.Fatal(err)
			}
			if opts.DB == 0 {
				t.Errorf("%s: database 0 holds the counter and must not be handed out", u)
			}
			c := redis.NewClient(opts)
			defer c.Close()
			if n, err := c.DBSize(ctx(t)).Result(); err != nil || n != 0 {
				t.Fatalf("%s: DBSIZE = %d, %v; want an empty database", u, n, err)
			}
			if err := c.Set(ctx(t), "k", "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	})
	opts, err := redis.ParseURL(first)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	if n, err := c.DBSize(ctx(t)).Result(); err != nil || n != 0 {
		t.Errorf("%s: DBSIZE = %d, %v after the test ended; want 0", first, n, err)
	}
}

func TestEngines(t *testing.T) {
	engines := testenv.Engines(t)
	if len(engines) != 2 {
		t.Fatalf("got %d engines, want 2", len(engines))
	}
	if e := engines[0]; e.Name != "embedded" || e.DatabaseURL != "" || e.RedisURL != "" {
		t.Errorf("engines[0] = %+v, want embedded with empty URLs", e)
	}
	if e := engines[1]; e.Name != "postgres" || !strings.HasPrefix(e.DatabaseURL, "postgres") || !strings.HasPrefix(e.RedisURL, "redis") {
		t.Errorf("engines[1] = %+v, want postgres with both URLs", e)
	}
}

func TestRunEngines(t *testing.T) {
	var names []string
	var pgName string
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		names = append(names, e.Name)
		if e.Name == "postgres" {
			pgName = dbName(t, e.DatabaseURL)
			if !databaseExists(t, pgName) {
				t.Errorf("database %s does not exist inside the subtest", pgName)
			}
		}
	})
	if fmt.Sprint(names) != "[embedded postgres]" {
		t.Errorf("ran %v, want [embedded postgres]", names)
	}
	if pgName == "" || databaseExists(t, pgName) {
		t.Errorf("database %q should have been dropped after the postgres subtest", pgName)
	}
}

func TestFreePort(t *testing.T) {
	for range 20 {
		p := testenv.FreePort(t)
		switch p {
		case 5000, 5432, 6379, 24816, 24817:
			t.Fatalf("FreePort returned avoided port %d", p)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		l.Close()
	}
}

// fatalRecorder records Fatal instead of stopping the test, to check the message.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatal(args ...any) { r.msg = fmt.Sprint(args...) }

func (r *fatalRecorder) Fatalf(format string, args ...any) { r.msg = fmt.Sprintf(format, args...) }

func TestUnsetFails(t *testing.T) {
	for _, tc := range []struct {
		env string
		get func(testing.TB) string
	}{
		{testenv.DatabaseURLEnv, testenv.PostgresURL},
		{testenv.RedisURLEnv, testenv.RedisURL},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(tc.env, "")
			r := &fatalRecorder{TB: t}
			if got := tc.get(r); got != "" {
				t.Errorf("returned %q with the variable unset", got)
			}
			want := tc.env + " is not set: run the tests with make test"
			if r.msg != want {
				t.Errorf("failed with %q, want %q", r.msg, want)
			}
		})
	}
}
