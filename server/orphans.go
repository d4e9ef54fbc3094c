package server

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// orphansCleanupSerializer reads an orphan cleanup request: content_hrefs (limit the cleanup
// to these) and orphan_protection_time (minutes; null: the server's setting).
var orphansCleanupSerializer = &serializer{schema: "OrphansCleanup"}

// OrphansCleanupCleanup starts the removal of content in no repository version.
// Not implemented yet (issue 8): answers 501 with Pulp's body shape.
func (s *Server) OrphansCleanupCleanup(c *gin.Context) {
	s.respond(c, errDetail(http.StatusNotImplemented, "Orphan cleanup is not implemented yet."))
}
