// Package pullthrough is the pull-through cache: it serves images behind pull-through
// distributions from local storage, asks the upstream only what it cannot answer itself (a
// freshness window for tags, one HEAD per stale tag, one fetch per blob however many clients
// ask), keeps serving from the cache when the upstream fails, and hands what was pulled to a
// Recorder so that it becomes content of the image's repository.
package pullthrough
