// Package reposync holds the end-to-end tests of repository sync: the built bin/pulpgo
// (test/harness) on each engine (test/testenv) syncing from a local Docker Hub
// (test/upstream), driven through the Pulp API and checked by pulling from an ordinary
// distribution with a Go registry client and by the upstream's request counters.
//
// Run them with
//
//	go test ./test/reposync/
//
// with PULPGO_TEST_DATABASE_URL and PULPGO_TEST_REDIS_URL set for the postgres engine.
package reposync
