package testenv

import "testing"

// Engine is one configuration of the server's storage: which database and which Redis it uses.
// Empty URLs mean the embedded ones (SQLite in the data directory, Redis in process).
type Engine struct {
	// Name names the engine in subtest names: "embedded" or "postgres".
	Name string
	// DatabaseURL is the PostgreSQL URL to pass as --database-url, or empty for SQLite.
	DatabaseURL string
	// RedisURL is the Redis URL to pass as --redis-url, or empty for in-process Redis.
	RedisURL string
}

// Embedded is the engine with SQLite and in-process Redis; it needs no server.
func Embedded() Engine { return Engine{Name: "embedded"} }

// Postgres returns the engine with a new PostgreSQL database (PostgresURL) and a new Redis
// database (RedisURL), both removed when t finishes.
func Postgres(t testing.TB) Engine {
	t.Helper()
	return Engine{Name: "postgres", DatabaseURL: PostgresURL(t), RedisURL: RedisURL(t)}
}

// Engines returns the embedded engine and the postgres engine, for
//
//	for _, e := range testenv.Engines(t) { t.Run(e.Name, func(t *testing.T) { ... }) }
//
// It creates the postgres engine's database and Redis database at once (they belong to t, not
// to a subtest), so it needs both servers even when only the embedded subtest runs; RunEngines
// creates them only when the postgres subtest runs.
func Engines(t testing.TB) []Engine {
	t.Helper()
	return []Engine{Embedded(), Postgres(t)}
}

// RunEngines runs fn as one subtest of t per engine, named after it. The postgres engine's
// databases are created inside its subtest, so only when it runs, and removed when it ends.
func RunEngines(t *testing.T, fn func(t *testing.T, e Engine)) {
	t.Helper()
	t.Run("embedded", func(t *testing.T) { fn(t, Embedded()) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}
