// Package reposync is the upstream side of a repository sync: it lists an upstream
// repository's tags (following pagination), keeps those the remote's includes and excludes
// select, fetches and verifies their manifests (every platform of an index) and stores them,
// and downloads their blobs once each through the fill engine, or, for an on_demand or
// streamed remote, downloads the config blobs and records where the layers can be fetched.
// The worker's sync job (tasks) turns what it found into one new repository version.
package reposync
