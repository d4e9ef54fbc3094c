// Package oci holds what the registry, the pull-through cache and the recording task share
// about OCI and Docker images: media types, manifest parsing, the grammar of repository names
// and digests, and the registry errors. It is a leaf: standard library only.
package oci
