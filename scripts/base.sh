#!/usr/bin/env bash
# base.sh: helpers for scripts written like Pulp's documentation scripts (docs/_scripts/base.sh
# in Pulp's plugins). Source it; the end-to-end tests (test/harness) do so before each script.
#
# It needs httpie (credentials from ~/.netrc) and jq.

# BASE_ADDR is the API server's address; REGISTRY_ADDR is the same without the scheme, as
# Pulp's container plugin scripts use it for podman.
BASE_ADDR=${BASE_ADDR:-http://localhost:24817}
export BASE_ADDR
CONTENT_ADDR=${CONTENT_ADDR:-$BASE_ADDR}
export CONTENT_ADDR
REGISTRY_ADDR=${REGISTRY_ADDR:-${BASE_ADDR#*//}}
export REGISTRY_ADDR

# wait_until_task_finished polls every WAIT_TASK_INTERVAL seconds (0.2) for at most
# WAIT_TASK_TIMEOUT seconds (30; a whole number).
WAIT_TASK_TIMEOUT=${WAIT_TASK_TIMEOUT:-30}
WAIT_TASK_INTERVAL=${WAIT_TASK_INTERVAL:-0.2}

# wait_until_task_finished TASK_URL polls a Pulp task until it reaches a final state.
# completed: returns 0. failed or canceled: prints the task and exits 1. Not final after
# WAIT_TASK_TIMEOUT seconds, or not a task: exits 1. The task's JSON is printed at the end.
wait_until_task_finished() {
	echo "Polling the task until it has reached a final state."
	local task_url=$1
	local response="" state="" deadline
	deadline=$((${EPOCHREALTIME//[!0-9]/} + WAIT_TASK_TIMEOUT * 1000000))
	while true; do
		if ! response=$(http "$task_url"); then
			echo "Could not GET $task_url" >&2
			[[ -z "$response" ]] || echo "$response" >&2
			exit 1
		fi
		state=$(jq -r '.state // empty' <<<"$response" 2>/dev/null || true)
		if [[ -z "$state" ]]; then
			echo "Not a task: $task_url answered:"
			echo "$response"
			exit 1
		fi
		case $state in
		failed | canceled)
			echo "Task in final state: $state"
			jq . <<<"$response"
			exit 1
			;;
		completed)
			echo "$task_url complete."
			jq . <<<"$response"
			return 0
			;;
		esac
		if ((${EPOCHREALTIME//[!0-9]/} >= deadline)); then
			echo "Task still $state after ${WAIT_TASK_TIMEOUT}s: $task_url"
			jq . <<<"$response"
			exit 1
		fi
		sleep "$WAIT_TASK_INTERVAL"
	done
}
