package harness

import (
	"fmt"
	"strings"
)

// The command lines below are copied verbatim from Pulp's documents (/work/shared/seeds):
// they must run against us unchanged. Lines that the tests add before or after them are
// marked as such.

// PullThroughSeed is "Configure Pull-Through Caching" (pulp_container docs), its two httpie
// commands with their comments.
const PullThroughSeed = `# initialize a pull-through remote (the concept of upstream-name is not applicable here)
REMOTE_HREF=$(http ${BASE_ADDR}/pulp/api/v3/remotes/container/pull-through/ name=docker-cache url=https://registry-1.docker.io | jq -r ".pulp_href")

# create a pull-through distribution linked to the initialized remote
http ${BASE_ADDR}/pulp/api/v3/distributions/container/pull-through/ remote=${REMOTE_HREF} name=docker-cache base_path=docker-cache
`

// HostSeed is "Host and Consume a Repository", "Create a Distribution to Serve a Repository
// Version": the whole script.
const HostSeed = `#!/usr/bin/env bash

DIST_NAME=$(head /dev/urandom | tr -dc a-z | head -c5)
DIST_BASE_PATH='test'

# Distributions are created asynchronously.
echo "Creating distribution \
  (name=$DIST_NAME, base_path=$DIST_BASE_PATH repository=$REPO_HREF)."
TASK_HREF=$(http POST $BASE_ADDR/pulp/api/v3/distributions/container/container/ \
  name=$DIST_NAME \
  base_path=$DIST_BASE_PATH \
  repository=$REPO_HREF | jq -r '.task')

# Poll the task (here we use a function defined in docs/_scripts/base.sh)
wait_until_task_finished $BASE_ADDR$TASK_HREF

echo "Setting DISTRIBUTION_HREF from the completed task."
# DISTRIBUTION_HREF is the pulp-api HREF, not the content app href
DISTRIBUTION_HREF=$(http $BASE_ADDR$TASK_HREF | jq -r '.created_resources | first')

echo "Inspecting Distribution."
http $BASE_ADDR$DISTRIBUTION_HREF
`

// ConsumeSeed is the start of "Pull and Run an Image from Pulp", up to the docker commands
// (which need a docker daemon and content).
const ConsumeSeed = `CONTAINER_TAG='manifest_a'

echo "Setting REGISTRY_PATH, which can be used directly with the Docker Client."
REGISTRY_PATH=$(http $BASE_ADDR$DISTRIBUTION_HREF | jq -r '.registry_path')

echo "Next we pull and run the image from pulp"
echo "$REGISTRY_PATH:$CONTAINER_TAG"
`

// Markers returns shell lines (added by the tests, not from the documents) that print each
// variable as "@@NAME=value", for Vars to read.
func Markers(names ...string) string {
	var b strings.Builder
	b.WriteString("\n# added by the test: report the variables\n")
	for _, n := range names {
		fmt.Fprintf(&b, "echo \"@@%s=$%s\"\n", n, n)
	}
	return b.String()
}

// Vars reads the "@@NAME=value" lines of a script's output.
func Vars(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "@@"); ok {
			if k, v, ok := strings.Cut(rest, "="); ok {
				m[k] = v
			}
		}
	}
	return m
}
