// Package conformance runs the OCI distribution-spec conformance suite
// (github.com/opencontainers/distribution-spec/conformance, built once per machine) against
// bin/pulpgo serve with token authentication on, on both engines, and checks that every test
// the suite does not pass is one docs/api.md names with its reason.
package conformance
