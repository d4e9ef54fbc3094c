// Package models holds Pulp's objects (remotes, repositories and their versions,
// distributions, namespaces, content, tasks, app statuses) as gorm models, and the domain
// operations on them: href and PRN building, repository versions, filters and serialization.
// It knows nothing of HTTP, queues or generated API code.
package models
