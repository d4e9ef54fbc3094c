// Package security holds the end-to-end regression tests of issue 6, the security review of
// the pull-through cache: the built bin/pulpgo (test/harness) on each engine (test/testenv),
// in front of the local Docker Hub (test/upstream) where an honest registry is enough, and of
// a small hostile upstream of this package (hostile_test.go) where the upstream has to lie:
// wrong digests, signed schema 1 bodies, huge manifests, throttled blobs, names that answer
// 404 to anonymous callers.
//
// Each test is named after the finding it covers:
//
//   - finding 1 (a private pull-through distribution leaves its children public):
//     TestFinding1PrivateParent
//   - finding 2 (anonymous read of private blobs by digest): TestFinding2BlobGrantAfterFill,
//     TestFinding2JoinRunningFill
//   - finding 3 (cache poisoning through signed schema 1): TestFinding3Schema1Poisoning,
//     TestFinding3Schema1Signed
//   - finding 6 (memory exhaustion through large manifests): TestFinding6HugeManifests
//   - finding 7 (child objects for junk names, creation limit): TestFinding7JunkNames,
//     TestFinding7NewNamesLimit
//   - negative cache keyed by URL only: TestNegativeCacheKeyedByCredentials
//   - adoption of a foreign remote: TestAdoptionForeignRemote
//
// Findings 4, 5 and 8 and the API validation items are tested elsewhere.
//
// Run them with
//
//	go test ./test/security/
//
// with PULPGO_TEST_DATABASE_URL and PULPGO_TEST_REDIS_URL set for the postgres engine. Every
// server and upstream listens on a free port of 127.0.0.1.
package security
