// Package tasks runs Pulp's asynchronous operations on Asynq workers. Every operation is a
// task row (what /pulp/api/v3/tasks/<id>/ shows) plus an Asynq message carrying its id; a worker
// waits for the task's reserved resources, runs it once, and records the outcome.
package tasks
