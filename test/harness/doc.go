// Package harness drives the built server binary with real clients for end-to-end tests.
//
// Binary builds bin/pulpgo once per test process; Start runs it (with an engine from
// package testenv) and waits until it answers; NewClientHome makes a temporary HOME in which
// httpie, pulp-cli, podman and the scripts in the style of Pulp's documentation
// (scripts/base.sh) talk to that server as the admin user.
//
//	srv := harness.Start(t, harness.Options{Engine: e})
//	home := harness.NewClientHome(t, srv)
//	home.Run(t, "pulp", "status").Must(t)
//	home.Bash(t, `task=$(http POST "$BASE_ADDR/pulp/api/v3/..." | jq -r .task)
//	wait_until_task_finished "$BASE_ADDR$task"`).Must(t)
package harness
