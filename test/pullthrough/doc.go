// Package pullthrough holds the end-to-end tests of the pull-through cache: the built
// bin/pulpgo (test/harness) on each engine (test/testenv) in front of a local Docker Hub
// (test/upstream), driven by the real clients of Pulp's documentation (httpie, pulp-cli,
// podman, skopeo) and by a small Go registry client for concurrency and fault cases.
//
// Run them with
//
//	go test ./test/pullthrough/
//
// with PULPGO_TEST_DATABASE_URL and PULPGO_TEST_REDIS_URL set for the postgres engine (make
// test sets them; scripts/start-postgres.sh and scripts/start-redis.sh start the servers).
// Only TestSeedPodman binds 127.0.0.1:24817, the port of Pulp's documentation; everything
// else uses free ports on 127.0.0.1.
package pullthrough
