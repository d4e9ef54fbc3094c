// Package ondemand holds the end-to-end tests of ordinary distributions serving on_demand and
// streamed content: blobs that a sync recorded as RemoteArtifacts instead of downloading them,
// fetched through their remote at the first pull. The built bin/pulpgo (test/harness) runs on
// each engine (test/testenv) in front of a local Docker Hub (test/upstream).
//
// Until the sync task lands, the tests record what an on_demand sync would (the manifest and
// config stored, the layers as Blob rows with RemoteArtifacts, one new repository version)
// straight into the server's database and storage, with the models' functions.
//
// Run them with
//
//	go test ./test/ondemand/
//
// with PULPGO_TEST_DATABASE_URL and PULPGO_TEST_REDIS_URL set for the postgres engine.
package ondemand
