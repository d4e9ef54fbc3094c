package server

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/pulpgo/pulpgo/models"
)

// RemotesContainerPullThroughUpstreamStatus shows the pull budget and circuit breaker of a
// pull-through remote's upstream as the content processes published them (a pulpgo
// extension, not in Pulp). Another kind of remote's id is not found, as for every path of
// pull-through remotes.
func (s *Server) RemotesContainerPullThroughUpstreamStatus(c *gin.Context, id string) {
	s.respond(c, s.upstreamStatus(c, id))
}

func (s *Server) upstreamStatus(c *gin.Context, id string) error {
	obj, err := s.getObject(c, models.KindPullThroughRemote, id)
	if err != nil {
		return err
	}
	view, err := models.UpstreamStatusOf(s.db.WithContext(c), obj.(*models.Remote), time.Now(), contentAppTTL)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, view)
}
