// Package parity holds the differential test: the same API conversations sent to the real Pulp
// (pulpcore 3.116.0 + pulp_container 2.29.0, started by scripts/start-pulp.sh) and to bin/pulpgo
// serve (started by package harness with the embedded engine), their answers compared.
//
// A conversation is a YAML file in conversations/: steps of method, path, body (or a raw body),
// credentials (admin, anonymous or wrong), values to capture from the answer (or from the task
// it started) for later steps as {{name}}, and paths whose values must be equal. For each step
// the test compares the status codes; the bodies' key sets at every depth, value types and array
// lengths; error bodies (status 400 and up) exactly, once hrefs' ids, timestamps and origins are
// masked (only the text after "JSON parse error - " may differ); and for a 202 with a task, it
// follows the task on both servers to its end and compares its keys, state, name,
// created_resources (masked), result (shape) and error description.
//
// docs/api.md's section "Differences the differential test allows" lists the differences that
// are deliberate, each with its reason, as a table of step and where patterns (path.Match): the
// test fails on a difference that is not listed, and on a listed one that no longer occurs.
//
//	make test-parity                     # or: go test -count=1 -v ./test/parity
//	PULPGO_PARITY=0 go test ./...        # skip it (the only way it skips)
//	PULPGO_PARITY_PULP_URL=http://...    # use a Pulp already started (with a fresh database)
package parity
