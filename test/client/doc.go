// Package client holds the Go clients and waiting helpers that the end-to-end test packages
// (test/pullthrough, test/security) share: an API client for /pulp/api/v3/ as the admin
// (API, with CreatePullThrough for a cache's remote and distribution), a registry client
// that pulls like a container client and checks every digest (Registry), polling with a
// timeout (Poll, PollFor), and the set-up both need (Context, NeedTools, StartHub,
// StartBudgetHub: a hub with Docker Hub's pull budget and moving tags, NewHTTPClient).
//
// What only one package asserts stays in that package, usually as methods of a type there
// that embeds *API or *Registry:
//
//	type regClient struct{ *client.Registry }
//	reg := &regClient{&client.Registry{Base: srv.URL, HTTP: client.NewHTTPClient()}}
//	n, err := reg.Blob(client.Context(t), "library/busybox", digest)
//
// The package is a test helper: every function that takes a testing.TB fails it on a broken
// answer instead of returning an error.
package client
