package server

import (
	"github.com/gin-gonic/gin"

	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/tasks"
)

// syncSerializer reads a sync request: the remote (a container remote; the repository's own
// remote when absent), mirror and signed_only.
var syncSerializer = &serializer{
	schema: "ContainerRepositorySyncURL",
	rules:  map[string]rule{"remote": {refKinds: []models.Kind{models.KindContainerRemote}}},
}

// noRemoteMessage is pulpcore's answer to a sync that names no remote for a repository that
// has none.
const noRemoteMessage = "This field is required since a remote is not set on the repository."

// RepositoriesContainerContainerSync starts a sync of a container repository from a remote
// (task synchronize), with the repository reserved exclusively and the remote shared.
func (s *Server) RepositoriesContainerContainerSync(c *gin.Context, id string) {
	s.respond(c, s.sync(c, id))
}

func (s *Server) sync(c *gin.Context, id string) error {
	repo, in, err := s.actionInput(c, models.KindContainerRepository, id, syncSerializer)
	if err != nil {
		return err
	}
	var remoteID string
	if href, ok := in.merged["remote"].(string); ok {
		ref, _ := models.ParseRef(href)
		remoteID = ref.ID
	} else if repo.RemoteID != nil {
		remoteID = *repo.RemoteID
	}
	if remoteID == "" {
		return models.NewValidationError("remote", noRemoteMessage)
	}
	mirror, _ := in.merged["mirror"].(bool)
	signedOnly, _ := in.merged["signed_only"].(bool)
	return s.dispatch(c, models.NewTask{Name: tasks.NameSync,
		Exclusive: []string{repo.Kind().PRNOf(repo.ID)},
		Shared:    []string{models.KindContainerRemote.PRNOf(remoteID)},
		Args:      tasks.SyncArgs{RepositoryID: repo.ID, RemoteID: remoteID, Mirror: mirror, SignedOnly: signedOnly}})
}
