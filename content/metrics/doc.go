// Package metrics holds pulpgo's Prometheus collectors: one registry per process, served at
// /metrics, fed through small hooks that the instrumented packages declare themselves (the
// API's RequestObserver, the registry's handler wrapper, fill.Observer, upstream.Observer,
// pullthrough.Observer, the worker's task observer), so that only this package imports
// Prometheus. Label values come from bounded sets (route templates, operation kinds, status
// codes, task names, upstream hosts), never from request paths.
package metrics
