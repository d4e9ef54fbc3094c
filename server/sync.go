package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/pulpgo/pulpgo/models"
)

// syncSerializer reads a sync request: the remote (a container remote; the repository's own
// remote when absent), mirror and signed_only.
var syncSerializer = &serializer{
	schema: "ContainerRepositorySyncURL",
	rules:  map[string]rule{"remote": {refKinds: []models.Kind{models.KindContainerRemote}}},
}

// RepositoriesContainerContainerSync starts a sync of a container repository from a remote.
// Not implemented yet (issue 8): answers 501 with Pulp's body shape.
func (s *Server) RepositoriesContainerContainerSync(c *gin.Context, _ string) {
	s.respond(c, errDetail(http.StatusNotImplemented, "Repository sync is not implemented yet."))
}
