package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DatabaseURLEnv names the variable holding the PostgreSQL admin URL for tests.
const DatabaseURLEnv = "PULPGO_TEST_DATABASE_URL"

// RedisURLEnv names the variable holding the Redis URL for tests.
const RedisURLEnv = "PULPGO_TEST_REDIS_URL"

// setupTimeout bounds each round trip to a test server.
const setupTimeout = 30 * time.Second

// PostgresURL creates an empty database pulpgo_<random> on the server named by
// PULPGO_TEST_DATABASE_URL and returns its URL. The database is dropped (WITH (FORCE), so open
// connections do not keep it) when t and its subtests have finished. It fails t when the
// variable is unset or the server cannot be reached.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(DatabaseURLEnv)
	if admin == "" {
		t.Fatal(DatabaseURLEnv + " is not set: run the tests with make test")
		return ""
	}
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s=%q is not a postgres:// URL", DatabaseURLEnv, admin)
		return ""
	}
	name := "pulpgo_" + randomHex(t, 8)
	ident := pgx.Identifier{name}.Sanitize()

	if err := pgExec(admin, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("create database %s: %v", name, err)
		return ""
	}
	t.Cleanup(func() {
		if err := pgExec(admin, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})

	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

// pgExec runs one statement on a new connection to dsn.
func pgExec(dsn, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// randomHex returns 2n random hexadecimal digits.
func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random name: %v", err)
	}
	return hex.EncodeToString(b)
}
