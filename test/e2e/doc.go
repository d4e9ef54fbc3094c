// Package e2e holds end-to-end tests: the built bin/pulpgo, started by package harness with
// each engine of package testenv (embedded SQLite and Redis; PostgreSQL and Redis), driven by
// the clients Pulp's users have: httpie running the commands of Pulp's documentation verbatim
// (seeds_test.go), pulp-cli (pulpcli_test.go), and httpie, curl and Go's HTTP client sending
// bad input (badinput_test.go).
//
// The tests need httpie, jq, curl and pulp-cli on PATH, and PULPGO_TEST_DATABASE_URL and
// PULPGO_TEST_REDIS_URL (make test sets them). They test the server built from the working tree,
// or the binary named by PULPGO_E2E_BINARY. cmd/benchtasks is the measuring half of
// scripts/bench-tasks.sh.
package e2e
