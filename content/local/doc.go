// Package local answers what a repository holds, from the database and blob storage. An
// Image is one repository version: the content of an ordinary distribution, and the local
// side of a pull-through image, which wraps it and adds only the upstream side (freshness,
// HEAD, fills, recording, grants), as Distribution's proxy stores wrap a local store. The
// Store reads and writes the content-addressed objects themselves (blobs and manifests by
// digest), whichever repository holds them.
//
// Both the registry and the pull-through cache use this package; it uses neither.
package local
