// Package push drives pushes into bin/pulpgo serve with real clients (podman, skopeo) on
// both engines: podman login and push, pulls back by tag and digest, skopeo copies of a large
// image and of a multi-arch index, cross-repository mounts, deletes, private repositories and
// what the API shows of pushed repositories.
package push
