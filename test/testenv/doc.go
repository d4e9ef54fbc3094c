// Package testenv gives integration tests real PostgreSQL databases and Redis databases, each
// private to the test that asked and removed when it ends.
//
// The servers come from the environment: PULPGO_TEST_DATABASE_URL is a PostgreSQL URL with the
// right to create databases, PULPGO_TEST_REDIS_URL a Redis URL (its server should have many
// databases, as scripts/start-redis.sh starts it with 1024). make test (scripts/test.sh) starts
// both and sets the variables. A test that needs a server fails when its variable is unset; it
// never skips.
package testenv
