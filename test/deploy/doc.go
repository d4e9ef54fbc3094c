// Package deploy tests the deployment files of docs/deploy: the Kubernetes manifests and the
// compose file are decoded strictly and checked against pulpgo's roles, settings and probes,
// and the compose topology is brought up as local processes.
package deploy
